# Two commands on a fresh machine: `make demo` and `make test`.
VENV   ?= .venv
PYTHON ?= $(shell command -v python3.11 || command -v python3)
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install demo test lint bench clean browser kotlin

# The registry connection sometimes drops mid-download (a 79 MB wheel stopped at 26 MB six times
# in one CI run): pip resumes more often, and the whole step is tried up to three times.
PIP    := $(PY) -m pip install -q --retries 10 --timeout 60
retry   = n=0; until $(1); do n=$$((n+1)); [ $$n -lt 3 ] || exit 1; echo "pip failed; retry $$n of 2" >&2; sleep 10; done

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(call retry,$(PIP) --upgrade pip)
	# torch first, pinned: a CPU build is served locally; an unpinned torch pulls GBs of CUDA packages
	$(call retry,$(PIP) --resume-retries 20 torch==2.13.0)
	$(call retry,$(PIP) --resume-retries 20 -c constraints.txt -e '.[dev]')
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
