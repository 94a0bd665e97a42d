# The two commands in README.md:
#   make demo   set everything up, then answer a question and solve a math problem on the embedded model
#   make test   set everything up, then run lint, type checks and the whole test suite
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# CPU torch from the local wheel; a GPU machine can override this (or set it empty).
TORCH  ?= torch==2.13.0
EXTRAS ?= all,dev
QUESTION ?= What is 1234 * 5678? Use the calculator.
PROBLEM  ?= Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?

.PHONY: setup demo test lint pytest bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(if $(TORCH),$(PIP) install -q "$(TORCH)")
	$(PIP) install -q -e ".[$(EXTRAS)]"
	touch $@

demo: setup
	$(VENV)/bin/toolpath models pull
	$(VENV)/bin/toolpath run "$(QUESTION)" --tools calculator --model local
	$(VENV)/bin/toolpath solve "$(PROBLEM)" --model local

lint: setup
	$(VENV)/bin/ruff check toolpath tests benchmarks examples
	$(VENV)/bin/ruff format --check toolpath tests benchmarks examples
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# pytest exits 5 when no tests ran; treat that as success, pass everything else through.
pytest: setup
	$(PY) -m pytest -q; rc=$$?; if [ $$rc -eq 5 ]; then exit 0; else exit $$rc; fi

test: lint pytest

bench: setup
	$(PY) benchmarks/overhead.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
