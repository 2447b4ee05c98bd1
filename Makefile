# The two commands that matter: `make run` and `make test`. Each creates .venv on first use.
# `make check` is the fast lane: lint, types and the unit tests (tests/unit), in seconds.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test check lint types bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/rdevents serve

# The whole suite, unit tests included, after lint and types.
test: lint types
	$(BIN)/pytest -n 2 -q

check: lint types
	$(BIN)/pytest -q -p no:schemathesis tests/unit

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

types: $(STAMP)
	$(BIN)/mypy

# Benchmarks need wrk and hey (Debian packages); installing them needs root.
bench: $(STAMP)
	command -v wrk >/dev/null && command -v hey >/dev/null || \
		(apt-get update -qq && apt-get install -y -qq wrk hey)
	$(BIN)/python bench/run.py

# What `make` made; the database under data/ stays.
clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .mypy_cache .ruff_cache
