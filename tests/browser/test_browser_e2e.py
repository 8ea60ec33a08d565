"""The webserver on dagster-rs, in a real browser.

`dagster dev` (webserver and daemon, stock Dagster's defaults: the queued run coordinator, the
default run launcher) runs on a DAGSTER_HOME whose dagster.yaml selects `dagster_rs.DagsterInstance`
and serves `browser_defs.py`. Headless Chromium, driven by Playwright, launches a run from a job's
asset graph ("Materialize all") and watches its run page update while it runs; then reads the
asset pages (the materializations, the partitions the sensor's run materialized) and the sensor's
page (its ticks, new ones appearing live) and the deployment pages (the webserver's instance
config, the daemons). The test then reads the home itself: the webserver's and the daemon's
instances are dagster-rs ones with every implemented domain live, and they hold what the UI
showed. Finally `dagster dev` is stopped and nothing of it may be left running.

The tests run in file order on one deployment: the run the first launches is what the others read.
Screenshots of each checkpoint go to the artifacts directory (see conftest.py).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterEventType, DagsterInstance
from dagster._core.instance.ref import InstanceRef
from dagster._core.scheduler.instigation import InstigatorTick, TickStatus
from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus
from dagster._core.storage.tags import PARTITION_NAME_TAG, SENSOR_NAME_TAG
from dagster._serdes import deserialize_value
from playwright.sync_api import Locator, Page, expect

import dagster_rs
from dagster_rs.domains import IMPLEMENTED
from tests.browser import browser_defs as defs
from tests.browser.conftest import SCREENSHOTS
from tests.browser.dev_process import DevServer
from tests.daemon.daemon_process import _group_members
from tests.processes import wait_for

# How long the UI gets to show what the instance has: the webserver polls every 2 seconds, the
# run worker takes seconds to start on a loaded machine.
SHOW_TIMEOUT_MS = 90_000
# How long the daemon gets for what the test waits for in the instance.
DAEMON_TIMEOUT = 150.0
# Sensor ticks the automation test wants on the page: the requesting one and skipped ones.
SKIPPED_TICKS = 2
# The class the run worker logs it rebuilt from the run's InstanceRef.
RUST_CLASS = f"{dagster_rs.DagsterInstance.__module__}.{dagster_rs.DagsterInstance.__qualname__}"
# The daemons `dagster dev` runs whose work the test reads.
DAEMONS = ("SENSOR", "SCHEDULER", "QUEUED_RUN_COORDINATOR")


@pytest.fixture(scope="module")
def instance(dev: DevServer) -> Iterator[DagsterInstance]:
    """The home opened by its dagster.yaml (`DagsterInstance.get()` on DAGSTER_HOME), in the test
    process, while the webserver and the daemon run on it."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DAGSTER_HOME", str(dev.home))
        inst = DagsterInstance.get()
    try:
        yield inst
    finally:
        inst.dispose()


def shot(page: Page, artifacts: Path, name: str) -> None:
    assert name in SCREENSHOTS, f"{name} is not in conftest.SCREENSHOTS (cleared before a run)"
    path = artifacts / name
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")


def ui_run_id(dev: DevServer) -> str:
    if dev.ui_run_id is None:
        pytest.fail("no run was launched from the UI: test_run_page_live failed or did not run")
    return dev.ui_run_id


def text_of(where: Page | Locator) -> str:
    """The visible text of a page or element; dates may hold narrow or non-breaking spaces
    (ICU's "7:20 AM"), made plain."""
    locator = where.locator("body") if isinstance(where, Page) else where
    return re.sub(r"[\u202f\u00a0]", " ", locator.inner_text())


def wait_text(
    where: Page | Locator, predicate: Callable[[str], bool], what: str, timeout: float
) -> str:
    """Wait, without reloading, until the text of `where` satisfies `predicate`; return it."""
    deadline = time.monotonic() + timeout
    while True:
        text = text_of(where)
        if predicate(text):
            return text
        if time.monotonic() > deadline:
            pytest.fail(f"the page never showed {what} within {timeout:.0f}s:\n{text[-3000:]}")
        (where if isinstance(where, Page) else where.page).wait_for_timeout(500)


def tick_time(tick: InstigatorTick) -> str:
    """A tick's timestamp as the tick table renders it in en-US, UTC: `Dec 2, 7:20:12 AM`."""
    t = datetime.fromtimestamp(tick.timestamp, tz=timezone.utc)
    hour = t.hour % 12 or 12
    return f"{t:%b} {t.day}, {hour}:{t:%M:%S} {'AM' if t.hour < 12 else 'PM'}"


