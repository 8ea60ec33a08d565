"""Build one small DAGSTER_HOME with whichever Dagster release imports here.

Run by `scripts/make_old_homes.py` with the python of an old release's side venv:

    <venv>/bin/python scripts/old_homes_generator.py HOME

It imports only that release's `dagster` (never dagster-rs), sets DAGSTER_HOME=HOME (a fresh
directory), uses the default SQLite storage and writes what a deployment of that release
accumulates: runs of several jobs with tags, statuses, re-executions, asset materializations and
observations (partitioned), asset checks, schedule and sensor states with ticks, backfills,
dynamic partitions, concurrency limits and slots, daemon heartbeats and kvs cursors. Every
feature is guarded on what the release has; HOME/manifest.json says what was written, what the
release does not support, and what failed (with the error), plus each file's alembic revision.

The code runs on Dagster 0.13 to 1.13: names are looked up where each release keeps them, and
keyword arguments are passed only when the release's constructor takes them.
"""

import importlib
import inspect
import json
import os
import sqlite3
import sys
import time
import traceback
from typing import Any

# Fixed instants (UTC) for the rows whose time the generator chooses (ticks, backfills,
# heartbeats): the fixtures then differ between regenerations only where Dagster stamps now.
BASE_TS = 1704067200.0  # 2024-01-01T00:00:00Z
HOUR = 3600.0

MANIFEST: dict[str, Any] = {"features": {}, "runs": {}, "notes": []}


def imp(path: str) -> Any:
    """`dagster._<path>` (1.0+) or `dagster.<path>` (0.x)."""
    last: BaseException | None = None
    for prefix in ("dagster._", "dagster."):
        try:
            return importlib.import_module(prefix + path)
        except (ImportError, AssertionError) as exc:  # 1.x's alias map asserts
            last = exc
    raise ImportError(f"no module {path}: {last}")


def find(candidates: list[tuple[str, str]]) -> Any:
    """The first (module path, class name) that exists."""
    for mod, name in candidates:
        try:
            m = imp(mod)
        except ImportError:
            continue
        if hasattr(m, name):
            return getattr(m, name)
    raise ImportError(f"none of {candidates}")


def kwargs_for(fn: Any, **kwargs: Any) -> dict[str, Any]:
    """The subset of kwargs that fn accepts (constructors grew parameters over the releases)."""
    target = fn.__new__ if isinstance(fn, type) else fn
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return kwargs
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return kwargs
    return {k: v for k, v in kwargs.items() if k in params}


def build(cls: Any, **kwargs: Any) -> Any:
    return cls(**kwargs_for(cls, **kwargs))


def make(cls: Any, *args: Any) -> Any:
    """cls(*args); for Dagster's keyword-only records, the fields in declaration order."""
    try:
        return cls(*args)
    except TypeError:
        names = list(getattr(cls, "__annotations__", {}))[: len(args)]
        return cls(**dict(zip(names, args, strict=True)))


def feature(name: str):
    """Run a feature; record "ok", "unsupported: why" or "error: ..." in the manifest."""

    def wrap(fn):
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                out = fn(*args, **kwargs)
            except Unsupported as exc:
                MANIFEST["features"][name] = f"unsupported: {exc}"
                return None
            except Exception as exc:  # noqa: BLE001 - recorded, the home is still useful
                MANIFEST["features"][name] = f"error: {type(exc).__name__}: {exc}"
                traceback.print_exc()
                return None
            MANIFEST["features"][name] = "ok" if out is None else out
            return out

        return run

    return wrap


class Unsupported(Exception):
    pass


def need(cond: Any, why: str) -> None:
    if not cond:
        raise Unsupported(why)


def run_status(name: str) -> Any:
    import dagster

    cls = (
        getattr(dagster, "DagsterRunStatus", None)
        or imp("core.storage.pipeline_run").PipelineRunStatus
    )
    return getattr(cls, name)


# --------------------------------------------------------------------------------------------
# Definitions (module level so that `reconstructable` finds the jobs when it re-imports this
# file for re-execution).

