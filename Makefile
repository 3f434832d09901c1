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
# CPU profiles pin the kernels' instruction set to AVX2 (every x86-64 CPU of the last
# decade has it): long fits are chaotic in float rounding, and kernels of other widths
# round differently (measured: the quick Barbara run ends at 32.59 dB with oneDNN's AVX-512
# convolutions, 33.52 dB with its AVX2 ones, on the same machine). Three libraries choose
# their code by the CPU: oneDNN (the large convolutions), PyTorch's own kernels
# (ATEN_CPU_CAPABILITY) and MKL (the GEMM of small and 1x1 convolutions; MKL_CBWR is its
# conditional-reproducibility branch, which also fixes its cache-size choices; on an AMD
# EPYC, unpinned MKL rounded differently from its AVX2 branch). Records and captions name
# the pins.
ifneq ($(PROFILE),paper)
export ONEDNN_MAX_CPU_ISA ?= AVX2
export ATEN_CPU_CAPABILITY ?= avx2
export MKL_CBWR ?= AVX2
endif
# CPU profiles pin one thread per run (reproducible numbers), so their sweeps run JOBS
# processes side by side (launcher=joblib); the paper profile runs one job at a time.
JOBS     ?= $(shell nproc 2>/dev/null || echo 2)
LAUNCHER ?= $(if $(filter paper,$(PROFILE)),basic,joblib)
# RECORDS: run records; TABLES, FIGS, REPRO: outputs; ARGS: extra overrides for every run.
# The tables' records go to results/<profile>-runs/ (quick-runs, paper-runs), committed
# without the images that restate the test data (.gitignore): the committed tables rebuild
# from them on a fresh clone (make report-*), finished runs are skipped, and sessions add
# to one table. Smoke records stay local (results/runs/).
RECORDS ?= $(if $(filter paper quick,$(PROFILE)),results/$(PROFILE)-runs,results/runs)
TABLES  ?= results/tables
FIGS    ?= results/figures
REPRO   ?= results/reproduce
ARGS    ?=
DIP    := $(BIN)/dip --multirun progress=false profile=$(PROFILE) launcher=$(LAUNCHER) \
          $(if $(filter joblib,$(LAUNCHER)),hydra.launcher.n_jobs=$(JOBS)) records=$(RECORDS)
REPORT := $(BIN)/python -m dip.report

.PHONY: setup demo test test-all lint bench clean tables figures readme study-depth-lr claims

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $@

demo: $(STAMP)
	$(BIN)/dip experiment=demo

# Tables: `make table-NAME` runs the sweep of conf/experiment/table_NAME.yaml (resumes:
# finished runs are skipped), or, without that file, the table that task NAME declares in
# its own config (task.table, run by conf/experiment/table_task.yaml), then the table that
# the `table:` block declares under results/tables/ and its image grids and curves under
# results/figures/: a new table is a new config, no code
# (docs/experiments.md#tables-as-declarations). PROFILE=paper for the official settings
# (GPU), quick for the CPU; ARGS=seed=0,1,2 adds seeds (the committed quick tables have
# three: experiments/claims_quick.sh). A sweep of which some runs failed still writes the
# table of the finished ones; make then exits with the sweep's status.
report_table = $(REPORT) table $(1) --profile $(PROFILE) --root $(RECORDS) --out $(TABLES) && \
	$(REPORT) figure $(1) --profile $(PROFILE) --root $(RECORDS) --out $(FIGS)
table_runs = $(if $(wildcard conf/experiment/table_$(1).yaml),experiment=table_$(1),\
	experiment=table_task task=$(1))
define sweep_and_report
	$(DIP) $(call table_runs,$(1)) $(ARGS); status=$$?; \
	$(call report_table,table_$(1)) && exit $$status
endef

table-%: $(STAMP)
	$(call sweep_and_report,$*)

# The paper's three tables.
tables: table-inpainting table-denoising table-sr

# report-inpainting / -denoising / -sr: the table and its figures from the records alone,
# fitting nothing (e.g. the partial paper tables after a GPU session: PROFILE=paper).
report-%: $(STAMP)
	$(call report_table,table_$*)

