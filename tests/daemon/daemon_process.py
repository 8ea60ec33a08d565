"""A real `dagster-daemon run` in a process group of its own, stopped whatever happens.

The daemon starts a code server for the workspace, and the code server a run worker per launched
run; all of them stay in the daemon's process group. The daemon is stopped as a user stops it
(SIGINT: it shuts its threads and code server down); whatever of the group outlives that is
terminated, then killed, so no process the test caused survives it. The daemon's output (stdout
and stderr) goes to a file the test shows on failure.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.homes import OVERRIDES

BIN = Path(sys.executable).parent
DAGSTER_DAEMON = str(BIN / "dagster-daemon")
DAGSTER = str(BIN / "dagster")

# Settings of a developer's shell that would change what the daemon and the CLI run.
ENV_OVERRIDES = (*OVERRIDES, "DAGSTER_HOME")

# How long a stop by signal may take before the group is killed: the daemon joins its threads
# and shuts its code server down, which takes seconds on a loaded 2-core machine.
STOP_TIMEOUT = 60.0


# Where the report hook (conftest.py) finds the daemon's output to show with a failure.
DAEMON_LOG = pytest.StashKey[Path]()


def dagster_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ENV_OVERRIDES}
    env["DAGSTER_HOME"] = str(home)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class DaemonProcess:
    proc: subprocess.Popen
    log: Path
    launched: float
    # Set by `stop`: the daemon's exit status, when it stopped, whether SIGINT was not enough,
    # and which processes of its group outlived it.
    returncode: int | None = None
    stopped_at: float | None = None
    killed: bool = False
    leftovers: list[str] = field(default_factory=list)

    def running(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        """Ctrl-C for the daemon (SIGINT, which it turns into a clean shutdown: its threads stop
        at their next step and it shuts its code server down), then wait for the whole group to
        be gone; SIGTERM, then SIGKILL, for whatever of the group outlives `STOP_TIMEOUT`.

        The signal goes to the daemon alone first: a code server interrupted together with it
        would fail the sensor evaluation in flight, a stop the daemon never sees in production
        (where its code server outlives it or is shut down by it)."""
        if self.stopped_at is not None:
            return
        pgid = self.proc.pid
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            _signal_group(pgid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT / 4)
            except subprocess.TimeoutExpired:
                _signal_group(pgid, signal.SIGKILL)
                self.proc.wait()
            self.killed = True
        # The code server (and any run worker) are the daemon's descendants, not this process's
        # children: wait for them to leave the group, then end any that do not.
        if not _wait_group_gone(pgid, STOP_TIMEOUT):
            self.leftovers = _group_members(pgid)
            self.killed = True
            _signal_group(pgid, signal.SIGTERM)
            if not _wait_group_gone(pgid, STOP_TIMEOUT / 4):
                _signal_group(pgid, signal.SIGKILL)
        self.returncode = self.proc.returncode
        self.stopped_at = time.time()


def _wait_group_gone(pgid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _group_members(pgid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _group_members(pgid: int) -> list[str]:
    """`pid state command` of the group's processes that are not zombies (a zombie is dead; it
    waits only for its parent, or init, to reap it)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        # /proc/<pid>/stat: pid (comm) state ppid pgrp ...; comm may hold spaces and parens.
        fields = stat[stat.rindex(")") + 2 :].split()
        state, pgrp = fields[0], int(fields[2])
        if pgrp == pgid and state != "Z":
            members.append(f"{entry.name} {state} {cmdline.strip()}")
    return members


@contextmanager
def dagster_daemon(home: Path, workspace: Path, log: Path) -> Iterator[DaemonProcess]:
    """`dagster-daemon run -w workspace` on `home`, in its own process group, output to `log`;
    stopped (and its group killed if need be) when the block ends, however it ends."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [DAGSTER_DAEMON, "run", "-w", str(workspace)],
            cwd=workspace.parent,
            env=dagster_env(home),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    daemon = DaemonProcess(proc=proc, log=log, launched=time.time())
    try:
        yield daemon
    finally:
        daemon.stop()


def run_cli(home: Path, workspace: Path, *args: str) -> subprocess.Popen:
    """Start a command of Dagster's CLI (`args[0]`: "dagster" or "dagster-daemon") on `home`,
    its output piped; the caller collects it."""
    program = {"dagster": DAGSTER, "dagster-daemon": DAGSTER_DAEMON}[args[0]]
    return subprocess.Popen(
        [program, *args[1:]],
        cwd=workspace.parent,
        env=dagster_env(home),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
