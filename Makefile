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

# The browser tests drive Debian's Chromium (Playwright's own browser download is not used).
CHROMIUM ?= $(or $(NARRATION_CHROMIUM),/usr/bin/chromium)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: env demo test lint typecheck unit bench screenshots clean

$(UV):
	$(PY) -m pip install --user --quiet uv || $(PY) -m pip install --quiet uv

$(STAMP): pyproject.toml uv.lock Makefile | $(UV)
	@# Built for another interpreter choice: start afresh (uv keeps any venv of a matching version).
	@if [ ! -e $(STAMP) ] && ls $(VENV)/.synced-* >/dev/null 2>&1; then rm -rf $(VENV); fi
	$(UV) sync --frozen --all-extras --python $(PYTHON)
	@rm -f $(VENV)/.synced-* && touch $(STAMP)

$(CHROMIUM):
	@echo "Installing Debian's chromium (for the browser tests)"
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium

env: $(STAMP) $(CHROMIUM)

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

# The viewer's screenshots in docs/screenshots, taken by its browser tests on a real demo chain.
screenshots: env
	NARRATION_SCREENSHOTS=docs/screenshots $(VENV)/bin/pytest -q \
		tests/server/ui/test_correlation_page.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
