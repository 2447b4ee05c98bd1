# The two commands that matter: `make run` and `make test`. Each creates .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/rdevents serve

test: $(STAMP)
	$(BIN)/pytest -n 2 -q

# Benchmarks need wrk and hey (Debian packages); installing them needs root.
bench: $(STAMP)
	command -v wrk >/dev/null && command -v hey >/dev/null || \
		(apt-get update -qq && apt-get install -y -qq wrk hey)
	$(BIN)/python bench/run.py

# What `make` made; the database under data/ stays.
clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
