# xray-lightning: every target installs the venv first, so any of them works on a fresh clone.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DATASET ?= $(if $(wildcard ../shared/dataset),../shared/dataset,)
RUN ?=
ARGS ?=

.PHONY: install data test test-all lint format train train-demo tensorboard audit bench-data clean help

help:  ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install the package with dev extras

data:  ## link data/dataset to DATASET (default ../shared/dataset)
	@test -n "$(DATASET)" || { echo "No dataset found: pass DATASET=/path/to/dataset"; exit 2; }
	@test -d "$(DATASET)" || { echo "DATASET=$(DATASET) is not a folder"; exit 2; }
	mkdir -p data
	ln -sfn "$(abspath $(DATASET))" data/dataset
	@echo "data/dataset -> $(abspath $(DATASET))"

test: $(STAMP)  ## run the test suite (integration tests use XRAY_DATA_ROOT or data/dataset)
	$(PY) -m pytest -q $(ARGS)

test-all: $(STAMP)  ## the test suite including tests marked slow
	$(PY) -m pytest -q -m "" $(ARGS)

lint: $(STAMP)  ## ruff lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)  ## ruff autofix and format
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# The real dataset: XRAY_DATA_ROOT if set, else data/dataset (linked on first use by `make data`).
DATA_DEP := $(if $(XRAY_DATA_ROOT),,data/dataset)
data/dataset:
	@$(MAKE) --no-print-directory data

train: $(STAMP) $(DATA_DEP)  ## train the whole cascade on the real dataset (task=cascade), print 3-class test metrics
	$(PY) -m xray_lightning.train task=cascade $(ARGS)

train-demo: $(STAMP)  ## a 2-minute cascade on generated synthetic images (no dataset needed)
	$(PY) -m xray_lightning.data.synthetic logs/synthetic-dataset
	$(PY) -m xray_lightning.train task=cascade experiment=demo data.root=logs/synthetic-dataset $(ARGS)

tensorboard: $(STAMP)  ## serve the TensorBoard logs of every run under logs/ (RUN=dir for one run)
	$(VENV)/bin/tensorboard --logdir $(if $(RUN),$(RUN),logs) --bind_all

clean:  ## remove caches (not logs, not the venv)
	rm -rf .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