import dagster  # noqa: E402
from dagster import In, Nothing, op  # noqa: E402

VERSION = dagster.__version__
HAS_JOB = hasattr(dagster, "job")


def _op_config(context: Any) -> Any:
    return getattr(context, "op_config", None) or context.solid_config


def _materialization(key: str, partition: str | None, rows: int) -> Any:
    try:
        return dagster.AssetMaterialization(
            asset_key=key, partition=partition, metadata={"rows": rows}
        )
    except TypeError:
        return dagster.AssetMaterialization(asset_key=key, partition=partition)


def _observation(key: str, partition: str | None, value: int) -> Any:
    try:
        return dagster.AssetObservation(
            asset_key=key, partition=partition, metadata={"seen": value}
        )
    except TypeError:
        return dagster.AssetObservation(asset_key=key, partition=partition)


# The ops carry no annotations: old releases resolve Dagster types from them.
@op
def extract():
    return 3


@op
def transform(n):
    return n * 2


@op
def load(n):
    return None


@op(config_schema={"fail": bool})
def maybe_fail(context):
    if _op_config(context)["fail"]:
        raise Exception("maybe_fail was told to fail")
    return 1


@op
def after_fail(n):
    return n + 1


@op(config_schema={"partition": str, "observe": bool})
def report_tables(context):  # type: ignore[no-untyped-def]
    """Materializations (and observations) reported by an op, as every release can."""
    cfg = _op_config(context)
    yield _materialization("legacy_table", cfg["partition"], 10)
    yield _materialization("legacy_summary", None, 1)
    if cfg["observe"] and hasattr(dagster, "AssetObservation"):
        yield _observation("legacy_table", cfg["partition"], 7)
        yield _observation("external_feed", None, 42)
    yield dagster.Output(None)


@op(ins={"start": In(Nothing)})
def noop():
    return None


if HAS_JOB:
    from dagster import in_process_executor, job

    @job(executor_def=in_process_executor)
    def etl():
        load(transform(extract()))

    @job(executor_def=in_process_executor)
    def flaky():
        after_fail(maybe_fail())

    @job(executor_def=in_process_executor)
    def reporting():
        noop(report_tables())


# --------------------------------------------------------------------------------------------


