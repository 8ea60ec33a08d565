"""Real mounts for the storage tests: a read-only bind mount of a home, a small tmpfs to fill.

The tests run as root and mount directly; where `mount` is refused (no CAP_SYS_ADMIN) the same
scenario script runs under `unshare -rm` (a user and mount namespace of its own, where it may
mount). Scenario scripts mount, act and always unmount themselves (`finally`); a namespace's
mounts also vanish with its process. `umount` below is the caller's safety net.
"""

from __future__ import annotations

import functools
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@functools.cache
def launcher() -> list[str] | None:
    """How to run a script that mounts: [] (directly), ["unshare", "-rm"], or None (neither)."""
    with tempfile.TemporaryDirectory() as d:
        probe = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", d], capture_output=True
        )
        if probe.returncode == 0:
            umount(Path(d))
            return []
    try:
        probe = subprocess.run(
            ["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt"],
            capture_output=True,
        )
    except FileNotFoundError:
        return None
    return ["unshare", "-rm"] if probe.returncode == 0 else None


def run_scenario(script: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    prefix = launcher()
    if prefix is None:
        pytest.skip("this machine allows neither mount nor unshare -rm")
    return subprocess.run(
        [*prefix, sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def umount(path: Path) -> None:
    """Unmount `path` if it is a mount point, lazily when it is busy."""
    for attempt in range(20):
        if not is_mount(path):
            return
        flags = ["-l"] if attempt >= 10 else []
        subprocess.run(["umount", *flags, str(path)], capture_output=True)
        time.sleep(0.05)


def is_mount(path: Path) -> bool:
    target = str(path.resolve())
    with open("/proc/self/mounts") as mounts:
        return any(line.split()[1] == target for line in mounts)


# Mount helpers for scenario scripts, pasted into them (they run in their own process).
SCRIPT_HELPERS = """
import subprocess, time

def is_mount(path):
    target = os.path.realpath(path)
    with open("/proc/self/mounts") as mounts:
        return any(line.split()[1] == target for line in mounts)

def umount(path):
    for attempt in range(20):
        if not is_mount(path):
            return
        flags = ["-l"] if attempt >= 10 else []
        subprocess.run(["umount", *flags, path], capture_output=True)
        time.sleep(0.05)

def bind_read_only(source, target):
    subprocess.run(["mount", "--bind", source, target], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", target], check=True)
    except BaseException:
        umount(target)
        raise
    assert os.statvfs(target).f_flag & os.ST_RDONLY
"""