def sensor_ticks(inst: DagsterInstance) -> list[InstigatorTick]:
    states = {s.instigator_name: s for s in inst.all_instigator_state()}
    state = states.get(defs.SENSOR)
    if state is None:
        return []
    return list(inst.get_ticks(state.instigator_origin_id, state.selector_id))


def sensor_run(inst: DagsterInstance) -> DagsterRun | None:
    runs = [r for r in inst.get_runs() if r.tags.get(SENSOR_NAME_TAG) == defs.SENSOR]
    assert len(runs) <= 1, [r.run_id for r in runs]
    return runs[0] if runs else None


def tick_table(page: Page) -> Locator:
    """The sensor page's table of ticks (the page's header is a table too)."""
    return page.locator("table", has=page.get_by_text("Timestamp", exact=True))


def mark_loaded(page: Page) -> None:
    """Mark the loaded document: a reload would lose the mark (`assert_not_reloaded`)."""
    page.evaluate("window.__browserE2eMark = true")


def assert_not_reloaded(page: Page) -> None:
    assert page.evaluate("window.__browserE2eMark === true"), "the page was reloaded"


def test_run_page_live(dev: DevServer, page: Page, artifacts: Path) -> None:
    """The job's asset graph launches a run ("Materialize all"); the run's page shows the
    executing step and the step's log lines while the run waits at the gate, then, without a
    reload, the run's success, every step succeeded and the asset check's evaluation."""
    page.goto(f"{dev.url}/locations/{defs.LOCATION}/jobs/{defs.JOB}")
    page.get_by_role("button", name="Materialize all").click()
    # The toast: "Launched run <short id>" with a link to the run.
    view = page.get_by_role("link", name="View", exact=True)
    href = view.get_attribute("href") or ""
    match = re.fullmatch(r"/runs/([0-9a-f-]{36})", href)
    assert match, f"the launch toast links to {href!r}"
    dev.ui_run_id = run_id = match.group(1)
    # Followed at once: the toast goes away by itself.
    view.click()
    expect(page).to_have_url(re.compile(f"/runs/{run_id}"))
    expect(page.get_by_text(run_id[:8], exact=True).first).to_be_visible()
    mark_loaded(page)

    # While `numbers` waits at the gate: the run has started, one step executes, its log lines
    # are in the table (the run worker says which instance class it rebuilt).
    expect(page.get_by_text(f"{defs.LOG_LINE} 10")).to_be_visible(timeout=SHOW_TIMEOUT_MS)
    expect(page.get_by_text(f"{defs.INSTANCE_CLASS_PREFIX}{RUST_CLASS}")).to_be_visible()
    expect(page.get_by_text("Executing (1)")).to_be_visible()
    expect(page.get_by_text("Started", exact=True).first).to_be_visible()
    live = text_of(page)
    assert "Succeeded (0)" in live, "a step succeeded before the gate opened"
    assert "RUN_SUCCESS" not in live
    shot(page, artifacts, "run-live.png")

    dev.gate.touch()
    expect(page.get_by_text("Succeeded (3)")).to_be_visible(timeout=SHOW_TIMEOUT_MS)
    expect(page.get_by_text("RUN_SUCCESS")).to_be_visible(timeout=SHOW_TIMEOUT_MS)
    expect(page.get_by_text("Success", exact=True).first).to_be_visible()
    expect(
        page.get_by_text(f"Check {defs.CHECK} succeeded for materialization of total")
    ).to_be_visible()
    done = text_of(page)
    for step in ("numbers", "total", f"total_{defs.CHECK}"):
        assert f'Finished execution of step "{step}"' in done, step
    assert "Errored (0)" in done
    assert_not_reloaded(page)
    shot(page, artifacts, "run.png")


