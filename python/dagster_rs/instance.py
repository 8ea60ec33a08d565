"""`dagster_rs.DagsterInstance`: stock Dagster's instance class, its storage served by Rust.

Point `dagster.yaml` at it and every Dagster process (webserver, daemon, step subprocesses, which
rebuild the instance from its `InstanceRef`) gets this class:

    instance_class:
      module: dagster_rs
      class: DagsterInstance
    rust_domains: all        # or a list of domain names; $DAGSTER_RS_DOMAINS overrides
    durability: full         # full (default, as stock) | normal; $DAGSTER_RS_DURABILITY overrides
    pool_size: 8             # PostgreSQL: connections the core pools per database and process

On PostgreSQL (`storage: postgres:` or the legacy `dagster_postgres` storages, configured as for
stock: `dagster_rs.postgres`) the same switch applies to the same tables; a domain the native
core cannot serve there stays on stock dagster-postgres, with one warning and listed as such.

It subclasses `dagster.DagsterInstance`, so every public method keeps its signature and every
`isinstance` check in Dagster passes. A live domain's methods reach the native core through the
storage object Dagster itself uses (`instance.run_storage` is a `RustRunStorage`), so Dagster
internals that go to the storage directly and the instance's own methods see one source of truth.
"""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import yaml
from dagster import Any as ConfigAny
from dagster import Field, Noneable
from dagster._core.instance import DagsterInstance as StockDagsterInstance
from dagster._core.instance.factory import create_local_temp_instance
from dagster._core.instance.ref import InstanceRef
from dagster._core.instance.types import InstanceType
from dagster._serdes import ConfigurableClassData
from dagster._utils import PrintFn

from dagster_rs import _native, compat, postgres, revisions
from dagster_rs.core import core_for
from dagster_rs.domains import DOMAINS, TABLE, DomainSelectionError, resolve_domains
from dagster_rs.errors import DagsterRsStorageError
from dagster_rs.revisions import FileVerdict, event_log_verdict, held_back_message
from dagster_rs.run_launcher_domain import RunLauncherDomain
from dagster_rs.storage.event_log_storage import RustEventLogStorage
from dagster_rs.storage.run_storage import RustRunStorage
from dagster_rs.storage.runs_domain import RunsDomain
from dagster_rs.storage.schedule_storage import SchedulingDomain
from dagster_rs.storage.swaps import SWAPS

if TYPE_CHECKING:
    from dagster._core.launcher import RunLauncher
    from dagster._core.run_coordinator import RunCoordinator
    from dagster._core.scheduler import Scheduler
    from dagster._core.secrets import SecretsLoader
    from dagster._core.storage.compute_log_manager import ComputeLogManager
    from dagster._core.storage.defs_state.base import DefsStateStorage
    from dagster._core.storage.event_log import EventLogStorage
    from dagster._core.storage.root import LocalArtifactStorage
    from dagster._core.storage.runs import RunStorage
    from dagster._core.storage.schedules import ScheduleStorage

DURABILITY_ENV_VAR = "DAGSTER_RS_DURABILITY"
DURABILITY_MODES = ("full", "normal")

_STOCK_INIT = inspect.signature(StockDagsterInstance.__init__)
# The facade's own parameters of `__init__`, keyword-only, before stock's catch-all.
INIT_ADDITIONS = ("rust_domains", "durability")

# The storages the facade puts in Rust's or stock's hands: `__init__` parameter, attribute.
STORAGE_ATTRIBUTES = {
    "run_storage": "_run_storage",
    "event_storage": "_event_storage",
    "schedule_storage": "_schedule_storage",
}

_LOG = logging.getLogger("dagster_rs")
_WARNED: set[str] = set()


def _warn_once(message: str) -> None:
    """Log `message` as a warning the first time this process meets it."""
    if message not in _WARNED:
        _WARNED.add(message)
        _LOG.warning(message)


def resolve_durability(configured: str | None) -> str:
    value = (os.environ.get(DURABILITY_ENV_VAR) or configured or "full").strip().lower()
    if value not in DURABILITY_MODES:
        raise DomainSelectionError(
            f"durability must be one of {list(DURABILITY_MODES)}, got {value!r}"
        )
    return value


def resolve_pool_size(configured: object) -> int | None:
    if configured is None:
        return None
    if isinstance(configured, bool) or not isinstance(configured, int) or configured < 1:
        raise DomainSelectionError(f"pool_size must be a positive integer, got {configured!r}")
    return configured


