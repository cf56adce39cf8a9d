# Two entry points for a fresh machine; each creates .venv with Python 3.12 and installs itself.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# python3.12 from PATH, else a pyenv-installed 3.12
PYTHON312 := $(shell for p in python3.12 $$HOME/.pyenv/versions/3.12*/bin/python3.12 /usr/local/bin/python3.12 /usr/bin/python3.12; do \
	if $$p -c 'import sys; assert sys.version_info[:2] == (3, 12)' >/dev/null 2>&1; then command -v $$p || echo $$p; break; fi; done)

.PHONY: report test lint install clean

$(VENV)/.installed: pyproject.toml
	@test -n "$(PYTHON312)" || { echo "Python 3.12 not found (needed by PyMC 6)"; exit 1; }
	test -x $(PY) || $(PYTHON312) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[fast,dev]'
	touch $@

install: $(VENV)/.installed

## report: every model in models/ fitted four ways (+ its studies) -> reports/<name>/index.html
report: install
	$(VENV)/bin/bayesmle report --jobs 2

## test: the full test suite (as CI runs it)
test: install
	$(PY) -m pytest -n 2 --dist loadfile -q

lint: install
	$(VENV)/bin/ruff check bayesmle tests

clean:
	rm -rf $(VENV) .pytest_cache

## bench: side-by-side benchmarks against the peers (9-15 min); writes benchmarks/RESULTS.md
$(VENV)/.installed-bench: pyproject.toml $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[fast,dev,bench]'
	touch $@

.PHONY: bench
bench: $(VENV)/.installed-bench
	$(PY) -m benchmarks $(BENCH_ARGS)
