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
# CPU profiles pin one thread per run (reproducible numbers), so their sweeps run JOBS
# processes side by side (launcher=joblib); the paper profile runs one job at a time.
JOBS     ?= $(shell nproc 2>/dev/null || echo 2)
LAUNCHER ?= $(if $(filter paper,$(PROFILE)),basic,joblib)
DIP    := $(BIN)/dip --multirun progress=false profile=$(PROFILE) launcher=$(LAUNCHER) \
          $(if $(filter joblib,$(LAUNCHER)),hydra.launcher.n_jobs=$(JOBS))
REPORT := $(BIN)/python -m dip.report

.PHONY: setup demo test lint clean table-inpainting table-denoising table-sr tables figures \
        reproduce-inpainting

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
	$(DIP) experiment=table_inpainting
	$(REPORT) table table_inpainting --profile $(PROFILE)

table-denoising: $(STAMP)
	$(DIP) experiment=table_denoising
	$(REPORT) table table_denoising --profile $(PROFILE)

table-sr: $(STAMP)
	$(DIP) experiment=table_sr
	$(REPORT) table table_sr --profile $(PROFILE)

tables: table-inpainting table-denoising table-sr

# Rerun the committed inpainting table from scratch (fresh records) and check that every
# value is the same.
reproduce-inpainting: $(STAMP)
	$(DIP) experiment=table_inpainting records=results/reproduce/runs
	$(REPORT) table table_inpainting --profile $(PROFILE) --root results/reproduce/runs \
	  --out results/reproduce
	$(REPORT) compare results/tables/table_inpainting_$(PROFILE).csv \
	  results/reproduce/table_inpainting_$(PROFILE).csv

# Paper figures: each figure experiment's runs (resuming), then its grid and curves under
# results/figures/.
FIGURES := fig_prior_curves fig_architectures fig_kate fig_lr fig_vase fig_restoration \
           fig_jpeg fig_flash
figures: $(STAMP)
	@set -e; for f in $(FIGURES); do \
	  $(DIP) experiment=$$f; \
	  $(REPORT) figure $$f --profile $(PROFILE); \
	done

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check dip tests

clean:
	rm -rf outputs .pytest_cache .ruff_cache
