# xray-lightning: every target installs the venv first, so any of them works on a fresh clone.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DATASET ?=
RUN ?=
ARGS ?=

.PHONY: install data test test-all lint format train train-demo serve tensorboard audit bench-data clean help

help:  ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install -e '.[dev]'
	@echo "exporting the shipped model for ONNX Runtime (once; predict's fast path)"
	$(PY) -m xray_lightning.onnx_stage experiments/best || echo "note: not exported; predict exports it on first use or runs in PyTorch"
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install the package with dev extras

data:  ## link data/dataset to DATASET=/path/to/dataset (only needed for a dataset the finder does not see)
	@test -n "$(DATASET)" || { echo "pass DATASET=/path/to/dataset (XRAY_DATA_ROOT, data/dataset and ../shared/dataset are found without it)"; exit 2; }
	@test -d "$(DATASET)" || { echo "DATASET=$(DATASET) is not a folder"; exit 2; }
	mkdir -p data
	ln -sfn "$(abspath $(DATASET))" data/dataset
	@echo "data/dataset -> $(abspath $(DATASET))"

test: $(STAMP)  ## run the test suite (integration tests use the dataset the package finds)
	$(PY) -m pytest -q $(ARGS)

test-all: $(STAMP)  ## the test suite including tests marked slow
	$(PY) -m pytest -q -m "" $(ARGS)

lint: $(STAMP)  ## ruff lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)  ## ruff autofix and format
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# The real dataset is found by the package (xray_lightning.data.layout.find_dataset):
# XRAY_DATA_ROOT, else data/dataset (make data DATASET=...), else ../shared/dataset.

train: $(STAMP)  ## the main job: a good cascade in ~4 minutes on 2 CPU cores (experiment=fast), 3-class test metrics
	$(PY) -m xray_lightning.train experiment=fast $(ARGS)

DEMO_DATA := logs/synthetic-demo
train-demo: $(STAMP)  ## a 1-minute cascade on generated synthetic images (no dataset needed)
	test -d $(DEMO_DATA) || $(PY) -m xray_lightning.data.synthetic $(DEMO_DATA) --scale 4 --image-size 64
	$(PY) -m xray_lightning.train experiment=demo data.root=$(DEMO_DATA) $(ARGS)

audit: $(STAMP)  ## audit the dataset: counts, imbalance, duplicates, bad files, class_distribution.png
	$(PY) -m xray_lightning.data.audit --out outputs/audit $(ARGS)

bench-data: $(STAMP)  ## data-path benchmark: DataModule loader vs naive PIL loader (images/s)
	$(PY) -m xray_lightning.bench.data $(ARGS)

serve: $(STAMP)  ## the labelling page on http://127.0.0.1:8765 (the shipped model; ARGS="--model DIR" or "--port N")
	$(PY) -m xray_lightning.serve $(ARGS)

HOST ?= 127.0.0.1
PORT ?= 6006
tensorboard: $(STAMP)  ## serve the TensorBoard logs under logs/ on http://127.0.0.1:6006 (RUN=dir for one run; HOST=, PORT= to change; HOST=0.0.0.0 exposes them to the network)
	$(VENV)/bin/tensorboard --logdir $(if $(RUN),$(RUN),logs) --host $(HOST) --port $(PORT)

# Sweeps: Hydra multiruns on the real dataset, grids in conf/sweep/<name>.yaml, 3 seeds each; every
# sweep dir (logs/sweeps/<name>/<time>/) gets summary.csv and summary.md. ARGS adds overrides.
SWEEP_TARGETS := sweep-optimizer sweep-lr sweep-loss sweep-batch sweep-init sweep-dropout \
	sweep-arch sweep-arch-choice
.PHONY: sweeps tables $(SWEEP_TARGETS)

sweep-optimizer: $(STAMP)  ## stage 1: sgd/rmsprop/adam, 3 epochs x 3 seeds, 9 jobs (Table 1-3)
	$(PY) -m xray_lightning.train -m sweep=optimizer $(ARGS)

sweep-lr: $(STAMP)  ## stage 1, sgd: lr 1e-4 ... 0.5 (10 rates), 3 epochs x 3 seeds, 30 jobs
	$(PY) -m xray_lightning.train -m sweep=lr $(ARGS)

sweep-loss: $(STAMP)  ## stage 1: ce/hinge/bce/squared_hinge, 3 epochs x 3 seeds, 12 jobs
	$(PY) -m xray_lightning.train -m sweep=loss $(ARGS)

sweep-batch: $(STAMP)  ## stage 1: batch 3...128, 3 half-epochs x 3 seeds, 18 jobs
	$(PY) -m xray_lightning.train -m sweep=batch $(ARGS)

sweep-init: $(STAMP)  ## stage 1: default/zeros/normal/xavier/kaiming, 3 epochs x 3 seeds, 15 jobs
	$(PY) -m xray_lightning.train -m sweep=init $(ARGS)

sweep-dropout: $(STAMP)  ## stage 1: dropout .25/.35/.40 x adam/rmsprop, 3 epochs x 3 seeds, 18 jobs
	$(PY) -m xray_lightning.train -m sweep=dropout $(ARGS)

sweep-arch: $(STAMP)  ## stage 1: 4 CNN variants x adam/rmsprop, 3 epochs x 3 seeds, 24 jobs
	$(PY) -m xray_lightning.train -m sweep=arch $(ARGS)

sweep-arch-choice: $(STAMP)  ## cascade vs three_class on 3-class metrics, 3 epochs x 3 seeds, 6 jobs
	$(PY) -m xray_lightning.train -m sweep=arch_choice $(ARGS)

sweeps: $(SWEEP_TARGETS)  ## every sweep above, one after another (132 jobs, hours on 2 CPU cores)

tables: $(STAMP)  ## rebuild a sweep's summary or merge several: SWEEP="dir [dir ...]" [ARGS="--out DIR"]
	$(PY) -m xray_lightning.tables $(SWEEP) $(ARGS)

.PHONY: report predict
report: $(STAMP)  ## every figure of a cascade run into RUN/figures/ (+ TensorBoard); default: latest run
	$(PY) -m xray_lightning.report $(RUN) $(ARGS)

SHIPPED := --stage1 experiments/best/stage1.ckpt --stage2 experiments/best/stage2.ckpt
predict: $(STAMP)  ## classify images/folders with the shipped model: PATHS="img.jpg dir/" [RUN=<cascade run dir>] [ARGS=--json]
	$(PY) -m xray_lightning.predict $(if $(RUN),--run $(RUN),$(SHIPPED)) $(ARGS) $(PATHS)

.PHONY: bench evaluate
bench: $(STAMP)  ## training/inference speed, our path vs a naive PIL + plain fp32 loop (cnn, fast), with the CPU, its ISA and the precision chosen; ARGS="--models cnn fast cnn_bn ..."
	$(PY) -m xray_lightning.bench.train $(ARGS)

evaluate: $(STAMP)  ## re-measure the shipped cascade (experiments/best) on test and val: an inductive and an adapted block; RUN=<cascade run dir>, ARGS="--json"
	$(PY) -m xray_lightning.evaluate --adapt $(if $(RUN),--run $(RUN),) $(ARGS)

clean:  ## remove caches (not logs, not the venv)
	rm -rf .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
