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

# `make test-matrix` runs the suite on every supported minor version, one environment each:
# .venv (3.11, as above), .venv-3.12, .venv-3.13. Their interpreters: the distribution's
# (/usr/bin, /usr/local/bin), else the newest pyenv build (~/.pyenv/versions/3.12.*), else one on
# PATH; `make test-matrix PYTHON_3_13=/path/to/python3.13` picks another. A missing interpreter
# is an error, never a skip.
MATRIX := 3.12 3.13
comma := ,
find_python = $(shell for p in $(wildcard /usr/bin/python$(1) /usr/local/bin/python$(1)) \
	$$(ls -d $(HOME)/.pyenv/versions/$(1).*/bin/python$(1) 2>/dev/null | sort -rV) \
	$$(command -v python$(1)); do \
	"$$p" -c 'import sys; assert sys.version_info[:2] == ($(subst .,$(comma),$(1)))' \
	2>/dev/null && echo "$$p" && break; done)

# The browser tests drive Debian's Chromium (Playwright's own browser download is not used).
CHROMIUM ?= $(or $(NARRATION_CHROMIUM),/usr/bin/chromium)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: env demo test lint typecheck unit bench screenshots clean test-matrix bench-matrix

$(UV):
	$(PY) -m pip install --user --quiet uv || $(PY) -m pip install --quiet uv

# $(call sync,<environment dir>,<interpreter>): build the environment with uv from the lock file.
# A stamp for another interpreter choice means start afresh (uv keeps any venv of a matching
# version, and a pyenv 3.11 is not Debian's).
define sync
	@if [ ! -e $@ ] && ls $(1)/.synced-* >/dev/null 2>&1; then rm -rf $(1); fi
	UV_PROJECT_ENVIRONMENT=$(1) $(UV) sync --frozen --all-extras --python $(2)
	@rm -f $(1)/.synced-* && touch $@
endef

$(STAMP): pyproject.toml uv.lock Makefile | $(UV)
	$(call sync,$(VENV),$(PYTHON))

$(CHROMIUM):
	@echo "Installing Debian's chromium (for the browser tests)"
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium

# The Redis tests start private redis-server processes, and a private Redis Cluster with
# redis-cli: Debian's redis-server package brings both (redis-cli is in redis-tools).
REDIS_CLI ?= $(or $(shell command -v redis-cli 2>/dev/null),/usr/bin/redis-cli)
$(REDIS_CLI):
	@echo "Installing Debian's redis-server and redis-cli (for the Redis and Redis Cluster tests)"
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq redis-server

env: $(STAMP) $(CHROMIUM) $(REDIS_CLI)

demo: env
	$(VENV)/bin/narration demo

lint: env
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

typecheck: env
	$(VENV)/bin/mypy --strict src

# PYTEST_ARGS: extra pytest arguments for `unit` and `test-matrix` (a path, `-k name`, `-x`).
unit: env
	$(VENV)/bin/pytest -q $(PYTEST_ARGS)

test: lint typecheck unit

# Lint once; mypy once per minor version (typeshed's stubs differ by version); pytest on each
# interpreter in its own environment, in two test processes (pytest-xdist), so that the three
# runs fit CI's time on two cores. The benchmark smoke tests (marker `bench`, ~70 s) run under
# the default interpreter only: they check the benchmark scripts, which `make bench-matrix`
# runs on every interpreter. Every interpreter runs even when an earlier one failed; the
# target fails if any did, and ends on one line counting the tests of all of them.
MATRIX_PYTEST_ARGS ?= -n 2 $(PYTEST_ARGS)
MATRIX_OTHER_PYTEST_ARGS ?= -m 'not bench'
test-matrix: lint typecheck $(MATRIX:%=typecheck-%)
	@log=$$(mktemp); failed=""; passed=0; broken=0; \
	count() { grep -E '^[0-9]+ [a-z]+.* in [0-9.]+s' $$log | grep -oE "[0-9]+ ($$1)" \
		| awk '{ s += $$1 } END { print s + 0 }'; }; \
	for target in unit $(MATRIX:%=unit-%); do \
		args="$(MATRIX_PYTEST_ARGS)"; \
		[ $$target = unit ] || args="$$args $(MATRIX_OTHER_PYTEST_ARGS)"; \
		echo "=== make $$target"; \
		$(MAKE) --no-print-directory $$target PYTEST_ARGS="$$args" 2>&1 | tee $$log; \
		status=$${PIPESTATUS[0]}; bad=$$(count 'failed|errors?'); \
		if [ $$status != 0 ]; then failed="$$failed $$target"; [ $$bad != 0 ] || bad=1; fi; \
		passed=$$((passed + $$(count passed))); broken=$$((broken + bad)); \
	done; \
	rm -f $$log; \
	[ -z "$$failed" ] || echo "=== test-matrix: failed in$$failed" >&2; \
	echo "test-matrix: $$passed passed, $$broken failed"; \
	[ -z "$$failed" ]