class DagsterInstance(RunLauncherDomain, StockDagsterInstance):
    """Drop-in `dagster.DagsterInstance` whose live domains run in the Rust core."""

    # Stock's parameters, names, kinds, defaults and order, then the facade's two keyword-only
    # ones before stock's catch-all: `inspect.signature` shows what stock shows plus those two
    # (`tests/test_facade_parity.py` compares them with the installed stock's).
    def __init__(
        self,
        instance_type: InstanceType,
        local_artifact_storage: LocalArtifactStorage,
        run_storage: RunStorage,
        event_storage: EventLogStorage,
        run_coordinator: RunCoordinator | None,
        compute_log_manager: ComputeLogManager | None,
        run_launcher: RunLauncher | None,
        scheduler: Scheduler | None = None,
        schedule_storage: ScheduleStorage | None = None,
        settings: Mapping[str, Any] | None = None,
        secrets_loader: SecretsLoader | None = None,
        defs_state_storage: DefsStateStorage | None = None,
        ref: InstanceRef | None = None,
        *,
        rust_domains: str | list[str] | None = None,
        durability: str | None = None,
        **_kwargs: Any,
    ):
        params: dict[str, Any] = {
            "instance_type": instance_type,
            "local_artifact_storage": local_artifact_storage,
            "run_storage": run_storage,
            "event_storage": event_storage,
            "run_coordinator": run_coordinator,
            "compute_log_manager": compute_log_manager,
            "run_launcher": run_launcher,
            "scheduler": scheduler,
            "schedule_storage": schedule_storage,
            "settings": settings,
            "secrets_loader": secrets_loader,
            "defs_state_storage": defs_state_storage,
            "ref": ref,
        }
        self._rs_init(params, _kwargs, rust_domains, durability)

    def _rs_init(
        self,
        params: dict[str, Any],
        extra: Mapping[str, Any],
        rust_domains: str | list[str] | None,
        durability: str | None,
    ) -> None:
        """Picks the live domains, puts each storage in Rust's or stock's hands, then runs
        stock's `__init__` with them (`params`: stock's named parameters, `extra` its catch-all)."""
        requested = resolve_domains(rust_domains)
        # Not a parameter of `__init__` (its signature is stock's plus the two above): the
        # instance config's key arrives in stock's catch-all.
        extra = dict(extra)
        self._rs_pool_size = resolve_pool_size(extra.pop("pool_size", None))
        self._rs_explicit = rust_domains is not None or bool(os.environ.get("DAGSTER_RS_DOMAINS"))
        if requested and not compat.dagster_in_range():
            # Files are stock's: stock's code serves them all, whatever was asked for.
            _warn_once(compat.out_of_range_message())
            requested = frozenset()
        sqlite_problem = _native.sqlite_library()["problem"]
        if requested and sqlite_problem:
            # The core itself refuses every file too; failing here names the cause up front.
            raise DagsterRsStorageError(
                f"dagster-rs cannot serve {sorted(requested)} in this process: {sqlite_problem}"
            )
        self._rs_durability = resolve_durability(durability)
        self._rs_requested = requested
        storages = {name: params[name] for name in STORAGE_ATTRIBUTES if name in params}
        self._rs_held = self._rs_hold_back(storages, requested)
        if self._rs_held:
            _LOG.warning(held_back_message(self._rs_held))
        self._rs_live = self._rs_swap(storages, frozenset(requested - self._rs_held.keys()))
        params.update(storages)
        self._rs_core = self._rs_core_of(storages)
        super().__init__(**params, **extra)

    def _rs_hold_back(
        self, storages: Mapping[str, Any], requested: frozenset[str]
    ) -> dict[str, FileVerdict]:
        """The requested domains whose file the native path does not serve (an older revision
        it does not cover, a revision this Dagster does not know), with that file's verdict:
        stock's code serves them, as it would the whole home."""
        held: dict[str, FileVerdict] = {}
        for domain in TABLE:
            swap = SWAPS.get(domain.storage or "")
            if swap is None or domain.name not in requested:
                continue
            storage = storages.get(domain.storage)  # type: ignore[arg-type]
            if storage is not None and postgres.stock_class(storage) is not None:
                pg_verdict = postgres.verdict(
                    storage,
                    swap.kind,
                    self._rs_durability,  # type: ignore[arg-type]
                    self._rs_pool_size,
                )
                if pg_verdict is not None:
                    held[domain.name] = pg_verdict
                continue
            path = swap.database(storage) if storage is not None else None
            if path is None:
                continue
            if swap.kind == "event_index":
                verdict = event_log_verdict(os.path.dirname(path))
            else:
                verdict = revisions.inspect(path, swap.kind)
            if verdict is not None and not verdict.native:
                held[domain.name] = verdict
        # On PostgreSQL the storage domain is served over stock's event log storage, its events
        # stock's: it needs the database, not the events domain.
        own = set()
        event_storage = storages.get("event_storage")
        if postgres.stock_class(event_storage) == "event_index":
            for name in sorted(postgres.EVENT_LOG_SERVED & requested):
                pg_verdict = postgres.verdict(
                    event_storage,
                    "event_index",
                    self._rs_durability,  # type: ignore[arg-type]
                    self._rs_pool_size,
                    domain=name,
                )
                if pg_verdict is None:
                    own.add(name)
                else:
                    held[name] = pg_verdict
        # The domains living in a held-back domain's storage, or needing it, go with it.
        for domain in TABLE:
            if domain.name in requested and domain.name not in held and domain.name not in own:
                blocked = [need for need in domain.needs if need in held]
                if blocked:
                    held[domain.name] = held[blocked[0]]
        return held

    def _rs_swap(self, storages: dict[str, Any], serve: frozenset[str]) -> frozenset[str]:
        """Puts each storage in `storages` (by `__init__` parameter) in Rust's hands when its
        domain is in `serve`, else in stock's; returns the domains live in Rust."""
        live: set[str] = set()
        # Domains with a storage object of their own first: the others live in those.
        for domain in sorted(TABLE, key=lambda d: d.storage is None):
            swap = SWAPS.get(domain.storage or "")
            if swap is None:
                if domain.implemented and domain.name in serve and set(domain.needs) <= live:
                    live.add(domain.name)
                continue
            storage = storages.get(domain.storage)  # type: ignore[arg-type]
            if storage is None:
                continue
            if domain.name in serve:
                rust = swap.to_rust(storage, self._rs_durability, serve, self._rs_pool_size)
                if rust is not None:
                    storages[domain.storage] = rust  # type: ignore[index]
                    live.add(domain.name)
                elif self._rs_explicit:
                    raise DomainSelectionError(
                        f"the {domain.name} domain runs in Rust only over {swap.needs}; this"
                        f" instance is configured with {type(storage).__name__}. Remove"
                        f" '{domain.name}' from rust_domains / $DAGSTER_RS_DOMAINS to keep it on"
                        " stock Python."
                    )
            elif swap.is_rust(storage):
                # Domain switched off, or its file left to stock: stock's own storage over the
                # very same files.
                storages[domain.storage] = swap.to_stock(storage)  # type: ignore[index]
        if "events" not in live and postgres.stock_class(storages.get("event_storage")):
            from dagster_rs.storage import postgres_event_log

            live |= postgres_event_log.swap(
                storages, serve, self._rs_durability, self._rs_pool_size
            )
        return frozenset(live)

    def _rs_core_of(self, storages: Mapping[str, Any]) -> _native.DagsterInstance:
        """The instance's one native handle: the core of the files its Rust domains serve, on
        the same stores (and connections) as its storage objects."""
        run_storage, event_storage = storages["run_storage"], storages["event_storage"]
        if isinstance(run_storage, RunsDomain) and not isinstance(run_storage, RustRunStorage):
            # A PostgreSQL database's: the core the run storage asked for.
            return run_storage._native_core  # type: ignore[attr-defined]  # noqa: SLF001
        return core_for(
            durability=self._rs_durability,  # type: ignore[arg-type]
            runs_db=os.path.join(run_storage.base_dir, "runs.db")
            if isinstance(run_storage, RustRunStorage)
            else None,
            event_log_dir=event_storage.base_dir
            if isinstance(event_storage, RustEventLogStorage)
            else None,
        )

    def dispose(self) -> None:
        """Stock's, then the schedule storage's too when it is the core's: stock's instance leaves
        its schedule storage alone (stock's closes its connections after each call), while the
        core's keeps them (and schedules.db's -wal/-shm) open until disposed."""
        super().dispose()
        schedule_storage = self._schedule_storage
        if isinstance(schedule_storage, SchedulingDomain):
            schedule_storage.dispose()

    # -- schema upgrades -------------------------------------------------------------------------

    def upgrade(self, print_fn: PrintFn | None = None) -> None:
        """Stock's upgrade of every file (`dagster instance migrate`), each storage running
        stock's migrations on its file; then the domains held back for their files' revisions
        are served natively again, as the next process would serve them."""
        super().upgrade(print_fn)
        if self._rs_held:
            self._rs_reselect()

    def _rs_reselect(self) -> None:
        storages = {name: getattr(self, attr) for name, attr in STORAGE_ATTRIBUTES.items()}
        before = dict(storages)
        held = self._rs_hold_back(storages, self._rs_requested)
        live = self._rs_swap(storages, frozenset(self._rs_requested - held.keys()))
        for name, storage in storages.items():
            if storage is not before[name]:
                # The storage a held-back domain had (stock's, over the same file) is
                # disposed by the swap; the new one belongs to this instance from now on.
                storage.register_instance(self)
                setattr(self, STORAGE_ATTRIBUTES[name], storage)
        self._rs_held = held
        self._rs_live = live
        self._rs_core = self._rs_core_of(storages)
        if held:
            _LOG.warning(held_back_message(held))

    # -- configuration -------------------------------------------------------------------------

    @classmethod
    def config_schema(cls) -> Mapping[str, Field]:
        return {
            "rust_domains": Field(
                Noneable(ConfigAny),
                is_required=False,
                description="'all', 'none', or a list of domains to serve from Rust.",
            ),
            "durability": Field(
                Noneable(str),
                is_required=False,
                description="SQLite durability: 'full' (default, as stock) or 'normal'.",
            ),
            "pool_size": Field(
                Noneable(int),
                is_required=False,
                description="PostgreSQL: connections the native core pools per database and"
                " process (default: the core's).",
            ),
        }

    @staticmethod
    def config_defaults(base_dir: str) -> Mapping[str, ConfigurableClassData | None]:
        defaults = dict(InstanceRef.config_defaults(base_dir))
        defaults["storage"] = ConfigurableClassData(
            "dagster_rs.storage",
            "DagsterRsSqliteStorage",
            yaml.dump({"base_dir": base_dir}, default_flow_style=False),
        )
        return defaults

    @staticmethod
    def local_temp(  # type: ignore[override]
        tempdir: str | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> DagsterInstance:
        """A persistent instance of this class in a temporary directory, like stock's."""
        merged = {
            **(overrides or {}),
            "instance_class": {"module": "dagster_rs", "class": "DagsterInstance"},
        }
        instance = create_local_temp_instance(tempdir, merged)
        assert isinstance(instance, DagsterInstance)
        return instance

    # -- what runs where ---------------------------------------------------------------------

    @property
    def rust_domains(self) -> frozenset[str]:
        """The domains whose methods are served by the Rust core in this instance."""
        return self._rs_live

    @property
    def python_domains(self) -> frozenset[str]:
        """The domains still served by stock Dagster's Python code."""
        return frozenset(DOMAINS) - self._rs_live

    @property
    def durability(self) -> str:
        return self._rs_durability

    def info_dict(self) -> Mapping[str, object]:
        info = dict(super().info_dict())
        info["dagster_rs"] = {
            "version": _native.__version__,
            "rust_domains": sorted(self._rs_live),
            "python_domains": [d for d in DOMAINS if d not in self._rs_live],
            "durability": self._rs_durability,
            "pool_size": self._rs_pool_size,
            "sqlite": dict(_native.sqlite_library()),
            "dagster": {
                "version": compat.installed_dagster(),
                "tested_range": compat.TESTED_RANGE,
                "in_range": compat.dagster_in_range(),
                # Methods stock's code serves for how this release behaves (compat.py).
                "left_to_stock": compat.left_to_stock(),
            },
            # Requested domains left to stock's code for their file's revision.
            "held_back": {
                domain: {"path": v.path, "state": v.state, "revision": v.revision}
                for domain, v in sorted(self._rs_held.items())
            },
        }
        return info


def parameter_shapes(signature: inspect.Signature) -> list[tuple[str, str, Any]]:
    """Each parameter's name, kind and default (annotations are documentation: the facade
    spells stock's forward references out)."""
    return [(p.name, p.kind.name, p.default) for p in signature.parameters.values()]


def stock_parameters(init: Callable[..., Any]) -> list[tuple[str, str, Any]]:
    """`init`'s parameters without the facade's additions: what must be stock's."""
    return [p for p in parameter_shapes(inspect.signature(init)) if p[0] not in INIT_ADDITIONS]


def _init_for_any_stock(
    self: DagsterInstance,
    *args: Any,
    rust_domains: str | list[str] | None = None,
    durability: str | None = None,
    **kwargs: Any,
) -> None:
    """`__init__` for a Dagster whose instance takes other parameters than the 1.13 line's
    (one outside `compat.TESTED_RANGE`): whatever stock's signature is, the arguments are bound
    against it, so the instance is built (serving every domain with stock's code)."""
    bound = _STOCK_INIT.bind(self, *args, **kwargs)
    params = dict(bound.arguments)
    params.pop(next(iter(_STOCK_INIT.parameters)))
    extra: dict[str, Any] = {}
    for param in _STOCK_INIT.parameters.values():
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            extra = params.pop(param.name, {})
        elif param.kind is inspect.Parameter.VAR_POSITIONAL:
            raise TypeError(f"stock DagsterInstance.__init__ takes *{param.name}; not supported")
    self._rs_init(params, extra, rust_domains, durability)


def init_matching(stock: inspect.Signature) -> Callable[..., None]:
    """The facade's `__init__` for a stock `__init__` of signature `stock`: the declared one when
    it is stock's parameters plus the facade's, else one that binds to whatever stock takes."""
    if stock_parameters(DagsterInstance.__dict__["__init__"]) == parameter_shapes(stock):
        return DagsterInstance.__dict__["__init__"]
    return _init_for_any_stock


DagsterInstance.__init__ = init_matching(_STOCK_INIT)  # type: ignore[method-assign]
