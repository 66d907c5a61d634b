# Each target sets itself up: it creates .venv when missing and installs the package into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint browser postgres clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m autotune.demo

# The browser test drives Debian's chromium through Playwright (never `playwright install`,
# which downloads a browser of its own).
browser:
	command -v chromium || (apt-get update && apt-get install -y chromium)

# The store tests start a real PostgreSQL server from Debian's binaries.
postgres:
	command -v initdb || ls /usr/lib/postgresql/*/bin/initdb || (apt-get update && apt-get install -y postgresql)

test: $(STAMP) browser postgres
	$(BIN)/python -m ruff check autotune tests benchmarks
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/python -m ruff check autotune tests benchmarks

clean-venv:
	rm -rf $(VENV)
