"""Which of the instance's domains run in Rust.

The seven domains are those of Dagster's instance refactoring plan. A domain is *live* in Rust when
it is implemented in the native core, selected by configuration, and the configured storage is one
the core can serve (embedded SQLite today).
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from dagster._core.errors import DagsterInvariantViolationError

DOMAINS: tuple[str, ...] = (
    "runs",
    "assets",
    "events",
    "scheduling",
    "storage",
    "run_launcher",
    "config",
)

# Domains whose every method is served by the native core. Others stay on stock Python code.
IMPLEMENTED: frozenset[str] = frozenset({"runs", "events"})

ENV_VAR = "DAGSTER_RS_DOMAINS"


class DomainSelectionError(DagsterInvariantViolationError):
    """A domain was asked for that does not exist or is not implemented in Rust yet."""


def _parse(value: str | Iterable[str] | None, source: str) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "all":
            return IMPLEMENTED
        if text in ("none", ""):
            return frozenset()
        names = [part.strip() for part in text.split(",") if part.strip()]
    else:
        names = [str(part).strip().lower() for part in value]
        if names == ["all"]:
            return IMPLEMENTED
    unknown = sorted(set(names) - set(DOMAINS))
    if unknown:
        raise DomainSelectionError(
            f"{source}: unknown dagster-rs domain(s) {unknown}; the domains are {list(DOMAINS)}"
        )
    missing = sorted(set(names) - IMPLEMENTED)
    if missing:
        raise DomainSelectionError(
            f"{source}: domain(s) {missing} are not implemented in Rust yet and cannot be switched"
            f" on; implemented: {sorted(IMPLEMENTED)}"
        )
    return frozenset(names)


def resolve_domains(configured: str | Iterable[str] | None) -> frozenset[str]:
    """The environment variable wins over the instance config; neither set means all."""
    from_env = _parse(os.environ.get(ENV_VAR), f"${ENV_VAR}")
    if from_env is not None:
        return from_env
    from_config = _parse(configured, "dagster.yaml rust_domains")
    if from_config is not None:
        return from_config
    return IMPLEMENTED
