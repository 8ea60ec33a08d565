#!/usr/bin/env bash
# README command 1: set up, then run the real Dagster workload on a dagster-rs instance.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m dagster_rs.workload "$@"
