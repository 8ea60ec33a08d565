# Developer targets. The two README commands (scripts/main.sh, scripts/test.sh) set up a fresh
# machine first; these assume the virtualenv exists (scripts/setup.sh makes it).
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup dev release lint test test-rust test-py bench fmt

setup:
	bash scripts/setup.sh

dev:  ## debug build of the extension, installed in place
	$(VENV)/bin/maturin develop --quiet

release:  ## optimized build, installed in place
	$(VENV)/bin/maturin develop --release --quiet

fmt:
	cargo fmt
	$(VENV)/bin/ruff format python tests
	$(VENV)/bin/ruff check --fix python tests

lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	$(VENV)/bin/ruff check python tests
	$(VENV)/bin/ruff format --check python tests
	$(VENV)/bin/mypy
	$(PY) -m mypy.stubtest dagster_rs._native --allowlist .stubtest-allowlist

test-rust:
	PYO3_PYTHON=$(abspath $(PY)) cargo test

test-py:
	$(PY) -m pytest -q

test: test-rust test-py

bench:
	$(PY) -m dagster_rs.bench runs
