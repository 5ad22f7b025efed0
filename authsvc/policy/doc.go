// Package policy is jwtgate's decision core: it turns an AuthPolicy and the
// Secrets it references into a compiled [Policy], publishes compiled policies
// as one immutable [Snapshot], and decides requests from that snapshot alone.
//
// Data flows one way:
//
//   - Compile: [Compile] checks an AuthPolicy spec with its Secrets and builds a
//     [Policy] (keys parsed once, rules indexed, claim paths resolved), or a
//     [*CompileError] whose problems name the field and how to fix it. Both
//     config sources, the controller and `jwtgate serve`, call it with the same
//     inputs.
//   - Publish: [Store.Publish], [Store.Sync] and [Store.Remove] are the one
//     publish path. The store keeps the last good version of each policy
//     (narrowed to the Secrets that still exist), resolves host conflicts,
//     sets the policy metrics and swaps in a new [Snapshot] with an
//     atomic.Pointer. A snapshot and the policies in it are never changed
//     after publication.
//   - Decide: [Policy.Decide] takes the one [Request] every door builds and
//     returns a [Decision]. It reads only the policy it is called on, its token
//     cache and, for spec.login.revocation: strict, the [SessionChecker] it is
//     given: never a file, a Secret or the API server. Token signatures
//     are checked by github.com/lestrrat-go/jwx/v3; this package decides what
//     to trust and what a verified token may do.
//
// This package must never import controller-runtime, client-go or jwtgate's
// HTTP packages (authsvc/server, authsvc/login, authsvc/admin): the cluster
// and the HTTP front call the core, never the reverse. `make lint` enforces
// it (golangci-lint's depguard, file by file, and hack/check-deps.sh on the
// whole import graph).
package policy
