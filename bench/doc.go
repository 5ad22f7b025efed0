// Package bench holds jwtgate's load benchmark (run.sh, see README.md), the
// small servers it compares against (cmd/noop, cmd/floorverify), its token
// minter (cmd/mint), and Go benchmarks of the whole decision handler.
package bench