# reproduce-inpainting / -denoising / -sr: rerun a committed table from scratch (fresh
# records: earlier ones may come from other kernels), or a block of it with ARGS (e.g.
# ARGS="sigma=25", ARGS="factor=4 item=set5/baby,set5/bird,..."), and compare every value
# (only the block's rows when ARGS is given). CPU numbers match only on the CPU model that
# the table's caption names.
reproduce-%: $(STAMP)
	rm -rf $(REPRO)/$*/runs
	$(DIP) experiment=table_$* $(ARGS) records=$(REPRO)/$*/runs
	$(REPORT) table table_$* --profile $(PROFILE) --root $(REPRO)/$*/runs --out $(REPRO)/$*
	$(REPORT) compare $(TABLES)/table_$*_$(PROFILE).csv \
	  $(REPRO)/$*/table_$*_$(PROFILE).csv $(if $(strip $(ARGS)),--subset)

# Paper figures: each figure experiment's runs (resuming), then its grid and curves under
# results/figures/.
FIGURES := fig_prior_curves fig_architectures fig_kate fig_lr fig_vase fig_restoration \
           fig_jpeg fig_flash
figures: $(STAMP)
	@set -e; for f in $(FIGURES); do \
	  $(DIP) experiment=$$f $(ARGS); \
	  $(REPORT) figure $$f --profile $(PROFILE) --root $(RECORDS) --out $(FIGS); \
	done

# Studies of sweeps: the runs (resuming) into their own records folder, then
# `python -m dip.report study` into results/studies/<name>_<profile>/. study-depth-lr:
# encoder-decoders of depth 2-6 x lr (conf/experiment/sweep_depth_lr.yaml) and the skip
# net's reference row.
STUDIES ?= results/studies
study-depth-lr: $(STAMP)
	$(DIP) experiment=sweep_depth_lr records=$(RECORDS)/sweep_depth_lr $(ARGS); status=$$?; \
	$(DIP) experiment=sweep_depth_lr records=$(RECORDS)/sweep_depth_lr $(ARGS) \
	  arch=skip5 fit.lr=0.01 || status=$$?; \
	$(REPORT) study --root $(RECORDS)/sweep_depth_lr --profile $(PROFILE) \
	  --out $(STUDIES)/sweep_depth_lr_$(PROFILE) && exit $$status

# claims: the scorecard of conf/claims.yaml, results/claims_<profile>.{md,csv,png}, from the
# committed per-seed rows of the records (results/records/<experiment>_<profile>.csv). The
# rows are first exported from the committed records (results/quick-runs, paper-runs:
# CLAIMS_RECORDS), fitting nothing; the files rebuild to the byte.
CLAIMS_RECORDS ?= $(if $(filter paper,$(PROFILE)),results/paper-runs,results/quick-runs)
claims: $(STAMP)
	@if [ -d "$(CLAIMS_RECORDS)" ]; then \
	  $(REPORT) export --root $(CLAIMS_RECORDS) --profile $(PROFILE) --out results/records; fi
	$(REPORT) claims --profile $(PROFILE)

# results/README.md: every committed table, figure and benchmark on one page.
readme: $(STAMP)
	$(REPORT) readme

# test: the fast suite, one worker per core (pytest-xdist; about 3 minutes on 2 cores);
# test-all then adds the `slow` end-to-end runs through subprocesses, one at a time (about
# 9 minutes more; CI runs it).
test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow" -n auto

test-all: test
	$(BIN)/python -m pytest -q -m slow

lint: $(STAMP)
	$(BIN)/ruff check dip tests hydra_plugins experiments

# Fit step vs an eager reference, batched throughput, peak memory:
# results/bench/<device>.{json,md}. QUICK=1: < 5 min on 2 CPU cores. It times the
# machine's own kernels: the AVX2 pins above are dropped unless you set them yourself.
QUICK ?=
PINS := ONEDNN_MAX_CPU_ISA ATEN_CPU_CAPABILITY MKL_CBWR
BENCH_ENV := $(strip $(foreach v,$(PINS),$(if $(filter file,$(origin $(v))),-u $(v))))
BENCH_ENV := $(if $(BENCH_ENV),env $(BENCH_ENV))
bench: $(STAMP)
	$(BENCH_ENV) $(BIN)/python -m dip.bench $(if $(QUICK),--quick)

clean:
	rm -rf outputs .pytest_cache .ruff_cache
