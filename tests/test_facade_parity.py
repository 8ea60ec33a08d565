"""`dagster_rs.DagsterInstance` has stock `dagster.DagsterInstance`'s public surface, signature for
signature: every public name of stock's class (its whole MRO: the domain method mixins, properties,
static and class methods) exists on the facade as the same kind of attribute, with the same
parameters (names, kinds, order, defaults). Annotations are not compared: they are documentation,
and the facade spells some of stock's aliases out. The facade's own additions are declared below.

`__init__` (and so `inspect.signature` of the class) is stock's parameters, in stock's order, with
the facade's keyword-only `rust_domains` and `durability` before stock's `**_kwargs`.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

import pytest
from dagster import DagsterInstance as StockDagsterInstance

import dagster_rs
from dagster_rs import instance as facade_module
from tests.conftest import load_instance, write_home

# Public names only the facade has, and their kind.
ADDITIONS: dict[str, str] = {
    "rust_domains": "property",
    "python_domains": "property",
    "durability": "property",
    # The instance_class config machinery: the facade's own dagster.yaml keys and defaults.
    "config_schema": "classmethod",
    "config_defaults": "staticmethod",
}


def public_names(cls: type) -> set[str]:
    return {name for name in dir(cls) if not name.startswith("_")}


def raw_attribute(cls: type, name: str) -> Any:
    """The attribute as the class that defines it holds it (descriptors not unwrapped)."""
    for klass in cls.__mro__:
        if name in klass.__dict__:
            return klass.__dict__[name]
    raise AttributeError(name)


def attribute_kind(raw: Any) -> str:
    if isinstance(raw, staticmethod):
        return "staticmethod"
    if isinstance(raw, classmethod):
        return "classmethod"
    if isinstance(raw, property):
        return "property"
    if isinstance(raw, functools.cached_property):
        return "cached_property"
    if inspect.isfunction(raw):
        return "method"
    return f"attribute ({type(raw).__name__})"


def _params(fn: Any) -> list[tuple[str, str, Any]]:
    sig = inspect.signature(fn)
    return [(p.name, p.kind.name, p.default) for p in sig.parameters.values()]


def shape(raw: Any) -> Any:
    """What is compared: the parameters of the callable(s) behind the attribute."""
    kind = attribute_kind(raw)
    if kind in ("staticmethod", "classmethod"):
        return _params(raw.__func__)
    if kind == "method":
        return _params(raw)
    if kind == "property":
        return {
            "get": _params(raw.fget) if raw.fget else None,
            "set": _params(raw.fset) if raw.fset else None,
            "del": _params(raw.fdel) if raw.fdel else None,
        }
    if kind == "cached_property":
        return _params(raw.func)
    return None


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - a default whose == raises is compared by identity
        return a is b


def differences(stock: type, facade: type, additions: dict[str, str]) -> list[str]:
    """Every way `facade`'s public surface departs from `stock`'s, one line each."""
    problems: list[str] = []
    stock_names, facade_names = public_names(stock), public_names(facade)
    for name in sorted(stock_names - facade_names):
        problems.append(f"{name}: missing from the facade")
    for name in sorted(facade_names - stock_names):
        if name not in additions:
            problems.append(f"{name}: public on the facade only, and not a declared addition")
        elif attribute_kind(raw_attribute(facade, name)) != additions[name]:
            problems.append(
                f"{name}: declared a {additions[name]},"
                f" is a {attribute_kind(raw_attribute(facade, name))}"
            )
    for name in sorted(set(additions) & stock_names):
        problems.append(f"{name}: declared an addition but stock has it")
    for name in sorted(stock_names & facade_names):
        ours, theirs = raw_attribute(facade, name), raw_attribute(stock, name)
        if attribute_kind(ours) != attribute_kind(theirs):
            problems.append(
                f"{name}: a {attribute_kind(ours)} on the facade, a {attribute_kind(theirs)} on stock"
            )
            continue
        a, b = shape(theirs), shape(ours)
        if not _same(a, b):
            problems.append(f"{name}: stock {a} != facade {b}")
    return problems


def test_facade_has_stocks_public_surface() -> None:
    assert differences(StockDagsterInstance, dagster_rs.DagsterInstance, ADDITIONS) == []


def test_the_comparison_covers_the_whole_mro() -> None:
    # Names from each domain mixin, a staticmethod, a cached property and properties are compared.
    names = public_names(StockDagsterInstance)
    assert len(names) > 150
    kinds = {attribute_kind(raw_attribute(StockDagsterInstance, n)) for n in names}
    assert {"method", "property", "staticmethod", "cached_property"} <= kinds
    for mixin in StockDagsterInstance.__mro__[1:]:
        if mixin.__module__.startswith("dagster._core.instance.methods"):
            assert public_names(mixin) & names, mixin


# -- the comparison detects a facade that departs from stock ------------------------------------


def _changed_default(self, filters=None, cursor=None, limit=100, bucket_by=None, ascending=False):  # type: ignore[no-untyped-def]
    raise NotImplementedError


def _renamed(self, filters=None, cursor=None, max_runs=None, bucket_by=None, ascending=False):  # type: ignore[no-untyped-def]
    raise NotImplementedError


def _keyword_only(self, filters=None, *, cursor=None, limit=None, bucket_by=None, ascending=False):  # type: ignore[no-untyped-def]
    raise NotImplementedError


def _extra_required(
    self, extra, filters=None, cursor=None, limit=None, bucket_by=None, ascending=False
):  # type: ignore[no-untyped-def]
    raise NotImplementedError


def _reordered(self, cursor=None, filters=None, limit=None, bucket_by=None, ascending=False):  # type: ignore[no-untyped-def]
    raise NotImplementedError


def _local_temp(tempdir=None, overrides=None):  # type: ignore[no-untyped-def]
    raise NotImplementedError


ALTERATIONS: dict[str, tuple[str, Any]] = {
    "changed default": ("get_runs", _changed_default),
    "renamed parameter": ("get_runs", _renamed),
    "keyword-only parameters": ("get_runs", _keyword_only),
    "extra required parameter": ("get_runs", _extra_required),
    "reordered parameters": ("get_runs", _reordered),
    "property made a method": ("is_persistent", lambda self: True),
    "method made a property": ("get_runs", property(lambda self: None)),
    "staticmethod made a classmethod": ("local_temp", classmethod(_local_temp)),
    "staticmethod made a method": ("local_temp", _local_temp),
    "staticmethod with a changed default": (
        "ephemeral",
        staticmethod(lambda tempdir=None, preload=None, settings={}: None),  # noqa: B006
    ),
    "cached_property made a property": ("run_domain", property(lambda self: None)),
    "property given a setter": (
        "is_persistent",
        property(lambda self: True, lambda self, value: None),
    ),
    "undeclared addition": ("brand_new_method", lambda self: None),
}


@pytest.mark.parametrize("alteration", sorted(ALTERATIONS))
def test_detects_an_altered_facade(alteration: str) -> None:
    name, value = ALTERATIONS[alteration]
    altered = type("Altered", (dagster_rs.DagsterInstance,), {name: value})
    problems = differences(StockDagsterInstance, altered, ADDITIONS)
    assert [p for p in problems if p.startswith(f"{name}:")], problems


def test_detects_a_stock_method_the_facade_lacks() -> None:
    newer_stock = type("NewerStock", (StockDagsterInstance,), {"new_api": lambda self: None})
    problems = differences(newer_stock, dagster_rs.DagsterInstance, ADDITIONS)
    assert problems == ["new_api: missing from the facade"]


def test_detects_a_declared_addition_of_another_kind() -> None:
    problems = differences(
        StockDagsterInstance, dagster_rs.DagsterInstance, {**ADDITIONS, "durability": "method"}
    )
    assert problems == ["durability: declared a method, is a property"]


# -- __init__ ------------------------------------------------------------------------------------

INIT_ADDITIONS = [("rust_domains", "KEYWORD_ONLY", None), ("durability", "KEYWORD_ONLY", None)]


def expected_init(stock: Any) -> list[tuple[str, str, Any]]:
    """Stock's parameters with the facade's two keyword-only ones before its `**kwargs`."""
    params = _params(stock)
    assert params[-1][1] == "VAR_KEYWORD", params
    return [*params[:-1], *INIT_ADDITIONS, params[-1]]


def test_init_is_stocks_parameters_plus_the_facades() -> None:
    assert _params(dagster_rs.DagsterInstance.__init__) == expected_init(
        StockDagsterInstance.__init__
    )
    # What help() and IDEs show for the class: the same, without self.
    assert _params(dagster_rs.DagsterInstance) == expected_init(StockDagsterInstance.__init__)[1:]
    assert _params(StockDagsterInstance) == _params(StockDagsterInstance.__init__)[1:]


def _generic_init(self, *args, rust_domains=None, durability=None, **kwargs):  # type: ignore[no-untyped-def]
    raise NotImplementedError


def _init_missing_ref(  # type: ignore[no-untyped-def]
    self,
    instance_type,
    local_artifact_storage,
    run_storage,
    event_storage,
    run_coordinator,
    compute_log_manager,
    run_launcher,
    scheduler=None,
    schedule_storage=None,
    settings=None,
    secrets_loader=None,
    defs_state_storage=None,
    *,
    rust_domains=None,
    durability=None,
    **_kwargs,
):
    raise NotImplementedError


@pytest.mark.parametrize("init", [_generic_init, _init_missing_ref])
def test_detects_an_init_that_departs_from_stock(init: Any) -> None:
    assert _params(init) != expected_init(StockDagsterInstance.__init__)


def test_another_stock_signature_gets_the_binding_init() -> None:
    # A Dagster outside the tested range whose __init__ differs: the facade still builds.
    def newer(self, instance_type, storages, ref=None, **_kwargs):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    assert facade_module.init_matching(inspect.signature(newer)) is (
        facade_module._init_for_any_stock  # noqa: SLF001
    )
    declared = dagster_rs.DagsterInstance.__dict__["__init__"]
    assert facade_module.init_matching(inspect.signature(StockDagsterInstance.__init__)) is declared


@pytest.mark.parametrize("which", ["declared", "binding"])
def test_both_inits_build_the_instance_dagster_yaml_describes(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, which: str
) -> None:
    if which == "binding":
        monkeypatch.setattr(
            dagster_rs.DagsterInstance,
            "__init__",
            facade_module._init_for_any_stock,  # noqa: SLF001
        )
    home = write_home(tmp_path / "home", "rust", "rust_domains: [runs]\ndurability: normal\n")
    inst = load_instance(home)
    try:
        assert type(inst) is dagster_rs.DagsterInstance
        assert inst.rust_domains == frozenset({"runs"})
        assert inst.durability == "normal"
        assert inst.get_runs_count() == 0
    finally:
        inst.dispose()


def test_init_rejects_what_stocks_rejects() -> None:
    for bad in (lambda: dagster_rs.DagsterInstance(), lambda: StockDagsterInstance()):  # type: ignore[call-arg]
        with pytest.raises(TypeError):
            bad()


# -- the storages: nothing the installed stock lacks ---------------------------------------------

# The storages' own public additions (their construction and the core behind them).
STORAGE_ADDITIONS: dict[str, dict[str, str]] = {
    "RustEventLogStorage": {
        "base_dir": "property",
        "durability": "property",
        "rust_domains": "attribute (frozenset)",
    },
    "RustScheduleStorage": {"base_dir": "property", "durability": "property", "store": "property"},
    "RustRunStorage": {
        "base_dir": "property",
        "db_path": "property",
        "durability": "property",
        "rust_domains": "attribute (frozenset)",
        "store": "property",
    },
}


def storage_pairs() -> dict[str, tuple[type, type]]:
    """Each Rust-backed storage with every domain mixin it can take, and stock's class over the
    same files."""
    from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
    from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
    from dagster._core.storage.schedules.sqlite.sqlite_schedule_storage import (
        SqliteScheduleStorage,
    )

    from dagster_rs.storage.event_log_storage import EVENT_LOG_DOMAINS, event_log_class
    from dagster_rs.storage.run_storage import RUN_STORAGE_DOMAINS, run_storage_class
    from dagster_rs.storage.schedule_storage import RustScheduleStorage

    return {
        "RustEventLogStorage": (
            SqliteEventLogStorage,
            event_log_class(frozenset(EVENT_LOG_DOMAINS)),
        ),
        "RustScheduleStorage": (SqliteScheduleStorage, RustScheduleStorage),
        "RustRunStorage": (SqliteRunStorage, run_storage_class(frozenset(RUN_STORAGE_DOMAINS))),
    }


def invented(stock: type, storage: type, additions: dict[str, str]) -> list[str]:
    """What `storage` offers beyond the installed stock's class: a method stock lacks, or a
    parameter stock's method does not take (stock's storages have internals the Rust ones do not
    need, so only this direction is compared)."""
    return [
        problem
        for problem in differences(stock, storage, additions)
        if not problem.endswith("missing from the facade")
    ]


@pytest.mark.parametrize("name", sorted(STORAGE_ADDITIONS))
def test_storages_offer_nothing_stock_lacks(name: str) -> None:
    # On an earlier release of the range this is what compat.only_what_stock_has and
    # compat.only_parameters_stock_has enforce: no method, no parameter stock would refuse.
    stock, storage = storage_pairs()[name]
    assert invented(stock, storage, STORAGE_ADDITIONS[name]) == []


def test_detects_a_storage_parameter_stock_lacks() -> None:
    stock, storage = storage_pairs()["RustEventLogStorage"]

    def later(self, asset_key, event_type, partitions=None, after_cursor=None, newer=None):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    altered = type("Altered", (storage,), {"get_latest_storage_id_by_partition": later})
    problems = invented(stock, altered, STORAGE_ADDITIONS["RustEventLogStorage"])
    assert [p for p in problems if p.startswith("get_latest_storage_id_by_partition:")], problems