def test_asset_pages(
    dev: DevServer, page: Page, artifacts: Path, instance: DagsterInstance
) -> None:
    """The asset page of `total` shows its materialization by the UI's run and its check; the
    partitions of `by_region` show the one the sensor's run materialized, the others missing."""
    run_id = ui_run_id(dev)
    page.goto(f"{dev.url}/assets/total")
    expect(page.get_by_text("Latest materialization")).to_be_visible()
    expect(page.locator(f'a[href^="/runs/{run_id}"]').first).to_be_visible()
    expect(page.get_by_text("Latest check results")).to_be_visible()
    shot(page, artifacts, "asset.png")

    page.goto(f"{dev.url}/assets/total?view=checks")
    expect(page.get_by_text(defs.CHECK).first).to_be_visible()
    expect(page.get_by_text("Passed").first).to_be_visible()
    shot(page, artifacts, "asset-checks.png")

    # The sensor's first tick requested `north`; its run materializes it.
    wait_for(
        lambda: (r := sensor_run(instance)) is not None and r.status == DagsterRunStatus.SUCCESS,
        "the sensor's run to succeed",
        DAEMON_TIMEOUT,
    )
    north_run = sensor_run(instance)
    assert north_run is not None
    assert north_run.tags.get(PARTITION_NAME_TAG) == defs.REQUESTED_PARTITION

    page.goto(f"{dev.url}/assets/by_region?view=partitions")
    expect(page.get_by_text("Materialized (1)")).to_be_visible()
    expect(page.get_by_text(f"Missing ({len(defs.REGIONS) - 1})")).to_be_visible()
    expect(page.get_by_text("Failed (0)")).to_be_visible()
    for region in defs.REGIONS:
        expect(page.get_by_text(region, exact=True).first).to_be_visible()
    page.get_by_text(defs.REQUESTED_PARTITION, exact=True).first.click()
    expect(page).to_have_url(re.compile(f"partition={defs.REQUESTED_PARTITION}"))
    expect(page.locator(f'a[href^="/runs/{north_run.run_id}"]').first).to_be_visible()
    shot(page, artifacts, "partitions.png")


def test_sensor_ticks(
    dev: DevServer, page: Page, artifacts: Path, instance: DagsterInstance
) -> None:
    """The automation page lists the sensor and the schedule; the sensor's page shows its cursor,
    its ticks as the instance has them, new ticks as the daemon writes them (no reload), and,
    filtered, the tick that requested a run."""
    wait_for(
        lambda: (
            sum(t.status == TickStatus.SKIPPED for t in sensor_ticks(instance)) >= SKIPPED_TICKS
        ),
        f"{SKIPPED_TICKS} skipped sensor ticks",
        DAEMON_TIMEOUT,
    )
    page.goto(f"{dev.url}/automation")
    expect(page.get_by_text(defs.SENSOR, exact=True)).to_be_visible()
    expect(page.get_by_text(defs.SCHEDULE, exact=True)).to_be_visible()
    shot(page, artifacts, "automation-list.png")

    page.get_by_text(defs.SENSOR, exact=True).click()
    expect(page).to_have_url(re.compile(f"/locations/{defs.LOCATION}/sensors/{defs.SENSOR}"))
    mark_loaded(page)
    expect(page.get_by_text("Timestamp", exact=True)).to_be_visible()
    expect(page.get_by_text(defs.REQUESTED_PARTITION, exact=True).first).to_be_visible()
    table = tick_table(page)
    seen = sensor_ticks(instance)
    newest = max(seen, key=lambda t: t.tick_id)
    wait_text(table, lambda text: tick_time(newest) in text, "the newest tick", 30)
    assert table.get_by_text("0 runs requested", exact=True).count() >= SKIPPED_TICKS

    # A tick written after the page loaded shows up in place.
    wait_for(
        lambda: max(t.tick_id for t in sensor_ticks(instance)) > newest.tick_id,
        "a new sensor tick",
        DAEMON_TIMEOUT,
    )
    later = max(sensor_ticks(instance), key=lambda t: t.tick_id)
    wait_text(table, lambda text: tick_time(later) in text, "a tick newer than the page", 60)
    assert_not_reloaded(page)
    shot(page, artifacts, "automation.png")

    requested = [t for t in sensor_ticks(instance) if t.status == TickStatus.SUCCESS]
    assert len(requested) == 1, requested
    page.get_by_role("button", name="All ticks").click()
    page.get_by_role("menuitem", name="Requested").click()
    north_run = sensor_run(instance)
    assert north_run is not None
    # The filtered table: the one tick that requested a run, linking to the run; no skipped one.
    expect(table.locator(f'a[href^="/runs/{north_run.run_id}"]').first).to_be_visible()
    expect(table.get_by_text("1 run requested").first).to_be_visible()
    expect(table.get_by_text("0 runs requested", exact=True)).to_have_count(0)
    wait_text(table, lambda text: tick_time(requested[0]) in text, "the requesting tick", 30)
    shot(page, artifacts, "automation-requested.png")


