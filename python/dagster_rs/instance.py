"""`dagster_rs.DagsterInstance`: stock Dagster's instance class, its storage served by Rust.

Point `dagster.yaml` at it and every Dagster process (webserver, daemon, step subprocesses, which
rebuild the instance from its `InstanceRef`) gets this class:

    instance_class:
      module: dagster_rs
      class: DagsterInstance
    rust_domains: all        # or a list of domain names; $DAGSTER_RS_DOMAINS overrides
    durability: full         # full (default, as stock) | normal; $DAGSTER_RS_DURABILITY overrides

It subclasses `dagster.DagsterInstance`, so every public method keeps its signature and every
`isinstance` check in Dagster passes. A live domain's methods reach the native core through the
storage object Dagster itself uses (`instance.run_storage` is a `RustRunStorage`), so Dagster
internals that go to the storage directly and the instance's own methods see one source of truth.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping
from typing import Any

import yaml
from dagster import Any as ConfigAny
from dagster import Field, Noneable
from dagster._core.instance import DagsterInstance as StockDagsterInstance
from dagster._core.instance.factory import create_local_temp_instance
from dagster._core.instance.ref import InstanceRef
from dagster._serdes import ConfigurableClassData

from dagster_rs import _native
from dagster_rs.core import core_for
from dagster_rs.domains import DOMAINS, TABLE, DomainSelectionError, resolve_domains
from dagster_rs.errors import DagsterRsStorageError
from dagster_rs.run_launcher_domain import RunLauncherDomain
from dagster_rs.storage.event_log_storage import RustEventLogStorage
from dagster_rs.storage.run_storage import RustRunStorage
from dagster_rs.storage.swaps import SWAPS

DURABILITY_ENV_VAR = "DAGSTER_RS_DURABILITY"
DURABILITY_MODES = ("full", "normal")

_STOCK_INIT = inspect.signature(StockDagsterInstance.__init__)


def resolve_durability(configured: str | None) -> str:
    value = (os.environ.get(DURABILITY_ENV_VAR) or configured or "full").strip().lower()
    if value not in DURABILITY_MODES:
        raise DomainSelectionError(
            f"durability must be one of {list(DURABILITY_MODES)}, got {value!r}"
        )
    return value


class DagsterInstance(RunLauncherDomain, StockDagsterInstance):
    """Drop-in `dagster.DagsterInstance` whose live domains run in the Rust core."""

    def __init__(
        self,
        *args: Any,
        rust_domains: str | list[str] | None = None,
        durability: str | None = None,
        **kwargs: Any,
    ):
        bound = _STOCK_INIT.bind(self, *args, **kwargs)
        params = bound.arguments
        requested = resolve_domains(rust_domains)
        sqlite_problem = _native.sqlite_library()["problem"]
        if requested and sqlite_problem:
            # The core itself refuses every file too; failing here names the cause up front.
            raise DagsterRsStorageError(
                f"dagster-rs cannot serve {sorted(requested)} in this process: {sqlite_problem}"
            )
        self._rs_durability = resolve_durability(durability)
        self._rs_explicit = rust_domains is not None or bool(os.environ.get("DAGSTER_RS_DOMAINS"))
        live: set[str] = set()
        # Domains with a storage object of their own first: the others live in those.
        for domain in sorted(TABLE, key=lambda d: d.storage is None):
            swap = SWAPS.get(domain.storage or "")
            if swap is None:
                if domain.implemented and domain.name in requested and set(domain.needs) <= live:
                    live.add(domain.name)
                continue
            storage = params[domain.storage]  # type: ignore[index]
            if domain.name in requested:
                rust = swap.to_rust(storage, self._rs_durability, requested)
                if rust is not None:
                    params[domain.storage] = rust  # type: ignore[index]
                    live.add(domain.name)
                elif self._rs_explicit:
                    raise DomainSelectionError(
                        f"the {domain.name} domain runs in Rust only over {swap.needs}; this"
                        f" instance is configured with {type(storage).__name__}. Remove"
                        f" '{domain.name}' from rust_domains / $DAGSTER_RS_DOMAINS to keep it on"
                        " stock Python."
                    )
            elif swap.is_rust(storage):
                # Domain switched off: stock's own storage over the very same files.
                params[domain.storage] = swap.to_stock(storage)  # type: ignore[index]

        self._rs_live = frozenset(live)
        run_storage, event_storage = params["run_storage"], params["event_storage"]
        # The instance's one native handle: the core of the files its Rust domains serve, on
        # the same stores (and connections) as the storage objects above.
        self._rs_core = core_for(
            durability=self._rs_durability,  # type: ignore[arg-type]
            runs_db=os.path.join(run_storage.base_dir, "runs.db")
            if isinstance(run_storage, RustRunStorage)
            else None,
            event_log_dir=event_storage.base_dir
            if isinstance(event_storage, RustEventLogStorage)
            else None,
        )
        params.pop("self")
        extra = params.pop("_kwargs", {})
        super().__init__(**params, **extra)

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
            "sqlite": dict(_native.sqlite_library()),
        }
        return info
