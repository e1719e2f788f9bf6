# Two commands do all the set-up on a fresh machine:
#   make run    create .venv, install vsim, run the default scenario (results/quickstart/<run-id>/)
#   make test   create .venv, install vsim with its test tools, run lint, layering checks and tests
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
SCENARIO ?= scenarios/quickstart.yaml

.PHONY: run test lint bench workloads clean

$(BIN)/vsim: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

run: $(BIN)/vsim
	$(BIN)/vsim run $(SCENARIO)

lint: $(BIN)/vsim
	$(BIN)/ruff check vsim tests benchmarks workloads
	$(BIN)/lint-imports

test: lint
	$(BIN)/python -m pytest -q

bench: $(BIN)/vsim
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/migrations.py

workloads: $(BIN)/vsim
	$(BIN)/python workloads/planetlab/build.py ../shared/data/planetlab

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
