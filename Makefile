# Two commands on a fresh machine: `make demo` and `make test`.
VENV   ?= .venv
PYTHON ?= $(shell command -v python3.11 || command -v python3)
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned: a CPU build is served locally; an unpinned torch pulls GBs of CUDA packages
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/slimport export --target android-int8 --out dist --force

lint: install
	$(VENV)/bin/ruff check slimport tests benchmarks

test: install lint
	$(PY) -m pytest -q -p no:cacheprovider

bench: install
	$(PY) benchmarks/onnx_vs_optimum.py
	$(PY) benchmarks/tflite_vs_litert_default.py

clean:
	rm -rf dist benchmarks/results .pytest_cache
