# The two set-up commands: `make demo` and `make test`. Everything installs from pyproject.toml.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SIM    := $(BIN)/sim

.PHONY: demo docs test lint typecheck unit bench clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "raising-sim needs Python >= 3.11; set PYTHON=python3.11 (or newer)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@ $(VENV)/.installed

PACKS := $(patsubst %/pack.yaml,%,$(sort $(wildcard scenarios/*/pack.yaml)))

demo: $(VENV)/.installed
	@$(SIM) personas validate
	@$(SIM) scenarios validate
	@$(SIM) run $(PACKS) --variations 3

docs: $(VENV)/.installed
	$(BIN)/python -m sim.store.docs

lint: $(VENV)/.installed-test
	$(BIN)/ruff check sim tests bench

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

unit: $(VENV)/.installed-test
	$(BIN)/pytest

test: $(VENV)/.installed-test
	$(BIN)/ruff check sim tests bench
	$(BIN)/mypy
	$(BIN)/pytest

bench: $(VENV)/.installed
	@for script in bench/bench_*.py; do [ -e "$$script" ] || continue; $(BIN)/python -m bench.$$(basename "$$script" .py) || exit 1; done

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache
