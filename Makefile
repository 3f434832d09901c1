# dip: Deep Image Prior reproduction harness. `make demo` and `make test` set themselves up.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Registry images are read from DIP_DATA_ROOT (fill it with `dip-fetch DATASET`);
# a checkout with ../shared/data beside it uses that.
DIP_DATA_ROOT ?= $(if $(wildcard ../shared/data/MANIFEST.csv),$(abspath ../shared/data),$(CURDIR)/data)
export DIP_DATA_ROOT

.PHONY: setup demo test lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $@

demo: $(STAMP)
	$(BIN)/dip experiment=demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check dip tests

clean:
	rm -rf outputs .pytest_cache .ruff_cache
