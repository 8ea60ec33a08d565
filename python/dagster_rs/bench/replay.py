"""Floors by replay: the native calls an op makes on the dagster-rs side, recorded and replayed
with nothing else around them.

An op's floor is "the same SQL through the core with no Dagster object built". Rather than
rewrite each op's statements by hand (and drift from what the op really runs), the floor records
every call the op's dagster-rs side makes into the native core (method and the already-converted
arguments), then times replaying exactly those calls. What the floor leaves out is then precisely
the Python around them: argument checks, conversions to the core's specs, and building Dagster's
objects from the rows.

What is recorded is found generically: every attribute of the instance, and of each object the
instance holds (its storages, whatever they are called), that holds a native object (a class of
`dagster_rs._native`: a core or a store), and every native object those hand out. A domain that
moves into the core is then recorded without any change here; an op none of whose work is in the
core records nothing and has no floor.

Reads (`replay_floor`) replay on the instance they were recorded on. A write cannot be replayed
where it ran (the data would no longer be what the other side holds), so `replay_write_floor`
records it on one copy of the data and replays it on another, resolving each call by its
attribute path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from dagster import DagsterInstance

NATIVE_MODULE = "dagster_rs._native"


def is_native(value: object) -> bool:
    """Whether `value` is an object of the extension (a core or one of its stores)."""
    return type(value).__module__ == NATIVE_MODULE


@dataclass(frozen=True)
class Call:
    """One native call: the bound method, its arguments, and where it was reached from (the
    root's name, then attribute names down to the method's)."""

    method: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    path: tuple[str, ...]

    def __call__(self) -> Any:
        return self.method(*self.args, **self.kwargs)


class _Recording:
    """A stand-in for a native core or store that logs each method call it forwards."""

    def __init__(self, target: Any, log: list[Call], path: tuple[str, ...]):
        self._target = target
        self._log = log
        self._path = path

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        path = (*self._path, name)
        if is_native(value):
            return _Recording(value, self._log, path)
        if callable(value):

            def call(*args: Any, **kwargs: Any) -> Any:
                self._log.append(Call(value, args, kwargs, path))
                return value(*args, **kwargs)

            return call
        return value


def _roots(instance: DagsterInstance) -> dict[str, object]:
    """The objects whose native attributes are recorded, by the instance's attribute name: the
    instance itself ("instance") and each (non-native) object it holds, once each."""
    roots: dict[str, object] = {"instance": instance}
    seen = {id(instance)}
    for name, value in vars(instance).items():
        if is_native(value) or not hasattr(value, "__dict__") or id(value) in seen:
            continue
        seen.add(id(value))
        roots[name] = value
    return roots


def native_attrs(instance: DagsterInstance) -> dict[tuple[str, str], object]:
    """(root, attribute) -> the native object it holds, over the instance and its storages."""
    found: dict[tuple[str, str], object] = {}
    for root_name, root in _roots(instance).items():
        if root is None:
            continue
        for attr, value in vars(root).items():
            if is_native(value):
                found[(root_name, attr)] = value
    return found


@contextmanager
def recording(instance: DagsterInstance) -> Iterator[list[Call]]:
    """Log the native calls the instance and its storages make while the block runs."""
    log: list[Call] = []
    roots = _roots(instance)
    saved = native_attrs(instance)
    try:
        for (root_name, attr), value in saved.items():
            setattr(roots[root_name], attr, _Recording(value, log, (root_name, attr)))
        yield log
    finally:
        for (root_name, attr), value in saved.items():
            setattr(roots[root_name], attr, value)


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
        for call in calls[i % period]:
            out = call()
        return out

    return floor


def _resolve(instance: DagsterInstance, path: Sequence[str]) -> Callable[..., Any]:
    """The method at `path` (root, attribute, ..., method) on `instance`. A storage that opens
    its native store on first use (a `store` property) is made to open it."""
    root_name, attr, *rest = path
    root = _roots(instance).get(root_name)
    if root is None:
        raise LookupError(f"{'.'.join(path)}: the instance holds no {root_name}")
    value = getattr(root, attr, None)
    if value is None and hasattr(type(root), "store"):
        getattr(root, "store")  # noqa: B009 - the property opens the store and sets `attr`
        value = getattr(root, attr, None)
    if value is None:
        raise LookupError(f"{'.'.join(path)}: {root_name}.{attr} holds no native object")
    for name in rest:
        value = getattr(value, name)
    return value


def replay_write_floor(
    recorder: DagsterInstance,
    target: DagsterInstance,
    op: Callable[[DagsterInstance, int], object],
    indices: Sequence[int],
) -> dict[int, Callable[[], object]] | None:
    """A write's floor: `op(recorder, i)` run for every i of `indices`, in order, its native calls
    recorded; they are resolved on `target` (another instance on the same data as `recorder`
    had), one replay per i. None when the op made no native call, or when a call's path does
    not resolve on `target`; `target` is then left as it was. Replaying every i in order keeps
    `target` in step with `recorder`."""
    logs: list[tuple[int, list[Call]]] = []
    for i in indices:
        with recording(recorder) as log:
            op(recorder, i)
        logs.append((i, log))
    if not any(log for _, log in logs):
        return None
    methods: dict[tuple[str, ...], Callable[..., Any]] = {}
    try:
        for _, log in logs:
            for call in log:
                if call.path not in methods:
                    methods[call.path] = _resolve(target, call.path)
    except (LookupError, AttributeError):
        return None
    replays: dict[int, Callable[[], object]] = {}
    for i, log in logs:
        bound = [(methods[c.path], c.args, c.kwargs) for c in log]

        def replay(
            bound: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = bound,
        ) -> object:
            out = None
            for method, args, kwargs in bound:
                out = method(*args, **kwargs)
            return out

        replays[i] = replay
    return replays


__all__ = [
    "Call",
    "is_native",
    "native_attrs",
    "recording",
    "replay_floor",
    "replay_write_floor",
]
