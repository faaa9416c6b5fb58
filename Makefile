# atlbook — every target installs what it needs into .venv first (idempotent, keyed on pyproject.toml).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml 2>/dev/null | sha1sum | cut -c1-12)
PYTEST_ARGS ?=

.PHONY: install demo test test-unit test-sandbox test-notebooks test-browser bench lab lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

demo: $(STAMP)
	$(VENV)/bin/atlbook demo

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

test-unit: $(STAMP)
	$(PY) -m pytest -m unit $(PYTEST_ARGS)

test-sandbox: $(STAMP)
	$(PY) -m pytest -m sandbox $(PYTEST_ARGS)

test-notebooks: $(STAMP)
	$(PY) -m pytest -m notebooks $(PYTEST_ARGS)

test-browser: $(STAMP)
	$(PY) -m pytest -m browser $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) -m bench

lab: $(STAMP)
	$(VENV)/bin/atlbook lab

lint: $(STAMP)
	$(VENV)/bin/ruff check atlbook tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) .atlbook records bench/results
