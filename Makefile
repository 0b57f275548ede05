# xray-lightning: every target installs the venv first, so any of them works on a fresh clone.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DATASET ?= $(if $(wildcard ../shared/dataset),../shared/dataset,)
RUN ?=
ARGS ?=

.PHONY: install data test test-all lint format train tensorboard audit bench-data clean help

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

clean:  ## remove caches (not logs, not the venv)
	rm -rf .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
