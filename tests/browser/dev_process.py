"""A real `dagster dev` (webserver and daemon) on a dagster-rs DAGSTER_HOME, in a process group of
its own, stopped whatever happens.

`dagster dev` starts the webserver and the daemon as its children; each starts a code server for
the workspace, and the daemon's code server a run worker per launched run: all of them stay in its
process group. It is stopped as a user stops it (Ctrl-C: it tells the webserver and the daemon to
shut down and waits for them), through the daemon test's `DaemonProcess.stop`: whatever of the
group outlives that is terminated, then killed, and what was left is recorded.
"""

from __future__ import annotations

import ctypes
import json
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.browser import browser_defs as defs
from tests.daemon.daemon_process import DAGSTER, DaemonProcess, _group_members, dagster_env
from tests.graphql.conftest import WORKSPACE_QUERY, free_port

# `dagster dev` loads the workspace twice (webserver and daemon, a code server each) before the
# webserver answers: tens of seconds on a loaded 2-core machine.
STARTUP_TIMEOUT = 180.0
# prctl(2): the signal the kernel sends the child when its parent dies.
PR_SET_PDEATHSIG = 1
# Starts tried when the free port found is taken before the webserver binds it.
PORT_ATTEMPTS = 3


def _child_signals() -> None:
    """In the child before exec: Ctrl-C and SIGTERM back to their defaults (a shell that starts
    pytest in the background leaves them ignored, and an ignored signal stays ignored across exec:
    `dagster dev` would never see the Ctrl-C that stops it cleanly); and a Ctrl-C when pytest dies
    without running its finalizers (SIGKILL), so that `dagster dev` does not outlive it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGINT)


@dataclass
class DevServer:
    """A running `dagster dev`: its home, its URL, the gate file the test's asset waits for."""

    home: Path
    root: Path
    workspace: Path
    gate: Path
    url: str
    process: DaemonProcess
    # The run the run-page test launched from the UI (the later tests read what it did).
    ui_run_id: str | None = None

    @property
    def pgid(self) -> int:
        return self.process.proc.pid

    def output(self) -> str:
        return self.process.output()

    def stop(self) -> None:
        # A run still waiting at the gate (a failed test) finishes instead of being killed.
        self.gate.touch()
        self.process.stop()

    def post(self, text: str) -> dict[str, Any]:
        body = json.dumps({"query": text}).encode()
        request = urllib.request.Request(
            f"{self.url}/graphql", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def group_argv(self) -> list[list[str]]:
        """The argument vectors of the live processes of `dagster dev`'s group."""
        argvs = []
        for member in _group_members(self.pgid):
            pid = member.split(" ", 1)[0]
            try:
                raw = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            argvs.append([a.decode(errors="replace") for a in raw.split(b"\0") if a])
        return argvs


def _launch(home: Path, root: Path, workspace: Path, gate: Path, log: Path) -> DevServer:
    port = free_port()
    # Closed: a start abandoned before this one opened it when it stopped.
    gate.unlink(missing_ok=True)
    env = dagster_env(home)
    env[defs.GATE_ENV] = str(gate)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [DAGSTER, "dev", "-w", str(workspace), "-p", str(port), "-h", "127.0.0.1"],
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_child_signals,
        )
    process = DaemonProcess(proc=proc, log=log, launched=time.time())
    return DevServer(home, root, workspace, gate, f"http://127.0.0.1:{port}", process)


def _wait_up(dev: DevServer, deadline: float) -> bool:
    """Poll `/server_info`, then the workspace, until the code location is loaded. False when
    `dagster dev` exited because its port was taken (the caller starts it again)."""
    while True:
        if not dev.process.running():
            if "address already in use" in dev.output().lower():
                return False
            pytest.fail(
                f"dagster dev exited {dev.process.proc.returncode}:\n{dev.output()[-5000:]}"
            )
        if time.monotonic() > deadline:
            pytest.fail(f"dagster dev not up in {STARTUP_TIMEOUT:.0f}s:\n{dev.output()[-5000:]}")
        try:
            with urllib.request.urlopen(f"{dev.url}/server_info", timeout=5) as response:
                json.loads(response.read())
            entries = dev.post(WORKSPACE_QUERY)["data"]["workspaceOrError"]["locationEntries"]
            if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                return True
        except (urllib.error.URLError, OSError, ValueError, KeyError, TypeError):
            pass
        time.sleep(0.5)


def start_dev(home: Path, root: Path, workspace: Path, log: Path) -> DevServer:
    """`dagster dev -w workspace` on `home`, on a free port of 127.0.0.1, up and its code
    location loaded. The caller stops it (`DevServer.stop`) whatever happens; a start that fails
    here stops what it started first."""
    gate = root / "gate"
    deadline = time.monotonic() + STARTUP_TIMEOUT
    for _ in range(PORT_ATTEMPTS):
        dev = _launch(home, root, workspace, gate, log)
        try:
            if _wait_up(dev, deadline):
                return dev
        except BaseException:
            dev.stop()
            raise
        dev.stop()
    pytest.fail(f"dagster dev found no free port in {PORT_ATTEMPTS} attempts:\n{dev.output()}")
