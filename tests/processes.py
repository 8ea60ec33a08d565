"""Other processes and threads writing one DAGSTER_HOME at once, and waiting for what they did.

Writer scripts follow one protocol: the first line they print is `CLASS <name>` (the class of the
instance or storage they loaded), then, for those that wait for a go-file, `READY`; progress lines
are `<KIND> <value>`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def spawn(script: Path, *args: str, domains: str | None = None) -> subprocess.Popen:
    """Run a Python script with `args`, its output piped (unbuffered); DAGSTER_RS_DOMAINS set to
    `domains` (None: unset, every domain live)."""
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_RS_DOMAINS"}
    env["PYTHONUNBUFFERED"] = "1"
    if domains is not None:
        env["DAGSTER_RS_DOMAINS"] = domains
    return subprocess.Popen(
        [sys.executable, str(script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def write_script(path: Path, source: str) -> Path:
    path.write_text(source)
    return path


@contextmanager
def reaped(*procs: subprocess.Popen) -> Iterator[None]:
    """Kill whichever of `procs` is still running when the block ends."""
    try:
        yield
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def wait_ready(proc: subprocess.Popen) -> str:
    """Read the writer's CLASS and READY lines; return the class it loaded."""
    assert proc.stdout is not None
    first = proc.stdout.readline().split()
    second = proc.stdout.readline().strip()
    if first[:1] != ["CLASS"] or second != "READY":
        proc.kill()
        _, err = proc.communicate(timeout=60)
        pytest.fail(f"writer did not start: {first} {second!r}\n{err[-3000:]}")
    return first[1]


def communicate(proc: subprocess.Popen, timeout: float) -> tuple[str, str]:
    """The output of `proc` once it has exited (it is killed if it has not by `timeout`)."""
    with reaped(proc):
        return proc.communicate(timeout=timeout)


def assert_clean_exit(what: str, returncode: int | None, err: str) -> None:
    """A writer exited 0 and never saw "database is locked"."""
    assert "database is locked" not in err.lower(), f"{what}: {err[-3000:]}"
    assert returncode == 0, f"{what} exited {returncode}: {err[-3000:]}"


def sigkill_midway(
    proc: subprocess.Popen,
    seen: Callable[[str, str], None],
    enough: Callable[[], bool],
    timeout: float,
) -> str:
    """Pass each `<KIND> <value>` line the writer prints to `seen` until `enough()` (or `timeout`
    seconds), SIGKILL it while it is still writing, pass on the lines it printed before it died;
    return its stderr."""
    with reaped(proc):
        assert proc.stdout is not None
        deadline = time.monotonic() + timeout
        while not enough() and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            kind, _, value = line.strip().partition(" ")
            seen(kind, value)
        assert proc.poll() is None, "the writer stopped before it was killed"
        os.kill(proc.pid, signal.SIGKILL)
        rest, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    for line in rest.splitlines():
        kind, _, value = line.strip().partition(" ")
        seen(kind, value)
    return err


def run_threads(work: Callable[..., None], args: Iterable[tuple], timeout: float = 300) -> None:
    """`work(*a)` in a thread for each `a` of `args`, all at once; fails if one hangs or raises."""
    errors: list[BaseException] = []

    def guarded(*a: object) -> None:
        try:
            work(*a)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    workers = [threading.Thread(target=guarded, args=a) for a in args]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=timeout)
    assert not any(worker.is_alive() for worker in workers), "a thread hung"
    assert not errors, [repr(e) for e in errors]


def poll(predicate: Callable[[], bool], timeout: float, every: float = 0.02) -> bool:
    """Whether `predicate()` came true within `timeout` seconds (checked every `every`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return predicate()


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Wait until `predicate()`; fail the test if it is not within `timeout` seconds."""
    if not poll(predicate, timeout):
        pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


def attach_log(
    item: pytest.Item,
    report: pytest.TestReport,
    log: Path | None,
    shown: pytest.StashKey[bool],
    title: str,
) -> None:
    """Put a server process's log under a failed test's report: whole (its last 100,000
    characters) with the session's first failure, by path with the others."""
    if not report.failed or log is None or not log.exists():
        return
    if item.config.stash.get(shown, False):
        report.sections.append((title, f"shown above; the file: {log}"))
        return
    item.config.stash[shown] = True
    text = log.read_text(errors="replace")
    report.sections.append((title, f"{log}\n{text[-100000:]}"))
