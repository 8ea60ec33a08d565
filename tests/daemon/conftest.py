"""Show the daemon's output with the daemon tests' failures: in full with the first, by path with
the others (a failed module fixture fails every test of the module)."""

from __future__ import annotations

from collections.abc import Generator

import pytest

from tests.daemon.daemon_process import DAEMON_LOG

SHOWN = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    log = item.config.stash.get(DAEMON_LOG, None)
    if not report.failed or log is None or not log.exists():
        return report
    if item.config.stash.get(SHOWN, False):
        report.sections.append(("dagster-daemon output", f"shown above; the file: {log}"))
        return report
    item.config.stash[SHOWN] = True
    text = log.read_text(errors="replace")
    report.sections.append(("dagster-daemon output", f"{log}\n{text[-100000:]}"))
    return report
