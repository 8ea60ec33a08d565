"""One workload on a stock deployment and on a dagster-rs deployment, read through Dagster's GraphQL.

Each deployment is a DAGSTER_HOME of its own (the dagster-rs one selects `dagster_rs.DagsterInstance`
in its dagster.yaml) with the code location `graphql_defs.py` loaded in process. The workload
(`seed`) is Dagster's own API doing what a user and the daemons do: asset materializations
(`materialize`), job runs (`execute_job`), a failed run, dynamic partitions, schedule and sensor
states started and their ticks written, an asset backfill requested. Stock is seeded first, then
dagster-rs, the same steps in the same order; every id a step creates is recorded under the step's
label, so that results compare once ids are replaced by labels.

Once seeded, a real `dagster-webserver` is started on each home (its own process group, stopped
when the module ends) so that the HTTP tests find it up by the time they run.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from dagster import (
    DagsterInstance,
    RunConfig,
    execute_job,
    materialize,
    reconstructable,
)
from dagster._core.definitions.run_request import InstigatorType
from dagster._core.execution.backfill import PartitionBackfill
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.scheduler.instigation import InstigatorTick, TickData, TickStatus
from dagster._core.storage.tags import (
    REPOSITORY_LABEL_TAG,
    RUN_KEY_TAG,
    SCHEDULE_NAME_TAG,
    SENSOR_NAME_TAG,
)
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from dagster._utils.error import SerializableErrorInfo
from dagster_graphql.schema import create_schema

import dagster_rs
from tests.conftest import KINDS, load_instance, write_home
from tests.graphql import graphql_defs as defs
from tests.graphql.queries import REPOSITORY
from tests.homes import OVERRIDES, clean_env

DEFS_FILE = Path(defs.__file__).resolve()
REPOSITORY_LABEL = f"{REPOSITORY}@{defs.LOCATION}"
SCHEMA = create_schema()

# Both homes: no telemetry files, nothing but the workload in the home.
SETTINGS_YAML = "telemetry:\n  enabled: false\n"

# Fixed instants (2024-01-02T00:00Z + minutes) for what the workload dates itself: tick and
# backfill timestamps compare as they are, not normalized away.
BASE_TS = 1704153600.0

WEBSERVER = str(Path(sys.executable).parent / "dagster-webserver")
# A webserver loads its code location in a code server of its own first: tens of seconds on a
# loaded 2-core machine. Stopping it: SIGINT, then whatever of its group is left is terminated.
WEBSERVER_STARTUP = 120.0
WEBSERVER_STOP = 30.0


@dataclass
class Deployment:
    """A DAGSTER_HOME, its instance and in-process workspace, and what the workload created."""

    kind: str
    home: Path
    instance: DagsterInstance
    workspace: WorkspaceProcessContext
    # actual id -> the label of the workload step that created it (runs, ticks).
    labels: dict[str, str] = field(default_factory=dict)
    webserver: Webserver | None = None

    def query(self, text: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """`text` through the webserver's schema in this process, a fresh request context per
        query (as the webserver makes one per request); the data and the errors' messages."""
        context = self.workspace.create_request_context()
        result = asyncio.run(
            SCHEMA.execute_async(text, context_value=context, variable_values=variables)
        )
        return {
            "data": result.data,
            "errors": [str(e.message) for e in result.errors or []],
        }


@dataclass
class Deployments:
    stock: Deployment
    rust: Deployment
    # Wall-clock window of the whole module: a number in it is a timestamp of the run.
    started: float

    def __iter__(self) -> Iterator[Deployment]:
        return iter((self.stock, self.rust))


def in_process_workspace(instance: DagsterInstance) -> WorkspaceProcessContext:
    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(
            executable_path=sys.executable,
            python_file=str(DEFS_FILE),
            working_directory=str(DEFS_FILE.parent),
        ),
        location_name=defs.LOCATION,
    )
    return WorkspaceProcessContext(instance, InProcessWorkspaceLoadTarget(origin))


# --- the workload -----------------------------------------------------------------------------


