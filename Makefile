# Two commands on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PY ?= python3
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
VENV := .venv
# The interpreter: the distribution's CPython 3.11 when there is one (Debian builds it with PGO
# and LTO, linked statically: ~20% faster than a plain source build such as pyenv's default),
# else any 3.11 uv finds. Override with `make PYTHON=3.11 ...` (a version or a path).
PYTHON ?= $(firstword $(wildcard /usr/bin/python3.11) 3.11)
# One stamp per interpreter choice, so choosing another one re-syncs the environment.
STAMP := $(VENV)/.synced-$(subst /,_,$(PYTHON))

.PHONY: env demo test lint typecheck unit bench clean

$(UV):
	$(PY) -m pip install --user --quiet uv || $(PY) -m pip install --quiet uv

$(STAMP): pyproject.toml uv.lock Makefile | $(UV)
	@# Built for another interpreter choice: start afresh (uv keeps any venv of a matching version).
	@if [ ! -e $(STAMP) ] && ls $(VENV)/.synced-* >/dev/null 2>&1; then rm -rf $(VENV); fi
	$(UV) sync --frozen --all-extras --python $(PYTHON)
	@rm -f $(VENV)/.synced-* && touch $(STAMP)

env: $(STAMP)

demo: env
	$(VENV)/bin/narration demo

lint: env
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

typecheck: env
	$(VENV)/bin/mypy --strict src

unit: env
	$(VENV)/bin/pytest -q

test: lint typecheck unit

bench: env
	$(VENV)/bin/python -m benchmarks.run_all

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
