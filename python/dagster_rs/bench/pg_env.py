"""Where `dagster-rs bench --backend postgres` runs: an interpreter that can import stock
dagster-postgres (the oracle), which only `.venv-pg` (`bash scripts/pg_venv.sh`) holds.

Imports nothing of Dagster's, so the CLI can decide before loading the bench.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path

PG_VENV_SCRIPT = "bash scripts/pg_venv.sh"
# Set in the re-executed process so that a `.venv-pg` without dagster_postgres cannot loop.
REEXEC_MARK = "DAGSTER_RS_BENCH_PG_REEXEC"


def has_dagster_postgres() -> bool:
    return importlib.util.find_spec("dagster_postgres") is not None


def repo_root() -> Path:
    """The checkout this package is imported from (python/dagster_rs/bench/ → three up)."""
    return Path(__file__).resolve().parents[3]


def pg_python() -> Path | None:
    """The `.venv-pg` interpreter: $DAGSTER_RS_PG_PYTHON, else the checkout's `.venv-pg`."""
    chosen = os.environ.get("DAGSTER_RS_PG_PYTHON")
    candidates = [Path(chosen)] if chosen else []
    candidates.append(repo_root() / ".venv-pg" / "bin" / "python")
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    return None


class NoPgVenv(RuntimeError):
    """No interpreter with dagster-postgres: the message says how to make one."""


def interpreter() -> str:
    """The interpreter to run the PostgreSQL bench with: this one when it imports
    dagster_postgres, else `.venv-pg`'s; raises `NoPgVenv` naming the script that makes it."""
    if has_dagster_postgres():
        return sys.executable
    found = pg_python()
    if found is None or os.environ.get(REEXEC_MARK) == "1":
        raise NoPgVenv(
            "the PostgreSQL bench compares against stock dagster-postgres, which is not importable"
            f" here ({sys.executable}) and there is no .venv-pg at {repo_root() / '.venv-pg'}:"
            f" make it with `{PG_VENV_SCRIPT}` (or point $DAGSTER_RS_PG_PYTHON at an interpreter"
            " that has dagster-postgres)"
        )
    return str(found)


def reexec_if_needed(argv: Sequence[str]) -> None:
    """Replace this process with `.venv-pg`'s `python -m dagster_rs.bench <argv>` when this
    interpreter cannot import dagster_postgres; return when it can."""
    python = interpreter()
    if python == sys.executable:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.environ[REEXEC_MARK] = "1"
    os.execv(python, [python, "-m", "dagster_rs.bench", *argv])


__all__ = [
    "PG_VENV_SCRIPT",
    "NoPgVenv",
    "has_dagster_postgres",
    "interpreter",
    "pg_python",
    "reexec_if_needed",
]
