"""Show the daemon's output with the daemon tests' failures: in full with the first, by path with
the others (a failed module fixture fails every test of the module)."""

from __future__ import annotations

from collections.abc import Generator

import pytest

from tests.daemon.daemon_process import DAEMON_LOG
from tests.processes import attach_log

SHOWN = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    attach_log(
        item, report, item.config.stash.get(DAEMON_LOG, None), SHOWN, "dagster-daemon output"
    )
    return report
