# jwtgate Makefile. `make help` lists the targets.
SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

GO ?= go
LOCALBIN ?= $(CURDIR)/bin
CACHE_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/jwtgate

## Tool versions (pinned; installed into ./bin with go install).
CONTROLLER_TOOLS_VERSION ?= v0.23.0
HELM_VERSION ?= v3.22.0

CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION)
HELM ?= $(LOCALBIN)/helm-$(HELM_VERSION)

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

.PHONY: generate
generate: controller-gen ## Generate deepcopy code.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: fmt
fmt: ## go fmt.
	$(GO) fmt ./...

.PHONY: vet
vet: ## go vet.
	$(GO) vet ./...

.PHONY: lint
lint: vet ## gofmt check and go vet.
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

.PHONY: verify
verify: generate manifests ## Fail if generated files (deepcopy, CRD, RBAC) are not committed as generated.
	@if [ -n "$$(git status --porcelain -- api config)" ]; then \
		echo "generated files differ from what is committed; run 'make generate manifests' and commit:"; \
		git status --porcelain -- api config; git --no-pager diff --stat -- api config; exit 1; fi
	@echo "generated files are up to date"

.PHONY: test
test: lint verify envtest-bins ## Run every test: unit, envtest (real kube-apiserver + etcd), fuzz seeds.
	KUBEBUILDER_ASSETS="$$(hack/envtest-bins.sh)" $(GO) test -count=1 ./...

.PHONY: test-short
test-short: ## Unit tests only (no envtest, no nginx).
	$(GO) test -short -count=1 ./...

.PHONY: fuzz
fuzz: ## Run each fuzz target for FUZZTIME (default 30s).
	hack/fuzz.sh $(or $(FUZZTIME),30s)

.PHONY: bench
bench: ## Go benchmarks of the decision path.
	$(GO) test -run '^$$' -bench . -benchmem ./authsvc/...

##@ Build and run

.PHONY: build
build: ## Build bin/jwtgate.
	$(GO) build -trimpath -o $(LOCALBIN)/jwtgate ./cmd/jwtgate

.PHONY: run
run: build ## Serve examples/ on :8000 and print curls that show it working.
	@hack/run-examples.sh $(LOCALBIN)/jwtgate

##@ Dependencies

.PHONY: envtest-bins
envtest-bins: ## Build and cache kube-apiserver and etcd for envtest (in ~/.cache/jwtgate).
	@hack/envtest-bins.sh >/dev/null

.PHONY: controller-gen
controller-gen: $(CONTROLLER_GEN)
$(CONTROLLER_GEN):
	@mkdir -p $(LOCALBIN)
	GOBIN=$(LOCALBIN) $(GO) install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)
	mv $(LOCALBIN)/controller-gen $(CONTROLLER_GEN)

.PHONY: helm
helm: $(HELM)
$(HELM):
	@mkdir -p $(LOCALBIN)
	GOBIN=$(LOCALBIN) $(GO) install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)
	mv $(LOCALBIN)/helm $(HELM)
