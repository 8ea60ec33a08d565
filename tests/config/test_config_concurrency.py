"""Many threads and processes setting cursors and heartbeats on one DAGSTER_HOME at once: every
batch is stored whole (a reader never sees half of one), no writer fails on the lock, and each
key ends with the value of the last batch that wrote it."""

from __future__ import annotations

from pathlib import Path

from dagster._daemon.types import DaemonHeartbeat

from tests.conftest import load_instance, write_home
from tests.processes import assert_clean_exit, communicate, run_threads, spawn, write_script

ROUNDS = 40
BATCH = 30


def _batch(writer: int, round_: int) -> dict[str, str]:
    """Each writer's own keys, plus keys every writer shares, all with the same value."""
    value = f"w{writer}-r{round_}"
    own = {f"own/{writer}/{i}": value for i in range(BATCH)}
    shared = {f"shared/{i}": value for i in range(BATCH)}
    return {**own, **shared}


def test_threads_setting_cursors(tmp_path: Path) -> None:
    inst = load_instance(write_home(tmp_path / "home", "rust"))
    try:
        storage = inst.daemon_cursor_storage
        storage.set_cursor_values(_batch(0, -1))  # every shared key exists: batches agree
        shared = {f"shared/{i}" for i in range(BATCH)}
        torn: list[set[str]] = []

        def write(writer: int) -> None:
            for r in range(ROUNDS):
                storage.set_cursor_values(_batch(writer, r))
                inst.add_daemon_heartbeat(DaemonHeartbeat(float(r), "SENSOR", str(writer), None))

        def read(_: int) -> None:
            for _ in range(ROUNDS * 2):
                values = set(storage.get_cursor_values(shared).values())
                if len(values) != 1:
                    torn.append(values)

        run_threads(lambda w: write(w) if w < 6 else read(w), [(w,) for w in range(8)])
        assert torn == []
        for writer in range(6):
            own = {f"own/{writer}/{i}" for i in range(BATCH)}
            assert set(storage.get_cursor_values(own).values()) == {f"w{writer}-r{ROUNDS - 1}"}
        last = set(storage.get_cursor_values(shared).values())
        assert len(last) == 1 and last.pop().endswith(f"-r{ROUNDS - 1}")
        beats = inst.get_daemon_heartbeats()
        assert list(beats) == ["SENSOR"] and beats["SENSOR"].timestamp == ROUNDS - 1
    finally:
        inst.dispose()


WRITER = """\
import sys
from dagster import DagsterInstance
from dagster._daemon.types import DaemonHeartbeat

home, writer, rounds, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
inst = DagsterInstance.from_config(home)
print("CLASS", type(inst.run_storage).__name__, flush=True)
for r in range(rounds):
    value = f"w{writer}-r{r}"
    pairs = {f"own/{writer}/{i}": value for i in range(batch)}
    pairs.update({f"shared/{i}": value for i in range(batch)})
    inst.daemon_cursor_storage.set_cursor_values(pairs)
    inst.add_daemon_heartbeat(DaemonHeartbeat(float(r), f"D{writer % 2}", str(writer), None))
    got = inst.daemon_cursor_storage.get_cursor_values({f"shared/{i}" for i in range(batch)})
    assert len(set(got.values())) == 1, got
inst.dispose()
"""


def test_processes_setting_cursors(tmp_path: Path) -> None:
    home = write_home(tmp_path / "home", "rust")
    inst = load_instance(home)
    # Every key exists before the writers start: the writer running stock's code would drop the
    # new keys of a batch that mixes new and existing ones (stock's loss, ARCHITECTURE.md).
    for writer in range(5):
        inst.daemon_cursor_storage.set_cursor_values(_batch(writer, -1))
    inst.dispose()
    script = write_script(tmp_path / "writer.py", WRITER)
    # Four dagster-rs writers, and one with the config domain off (stock's code, the core's
    # connections) on the same file.
    procs = [spawn(script, str(home), str(w), str(ROUNDS), str(BATCH)) for w in range(4)]
    procs.append(
        spawn(script, str(home), "4", str(ROUNDS), str(BATCH), domains="runs,events,assets,storage")
    )
    for w, proc in enumerate(procs):
        _, err = communicate(proc, timeout=300)
        assert_clean_exit(f"writer {w}", proc.returncode, err)
    inst = load_instance(home)
    try:
        storage = inst.daemon_cursor_storage
        for writer in range(5):
            own = {f"own/{writer}/{i}" for i in range(BATCH)}
            got = storage.get_cursor_values(own)
            assert set(got.values()) == {f"w{writer}-r{ROUNDS - 1}"}
        beats = inst.get_daemon_heartbeats()
        assert sorted(beats) == ["D0", "D1"]
        assert {b.timestamp for b in beats.values()} == {ROUNDS - 1.0}
    finally:
        inst.dispose()
