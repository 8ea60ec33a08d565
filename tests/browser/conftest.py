"""The browser test's deployment and browser: one `dagster dev` per module on a fresh dagster-rs
home, one headless Chromium (Debian's `chromium`, driven by Playwright) per module, a page per
test; screenshots and `dagster dev`'s output go to the artifacts directory.

The artifacts directory is `$DAGSTER_RS_TEST_ARTIFACTS` (default `target/test-artifacts/browser/`
in the repository); a failed test leaves `failure-<test>.png` there, and its report shows
`dagster dev`'s output.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.browser import browser_defs as defs
from tests.browser.dev_process import DevServer, start_dev
from tests.conftest import RUST_YAML
from tests.daemon.daemon_process import _group_members
from tests.homes import clean_env
from tests.processes import attach_log

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent

# Stock settings of the home. The newsletter pop-up (shown to a browser on 127.0.0.1 until
# someone dismisses it) would cover the page; telemetry off: nothing but the test's files.
SETTINGS_YAML = """\
telemetry:
  enabled: false
nux:
  enabled: false
"""

# A tall window: the run page's log table renders only the rows it shows.
VIEWPORT = {"width": 1400, "height": 1600}
# Dates render in the browser's zone and locale: the test compares them with the instance's.
TIMEZONE = "UTC"
LOCALE = "en-US"
# Playwright's wait for an element (actions and `expect`), unless a test says otherwise.
DEFAULT_TIMEOUT_MS = 60_000

# The checkpoints the tests save (a failed test adds `failure-<test>.png`).
SCREENSHOTS = (
    "run-live.png",
    "run.png",
    "asset.png",
    "asset-checks.png",
    "partitions.png",
    "automation-list.png",
    "automation.png",
    "automation-requested.png",
    "deployment-config.png",
    "daemons.png",
)

REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()
DEV_LOG = pytest.StashKey[Path]()
SHOWN = pytest.StashKey[bool]()
ARTIFACTS = pytest.StashKey[Path]()


def artifacts_dir() -> Path:
    root = os.environ.get("DAGSTER_RS_TEST_ARTIFACTS")
    path = Path(root) if root else REPO / "target" / "test-artifacts" / "browser"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report (the page fixture screenshots a failed test), and show
    `dagster dev`'s output with the first failure (by path with the others)."""
    report = yield
    item.stash.setdefault(REPORTS, {})[report.when] = report
    attach_log(item, report, item.config.stash.get(DEV_LOG, None), SHOWN, "dagster dev output")
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    path = terminalreporter.config.stash.get(ARTIFACTS, None)
    if path is not None:
        terminalreporter.write_line(f"browser test screenshots and dagster dev log: {path}")


@pytest.fixture(scope="module")
def artifacts(request: pytest.FixtureRequest) -> Path:
    path = artifacts_dir()
    request.config.stash[ARTIFACTS] = path
    # A previous run's screenshots (only the names this test writes: the directory may be shared).
    for name in SCREENSHOTS:
        (path / name).unlink(missing_ok=True)
    for stale in path.glob("failure-*.png"):
        stale.unlink()
    return path


@pytest.fixture(scope="module")
def dev(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, artifacts: Path
) -> Iterator[DevServer]:
    root = tmp_path_factory.mktemp("browser")
    home = root / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(RUST_YAML + SETTINGS_YAML)
    workspace = root / "workspace.yaml"
    workspace.write_text(
        "load_from:\n"
        "  - python_file:\n"
        f"      relative_path: {HERE / 'browser_defs.py'}\n"
        f"      location_name: {defs.LOCATION}\n"
        f"      working_directory: {root}\n"
    )
    log = root / "dagster-dev.log"
    request.config.stash[DEV_LOG] = log
    with pytest.MonkeyPatch.context() as mp:
        # A developer's shell setting must not change which domains `dagster dev` runs in Rust.
        clean_env(mp)
        server = start_dev(home, root, workspace, log)
        try:
            yield server
        finally:
            server.stop()
            if log.exists():
                shutil.copyfile(log, artifacts / "dagster-dev.log")
    assert not server.process.leftovers, (
        f"left running after dagster dev: {server.process.leftovers}"
    )
    assert _group_members(server.pgid) == []


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Debian's chromium, not a browser Playwright downloads: scripts/setup.sh installs it, and a
    # machine without it fails here (the test is not skipped).
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("no `chromium` on PATH: scripts/setup.sh installs Debian's chromium package")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(request: pytest.FixtureRequest, browser: Browser, artifacts: Path) -> Iterator[Page]:
    """A fresh browser context's page; a screenshot of it is saved when the test fails."""
    context = browser.new_context(viewport=VIEWPORT, timezone_id=TIMEZONE, locale=LOCALE)
    opened = context.new_page()
    opened.set_default_timeout(DEFAULT_TIMEOUT_MS)
    # `expect` has a timeout of its own (5 s by default): a loaded 2-core machine renders a page
    # slower than that.
    expect.set_options(timeout=DEFAULT_TIMEOUT_MS)
    try:
        yield opened
    finally:
        reports = request.node.stash.get(REPORTS, {})
        if "call" in reports and reports["call"].failed:
            shot = artifacts / f"failure-{request.node.name}.png"
            try:
                opened.screenshot(path=str(shot), full_page=True)
                print(f"screenshot of the failure: {shot}")
            except Exception as exc:  # noqa: BLE001 - the test's own failure is what matters
                print(f"no screenshot of the failure: {exc!r}")
        context.close()
