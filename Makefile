# Two commands matter: `make demo` (the workflow on the local provider) and `make test`
# (install everything into .venv and .tools, then ruff, mypy and the whole suite, on 2 cores).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PACKAGES := $(wildcard packages/modelkit-assets-*)
AZURITE := .tools/azurite/node_modules/.bin/azurite-blob
PYTEST_ARGS ?=

.PHONY: demo test install lint bench bench-smoke dist clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# The demo needs only the core: what a user of the local provider installs.
# Editable installs get no bytecode from pip (a wheel's install compiles it): compile it here,
# or every process compiles what it imports when PYTHONDONTWRITEBYTECODE is set.
$(VENV)/.core-installed: $(BIN)/python packages/modelkit-assets-core/pyproject.toml
	$(BIN)/python -m pip install -q -e packages/modelkit-assets-core
	$(BIN)/python -m compileall -q packages/modelkit-assets-core/src
	touch $@

$(VENV)/.installed: $(BIN)/python requirements-dev.txt $(wildcard packages/*/pyproject.toml)
	$(BIN)/python -m pip install -q $(addprefix -e ,$(PACKAGES)) -r requirements-dev.txt
	$(BIN)/python -m compileall -q $(addsuffix /src,$(PACKAGES))
	touch $@ $(VENV)/.core-installed

# Azurite (Microsoft's Azure Storage emulator) for the Azure backend's tests.
$(AZURITE):
	npm install --prefix .tools/azurite --no-audit --no-fund --loglevel=error azurite@3.35.0

install: $(VENV)/.installed $(AZURITE)

demo: $(VENV)/.core-installed
	PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/demo.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -n 2 $(PYTEST_ARGS)

# Side by side with modelkit (installed into bench/.work by the benchmark), ~15 minutes.
bench: install
	$(BIN)/python bench/run.py

bench-smoke: install
	$(BIN)/python bench/run.py --smoke

# Wheels of the four distributions into dist/, for `pip install dist/*.whl` elsewhere.
dist: $(BIN)/python
	rm -rf dist
	$(BIN)/python -m pip wheel -q --no-deps -w dist $(PACKAGES)
	@ls dist

clean:
	rm -rf $(VENV) .tools .mypy_cache .ruff_cache dist
