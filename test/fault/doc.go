// Package fault holds the fault tests of jwtgate as a process: keys
// rotated under load in `jwtgate serve`, SIGTERM under load behind an nginx
// upstream of two jwtgate processes, and revocation across two
// jwtgate processes sharing one redis-server that is stopped and restarted
// mid-test. The controller's fault tests (API server cut, jwksURL failures,
// Secret rotation under load) are in controllers/, on envtest.
//
// The tests carry the build tag fault so that `go test ./...` does not start
// processes: `make fault` (which `make test` calls) runs
// `go test -tags fault ./test/fault/...`. nginx and redis-server are required;
// a missing one fails the test with the command that installs it. Everything
// listens on 127.0.0.1 only and is stopped when each test ends.
package fault