def seed(dep: Deployment) -> None:
    inst = dep.instance
    labels = dep.labels

    def record(label: str, run_id: str) -> None:
        labels[run_id] = label

    inst.add_dynamic_partitions(defs.FRUITS_NAME, ["apple", "banana", "cherry"])

    # Daily partitions, two teams; the failing day fails its run.
    for day, team in [
        ("2024-01-01", "sales"),
        ("2024-01-02", "sales"),
        ("2024-01-03", "ops"),
        ("2024-01-04", "sales"),
        (defs.FAILING_DAY, "sales"),
        ("2024-01-02", "ops"),  # a second materialization of a partition
    ]:
        result = materialize(
            [defs.daily_sales],
            instance=inst,
            partition_key=day,
            tags={"team": team},
            raise_on_error=False,
        )
        assert result.success == (day != defs.FAILING_DAY), day
        record(f"daily:{day}:{team}", result.run_id)

    # The check passes, then fails.
    for total in (3, -1):
        result = materialize(
            [defs.summary],
            instance=inst,
            run_config=RunConfig({"summary": defs.SummaryConfig(total=total)}),
            tags={"team": "analytics"},
        )
        record(f"summary:{total}", result.run_id)

    # Dynamic partitions, as a sensor would request them (sensor-like tags, a run key each).
    for fruit in ("apple", "banana"):
        result = materialize(
            [defs.fruit],
            instance=inst,
            partition_key=fruit,
            tags={SENSOR_NAME_TAG: defs.SENSOR, RUN_KEY_TAG: f"fruit-{fruit}", "team": "ops"},
        )
        record(f"fruit:{fruit}", result.run_id)

    # The job: a run for the sensor, a failed run for the schedule.
    job_runs: dict[str, str] = {}
    for name, fail, tags in [
        (
            "sensor",
            False,
            {SENSOR_NAME_TAG: defs.SENSOR, RUN_KEY_TAG: "cursor-1", "team": "ops"},
        ),
        ("schedule", True, {SCHEDULE_NAME_TAG: defs.SCHEDULE, "team": "sales"}),
    ]:
        with execute_job(
            reconstructable(defs.flaky_job),
            instance=inst,
            run_config={"ops": {"flaky": {"config": {"fail": fail}}}},
            tags={**tags, REPOSITORY_LABEL_TAG: REPOSITORY_LABEL},
            raise_on_error=False,
        ) as job_result:
            assert job_result.success != fail
            record(f"job:{name}", job_result.run_id)
            job_runs[name] = job_result.run_id

    # Instigators started, and their ticks as the daemons write them.
    repo = (
        dep.workspace.create_request_context()
        .get_code_location(defs.LOCATION)
        .get_repository(REPOSITORY)
    )
    remote_sensor = repo.get_sensor(defs.SENSOR)
    remote_schedule = repo.get_schedule(defs.SCHEDULE)
    inst.start_sensor(remote_sensor)
    inst.start_schedule(remote_schedule)

    def tick(instigator: Any, kind: InstigatorType, minute: int, label: str, **data: Any) -> None:
        created = inst.create_tick(
            TickData(
                instigator_origin_id=instigator.get_remote_origin_id(),
                instigator_name=instigator.name,
                instigator_type=kind,
                status=TickStatus.STARTED,
                timestamp=BASE_TS + 60 * minute,
                selector_id=instigator.selector_id,
            )
        )
        labels[str(created.tick_id)] = label
        # The tick's own `with_status` dates the end now; the workload's ticks keep fixed times.
        status = data.pop("status")
        done: InstigatorTick = created._replace(
            tick_data=created.tick_data.with_status(
                status, end_timestamp=BASE_TS + 60 * minute + 5, **data
            )
        )
        inst.update_tick(done)

    sensor, schedule = InstigatorType.SENSOR, InstigatorType.SCHEDULE
    tick(remote_sensor, sensor, 1, "tick:sensor:skip", status=TickStatus.SKIPPED,
         skip_reason="no cursor yet")  # fmt: skip
    tick(remote_sensor, sensor, 2, "tick:sensor:run", status=TickStatus.SUCCESS,
         run_ids=[job_runs["sensor"]], run_keys=["cursor-1"], cursor="cursor-1")  # fmt: skip
    tick(remote_sensor, sensor, 3, "tick:sensor:fail", status=TickStatus.FAILURE,
         error=SerializableErrorInfo("sensor evaluation failed", [], "Exception"))  # fmt: skip
    tick(remote_schedule, schedule, 60, "tick:schedule:run", status=TickStatus.SUCCESS,
         run_ids=[job_runs["schedule"]])  # fmt: skip

    inst.add_backfill(
        PartitionBackfill.from_asset_partitions(
            backfill_id="bfdaily",
            asset_graph=dep.workspace.create_request_context().asset_graph,
            partition_names=["2024-01-08", "2024-01-09"],
            asset_selection=[defs.daily_sales.key],
            backfill_timestamp=BASE_TS + 20 * 86400,  # after the partitions it targets
            tags={"team": "sales"},
            dynamic_partitions_store=inst,
            all_partitions=False,
            title="two days",
            description=None,
            run_config=None,
        )
    )


