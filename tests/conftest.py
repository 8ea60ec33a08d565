"""Fixtures that run every test through both implementations.

`instance` is parametrized over stock Dagster (`stock`) and dagster-rs (`rust`); `pair` gives one
of each, on separate fresh DAGSTER_HOMEs, for differential tests that assert identical results.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance

import dagster_rs
from tests.pg_cluster import pg_cluster, pg_db, pg_url  # noqa: F401 - fixtures for every suite

KINDS = ("stock", "rust")

RUST_YAML = """\
instance_class:
  module: dagster_rs
  class: DagsterInstance
"""


def write_home(home: Path, kind: str, extra_yaml: str = "") -> Path:
    """Make `home` a DAGSTER_HOME whose dagster.yaml selects `kind` ("stock" or "rust")."""
    home.mkdir(parents=True, exist_ok=True)
    text = (RUST_YAML if kind == "rust" else "") + extra_yaml
    (home / "dagster.yaml").write_text(text)
    return home


def load_instance(home: Path) -> DagsterInstance:
    return DagsterInstance.from_config(str(home))


def make_instance(tmp_path: Path, kind: str, extra_yaml: str = "") -> DagsterInstance:
    return load_instance(write_home(tmp_path / f"{kind}_home", kind, extra_yaml))


def open_as(
    home: Path, kind: str, storage: str, rust_class: type, stock_class: type
) -> DagsterInstance:
    """(Re)write home's dagster.yaml for `kind` and load the instance it describes; check that the
    instance and its `storage` (e.g. "run_storage") are that implementation's."""
    write_home(home, kind)
    inst = load_instance(home)
    if kind == "rust":
        assert isinstance(inst, dagster_rs.DagsterInstance)
        assert isinstance(getattr(inst, storage), rust_class)
    else:
        assert type(inst) is DagsterInstance
        assert type(getattr(inst, storage)) is stock_class
    return inst


@pytest.fixture(autouse=True)
def _no_domain_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's shell setting must not change what the suite tests.
    monkeypatch.delenv("DAGSTER_RS_DOMAINS", raising=False)
    monkeypatch.delenv("DAGSTER_RS_DURABILITY", raising=False)


@pytest.fixture(params=KINDS)
def instance(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DagsterInstance]:
    inst = make_instance(tmp_path, request.param)
    try:
        yield inst
    finally:
        inst.dispose()


@dataclass(frozen=True)
class Outcome:
    """What a call did: its value, or the class and message of what it raised."""

    value: Any = None
    error: type[BaseException] | None = None
    message: str = ""


def call(fn: Callable[[DagsterInstance], Any], inst: DagsterInstance) -> Outcome:
    try:
        return Outcome(value=fn(inst))
    except Exception as exc:  # noqa: BLE001 - the exception is the result being compared
        return Outcome(error=type(exc), message=str(exc))


def same_class(stock: type[BaseException] | None, rust: type[BaseException] | None) -> bool:
    """Whether dagster-rs raised what stock raised: the same class, or one of dagster-rs's own
    storage errors that subclasses it (`StorageOperationalError` is a
    `sqlalchemy.exc.OperationalError`), so every handler written against stock catches it."""
    if stock is None or rust is None:
        return stock is rust
    return rust is stock or (rust.__module__ == "dagster_rs.errors" and issubclass(rust, stock))


@dataclass
class InstancePair:
    stock: DagsterInstance
    rust: DagsterInstance

    def dispose(self) -> None:
        self.stock.dispose()
        self.rust.dispose()

    def __enter__(self) -> InstancePair:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.dispose()

    def both(self, fn: Callable[[DagsterInstance], Any]) -> tuple[Any, Any]:
        """Run `fn` on both instances; return both results (exceptions propagate)."""
        return fn(self.stock), fn(self.rust)

    def same(
        self,
        fn: Callable[[DagsterInstance], Any],
        normalize: Callable[[Any], Any] = lambda v: v,
    ) -> Any:
        """Run `fn` on both, assert the same normalized value or the same exception class."""
        a, b = call(fn, self.stock), call(fn, self.rust)
        assert same_class(a.error, b.error), (
            f"stock raised {a.error}: {a.message}; rust raised {b.error}: {b.message}"
        )
        if a.error is None:
            assert normalize(a.value) == normalize(b.value)
        return b


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[InstancePair]:
    with InstancePair(make_instance(tmp_path, "stock"), make_instance(tmp_path, "rust")) as p:
        yield p


@pytest.fixture
def rust_instance(tmp_path: Path) -> Iterator[DagsterInstance]:
    inst = make_instance(tmp_path, "rust")
    try:
        yield inst
    finally:
        inst.dispose()


@pytest.fixture(autouse=True)
def _signal_dispositions() -> Iterator[None]:
    """Each test leaves SIGINT and SIGTERM as it found them. Dagster's in-process execution
    copies SIGINT's handler to SIGTERM (`setup_interrupt_handlers`); under a shell that ignores
    SIGINT that makes SIGTERM ignored for every later test of the process and every child it
    starts (the disposition survives exec), and a child then outlives its terminate()."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for s, handler in saved.items():
        if handler is not None and signal.getsignal(s) != handler:
            signal.signal(s, handler)


def pytest_report_header() -> str:
    return f"dagster-rs domains env: {os.environ.get('DAGSTER_RS_DOMAINS', '(unset)')}"
