#!/usr/bin/env bash
# README command 2 (and CI's): set up, lint, Rust unit tests, the pytest compatibility suite,
# and the storage tests again on the oldest Dagster of the tested range.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The Rust tests that embed Python run on the libpython PyO3 linked (the system's: the venv's
# Python has no shared library). With the venv's python3 first on PATH that interpreter would
# take the venv's base standard library, another build's, whose extension modules (_ssl) it
# cannot load; the cargo commands run with PATH as it was before activation.
path_before_venv=$PATH
. .venv/bin/activate
export PYO3_PYTHON="$PWD/.venv/bin/python"
# The PostgreSQL tests fail, rather than skip, when no server can be started here.
export DAGSTER_RS_REQUIRE_PG=1
cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings
# The PostgreSQL backend's tests (store::postgres) run over throwaway servers
# (dagster_rs.pg_cluster, from the binaries setup.sh installs when missing).
PATH=$path_before_venv cargo test --locked
# The bundled-SQLite build exists only to test that it refuses to run beside Python's sqlite3
# (ARCHITECTURE.md, "One SQLite per process"); lint and unit-test it too.
cargo clippy --all-targets --locked --features bundled-sqlite -- -D warnings
PATH=$path_before_venv cargo test --locked --features bundled-sqlite
ruff check python tests
ruff format --check python tests
mypy
python -m mypy.stubtest dagster_rs._native --allowlist .stubtest-allowlist
# Stock dagster-postgres, the PostgreSQL oracle, in a venv of its own (scripts/pg_venv.sh):
# tests/test_pg_stock.py runs in it rather than skipping.
bash scripts/pg_venv.sh >/dev/null
# Both cores: each test file runs whole on one worker (module fixtures are built once), and
# every worker hashes alike so parametrized ids collect the same.
PYTHONHASHSEED=0 python -m pytest -q -n 2 --dist loadfile "$@"

# The PostgreSQL differential suite (tests/pg) in the oracle's venv: stock dagster-postgres and
# dagster-rs in one process, on throwaway servers (one per worker). The main venv above has no
# dagster_postgres and collects nothing there; in .venv-pg, DAGSTER_RS_REQUIRE_PG=1 makes a missing
# dagster_postgres an error. Tests marked needs_native_pg skip only while the core lacks the
# PostgreSQL backend.
PYTHONHASHSEED=0 .venv-pg/bin/python -m pytest -q -n 2 --dist loadfile -p no:warnings tests/pg

# The oldest Dagster of the tested range (dagster_rs.compat.OLDEST_TESTED), in a second
# virtualenv on the very extension built above (scripts/oldest_venv.sh): the storage domains'
# differential tests against that release's stock, and its homes at older revisions. The suite
# above ran on constraints.txt's pin, the newest release of the family.
oldest_python=$(bash scripts/oldest_venv.sh | tail -n 1)
"$oldest_python" -m pytest -q -p no:warnings \
    tests/runs/test_add_and_get.py tests/runs/test_filters.py tests/runs/test_tags.py \
    tests/runs/test_backfills.py tests/runs/test_events.py \
    tests/config/test_heartbeats_cursors.py -k "not more_keys_than_stock_can_bind" \
    tests/events/test_instance_reads.py tests/events/test_instance_writes.py \
    tests/events/test_write_path.py \
    tests/scheduling/test_schedule_storage.py \
    tests/assets/test_asset_reads.py tests/assets/test_asset_writes.py \
    tests/assets/test_asset_checks.py tests/assets/test_storage.py \
    tests/assets/test_concurrency_pools.py \
    tests/test_old_revisions.py tests/test_facade_parity.py tests/test_release_differences.py