# --- normalization ----------------------------------------------------------------------------

DURATION = re.compile(r"\b\d+(\.\d+)?\s?(ms|s|m|sec|seconds|minutes)\b")
DURATIONS = re.compile(r"<dur>(\s*<dur>)+")
PID = re.compile(r"\b(pid:? ?)\d+")
# A data version: a hash over the run's code version, which is its run id when the asset has none.
HASH = re.compile(r"\b[0-9a-f]{64}\b")
# A number inside a text (an opaque cursor's timestamp); `<time>` if it is an instant of the run.
NUMBER = re.compile(r"\b\d{9,}(\.\d+)?\b")
# Fields whose value is random by design: the compute log manager's file keys.
RANDOM_FIELDS = ("fileKey", "logKey")


def normalizer(dep: Deployment, started: float) -> Any:
    """A function that makes a GraphQL result of `dep` comparable with the other deployment's:
    ids it created become their labels, the home's path `<home>`, a number (or numeric string)
    that is a wall-clock instant of the module's run `<time>`, durations and process ids in
    messages `<dur>`/`<pid>`, data versions `<hashN>` (numbered), compute log file keys. Everything else (storage ids, cursors, partition windows, the
    workload's fixed timestamps) compares as it is."""
    replacements = sorted(
        [(actual, f"<{label}>") for actual, label in dep.labels.items() if len(actual) > 8]
        + [(str(dep.home), "<home>")],
        key=lambda kv: -len(kv[0]),
    )
    ticks = {actual: f"<{label}>" for actual, label in dep.labels.items() if actual.isdigit()}
    # Hashes are numbered in the order they first appear, so that which ones are equal (an
    # asset's data version and its latest materialization's tag) still compares.
    hashes: dict[str, str] = {}

    def hash_label(match: re.Match[str]) -> str:
        return hashes.setdefault(match.group(0), f"<hash{len(hashes)}>")

    def is_now(number: float) -> bool:
        now = time.time() + 60
        lo = started - 60
        return lo <= number <= now or lo * 1000 <= number <= now * 1000

    def text(value: str) -> str:
        for actual, label in replacements:
            if actual in value:
                value = value.replace(actual, label)
        value = HASH.sub(hash_label, value)
        value = NUMBER.sub(lambda m: "<time>" if is_now(float(m.group(0))) else m.group(0), value)
        # "1m 2s" and "59s" are both one duration.
        value = DURATIONS.sub("<dur>", DURATION.sub("<dur>", value))
        return PID.sub(r"\1<pid>", value)

    def walk(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: walk(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, key) for v in value]
        if isinstance(value, bool) or value is None:
            return value
        if isinstance(value, (int, float)):
            return "<time>" if is_now(float(value)) else value
        if isinstance(value, str):
            if key in RANDOM_FIELDS:
                return f"<{key}>"
            if key == "cursor" and (decoded := base64_text(value)) is not None:
                # An opaque cursor (the runs feed's, an event connection's): what it encodes.
                return {"base64": text(decoded)}
            if key == "tickId" and value in ticks:
                return ticks[value]
            try:
                if is_now(float(value)):
                    return "<time>"
            except ValueError:
                pass
            return text(value)
        return value

    return walk


