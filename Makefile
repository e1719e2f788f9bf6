# Two commands do all the set-up on a fresh machine:
#   make run    create .venv, install vsim, run the default scenario (results/quickstart/<run-id>/)
#   make test   create .venv, install vsim with its test tools (and, when root, QEMU for the KVM
#               backend's tests and Chromium for the report's browser tests), run lint, layering
#               checks, type checks and tests
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
SCENARIO ?= scenarios/quickstart.yaml

.PHONY: run test lint bench workloads kvm-deps test-deps validation clean

# The compiled modules are rebuilt when their source changes.
COMPILED_PXD = $(wildcard vsim/model/timeslice/*.pxd vsim/model/kernels/*.pxd)
COMPILED_SRC = $(COMPILED_PXD) $(patsubst %.pxd,%.py,$(COMPILED_PXD)) vsim/compiled.py

$(BIN)/vsim: pyproject.toml setup.py $(COMPILED_SRC)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

run: $(BIN)/vsim
	$(BIN)/vsim run $(SCENARIO)

lint: $(BIN)/vsim
	$(BIN)/ruff check vsim tests benchmarks workloads notebooks setup.py
	$(BIN)/lint-imports
	$(BIN)/mypy vsim

kvm-deps:
	tools/install-kvm-deps.sh

test-deps:
	tools/install-test-deps.sh

test: lint kvm-deps test-deps
	$(BIN)/python -m pytest -q

# The published model-against-guests results (results/validation/) and the calibration shipped
# with vsim, regenerated on this machine (about 20 minutes; measure on an otherwise idle machine).
# The calibration is fitted on one grid and checked on another, which validation then uses.
VALIDATION = results/validation
validation: $(BIN)/vsim kvm-deps
	rm -rf $(VALIDATION)/.fit $(VALIDATION)/.check $(VALIDATION)/migration $(VALIDATION)/cpu \
	    $(VALIDATION)/cpu-timeslice $(VALIDATION)/memory
	mkdir -p $(VALIDATION)
	$(BIN)/vsim kvm measure migration --memory 384MiB --working-set 96MiB \
	    --bandwidth 48MiB/s,96MiB/s,128MiB/s --dirty-rate 8MiB/s,32MiB/s --repeats 2 \
	    --out $(VALIDATION)/.fit/migration
	$(BIN)/vsim kvm measure cpu --guests 2,4 --repeats 2 --out $(VALIDATION)/.fit/cpu
	$(BIN)/vsim kvm measure migration --repeats 3 --out $(VALIDATION)/.check/migration
	$(BIN)/vsim kvm measure cpu --guests 1,2,3,4 --repeats 3 --out $(VALIDATION)/.check/cpu
	$(BIN)/vsim kvm measure memory --ratio 1.15,1.25 --work 3000,6000 --repeats 2 \
	    --out $(VALIDATION)/.fit/memory
	$(BIN)/vsim kvm measure memory --ratio 0.8,1.0,1.1,1.2,1.3 --work 2000 --repeats 2 \
	    --out $(VALIDATION)/.check/memory
	$(BIN)/vsim calibrate $(VALIDATION)/.fit/migration $(VALIDATION)/.fit/cpu \
	    $(VALIDATION)/.fit/memory --check $(VALIDATION)/.check/migration \
	    --check $(VALIDATION)/.check/cpu --check $(VALIDATION)/.check/memory \
	    --out vsim/data/calibration/qemu-tcg.yaml
	$(BIN)/vsim validate migration --measured $(VALIDATION)/.check/migration --out $(VALIDATION)/migration
	$(BIN)/vsim validate cpu --measured $(VALIDATION)/.check/cpu --out $(VALIDATION)/cpu
	$(BIN)/vsim validate cpu --model timeslice --measured $(VALIDATION)/.check/cpu \
	    --out $(VALIDATION)/cpu-timeslice
	$(BIN)/vsim validate memory --measured $(VALIDATION)/.check/memory --out $(VALIDATION)/memory
	rm -rf $(VALIDATION)/.fit $(VALIDATION)/.check

# The compact PlanetLab traces (workloads/planetlab/planetlab.npz) from the raw day folders.
PLANETLAB_RAW ?= ../shared/data/planetlab
workloads: $(BIN)/vsim
	$(BIN)/python workloads/planetlab/build.py $(PLANETLAB_RAW)

bench: $(BIN)/vsim
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/migrations.py
	$(BIN)/python benchmarks/timeslice.py
	$(BIN)/python benchmarks/sweep.py --repeat 3

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