# Per version v in MATRIX: PYTHON_v (found once), env-v, typecheck-v, unit-v.
define matrix_rules
PYTHON_$(subst .,_,$(1)) ?= $$(call find_python,$(1))
PYTHON_$(subst .,_,$(1)) := $$(PYTHON_$(subst .,_,$(1)))
STAMP_$(1) := .venv-$(1)/.synced-$$(subst /,_,$$(PYTHON_$(subst .,_,$(1))))
.PHONY: env-$(1) typecheck-$(1) unit-$(1)
env-$(1): $$(STAMP_$(1))
$$(STAMP_$(1)): pyproject.toml uv.lock Makefile | $$(UV)
	@if [ -z "$$(PYTHON_$(subst .,_,$(1)))" ]; then \
		echo "make: no Python $(1) found (looked in /usr/bin, /usr/local/bin," \
			"~/.pyenv/versions/$(1).*, PATH); install it or pass" \
			"PYTHON_$(subst .,_,$(1))=/path/to/python$(1)" >&2; \
		exit 1; \
	fi
	@$$(PYTHON_$(subst .,_,$(1))) -c 'import sys; assert sys.version_info[:2] == ($(subst .,$$(comma),$(1))), \
		f"$$(PYTHON_$(subst .,_,$(1))) is Python {sys.version.split()[0]}, not $(1)"'
	$$(call sync,.venv-$(1),$$(PYTHON_$(subst .,_,$(1))))
typecheck-$(1): env
	$(VENV)/bin/mypy --strict src --python-version $(1)
unit-$(1): env-$(1) $(CHROMIUM) $(REDIS_CLI)
	.venv-$(1)/bin/pytest -q $$(PYTEST_ARGS)
endef
$(foreach v,$(MATRIX),$(eval $(call matrix_rules,$(v))))

bench: env
	$(VENV)/bin/python -m benchmarks.run_all

# bench_emit and bench_stream in each interpreter's environment, one results file per Python
# version (benchmarks/results/python-<version>.json); then n() timed in every environment in
# turn (round after round, so load from other processes hits them alike), and the
# per-interpreter table of docs/PERFORMANCE.md. ~3 min per interpreter; never part of a test.
BENCH_MATRIX := bench_emit bench_stream
bench-matrix: env $(MATRIX:%=env-%)
	@for venv in $(VENV) $(MATRIX:%=.venv-%); do \
		version=$$($$venv/bin/python -c 'import platform; print(platform.python_version())'); \
		echo "=== $(BENCH_MATRIX) on Python $$version ($$venv)"; \
		$$venv/bin/python -m benchmarks.run_all --only $(BENCH_MATRIX) --no-doc \
			--out benchmarks/results/python-$$version.json >/dev/null || exit 1; \
	done
	$(VENV)/bin/python -m benchmarks.interpreters --alternate $(VENV) $(MATRIX:%=.venv-%)

# The viewer's screenshots in docs/screenshots, taken by its browser tests on a real demo chain.
screenshots: env
	NARRATION_SCREENSHOTS=docs/screenshots $(VENV)/bin/pytest -q \
		tests/server/ui/test_correlation_page.py

clean:
	rm -rf $(VENV) $(MATRIX:%=.venv-%) .pytest_cache .mypy_cache .ruff_cache
