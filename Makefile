# klkit: `make lab` runs the main job, `make test` the whole suite.
# Both create .venv when it is missing and install torch first (the CPU build
# that lies on these machines); override with e.g. `make TORCH=torch test`.

PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OUT ?= lab-report

FLOORS_VENV := .venv-floors
# what `make floors` runs: every test of the measures, distributions, estimators, fitting, losses, the
# CLI, the README and the training code's fast tests (the full suite on the floors takes too long on 2 cores)
FLOORS_TESTS ?= tests/test_measures_reference.py tests/test_measures_errors.py tests/test_measures_backends.py \
	tests/test_kernels.py tests/test_distributions_registry.py tests/test_distributions_api.py \
	tests/test_estimators_discrete.py tests/test_estimators_mc.py tests/test_fitting.py tests/test_losses.py \
	tests/test_cli_measure.py tests/test_cli_errors.py tests/test_readme.py tests/test_rl.py tests/test_vae.py \
	tests/test_lab.py

.PHONY: lab test lint docs floors bench gpu-check clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[all]"
	touch $(STAMP)

lab: $(STAMP)
	$(BIN)/klkit lab --out $(OUT)

test: $(STAMP)
	$(BIN)/python -m pytest -n auto -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

# The documentation site in docs/_build/html: offline, nitpicky, warnings as errors. The gallery runs the lab
# (quick mode) while it builds; KLKIT_DOCS_GALLERY=surprise,coin limits it to those sections.
docs: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[docs]"
	$(BIN)/python -m sphinx -b html -W --keep-going -n -q docs docs/_build/html
	@echo "docs: $(CURDIR)/docs/_build/html/index.html"

# The tests against the lowest versions pyproject.toml allows (constraints/floors.txt), in their own venv.
# torch is the exception: only $(TORCH) is available offline here, so its floor is checked by API
# inspection (see constraints/floors.txt), not by installing it.
floors:
	rm -rf $(FLOORS_VENV)
	$(PYTHON) -m venv $(FLOORS_VENV)
	$(FLOORS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(FLOORS_VENV)/bin/python -m pip install --quiet "$(TORCH)"
	$(FLOORS_VENV)/bin/python -m pip install --quiet -c constraints/floors.txt -e ".[torch,train,lab,rl,dev]"
	$(FLOORS_VENV)/bin/python -m pip list --format=freeze > $(FLOORS_VENV)/installed.txt
	$(FLOORS_VENV)/bin/python -m pytest -q -p no:cacheprovider $(FLOORS_TESTS)

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[all,bench]"
	$(BIN)/python benchmarks/run.py

# On a CUDA machine, with the python3 that already has torch (and triton, transformers, liger_kernel if present):
# the CUDA tests and the distillation and cross-entropy losses against naive torch and Liger-Kernel, in at most
# 8 minutes, no installs; writes $(GPU_OUT)/gpu_check.json and gpu_check.md. CI runs it with --device cpu --quick.
GPU_PYTHON ?= python3
GPU_OUT ?= gpu-check
gpu-check:
	$(GPU_PYTHON) benchmarks/gpu_check.py --out $(GPU_OUT)

clean:
	rm -rf $(VENV) $(FLOORS_VENV) $(OUT) $(GPU_OUT) .pytest_cache docs/_build docs/api docs/gallery