class Gen:
    def __init__(self, instance: Any) -> None:
        self.instance = instance
        self.run_ids: dict[str, list[str]] = {}

    def note(self, group: str, run_id: str | None) -> None:
        if run_id:
            self.run_ids.setdefault(group, []).append(run_id)

    # -- execution ------------------------------------------------------------------------
    def execute(self, job_def: Any, tags: dict[str, str], run_config: dict | None = None) -> str:
        """Run job_def in this process with tags; its run id (failures do not raise)."""
        run_config = run_config or {}
        params = inspect.signature(job_def.execute_in_process).parameters
        if "tags" in params:
            res = job_def.execute_in_process(
                instance=self.instance, tags=tags, run_config=run_config, raise_on_error=False
            )
        elif hasattr(dagster, "execute_job"):
            with dagster.execute_job(
                dagster.reconstructable(job_def),
                instance=self.instance,
                run_config=run_config,
                tags=tags,
                raise_on_error=False,
            ) as res:
                pass
        else:
            res = dagster.execute_pipeline(
                job_def,
                run_config=run_config,
                tags=tags,
                instance=self.instance,
                raise_on_error=False,
            )
        return res.run_id

    def materialize(self, assets: list, **kwargs: Any) -> str:
        """dagster.materialize with the options the release has; a failing run does not raise."""
        args = kwargs_for(
            dagster.materialize, instance=self.instance, raise_on_error=False, **kwargs
        )
        if "raise_on_error" in args:
            return dagster.materialize(assets, **args).run_id
        before = {r.run_id for r in self.instance.get_runs()}
        try:
            return dagster.materialize(assets, **args).run_id
        except Exception:
            # Releases without raise_on_error raise the step's failure: the run exists.
            new = [r.run_id for r in self.instance.get_runs() if r.run_id not in before]
            if len(new) != 1:
                raise
            return new[0]

    @feature("runs: etl with tags (shared, rare, several per run, partition, schedule)")
    def etl_runs(self) -> str:
        need(HAS_JOB, "no @job")
        for i in range(6):
            tags = {
                "team": "data",  # shared by almost every run
                "env": "prod" if i % 3 else "dev",
                "owner": f"owner{i % 2}",
                "dagster/partition": f"2024-01-0{i + 1}",
                "dagster/partition_set": "etl_partition_set",
            }
            if i == 4:
                tags["priority"] = "high"  # rare
            if i >= 4:
                tags["dagster/schedule_name"] = "daily_etl"
            # Three are executed (events, a run shard each); three only added, as a launcher
            # does: every run-shard costs each `instance migrate` of the suite an alembic pass.
            if i < 3:
                self.note("etl", self.execute(etl, tags))
            else:
                self.note("etl", self.add_run("etl", "SUCCESS", tags))
        return "ok: 6 runs (3 executed)"

    @feature("runs: failures and re-executions (run groups)")
    def flaky_runs(self) -> str:
        need(HAS_JOB, "no @job")
        fail_cfg = {"ops": {"maybe_fail": {"config": {"fail": True}}}}
        ok_cfg = {"ops": {"maybe_fail": {"config": {"fail": False}}}}
        root = self.execute(flaky, {"team": "data", "attempt": "first"}, fail_cfg)
        assert self.instance.get_run_by_id(root).status == run_status("FAILURE")
        self.note("flaky_failed", root)
        self.note("flaky_ok", self.add_run("flaky", "SUCCESS", {"team": "ml"}))
        # A chain of two retries from the failure (the first retry fails again): a run group
        # of three.
        parent = root
        for cfg in (fail_cfg, ok_cfg):
            parent = self.reexecute(parent, root, cfg)
            self.note("reexecution", parent)
        return "ok: 2 runs (1 executed), 2 re-executions"

    def reexecute(self, parent_run_id: str, root_run_id: str, run_config: dict) -> str:
        # The run-group tags a re-execution launched from the UI carries (in-process
        # re-execution stopped adding them in later releases; stock groups runs by them).
        tags = {
            "team": "data",
            "attempt": "retry",
            "dagster/parent_run_id": parent_run_id,
            "dagster/root_run_id": root_run_id,
        }
        if hasattr(dagster, "ReexecutionOptions") and hasattr(dagster, "execute_job"):
            opts = dagster.ReexecutionOptions.from_failure(parent_run_id, self.instance)
            with dagster.execute_job(
                dagster.reconstructable(flaky),
                instance=self.instance,
                run_config=run_config,
                tags=tags,
                reexecution_options=opts,
                raise_on_error=False,
            ) as res:
                return res.run_id
        if hasattr(dagster, "reexecute_pipeline"):
            res = dagster.reexecute_pipeline(
                flaky,
                parent_run_id=parent_run_id,
                run_config=run_config,
                tags=tags,
                instance=self.instance,
                raise_on_error=False,
            )
            return res.run_id
        raise Unsupported("no re-execution API")

    @feature("asset events reported by ops (materializations, observations, partitions)")
    def reported_assets(self) -> str:
        need(HAS_JOB, "no @job")
        for i, part in enumerate(["2024-01-01", "2024-01-02"]):
            cfg = {"ops": {"report_tables": {"config": {"partition": part, "observe": i % 2 == 0}}}}
            self.note("reporting", self.execute(reporting, {"team": "data", "kind": "report"}, cfg))
        return "ok: 2 runs"

    # -- software-defined assets -----------------------------------------------------------
    @feature("asset materializations (partitioned @asset, materialize)")
    def sda(self) -> str:
        need(hasattr(dagster, "materialize"), "no materialize")
        from dagster import DailyPartitionsDefinition, StaticPartitionsDefinition, asset

        daily = DailyPartitionsDefinition(start_date="2024-01-01")
        regions = StaticPartitionsDefinition(["eu", "us", "apac"])

        @asset(partitions_def=daily)
        def daily_sales(context):  # type: ignore[no-untyped-def]
            key = context.partition_key if hasattr(context, "partition_key") else None
            if key == "2024-01-04":
                raise Exception("no sales data for 2024-01-04")
            return 1

        @asset(partitions_def=regions)
        def regional(context):  # type: ignore[no-untyped-def]
            return 2

        @asset
        def raw_events(context):  # type: ignore[no-untyped-def]
            if hasattr(dagster, "AssetObservation") and hasattr(context, "log_event"):
                context.log_event(_observation("raw_events", None, 5))
            return 3

        n = 0
        for part in ["2024-01-01", "2024-01-02", "2024-01-02", "2024-01-04"]:
            self.note(
                "daily_sales",
                self.materialize([daily_sales], partition_key=part, tags={"team": "data"}),
            )
            n += 1
        self.note("regional", self.materialize([regional], partition_key="eu"))
        n += 1
        self.note("raw_events", self.materialize([raw_events], tags={"team": "data"}))
        n += 1
        return f"ok: {n} runs"

    @feature("dynamic partitions (+ a dynamically partitioned asset)")
    def dynamic(self) -> str:
        need(hasattr(self.instance, "add_dynamic_partitions"), "no add_dynamic_partitions")
        self.instance.add_dynamic_partitions("customers", ["acme", "globex", "initech"])
        self.instance.add_dynamic_partitions("regions_dyn", ["north", "south"])
        if hasattr(self.instance, "delete_dynamic_partition"):
            self.instance.delete_dynamic_partition("regions_dyn", "south")
        from dagster import DynamicPartitionsDefinition, asset

        @asset(partitions_def=DynamicPartitionsDefinition(name="customers"))
        def customer_report(context):  # type: ignore[no-untyped-def]
            return 1

        self.note("customer_report", self.materialize([customer_report], partition_key="acme"))
        return "ok: 2 definitions, 1 run"

    @feature("asset checks")
    def checks(self) -> str:
        need(hasattr(dagster, "AssetCheckSpec"), "no asset checks")
        from dagster import AssetCheckResult, AssetCheckSpec, Output, asset

        state = {"passed": True}

        # check_specs on the asset: what every release with checks can materialize (1.5's
        # `materialize` does not take an @asset_check definition).
        need("check_specs" in inspect.signature(asset).parameters, "no @asset(check_specs=...)")
        spec = build(
            AssetCheckSpec, name="not_empty", asset="checked_table", asset_key="checked_table"
        )

        @asset(check_specs=[spec])
        def checked_table():  # type: ignore[no-untyped-def]
            yield Output(1)
            yield AssetCheckResult(
                check_name="not_empty", passed=state["passed"], metadata={"rows": 3}
            )

        for passed in (True, False):
            state["passed"] = passed
            self.note("checks", self.materialize([checked_table]))
        return "ok: 2 runs (passed, failed)"

    # -- runs made directly (statuses a finished in-process run cannot have) -----------------
    def add_run(self, job_name: str, status: str, tags: dict[str, str], **extra: Any) -> str:
        """A run as a launcher or the daemon adds it (with its code origin; no snapshot)."""
        cls = getattr(dagster, "DagsterRun", None) or dagster.PipelineRun
        params = inspect.signature(cls.__new__).parameters
        name_kw = "job_name" if "job_name" in params else "pipeline_name"
        repo, _, _, job_cls = self.origins()
        origin = make(job_cls, repo, job_name)
        run = build(
            cls,
            **{name_kw: job_name},
            run_config={},
            status=run_status(status),
            tags=tags,
            external_pipeline_origin=origin,
            external_job_origin=origin,
            remote_job_origin=origin,
            **extra,
        )
        self.instance.add_run(run)
        return run.run_id

    def report(self, run_id: str, event_name: str) -> None:
        from_events = imp("core.events")
        etype = getattr(from_events.DagsterEventType, event_name)
        run = self.instance.get_run_by_id(run_id)
        name = getattr(run, "job_name", None) or run.pipeline_name
        event = from_events.DagsterEvent(etype.value, name)
        if hasattr(self.instance, "report_dagster_event"):
            self.instance.report_dagster_event(event, run_id=run_id)
            return
        # 0.x: what its run coordinator did.
        entry_cls = imp("core.events.log").EventLogEntry
        name_kw = (
            "pipeline_name"
            if "pipeline_name" in kwargs_for(entry_cls, pipeline_name=1)
            else "job_name"
        )
        entry = build(
            entry_cls,
            user_message="",
            message="",
            level=20,
            **{name_kw: name},
            run_id=run_id,
            error_info=None,
            timestamp=time.time(),
            dagster_event=event,
        )
        self.instance.handle_new_event(entry)

    @feature("runs: queued, not started, started, canceled, canceling")
    def status_runs(self) -> str:
        # One run of each status gets the events that took it there (a run shard); the others
        # are only rows.
        for i in range(3):
            rid = self.add_run("etl", "QUEUED", {"team": "data", "queue": "default", "q": str(i)})
            if i == 0:
                name = (
                    "RUN_ENQUEUED"
                    if hasattr(imp("core.events").DagsterEventType, "RUN_ENQUEUED")
                    else "PIPELINE_ENQUEUED"
                )
                self.report(rid, name)
            self.note("queued", rid)
        self.note("not_started", self.add_run("etl", "NOT_STARTED", {"team": "data"}))
        self.note("started", self.add_run("flaky", "STARTED", {"team": "ml"}))
        rid = self.add_run("etl", "STARTED", {"team": "data", "cancel": "0"})
        self.instance.report_run_canceled(self.instance.get_run_by_id(rid))
        self.note("canceled", rid)
        self.note("canceled", self.add_run("etl", "CANCELED", {"team": "data", "cancel": "1"}))
        if hasattr(run_status("STARTED").__class__, "CANCELING"):
            self.note("canceling", self.add_run("etl", "CANCELING", {"team": "data"}))
        return "ok"

    @feature("runs: sensor runs with unique run keys")
    def sensor_runs(self) -> str:
        for i in range(4):
            tags = {
                "dagster/sensor_name": "file_sensor",
                "dagster/run_key": f"file-{i:03d}.csv",
                "team": "data",
            }
            rid = self.add_run("etl", "SUCCESS" if i != 2 else "FAILURE", tags)
            self.note("sensor", rid)
        return "ok: 4 runs"

    # -- scheduling ---------------------------------------------------------------------------
    def origins(self) -> tuple[Any, Any, Any, Any]:
        loc_cls = find(
            [
                ("core.remote_origin", "RegisteredCodeLocationOrigin"),
                ("core.remote_representation.origin", "RegisteredCodeLocationOrigin"),
                ("core.host_representation.origin", "RegisteredCodeLocationOrigin"),
                ("core.host_representation.origin", "RegisteredRepositoryLocationOrigin"),
            ]
        )
        repo_cls = find(
            [
                ("core.remote_origin", "RemoteRepositoryOrigin"),
                ("core.remote_representation.origin", "RemoteRepositoryOrigin"),
                ("core.host_representation.origin", "ExternalRepositoryOrigin"),
            ]
        )
        inst_cls = find(
            [
                ("core.remote_origin", "RemoteInstigatorOrigin"),
                ("core.remote_representation.origin", "RemoteInstigatorOrigin"),
                ("core.host_representation.origin", "ExternalInstigatorOrigin"),
                ("core.host_representation.origin", "ExternalJobOrigin"),
            ]
        )
        pset_cls = find(
            [
                ("core.remote_origin", "RemotePartitionSetOrigin"),
                ("core.remote_representation.origin", "RemotePartitionSetOrigin"),
                ("core.host_representation.origin", "ExternalPartitionSetOrigin"),
            ]
        )
        job_cls = find(
            [
                ("core.remote_origin", "RemoteJobOrigin"),
                ("core.remote_representation.origin", "RemoteJobOrigin"),
                # Before ExternalPipelineOrigin's rename, ExternalJobOrigin named instigators.
                ("core.host_representation.origin", "ExternalPipelineOrigin"),
                ("core.host_representation.origin", "ExternalJobOrigin"),
            ]
        )
        repo = make(repo_cls, make(loc_cls, "old_home_location"), "old_home_repo")
        return repo, inst_cls, pset_cls, job_cls

    @feature("instigator states and ticks (schedule storage API)")
    def scheduling(self) -> str:
        inst_mod = imp("core.scheduler.instigation")
        need(hasattr(inst_mod, "InstigatorState"), "no InstigatorState")
        InstigatorType = find([("core.definitions.run_request", "InstigatorType")])
        S = inst_mod
        storage = self.instance.schedule_storage
        repo, inst_cls, _, _ = self.origins()
        err_cls = find([("utils.error", "SerializableErrorInfo")])
        ticks = 0
        sensor_runs = self.run_ids.get("sensor", [])
        specs = [
            ("daily_etl", InstigatorType.SCHEDULE, "RUNNING"),
            ("hourly_etl", InstigatorType.SCHEDULE, "STOPPED"),
            ("file_sensor", InstigatorType.SENSOR, "RUNNING"),
            ("asset_sensor", InstigatorType.SENSOR, "STOPPED"),
        ]
        for name, itype, status in specs:
            origin = make(inst_cls, repo, name)
            if itype == InstigatorType.SCHEDULE:
                data = build(
                    S.ScheduleInstigatorData, cron_schedule="0 0 * * *", start_timestamp=BASE_TS
                )
            else:
                data = build(
                    S.SensorInstigatorData,
                    last_tick_timestamp=BASE_TS + 10 * HOUR,
                    last_run_key="file-003.csv" if name == "file_sensor" else None,
                    min_interval=30,
                    cursor="cursor-7" if name == "file_sensor" else None,
                )
            state = S.InstigatorState(origin, itype, getattr(S.InstigatorStatus, status), data)
            (getattr(storage, "add_instigator_state", None) or storage.add_job_state)(state)
            selector_id = None
            if hasattr(origin, "get_selector"):
                selector_id = origin.get_selector().get_id()
            n = 12 if status == "RUNNING" else 3
            for i in range(n):
                if i % 4 == 3:
                    tstatus, extra = "SKIPPED", {"skip_reason": "nothing to do"}
                elif i == 5:
                    tstatus = "FAILURE"
                    extra = {
                        "error": err_cls(
                            "tick failed", ["Traceback (most recent call last):\n"], "Exception"
                        )
                    }
                else:
                    tstatus, extra = "SUCCESS", {}
                run_ids = []
                run_keys = []
                if tstatus == "SUCCESS" and name == "file_sensor" and sensor_runs:
                    rid = sensor_runs[i % len(sensor_runs)]
                    run_ids = [rid]
                    run_keys = [f"file-{i % len(sensor_runs):03d}.csv"]
                elif tstatus == "SUCCESS" and name == "daily_etl" and self.run_ids.get("etl"):
                    run_ids = [self.run_ids["etl"][4 + (i % 2)]]
                tick_data = build(
                    S.TickData,
                    instigator_origin_id=origin.get_id(),
                    instigator_name=name,
                    instigator_type=itype,
                    job_origin_id=origin.get_id(),  # 0.13's names
                    job_name=name,
                    job_type=itype,
                    status=S.TickStatus.STARTED,
                    timestamp=BASE_TS + i * HOUR + (0.5 if itype == InstigatorType.SENSOR else 0),
                    run_ids=[],
                    run_keys=run_keys,
                    cursor=f"c{i}" if itype == InstigatorType.SENSOR else None,
                    selector_id=selector_id,
                )
                tick = (getattr(storage, "create_tick", None) or storage.create_job_tick)(tick_data)
                # Most ticks are then updated as the daemon does; the newest stays STARTED.
                if i < n - 1:
                    data_field = tick._fields[1]  # tick_data (0.13: job_tick_data)
                    new_data = getattr(tick, data_field)._replace(
                        status=getattr(S.TickStatus, tstatus), run_ids=run_ids, **extra
                    )
                    if "end_timestamp" in new_data._fields:
                        new_data = new_data._replace(end_timestamp=tick_data.timestamp + 2.0)
                    update = getattr(storage, "update_tick", None) or storage.update_job_tick
                    update(tick._replace(**{data_field: new_data}))
                ticks += 1
        return f"ok: 4 instigators, {ticks} ticks"

    @feature("backfills (job backfills; runs tagged with them)")
    def backfills(self) -> str:
        bmod = imp("core.execution.backfill")
        PartitionBackfill, BulkActionStatus = bmod.PartitionBackfill, bmod.BulkActionStatus
        repo, _, pset_cls, _ = self.origins()
        origin = make(pset_cls, repo, "etl_partition_set")
        statuses = ["COMPLETED", "REQUESTED", "FAILED", "CANCELED", "COMPLETED"]
        made = 0
        for i, status in enumerate(statuses):
            if not hasattr(BulkActionStatus, status):
                status = "COMPLETED" if hasattr(BulkActionStatus, "COMPLETED") else "REQUESTED"
            bid = f"bf{i:04d}ab"
            parts = [f"2024-02-0{j + 1}" for j in range(3)]
            tags = {"team": "data"} if i % 2 == 0 else {"team": "ml", "purpose": "reprocess"}
            backfill = build(
                PartitionBackfill,
                backfill_id=bid,
                partition_set_origin=origin,
                status=getattr(BulkActionStatus, status),
                partition_names=parts,
                from_failure=False,
                reexecution_steps=[],
                tags=tags,
                backfill_timestamp=BASE_TS + i * 86400.0,
                last_submitted_partition_name=parts[-1] if status != "REQUESTED" else None,
                asset_selection=None,
            )
            self.instance.add_backfill(backfill)
            made += 1
            if i < 3:
                for j, part in enumerate(parts[:2]):
                    rtags = {
                        "dagster/backfill": bid,
                        "dagster/partition": part,
                        "dagster/partition_set": "etl_partition_set",
                        "team": tags["team"],
                    }
                    rid = self.add_run("etl", "SUCCESS" if j == 0 else "FAILURE", rtags)
                    self.note("backfill", rid)
        return f"ok: {made} backfills"

    # -- the event log's index shard ----------------------------------------------------------
    @feature("concurrency limits, slots and pending steps")
    def concurrency(self) -> str:
        ev = self.instance.event_log_storage
        need(hasattr(ev, "set_concurrency_slots"), "no set_concurrency_slots")
        if hasattr(ev, "supports_global_concurrency_limits"):
            need(ev.supports_global_concurrency_limits, "storage does not support them")
        ev.set_concurrency_slots("database", 2)
        ev.set_concurrency_slots("api", 1)
        ev.set_concurrency_slots("unused", 3)
        holder = self.run_ids.get("started", ["run-holder"])[0]
        claims = []
        for key, step, prio in [
            ("database", "load", 0),
            ("database", "transform", 0),
            ("database", "extract", 5),  # waits: pending
            ("api", "fetch", 0),
            ("api", "push", 1),  # waits: pending
        ]:
            res = ev.claim_concurrency_slot(key, holder, step, prio)
            claims.append(f"{key}/{step}:{getattr(res, 'slot_status', res)}")
        if hasattr(ev, "free_concurrency_slot_for_step"):
            ev.free_concurrency_slot_for_step(holder, "transform")
        return "ok: " + ", ".join(str(c) for c in claims)

    @feature("pool default limits (using_default_limit)")
    def pool_default(self) -> str:
        ev = self.instance.event_log_storage
        need(hasattr(ev, "initialize_concurrency_limit_to_default"), "no default pool limits")
        ok = ev.initialize_concurrency_limit_to_default("default_pool")
        return f"ok: {ok}"

    # -- run storage's config tables ----------------------------------------------------------
    @feature("daemon heartbeats")
    def heartbeats(self) -> str:
        DaemonHeartbeat = find([("daemon.types", "DaemonHeartbeat")])
        for i, dtype in enumerate(["SCHEDULER", "SENSOR", "BACKFILL", "QUEUED_RUN_COORDINATOR"]):
            hb = DaemonHeartbeat(BASE_TS + 100 + i, dtype, f"daemon-{i}", None)
            self.instance.add_daemon_heartbeat(hb)
        return "ok: 4"

    @feature("kvs cursors")
    def cursors(self) -> str:
        rs = self.instance.run_storage
        values = {"EVENT_LOG_CONSUMER_CURSOR": "42", "ASSET_DAEMON_CURSOR": '{"evaluation_id": 3}'}
        if hasattr(rs, "set_cursor_values"):
            rs.set_cursor_values(values)
            return "ok: set_cursor_values"
        need(hasattr(rs, "kvs_set"), "no kvs")
        rs.kvs_set(values)
        return "ok: kvs_set"


