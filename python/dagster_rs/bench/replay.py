"""Floors by replay: the native calls a read makes on the dagster-rs side, recorded once per
distinct argument and replayed with nothing else around them.

A read's floor is "the same SQL through the core with no Dagster object built". Rather than
rewrite each op's statements by hand (and drift from what the op really runs), the floor records
every call the op's dagster-rs side makes into the native stores (events, assets, storage, runs:
method and the already-converted arguments), then times replaying exactly those calls. What the
floor leaves out is then precisely the Python around them: argument checks, conversions to the
core's specs, and building Dagster's objects from the rows.

Only for reads: replaying a write would change the data one side holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from dagster import DagsterInstance

from dagster_rs import _native

Call = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]

_STORES = (
    _native.EventStore,
    _native.AssetStore,
    _native.StorageStore,
    _native.RunStore,
    _native.ConfigStore,
)


class _Recording:
    """A stand-in for a native core or store that logs each method call it forwards."""

    def __init__(self, target: Any, log: list[Call]):
        self._target = target
        self._log = log

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if isinstance(value, _STORES):
            return _Recording(value, self._log)
        if callable(value):

            def call(*args: Any, **kwargs: Any) -> Any:
                self._log.append((value, args, kwargs))
                return value(*args, **kwargs)

            return call
        return value


@contextmanager
def recording(instance: DagsterInstance) -> Iterator[list[Call]]:
    """Log the native calls the instance's storages make while the block runs."""
    log: list[Call] = []
    events = instance.event_log_storage
    runs = instance.run_storage
    saved = {
        (events, "_native_core"): getattr(events, "_native_core", None),
        (events, "_native"): getattr(events, "_native", None),
        (runs, "_native"): getattr(runs, "_native", None),
        # The run storage's core: the config domain's store (heartbeats, cursors) hangs off it.
        (runs, "_native_core"): getattr(runs, "_native_core", None),
    }
    try:
        for (obj, attr), value in saved.items():
            if value is not None:
                setattr(obj, attr, _Recording(value, log))
        yield log
    finally:
        for (obj, attr), value in saved.items():
            if value is not None:
                setattr(obj, attr, value)


def replay_floor(
    instance: DagsterInstance,
    op: Callable[[int], object],
    period: int,
    before: Callable[[int], object] | None = None,
) -> Callable[[int], object] | None:
    """The floor fn(i) of a read `op(i)` with `period` distinct calls: each call's native calls
    recorded once (after `before(i)`, unrecorded, when given), replayed by fn(i). None when the
    op makes no native call (nothing of it is in the core)."""
    calls: list[list[Call]] = []
    for i in range(period):
        if before is not None:
            before(i)
        with recording(instance) as log:
            op(i)
        calls.append(log)
    if not any(calls):
        return None

    def floor(i: int) -> object:
        out = None
        for method, args, kwargs in calls[i % period]:
            out = method(*args, **kwargs)
        return out

    return floor


__all__ = ["recording", "replay_floor"]
