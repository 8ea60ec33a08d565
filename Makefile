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
	cargo clippy --all-targets --features bundled-sqlite -- -D warnings
	$(VENV)/bin/ruff check python tests
	$(VENV)/bin/ruff format --check python tests
	$(VENV)/bin/mypy
	$(PY) -m mypy.stubtest dagster_rs._native --allowlist .stubtest-allowlist

test-rust:
	PYO3_PYTHON=$(abspath $(PY)) cargo test
	PYO3_PYTHON=$(abspath $(PY)) cargo test --features bundled-sqlite

test-py:
	$(PY) -m pytest -q

test: test-rust test-py

bench:
	$(PY) -m dagster_rs.bench runs

# Rebuild the extension and swap it in atomically (rename), so processes that have the old one
# loaded keep running: used while long test runs are in flight.
swap:
	PYO3_PYTHON=$(abspath $(PY)) PYO3_BUILD_EXTENSION_MODULE=1 cargo build --release --lib
	cp target/release/lib_native.so python/dagster_rs/.native.tmp
	mv python/dagster_rs/.native.tmp python/dagster_rs/_native$$($(PY) -c "import sysconfig; print(sysconfig.get_config_var('EXT_SUFFIX'))")
