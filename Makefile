# snnlab: `make run` (the main job), `make test` (unit tests + every notebook + the docs site), `make lab` (JupyterLab),
# `make docs` (the documentation site -> docs/_build/html; open docs/_build/html/index.html).
# Each target first builds .venv from the pinned requirements.lock (once; redone when the lock changes).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.snnlab-installed
DOCS_STAMP := $(VENV)/.snnlab-docs-installed
SITE   := docs/_build/html

.PHONY: setup docs-setup run sweep test test-unit test-notebooks test-docs docs lab bench gpu-check notebooks clean

setup: $(STAMP)

$(STAMP): requirements.lock requirements-oracle.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-oracle.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

docs-setup: $(DOCS_STAMP)

$(DOCS_STAMP): $(STAMP) requirements-docs.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-docs.txt
	touch $@

docs: docs-setup        ## the documentation site from the committed notebooks (not re-executed) -> docs/_build/html
	rm -rf $(SITE)
	$(BIN)/sphinx-build -W --keep-going -q -b html -c docs . $(SITE)
	@echo "site: $(SITE)/index.html (opens from disk, no network needed)"

test-docs: docs         ## the site in headless Chromium (Debian's chromium; .ci/run installs it): pages, maths, links, explorers
	SNNLAB_DOCS_HTML=$(SITE) SNNLAB_REQUIRE_BROWSER=1 MPLBACKEND=Agg $(BIN)/python -m pytest tests/test_docs_site.py -q

run: setup           ## every method at its validated setting on the embedded data, 5 seeds, the table -> results/
	$(BIN)/snnlab reproduce --out results

sweep: setup         ## choose every make-run row's setting on the validation split again (by hand; commit snnlab/validated/)
	$(BIN)/snnlab reproduce --sweep --save-validated --out results

test: test-unit test-notebooks test-docs   ## everything CI runs

test-unit: setup
	MPLBACKEND=Agg $(BIN)/python -m pytest tests -q --ignore=tests/test_docs_site.py

test-notebooks: setup   ## execute every notebook with SNNLAB_FAST=1 and check NBVAL_CHECK_OUTPUT cells
	SNNLAB_FAST=1 MPLBACKEND=Agg $(BIN)/python -m pytest --nbval-lax --nbval-cell-timeout=600 notebooks solutions -q

lab: setup
	$(BIN)/jupyter lab notebooks

bench: setup            ## speed benchmark (by hand; figures go in the README)
	$(BIN)/python benchmarks/bench_step.py

# a GPU machine may bring its own torch and no network: use .venv when there is one, else the system python
GPU_PY := $(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON))

gpu-check:              ## on a GPU: CUDA tests + step/neuron benchmarks, one markdown report (gpu-check.md); DRY=1: CPU dry run
	$(GPU_PY) benchmarks/gpu_check.py $(if $(DRY),--dry,)

notebooks: setup        ## re-execute the notebooks at full size and save their outputs (commit them)
	for nb in notebooks/*.ipynb; do \
	  $(BIN)/jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.timeout=1800 $$nb || exit 1; \
	done

clean:
	rm -rf runs results $(VENV) docs/_build
