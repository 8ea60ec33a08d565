"""Which of the instance's domains run in Rust, and how each one is switched.

The seven domains are those of Dagster's instance refactoring plan. Each has one entry in
`TABLE`: whether the core implements it, which storage object of `DagsterInstance.__init__`
serves it (the facade puts the Rust-backed one in its place, or stock's back on the same files
when the domain is switched off), and which domains it needs. Adding a domain is adding its
entry (and its storage's `Swap` in `dagster_rs.storage.swaps` when it brings one).

A domain is *live* in Rust when it is implemented, selected by configuration, everything it
needs is live, and the configured storage is one the core can serve (embedded SQLite today).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

from dagster._core.errors import DagsterInvariantViolationError


@dataclass(frozen=True)
class Domain:
    name: str
    implemented: bool
    # The DagsterInstance.__init__ argument whose storage object serves the domain, if any.
    storage: str | None = None
    # Domains that must be live for this one to be: those whose storage object serves it.
    needs: tuple[str, ...] = ()


TABLE: tuple[Domain, ...] = (
    Domain("runs", implemented=True, storage="run_storage"),
    Domain("assets", implemented=True, needs=("events",)),
    Domain("events", implemented=True, storage="event_storage"),
    Domain("scheduling", implemented=True, storage="schedule_storage"),
    Domain("storage", implemented=True, needs=("events",)),
    Domain("run_launcher", implemented=True, needs=("runs", "events")),
    Domain("config", implemented=True, needs=("runs",)),
)

DOMAINS: tuple[str, ...] = tuple(d.name for d in TABLE)

# Domains whose every method is served by the native core. Others stay on stock Python code.
IMPLEMENTED: frozenset[str] = frozenset(d.name for d in TABLE if d.implemented)

BY_NAME: dict[str, Domain] = {d.name: d for d in TABLE}

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
    chosen = frozenset(names)
    for name in sorted(chosen):
        absent = sorted(set(BY_NAME[name].needs) - chosen)
        if absent:
            raise DomainSelectionError(
                f"{source}: domain {name!r} runs in the storage object of {absent}; select"
                f" {absent} as well"
            )
    return chosen


def resolve_domains(configured: str | Iterable[str] | None) -> frozenset[str]:
    """The environment variable wins over the instance config; neither set means all."""
    from_env = _parse(os.environ.get(ENV_VAR), f"${ENV_VAR}")
    if from_env is not None:
        return from_env
    from_config = _parse(configured, "dagster.yaml rust_domains")
    if from_config is not None:
        return from_config
    return IMPLEMENTED
