// Package proxycheck reads the proxy side of a deployment (the Ingresses,
// routes and middlewares that point at jwtgate) and reports the
// configurations that leak: an upstream that would trust a header the proxy
// never overwrites, a door that does not fit the proxy, a policy that does not
// exist, a door reachable from the internet, fail-open settings.
//
// It reads objects as unstructured data (the proxies' own Go modules are
// enormous or not to be had), needs no cluster, and is shared by
// `jwtgate check` and the controller.
package proxycheck
