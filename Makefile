# Two commands on a fresh machine: `make demo` and `make test`.
VENV   ?= .venv
PYTHON ?= $(shell command -v python3.11 || command -v python3)
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install demo test lint bench clean browser kotlin

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

# the release report is tested in headless Chromium (Debian packages), installed when absent
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { $(SUDO) apt-get update -q >/dev/null && $(SUDO) apt-get install -y -q chromium chromium-driver >/dev/null; }

# the Android sample app's core is compiled with Debian's Kotlin compiler and tested with JUnit 4
kotlin:
	@command -v kotlinc >/dev/null && test -f /usr/share/java/junit4.jar || \
	  { $(SUDO) apt-get update -q >/dev/null && $(SUDO) apt-get install -y -q kotlin junit4 >/dev/null; }

test: install lint browser kotlin
	$(PY) -m pytest -q -p no:cacheprovider

bench: install
	$(PY) benchmarks/onnx_vs_optimum.py
	$(PY) benchmarks/tflite_vs_litert_default.py
	$(PY) benchmarks/coreml_parity.py

clean:
	rm -rf dist benchmarks/results .pytest_cache