def base64_text(value: str) -> str | None:
    try:
        return base64.b64decode(value, validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return None


# --- the webserver ----------------------------------------------------------------------------


@dataclass
class Webserver:
    home: Path
    root: Path
    proc: subprocess.Popen
    url: str
    log: Path
    # Starts left: the free port it was given may be taken before it binds it.
    retries: int = 2

    def post(self, text: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = json.dumps({"query": text, "variables": variables or {}}).encode()
        request = urllib.request.Request(
            f"{self.url}/graphql", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            payload = json.loads(response.read())
        return {
            "data": payload.get("data"),
            "errors": [e["message"] for e in payload.get("errors") or []],
        }

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-5000:] if self.log.exists() else ""

    def wait_up(self, deadline: float) -> None:
        """Poll `/server_info`, then the workspace, until the code location is loaded."""
        while True:
            if self.proc.poll() is not None:
                if "address already in use" in self.output().lower() and self.retries > 0:
                    self.stop()
                    again = start_webserver(self.home, self.root)
                    self.proc, self.url, self.retries = again.proc, again.url, self.retries - 1
                    continue
                pytest.fail(f"dagster-webserver exited {self.proc.returncode}:\n{self.output()}")
            if time.monotonic() > deadline:
                pytest.fail(f"dagster-webserver not up in time:\n{self.output()}")
            try:
                with urllib.request.urlopen(f"{self.url}/server_info", timeout=5) as response:
                    json.loads(response.read())
                entries = self.post(WORKSPACE_QUERY)["data"]["workspaceOrError"]["locationEntries"]
                if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                    return
            except (urllib.error.URLError, OSError, ValueError, KeyError, TypeError):
                pass
            time.sleep(0.25)

    def stop(self) -> None:
        """Ctrl-C for the webserver (it shuts its code server down), then whatever of its group
        is left is terminated, then killed."""
        pgid = self.proc.pid
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=WEBSERVER_STOP)
        except subprocess.TimeoutExpired:
            _signal_group(pgid, signal.SIGKILL)
            self.proc.wait()
        # Its code server is its child, not this process's: give it the same time to leave the
        # group, then terminate it, then kill it.
        start = time.monotonic()
        while _group_alive(pgid) and time.monotonic() < start + 3 * WEBSERVER_STOP:
            elapsed = time.monotonic() - start
            if elapsed > WEBSERVER_STOP:
                _signal_group(
                    pgid, signal.SIGTERM if elapsed < 2 * WEBSERVER_STOP else signal.SIGKILL
                )
            time.sleep(0.2)


WORKSPACE_QUERY = """
{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }
"""


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _group_alive(pgid: int) -> bool:
    """Whether a process of the group is still running (a zombie is dead: it only waits for
    whoever reaps it)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # /proc/<pid>/stat: pid (comm) state ppid pgrp ...; comm may hold spaces and parens.
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_webserver(home: Path, root: Path) -> Webserver:
    workspace = root / "workspace.yaml"
    workspace.write_text(
        "load_from:\n"
        "  - python_file:\n"
        f"      relative_path: {DEFS_FILE}\n"
        f"      location_name: {defs.LOCATION}\n"
        f"      working_directory: {DEFS_FILE.parent}\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in (*OVERRIDES, "DAGSTER_HOME")}
    env["DAGSTER_HOME"] = str(home)
    env["PYTHONUNBUFFERED"] = "1"
    port = free_port()
    log = root / "webserver.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [WEBSERVER, "-w", str(workspace), "-p", str(port), "-h", "127.0.0.1"],
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Webserver(home, root, proc, f"http://127.0.0.1:{port}", log)


# --- the fixture ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def deployments(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployments]:
    started = time.time()
    root = tmp_path_factory.mktemp("graphql")
    opened: list[Deployment] = []
    with pytest.MonkeyPatch.context() as mp, ExitStack() as stack:
        clean_env(mp)
        for kind in KINDS:
            home = write_home(root / kind / "home", kind, SETTINGS_YAML)
            instance = load_instance(home)
            stack.callback(instance.dispose)
            assert isinstance(instance, dagster_rs.DagsterInstance) == (kind == "rust")
            workspace = stack.enter_context(in_process_workspace(instance))
            dep = Deployment(kind, home, instance, workspace)
            seed(dep)
            opened.append(dep)
        # Both webservers start now and load while the in-process tests run; the HTTP tests
        # wait for them.
        for dep in opened:
            dep.webserver = start_webserver(dep.home, dep.home.parent)
            stack.callback(dep.webserver.stop)
        yield Deployments(opened[0], opened[1], started)
