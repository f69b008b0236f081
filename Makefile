# The two set-up commands: `make demo` and `make test`. Both install the exact versions in
# requirements.lock (hashed, compiled from pyproject.toml's ranges by `make lock`), so a fresh clone
# gets what the suite last passed with. `make test-latest` tries the newest versions the ranges allow.
PYTHON     ?= python3
VENV       ?= .venv
BIN        := $(VENV)/bin
SIM        := $(BIN)/sim
UV_VERSION := 0.13.9
# uv lives in a folder of its own inside the venv, where `uv pip sync` (which removes what the lock
# does not list) cannot take it away.
UV_HOME    := $(VENV)/tools/uv-$(UV_VERSION)
UV         := $(UV_HOME)/bin/uv
LOCK       := requirements.lock
LATEST     := .venv-latest
# uv installs from the package index only; it never downloads a Python of its own.
export UV_PYTHON_DOWNLOADS := never

.PHONY: demo docs test test-latest check lint typecheck unit lock bench clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "raising-sim needs Python >= 3.11; set PYTHON=python3.11 (or newer)")'
	$(PYTHON) -m venv $(VENV)

# A venv made by another tool (uv venv) may have no pip: ensurepip gives it one first.
$(UV): | $(BIN)/python
	@$(BIN)/python -m pip --version >/dev/null 2>&1 || $(BIN)/python -m ensurepip --upgrade >/dev/null
	$(BIN)/python -m pip install --quiet --target $(UV_HOME) 'uv==$(UV_VERSION)'

# One lock for the project and its test extra; `uv pip sync` makes the venv exactly that,
# compiled to bytecode as pip would, so a command does not recompile its libraries at every start.
$(VENV)/.installed: $(LOCK) pyproject.toml | $(UV)
	$(UV) pip sync --quiet --python $(BIN)/python --require-hashes --compile-bytecode $(LOCK)
	$(UV) pip install --quiet --python $(BIN)/python --no-deps --editable .
	@touch $@

PACKS := $(patsubst %/pack.yaml,%,$(sort $(wildcard scenarios/*/pack.yaml)))

demo: $(VENV)/.installed
	@$(SIM) personas validate
	@$(SIM) scenarios validate
	@$(SIM) run $(PACKS) --variations 3
	@echo
	@echo "The sim command is in $(BIN)/. Put it on your PATH with:  source $(BIN)/activate"
	@echo "(or call it as $(SIM)), then try the commands above, 'sim stats', 'sim check' or 'sim --help'."

docs: $(VENV)/.installed
	$(BIN)/python -m sim.store.docs

lint: $(VENV)/.installed
	$(BIN)/ruff check sim tests bench

typecheck: $(VENV)/.installed
	$(BIN)/mypy

unit: $(VENV)/.installed
	$(BIN)/pytest

test: $(VENV)/.installed
	@$(MAKE) --no-print-directory check BIN=$(BIN)

# ruff, mypy and pytest with the tools in $(BIN): the locked venv, or the latest one.
check:
	$(BIN)/ruff check sim tests bench
	$(BIN)/mypy
	$(BIN)/pytest

# The suite against the newest versions pyproject.toml allows, in a venv of its own: drift seen on purpose.
test-latest: | $(UV)
	rm -rf $(LATEST)
	$(UV) venv --quiet --python $(BIN)/python $(LATEST)
	$(UV) pip install --quiet --python $(LATEST)/bin/python --upgrade --compile-bytecode --editable '.[test]'
	@$(UV) pip freeze --python $(LATEST)/bin/python | grep -iE '^(anthropic|openai|langgraph|duckdb|pydantic)==' | paste -sd' '
	@$(MAKE) --no-print-directory check BIN=$(LATEST)/bin

# Refresh the lock to the newest versions the ranges allow (for every platform and Python >= 3.11),
# then install it. Run `make test` and commit requirements.lock with the change that needed it.
lock: | $(UV)
	$(UV) pip compile pyproject.toml --extra test --universal --python-version 3.11 --generate-hashes \
		--upgrade --quiet --custom-compile-command 'make lock' --output-file $(LOCK)
	@rm -f $(VENV)/.installed
	@$(MAKE) --no-print-directory $(VENV)/.installed

bench: $(VENV)/.installed
	@for script in bench/bench_*.py; do [ -e "$$script" ] || continue; $(BIN)/python -m bench.$$(basename "$$script" .py) || exit 1; done

clean:
	rm -rf $(VENV) $(LATEST) .mypy_cache .ruff_cache
