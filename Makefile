# jwtgate Makefile. `make help` lists the targets.
SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

GO ?= go
LOCALBIN ?= $(CURDIR)/bin
# Per test binary of make test's race run: the race detector makes the envtest
# and Redis packages several times slower on 2 cores than go test's 10m default allows for.
RACE_TIMEOUT ?= 20m
CACHE_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/jwtgate

## Tool versions (pinned; installed into ./bin with go install).
CONTROLLER_TOOLS_VERSION ?= v0.23.0
HELM_VERSION ?= v3.22.0
GOLANGCI_LINT_VERSION ?= v2.15.0

CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION)
HELM ?= $(LOCALBIN)/helm-$(HELM_VERSION)
GOLANGCI_LINT ?= $(LOCALBIN)/golangci-lint-$(GOLANGCI_LINT_VERSION)

# `$(PHASE) name cmd...` runs one phase of make test and prints how long it took
# (hack/phase.sh); a failed phase fails make as the command alone would.
PHASE := hack/phase.sh

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: controller-gen ## Generate the CRD and RBAC manifests into config/.
	$(CONTROLLER_GEN) rbac:roleName=jwtgate crd:allowDangerousTypes=false paths="./api/..." paths="./controllers/..." \
		output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac
	@$(MAKE) --no-print-directory chart-files

.PHONY: generate
generate: controller-gen ## Generate deepcopy code.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: fmt
fmt: ## go fmt.
	$(GO) fmt ./...

.PHONY: vet
vet: ## go vet.
	$(GO) vet ./...

# make lint: gofmt, the package arrows on the whole import graph (hack/check-deps.sh),
# then one golangci-lint run of every linter of .golangci.yml (depguard's arrows file
# by file, govet with the e2e and fault tags, errcheck, staticcheck, gosec, ...),
# niced: it shares the machine with the tests; a second make lint waits for the first
# (--allow-serial-runners) instead of failing on golangci-lint's lock.
.PHONY: lint
lint: golangci-lint ## gofmt check, the package arrows (hack/check-deps.sh, depguard), and every linter of .golangci.yml (govet, errcheck, staticcheck, gosec, ...; e2e and fault files too).
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	hack/check-deps.sh
	nice -n 19 $(GOLANGCI_LINT) run --allow-serial-runners ./...

.PHONY: verify
verify: generate manifests ## Fail if generated files (deepcopy, CRD, RBAC) are not committed as generated.
	@if [ -n "$$(git status --porcelain -- api config $(CHART_DIR)/files)" ]; then \
		echo "generated files differ from what is committed; run 'make generate manifests' and commit:"; \
		git status --porcelain -- api config $(CHART_DIR)/files; git --no-pager diff --stat -- api config $(CHART_DIR)/files; exit 1; fi
	@echo "generated files are up to date"

.PHONY: test
.PHONY: deps
deps: ## Install the Debian packages the tests start for real (nginx, redis-server, redis-sentinel, wrk, chromium) when missing; as root.
	hack/install-deps.sh

# Each phase runs through $(PHASE), which prints its time; the table of all of
# them comes at the end (and after a failed phase). Add a phase the same way.
test: ## Run every test: unit and envtest (real kube-apiserver + etcd) under the race detector, Redis, OpenID provider (Hydra), chart checks, nginx + browser end-to-end, faults, fuzz.
	@$(PHASE) --start
	@$(PHASE) deps $(MAKE) --no-print-directory deps
	@$(PHASE) lint $(MAKE) --no-print-directory lint
	@$(PHASE) verify $(MAKE) --no-print-directory verify
	@$(PHASE) envtest-bins $(MAKE) --no-print-directory envtest-bins helm
	@$(PHASE) oidc-provider $(MAKE) --no-print-directory oidc-provider
	@$(PHASE) traefik $(MAKE) --no-print-directory traefik
	@$(PHASE) egctl $(MAKE) --no-print-directory egctl
	@$(PHASE) go-test env HELM="$(HELM)" KUBEBUILDER_ASSETS="$$(hack/envtest-bins.sh)" JWTGATE_HYDRA="$$(hack/oidc-provider.sh)" $(GO) test -race -count=1 -timeout $(RACE_TIMEOUT) ./...
	@$(PHASE) e2e $(MAKE) --no-print-directory e2e
	@$(PHASE) egctl-translate $(MAKE) --no-print-directory egctl-translate
	@$(PHASE) fault $(MAKE) --no-print-directory fault
	@$(PHASE) fuzz hack/fuzz.sh $(or $(CI_FUZZTIME),300x)
	@$(PHASE) --summary

.PHONY: fault
fault: ## Fault tests as processes: keys rotated under load in serve, SIGTERM under load behind nginx, revocation across two replicas over a real Redis stopped and restarted, a Sentinel failover, a Redis Cluster (controller faults run in ./controllers).
	hack/install-deps.sh nginx redis-server redis-sentinel
	$(GO) vet -tags fault ./test/fault/...
	$(GO) test -tags fault -count=1 -timeout 5m ./test/fault/...

.PHONY: soak
soak: build ## Soak: DURATION (default 10m) of mixed load through nginx while keys rotate, policies change and a replica restarts; reports non-2xx and RSS.
	hack/soak.sh

.PHONY: e2e
e2e: ## End-to-end: jwtgate behind a real nginx (TLS) and headless Chromium, Caddy, and Traefik reading Ingresses from a real kube-apiserver; OIDC sign-ins at Ory Hydra (serve, and Chromium through nginx); installs and builds them first.
	hack/install-deps.sh nginx libnginx-mod-http-set-misc chromium caddy haproxy
	$(GO) vet -tags e2e ./test/e2e/...
	KUBEBUILDER_ASSETS="$$(hack/envtest-bins.sh)" JWTGATE_TRAEFIK="$$(hack/traefik-bin.sh)" JWTGATE_HYDRA="$$(hack/oidc-provider.sh)" $(GO) test -tags e2e -count=1 -timeout 10m ./test/e2e/...

.PHONY: egctl
egctl: ## Build and cache egctl of Envoy Gateway v1.9.1 (from the Go module proxy, in ~/.cache/jwtgate; 36 minutes the first time on a busy 2-core machine).
	@hack/egctl-bin.sh >/dev/null

.PHONY: egctl-translate
egctl-translate: ## Envoy Gateway's own translation of docs/proxies/envoy-gateway.md (egctl v1.9.1 built from its module into ~/.cache/jwtgate; minutes the first time) must point at the door, path, port and headers the guide promises.
	JWTGATE_EGCTL="$$(hack/egctl-bin.sh)" $(GO) test -tags egctl -count=1 -run TestEnvoyGatewayTranslatesTheGuide ./test/guides/

.PHONY: test-short
test-short: ## Unit tests only (no envtest, no nginx).
	$(GO) test -short -count=1 ./...

.PHONY: fuzz
fuzz: ## Run each fuzz target for FUZZTIME (default 30s).
	hack/fuzz.sh $(or $(FUZZTIME),30s)

.PHONY: bench
bench: bench-go ## Go benchmarks, then bench/run.sh (nginx + wrk on loopback; DURATION, ROUNDS, CONNECTIONS, COMPARE_OAUTH2_PROXY=1).
	bench/run.sh

.PHONY: bench-go
bench-go: ## Go benchmarks of the decision path and the whole handler only.
	$(GO) test -run '^$$' -bench . -benchmem ./authsvc/... ./bench/...

##@ Helm chart

CHART_DIR ?= charts/jwtgate

.PHONY: chart-files
chart-files: ## Copy the generated RBAC and CRDs from config/ into the chart (make manifests runs this).
	@mkdir -p $(CHART_DIR)/files/rbac $(CHART_DIR)/files/crds
	cp config/rbac/role.yaml $(CHART_DIR)/files/rbac/role.yaml
	rm -f $(CHART_DIR)/files/crds/*.yaml
	cp config/crd/bases/*.yaml $(CHART_DIR)/files/crds/

.PHONY: chart-check
chart-check: helm envtest-bins ## Chart checks only: lint, schema, render, server-side dry-run, install, controller under the chart's RBAC.
	HELM="$(HELM)" KUBEBUILDER_ASSETS="$$(hack/envtest-bins.sh)" $(GO) test -count=1 ./test/chart/...

##@ Build and run

.PHONY: build
build: ## Build bin/jwtgate.
	$(GO) build -trimpath -o $(LOCALBIN)/jwtgate ./cmd/jwtgate

.PHONY: run
run: build ## Serve examples/ on :8000 and print curls that show it working.
	@hack/run-examples.sh $(LOCALBIN)/jwtgate

.PHONY: demo-keys
demo-keys: build ## Make the demo key pair of examples/ into bin/demo/ (make run does this too).
	@hack/run-examples.sh $(LOCALBIN)/jwtgate --keys-only

##@ Dependencies

.PHONY: envtest-bins
envtest-bins: ## Build and cache kube-apiserver and etcd for envtest (in ~/.cache/jwtgate).
	@hack/envtest-bins.sh >/dev/null

.PHONY: oidc-provider
oidc-provider: ## Build and cache the OpenID provider the OIDC tests sign in at (Ory Hydra, in ~/.cache/jwtgate; minutes the first time).
	@hack/oidc-provider.sh >/dev/null

.PHONY: traefik
traefik: ## Build and cache Traefik v3.6.12 for the Traefik walk (from the Go module proxy, in ~/.cache/jwtgate; about 7 minutes the first time).
	@hack/traefik-bin.sh >/dev/null

.PHONY: controller-gen
controller-gen: $(CONTROLLER_GEN)
$(CONTROLLER_GEN):
	@mkdir -p $(LOCALBIN)
	GOBIN=$(LOCALBIN) $(GO) install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)
	mv $(LOCALBIN)/controller-gen $(CONTROLLER_GEN)

.PHONY: golangci-lint
golangci-lint: $(GOLANGCI_LINT) ## Install the pinned golangci-lint into ./bin.
$(GOLANGCI_LINT):
	@mkdir -p $(LOCALBIN)
	GOBIN=$(LOCALBIN) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	mv $(LOCALBIN)/golangci-lint $(GOLANGCI_LINT)

.PHONY: helm
helm: $(HELM)
$(HELM):
	@mkdir -p $(LOCALBIN)
	GOBIN=$(LOCALBIN) $(GO) install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)
	mv $(LOCALBIN)/helm $(HELM)
