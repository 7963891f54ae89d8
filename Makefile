# The two README commands: `make run` (set up, then `dvc repro`) and `make test` (set up, then pytest).
# Both are idempotent: the venv is rebuilt only when requirements.txt or pyproject.toml change.
PYTHON ?= python3.11
VENV := .venv
STAMP := $(VENV)/.installed
export DVC_NO_ANALYTICS := 1
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup run test test-other-cpu lint
setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt
	$(VENV)/bin/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

run: setup
	dvc repro

test: setup
	$(VENV)/bin/python -m pytest -q

# The suite again as on an older x86-64 CPU without AVX2: torch's and numpy's vector kernels, oneDNN, MKL and OpenBLAS
# then take other code paths and round differently, which a test that compares with a recorded float fails.
OTHER_CPU := ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41 MKL_ENABLE_INSTRUCTIONS=SSE4_2 OPENBLAS_CORETYPE=Nehalem \
	NPY_DISABLE_CPU_FEATURES=X86_V3
test-other-cpu: setup
	$(OTHER_CPU) $(VENV)/bin/python -m pytest -q

lint: setup
	$(VENV)/bin/ruff check src stages tests tools benchmarks