# --------------------------------------------------------------------------------------------


def db_files(home: str) -> list[str]:
    out = []
    for sub in ("history", "schedules"):
        for root, _, files in os.walk(os.path.join(home, sub)):
            for f in files:
                if f.endswith(".db"):
                    out.append(os.path.relpath(os.path.join(root, f), home))
    return sorted(out)


def close_files(home: str) -> dict[str, Any]:
    """Checkpoint every file's WAL into it and describe the files for the manifest."""
    files: dict[str, Any] = {}
    for rel in db_files(home):
        path = os.path.join(home, rel)
        conn = sqlite3.connect(path)
        try:
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            if mode == "wal":
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            try:
                revs = sorted(r[0] for r in conn.execute("SELECT version_num FROM alembic_version"))
            except sqlite3.OperationalError:
                revs = None
            tables = sorted(
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            )
        finally:
            conn.close()
        for suffix in ("-wal", "-shm"):
            if os.path.exists(path + suffix):
                raise RuntimeError(f"{rel}{suffix} left after closing")
        files[rel] = {"alembic": revs, "journal_mode": mode, "tables": tables}
    return files


def summarize(instance: Any, gen: Gen) -> dict[str, Any]:
    runs = instance.get_runs()
    by_status: dict[str, int] = {}
    for r in runs:
        by_status[r.status.value] = by_status.get(r.status.value, 0) + 1
    out: dict[str, Any] = {
        "runs": len(runs),
        "by_status": dict(sorted(by_status.items())),
        # The run ids of each group the generator made (tests pick runs of a kind from here).
        "run_ids": {k: list(v) for k, v in sorted(gen.run_ids.items())},
    }
    try:
        out["asset_keys"] = sorted("/".join(k.path) for k in instance.all_asset_keys())
    except Exception as exc:  # noqa: BLE001
        out["asset_keys"] = f"error: {exc}"
    try:
        out["backfills"] = len(instance.get_backfills())
    except Exception as exc:  # noqa: BLE001
        out["backfills"] = f"error: {exc}"
    return out


def main() -> None:
    home = os.path.abspath(sys.argv[1])
    os.makedirs(home, exist_ok=True)
    with open(os.path.join(home, "dagster.yaml"), "w") as f:
        f.write("telemetry:\n  enabled: false\n")
    os.environ["DAGSTER_HOME"] = home
    from dagster import DagsterInstance

    instance = DagsterInstance.get()
    gen = Gen(instance)
    started = time.time()
    gen.etl_runs()
    gen.flaky_runs()
    gen.reported_assets()
    gen.sda()
    gen.dynamic()
    gen.checks()
    gen.status_runs()
    gen.sensor_runs()
    gen.scheduling()
    gen.backfills()
    gen.concurrency()
    gen.pool_default()
    gen.heartbeats()
    gen.cursors()
    MANIFEST["contents"] = summarize(instance, gen)
    instance.dispose()
    MANIFEST["dagster_version"] = VERSION
    MANIFEST["python"] = sys.version.split()[0]
    MANIFEST["seconds"] = round(time.time() - started, 1)
    MANIFEST["files"] = close_files(home)
    with open(os.path.join(home, "manifest.json"), "w") as f:
        json.dump(MANIFEST, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
