# dip: Deep Image Prior reproduction harness. `make demo` and `make test` set themselves up.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Registry images are read from DIP_DATA_ROOT (fill it with `dip-fetch DATASET`);
# a checkout with ../shared/data beside it uses that.
DIP_DATA_ROOT ?= $(if $(wildcard ../shared/data/MANIFEST.csv),$(abspath ../shared/data),$(CURDIR)/data)
export DIP_DATA_ROOT

PROFILE ?= quick
DIP    := $(BIN)/dip progress=false profile=$(PROFILE)
REPORT := $(BIN)/python -m dip.report

.PHONY: setup demo test lint bench clean table-inpainting table-denoising table-sr tables

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $@

demo: $(STAMP)
	$(BIN)/dip experiment=demo

# Paper tables: sweep (resumes: finished runs are skipped), then the table files under
# results/tables/. PROFILE=paper for the official settings (GPU), quick for the CPU.
table-inpainting: $(STAMP)
	$(DIP) -m experiment=table_inpainting
	$(REPORT) table table_inpainting --profile $(PROFILE)

table-denoising: $(STAMP)
	$(DIP) -m experiment=table_denoising
	$(REPORT) table table_denoising --profile $(PROFILE)

table-sr: $(STAMP)
	$(DIP) -m experiment=table_sr
	$(REPORT) table table_sr --profile $(PROFILE)

tables: table-inpainting table-denoising table-sr

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check dip tests hydra_plugins

# Fit step vs an eager reference, batched throughput, peak memory:
# results/bench/<device>.{json,md}. QUICK=1: < 5 min on 2 CPU cores.
QUICK ?=
bench: $(STAMP)
	$(BIN)/python -m dip.bench $(if $(QUICK),--quick)

clean:
	rm -rf outputs .pytest_cache .ruff_cache
