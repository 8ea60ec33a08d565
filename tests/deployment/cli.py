"""Dagster's CLI as subprocesses on a stock and a dagster-rs DAGSTER_HOME, and what makes their
outputs comparable.

Each command runs in a process group of its own (the CLI starts a code server, which starts run
workers); the group is killed if a command outlives its deadline. Commands of one phase run at
once (both homes, and independent commands of one home), since the CLI takes seconds to start.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from dagster import DagsterInstance
from dagster._core.instance.ref import InstanceRef

from tests.conftest import RUST_YAML
from tests.homes import OVERRIDES

DAGSTER = str(Path(sys.executable).with_name("dagster"))
HERE = Path(__file__).resolve().parent
DEFS = HERE / "deploy_defs.py"

# Stock settings both homes share. Telemetry off: nothing but the workload's files in the home.
# The default run coordinator launches a submitted run at once (`dagster job launch` then runs
# it in a run worker of the CLI's code server; the queued coordinator would wait for a daemon).
SETTINGS_YAML = """\
telemetry:
  enabled: false
run_coordinator:
  module: dagster._core.run_coordinator
  class: DefaultRunCoordinator
"""

# A command's deadline: far above what a loaded 2-core machine needs to start the CLI, load the
# code location and run a two-step job.
COMMAND_TIMEOUT = 240.0


def write_homes(root: Path, rust_yaml: str = "") -> dict[str, Path]:
    """A stock and a dagster-rs DAGSTER_HOME under `root` with the same settings."""
    homes = {}
    for kind, head in (("stock", ""), ("rust", RUST_YAML + rust_yaml)):
        home = root / kind
        home.mkdir(parents=True)
        (home / "dagster.yaml").write_text(head + SETTINGS_YAML)
        homes[kind] = home
    return homes


def cli_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (*OVERRIDES, "DAGSTER_HOME")}
    env["DAGSTER_HOME"] = str(home)
    env["PYTHONUNBUFFERED"] = "1"
    # Dagster's log lines are colored on a terminal only; keep every output plain.
    env["NO_COLOR"] = "1"
    return env


@dataclass(frozen=True)
class Command:
    """`dagster <args>` on `home`, with `stdin` fed (the answer to a confirmation prompt)."""

    key: str
    home: Path
    args: tuple[str, ...]
    stdin: str = ""


@dataclass(frozen=True)
class Result:
    command: Command
    returncode: int
    stdout: str
    stderr: str

    def describe(self) -> str:
        return (
            f"dagster {' '.join(self.command.args)} on {self.command.home} exited"
            f" {self.returncode}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"
        )


def run_all(commands: Iterable[Command]) -> dict[str, Result]:
    """Start every command at once; wait for all of them. Keyed by `Command.key`."""
    started = []
    for command in commands:
        proc = subprocess.Popen(
            [DAGSTER, *command.args],
            cwd=command.home.parent,
            env=cli_env(command.home),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        started.append((command, proc))
    results: dict[str, Result] = {}
    try:
        # communicate() drains each pipe; the others keep running (and buffering) meanwhile, so
        # a long output of one command cannot block another.
        for command, proc in started:
            try:
                out, err = proc.communicate(command.stdin, timeout=COMMAND_TIMEOUT)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                out, err = proc.communicate()
                err += f"\n[killed after {COMMAND_TIMEOUT} s]"
            results[command.key] = Result(command, proc.returncode, out, err)
    finally:
        for _, proc in started:
            if proc.poll() is None:
                _kill_group(proc)
    return results


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


# --- reading a home through either implementation ---------------------------------------------


def open_home(home: Path, reader: str, root: Path) -> DagsterInstance:
    """An instance on `home`'s files: stock Dagster's (`reader="stock"`) or dagster-rs's,
    whichever implementation wrote them."""
    config_dir = root / f"{reader}_reader"
    if not config_dir.exists():
        config_dir.mkdir()
        head = RUST_YAML if reader == "rust" else ""
        (config_dir / "dagster.yaml").write_text(head + SETTINGS_YAML)
    instance = DagsterInstance.from_ref(InstanceRef.from_dir(str(home), config_dir=str(config_dir)))
    assert (type(instance).__module__ == "dagster_rs.instance") == (reader == "rust")
    return instance


# A launched run may finish in its run worker after `dagster job launch` has returned.
RUN_FINISH_TIMEOUT = 180.0


def wait_finished(instance: DagsterInstance, run_id: str) -> None:
    deadline = time.monotonic() + RUN_FINISH_TIMEOUT
    while True:
        run = instance.get_run_by_id(run_id)
        assert run is not None
        if run.is_finished:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"run {run_id} still {run.status} after {RUN_FINISH_TIMEOUT} s")
        time.sleep(0.5)


# --- normalization ----------------------------------------------------------------------------

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# The code server's socket (a run's `.dagster/grpc_info` tag): a temp file of its own.
_SOCKET = re.compile(r"/tmp/tmp\w+")
_CODE_SERVER_LINE = re.compile(r"<time> - dagster\.code_server - [A-Z]+ - [^\n]*\n?")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d+)?( ?[+-]\d{2}:?\d{2})?")
# "in 127ms", "in 1.02s", "in 2m3s", "after 30.4s": step, run and process durations.
_DURATION = re.compile(r"\b(in|after) (\d+m)?\d+(\.\d+)?(ms|s|m)\b")
# Process ids: Dagster's log line field (" - 1234 - "), "pid: 1234", "process 1234".
_PID_FIELD = re.compile(r" - \d+ - ")
_PID = re.compile(r"\b(pid:? |process |Process )\d+\b")
# The implementation's class names, for the parts of `instance info` that name them.
_CLASSES = {
    "RustRunStorage": "SqliteRunStorage",
    "RustEventLogStorage": "SqliteEventLogStorage",
    "RustScheduleStorage": "SqliteScheduleStorage",
}


def normalize(text: str, homes: Mapping[str, Path], run_labels: Mapping[str, str]) -> str:
    """`text` with what legitimately differs between the homes replaced by placeholders: paths of
    the homes, run ids (by the label of the run: the command that made it), other uuids,
    instants, durations, process ids, colors; without the code server's own log lines."""
    text = _ANSI.sub("", text)
    # Longest first: the temp root's path is a prefix of every home's.
    for kind, home in sorted(homes.items(), key=lambda kv: -len(str(kv[1]))):
        text = text.replace(str(home), f"<{kind.upper() if kind in ('stock', 'rust') else kind}>")
    text = text.replace("<STOCK>", "<HOME>").replace("<RUST>", "<HOME>")
    text = _UUID.sub(
        lambda m: f"<run:{run_labels[m[0]]}>" if m[0] in run_labels else "<uuid>", text
    )
    text = _SOCKET.sub("<socket>", text)
    text = _TIMESTAMP.sub("<time>", text)
    # The code server's own log lines (it starts, stops) come from another process through the
    # same pipe, so where they fall among the command's lines varies: left out.
    text = _CODE_SERVER_LINE.sub("", text)
    text = _DURATION.sub(lambda m: f"{m[1]} <duration>", text)
    text = _PID_FIELD.sub(" - <pid> - ", text)
    text = _PID.sub(lambda m: f"{m[1]}<pid>", text)
    for rust, stock in _CLASSES.items():
        text = text.replace(rust, stock)
    return text


def without_dagster_rs_section(info: str) -> str:
    """`dagster instance info` without the `dagster_rs:` block the facade adds to the instance
    configuration (a top-level YAML key: it ends at the next line that is not indented, blank
    lines included)."""
    lines = info.splitlines(keepends=True)
    kept, skipping = [], False
    for line in lines:
        if line.startswith("dagster_rs:"):
            skipping = True
            continue
        if skipping and not line.startswith((" ", "-")):
            skipping = False
        if not skipping:
            kept.append(line)
    return "".join(kept)


def log_events(stderr: str) -> list[str]:
    """The Dagster event types of a run's log lines, in order (`... - STEP_START - ...`)."""
    found = re.findall(r" - ([A-Z_]{4,}) - ", _ANSI.sub("", stderr))
    return [name for name in found if name not in {"DEBUG", "INFO", "WARNING", "ERROR"}]
