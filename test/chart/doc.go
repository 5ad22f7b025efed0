// Package chart holds the checks of the Helm chart in charts/jwtgate (its tests
// are the whole package): helm lint, the values schema, what the templates
// render, a server-side dry-run and a helm install against envtest's real
// kube-apiserver, and `jwtgate controller` run under the chart's ServiceAccount
// (by impersonation) to prove that the chart's RBAC is enough and no more.
//
// `make test` and `make chart-check` run them with $HELM set to the pinned helm
// binary; `go test -short` runs only the checks that need no API server.
package chart