def test_deployment_pages(dev: DevServer, page: Page, artifacts: Path) -> None:
    """The webserver's own account of its instance: the configuration page shows the dagster-rs
    storages and every implemented domain in Rust; the daemons page shows the daemons running
    (their heartbeats, written through the daemon's dagster-rs instance)."""
    page.goto(f"{dev.url}/deployment/config")
    expect(page.get_by_text("rust_domains:")).to_be_visible()
    config = text_of(page)
    for line in (
        "run_storage: RustRunStorage",
        "event_log_storage: RustEventLogStorage",
        "schedule_storage: RustScheduleStorage",
    ):
        assert line in config, line
    listed = config[config.index("rust_domains:") : config.index("python_domains:")]
    assert set(re.findall(r"^\s*- (\w+)$", listed, re.MULTILINE)) == IMPLEMENTED, listed
    shot(page, artifacts, "deployment-config.png")

    page.goto(f"{dev.url}/deployment/daemons")
    expect(page.get_by_text("Last heartbeat")).to_be_visible()
    for daemon in ("Sensors", "Scheduler", "Run queue"):
        row = page.get_by_role("row").filter(has=page.get_by_text(daemon, exact=True))
        expect(row.get_by_text("Running", exact=True)).to_be_visible()
    shot(page, artifacts, "daemons.png")


def test_ran_on_dagster_rs(dev: DevServer, instance: DagsterInstance) -> None:
    """The webserver and the daemon `dagster dev` started were given the home's dagster-rs
    instance, the home holds what the UI showed, and the daemons did their work through it."""
    refs = {}
    for argv in dev.group_argv():
        if "--instance-ref" not in argv:
            continue
        role = next((r for r in ("dagster_webserver", "dagster._daemon") if r in argv), None)
        if role is not None:
            refs[role] = deserialize_value(argv[argv.index("--instance-ref") + 1], InstanceRef)
    assert set(refs) == {"dagster_webserver", "dagster._daemon"}, dev.group_argv()
    for role, ref in refs.items():
        opened = DagsterInstance.from_ref(ref)
        try:
            assert isinstance(opened, dagster_rs.DagsterInstance), role
            assert opened.rust_domains == IMPLEMENTED, role
            assert Path(opened.root_directory) == dev.home, role
        finally:
            opened.dispose()

    assert isinstance(instance, dagster_rs.DagsterInstance)
    assert instance.rust_domains == IMPLEMENTED

    run_id = ui_run_id(dev)
    run = instance.get_run_by_id(run_id)
    assert run is not None
    assert run.job_name == defs.JOB
    assert run.status == DagsterRunStatus.SUCCESS
    records = instance.all_logs(run_id)
    types = [r.dagster_event.event_type for r in records if r.dagster_event is not None]
    for expected in (
        DagsterEventType.RUN_ENQUEUED,
        DagsterEventType.RUN_STARTING,
        DagsterEventType.RUN_START,
        DagsterEventType.ASSET_CHECK_EVALUATION,
        DagsterEventType.RUN_SUCCESS,
    ):
        assert types.count(expected) == 1, (expected, types)
    assert types.count(DagsterEventType.ASSET_MATERIALIZATION) == 2
    messages = [r.user_message for r in records if r.dagster_event is None]
    assert f"{defs.INSTANCE_CLASS_PREFIX}{RUST_CLASS}" in messages
    assert f"{defs.LOG_LINE} 10" in messages
    for key in ("numbers", "total"):
        event = instance.get_latest_materialization_event(AssetKey(key))
        assert event is not None and event.run_id == run_id, key

    north_run = sensor_run(instance)
    assert north_run is not None and north_run.status == DagsterRunStatus.SUCCESS
    ticks = sensor_ticks(instance)
    requested = [t for t in ticks if t.status == TickStatus.SUCCESS]
    assert [t.run_ids for t in requested] == [[north_run.run_id]]
    skipped = [t for t in ticks if t.status == TickStatus.SKIPPED]
    assert len(skipped) >= SKIPPED_TICKS
    assert {t.skip_reason for t in skipped} == {defs.SKIP_REASON}

    heartbeats = instance.get_daemon_heartbeats()
    for daemon in DAEMONS:
        assert daemon in heartbeats, sorted(heartbeats)
        assert heartbeats[daemon].timestamp > dev.process.launched, daemon


def test_shutdown_leaves_nothing(dev: DevServer) -> None:
    """Ctrl-C stops `dagster dev` cleanly: it exits 0 without being killed, and no process of its
    group (webserver, daemon, code servers, run workers) is left."""
    dev.stop()
    assert not dev.process.killed, dev.process.leftovers
    assert dev.process.leftovers == []
    assert dev.process.returncode == 0, dev.output()[-5000:]
    assert _group_members(dev.pgid) == []
