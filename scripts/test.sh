#!/usr/bin/env bash
# README command 2 (and CI's): set up, lint, Rust unit tests, the pytest compatibility suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
export PYO3_PYTHON="$PWD/.venv/bin/python"
cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked
# The bundled-SQLite build exists only to test that it refuses to run beside Python's sqlite3
# (ARCHITECTURE.md, "One SQLite per process"); lint and unit-test it too.
cargo clippy --all-targets --locked --features bundled-sqlite -- -D warnings
cargo test --locked --features bundled-sqlite
ruff check python tests
ruff format --check python tests
mypy
python -m mypy.stubtest dagster_rs._native --allowlist .stubtest-allowlist
python -m pytest -q "$@"
