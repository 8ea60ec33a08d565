"""A throwaway PostgreSQL cluster: the test suite's and `dagster-rs bench --backend postgres`'s.

`PgCluster` runs `initdb` and then the `postgres` server itself (not `pg_ctl start`, whose
daemonized postmaster would outlive a killed parent) as a child of this process, with the data
directory and the unix socket in one temporary directory. When this process runs as root (tests and
CI do) both run as the `postgres` user (initdb refuses root). The cluster goes away whatever
happens to its owner:

- `stop()` (a fixture's finalizer) and an `atexit` hook shut it down and remove the directory;
- the server gets PR_SET_PDEATHSIG=SIGQUIT, so a SIGKILLed owner (a killed pytest) takes the
  postmaster down with it (immediate shutdown: its backends follow); the signal is tied to the
  *thread* that started it, so start clusters from a thread that lives as long as they should;
- the next `PgCluster` started on the machine removes directories whose owner died before it could.

The server listens on its unix socket only, unless `tcp=True` (127.0.0.1 on a free port; the port
number also names the socket, so it is picked free either way). Authentication is `trust`; the
superuser is `postgres`. Durability settings: `fsync=off` (only an OS crash loses writes, which no
test makes); `synchronous_commit` stays on, so a commit acknowledged before `restart(mode="immediate")`
survives it, as on a real server.
"""

from __future__ import annotations

import atexit
import ctypes
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
import weakref
from collections.abc import Callable
from pathlib import Path

_PREFIX = "dagrs-pg-"
_OWNER_FILE = "owner.pid"
_PR_SET_PDEATHSIG = 1
_TMPFS_ROOM = 1 << 30


class PgClusterError(RuntimeError):
    """The cluster could not be created, started or stopped; the message carries the server log."""


def find_bin_dir() -> Path | None:
    """The directory holding `initdb` and `postgres`: $DAGSTER_RS_PG_BIN, then PATH, then the
    newest Debian `/usr/lib/postgresql/<major>/bin` (Debian does not put them on PATH)."""
    chosen = os.environ.get("DAGSTER_RS_PG_BIN")
    if chosen:
        return Path(chosen)
    on_path = shutil.which("initdb")
    if on_path:
        return Path(os.path.realpath(on_path)).parent
    majors = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    return Path(majors[-1]).parent if majors else None


def available() -> bool:
    bin_dir = find_bin_dir()
    return bin_dir is not None and (bin_dir / "postgres").exists()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _default_root() -> Path:
    # tmpfs when it has room: initdb and CREATE DATABASE are mostly small writes.
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free > _TMPFS_ROOM:
        return shm
    return Path(tempfile.gettempdir())


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def pids_in(data_dir: Path) -> list[int]:
    """Processes whose working directory is `data_dir`: every postgres process of that cluster
    (the postmaster and its backends chdir there), and nothing else."""
    target = os.path.realpath(data_dir)
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry}/cwd") == target:
                found.append(int(entry))
        except OSError:
            continue
    return found


def sweep_stale(root: Path | None = None) -> list[Path]:
    """Remove cluster directories under `root` whose owner process is gone (a killed pytest),
    killing any server still running in them. Returns what was removed."""
    removed = []
    for base in glob.glob(str((root or _default_root()) / f"{_PREFIX}*")):
        owner_file = Path(base) / _OWNER_FILE
        try:
            owner = int(owner_file.read_text().strip())
        except (OSError, ValueError):
            continue  # not ours, or still being created
        if _pid_alive(owner):
            continue
        for pid in pids_in(Path(base) / "data"):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(base, ignore_errors=True)
        removed.append(Path(base))
    return removed


def _as_postgres_user() -> tuple[int, int] | None:
    if os.geteuid() != 0:
        return None
    import pwd

    entry = pwd.getpwnam("postgres")
    return entry.pw_uid, entry.pw_gid


def _preexec(ids: tuple[int, int] | None, parent: int, deathsig: bool) -> Callable[[], None]:
    libc = ctypes.CDLL(None, use_errno=True)  # loaded before the fork, not in the child

    def run() -> None:
        os.setsid()  # a ^C in the owner's terminal is the owner's to handle, not the server's
        if ids is not None:
            uid, gid = ids
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
        if deathsig:
            # After setuid: the kernel clears the parent-death signal on a credential change.
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGQUIT, 0, 0, 0)
            if os.getppid() != parent:  # the owner died before prctl took effect
                os._exit(1)

    return run


class PgCluster:
    """One throwaway cluster. `start()`, then `url(db)`, `create_database()`, `psql()`;
    `restart()` mid-test; `stop()` removes everything (also at exit, and if the owner is killed)."""

    def __init__(
        self,
        root: Path | None = None,
        *,
        max_connections: int = 100,
        tcp: bool = False,
        settings: dict[str, str] | None = None,
    ) -> None:
        bin_dir = find_bin_dir()
        if bin_dir is None:
            raise PgClusterError(
                "no PostgreSQL server binaries (initdb) found; see scripts/setup.sh"
            )
        self.bin_dir = bin_dir
        self.root = root or _default_root()
        self.max_connections = max_connections
        self.tcp = tcp
        self.settings = dict(settings or {})
        self.port = _free_port()
        self.base: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._ids = _as_postgres_user()
        self._finalizer: weakref.finalize | None = None
        self._removed = False

    # -- paths -----------------------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        assert self.base is not None, "cluster not created"
        return self.base / "data"

    @property
    def socket_dir(self) -> Path:
        assert self.base is not None, "cluster not created"
        return self.base / "sock"

    @property
    def log_path(self) -> Path:
        assert self.base is not None, "cluster not created"
        return self.base / "server.log"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def url(self, dbname: str = "postgres") -> str:
        """libpq/SQLAlchemy/psycopg2 URL over the unix socket (the `postgres` crate reads it too)."""
        return f"postgresql://postgres@/{dbname}?host={self.socket_dir}&port={self.port}"

    def tcp_url(self, dbname: str = "postgres") -> str:
        if not self.tcp:
            raise PgClusterError("cluster started without tcp=True")
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    # -- life cycle ------------------------------------------------------------------------------
    def start(self) -> PgCluster:
        """initdb (once) and start the server; returns self when it accepts connections."""
        if self._removed:
            raise PgClusterError("cluster already stopped and removed")
        if self.base is None:
            sweep_stale(self.root)
            self.base = Path(tempfile.mkdtemp(prefix=_PREFIX, dir=self.root))
            (self.base / _OWNER_FILE).write_text(str(os.getpid()))
            self.socket_dir.mkdir()
            self.data_dir.mkdir()
            if self._ids is not None:
                for path in (self.base, self.socket_dir, self.data_dir):
                    os.chown(path, *self._ids)
            os.chmod(self.base, 0o755)
            os.chmod(self.data_dir, 0o700)
            # Cleanup however the owner ends normally; PDEATHSIG covers a kill.
            self._finalizer = weakref.finalize(self, _cleanup, self.base, self.data_dir)
            self._run(
                [
                    str(self.bin_dir / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-sync",
                ],
                what="initdb",
            )
        self._launch()
        return self

    def _server_args(self) -> list[str]:
        settings = {
            "listen_addresses": "127.0.0.1" if self.tcp else "",
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_dir),
            "max_connections": str(self.max_connections),
            "fsync": "off",
            "full_page_writes": "off",
            "shared_buffers": "32MB",
            "logging_collector": "off",
            "log_min_messages": "warning",
        }
        settings.update(self.settings)
        args = [str(self.bin_dir / "postgres"), "-D", str(self.data_dir)]
        for key, value in settings.items():
            args += ["-c", f"{key}={value}"]
        return args

    def _launch(self) -> None:
        if self.pid is not None:
            return
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it
        try:
            self._proc = subprocess.Popen(
                self._server_args(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=self.base,
                preexec_fn=_preexec(self._ids, os.getpid(), deathsig=True),
            )
        finally:
            log.close()
        _RUNNING.add(self)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60.0) -> None:
        # postmaster.pid's eighth line turns "ready" once it accepts connections (PostgreSQL >= 10).
        pid_file = self.data_dir / "postmaster.pid"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise PgClusterError(f"postgres exited with {self._proc.returncode}:\n{self.log()}")
            try:
                lines = pid_file.read_text().splitlines()
            except OSError:
                lines = []
            if len(lines) >= 8 and lines[7].strip() == "ready":
                return
            time.sleep(0.02)
        raise PgClusterError(f"postgres not ready after {timeout}s:\n{self.log()}")

    def shutdown(self, mode: str = "fast", timeout: float = 60.0) -> None:
        """Stop the server, keeping the data: `smart` waits for clients, `fast` disconnects them
        (a clean checkpoint), `immediate` is a crash (recovery from WAL at the next start)."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        sig = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}[mode]
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        # An immediate shutdown leaves backends to exit on their own, a moment later.
        deadline = time.monotonic() + timeout
        while pids_in(self.data_dir) and time.monotonic() < deadline:
            time.sleep(0.02)
        _RUNNING.discard(self)

    def restart(self, mode: str = "fast") -> None:
        """The server restarted under its clients: their connections break, the data stays, the
        URL is unchanged."""
        self.shutdown(mode)
        self._launch()

    def stop(self) -> None:
        """Shut down and remove the cluster's directory. Idempotent."""
        self.shutdown("immediate")
        if self._finalizer is not None:
            self._finalizer()
        self._removed = True

    def __enter__(self) -> PgCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- SQL -------------------------------------------------------------------------------------
    def psql(self, sql: str, dbname: str = "postgres") -> str:
        """Run `sql` with psql (tuples only, unaligned, `|`-separated); raises on any error."""
        psql = shutil.which("psql") or str(self.bin_dir / "psql")
        result = subprocess.run(
            [
                psql,
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                self.url(dbname),
                "-c",
                sql,
            ],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise PgClusterError(f"psql failed ({result.returncode}): {result.stderr.strip()}")
        return result.stdout

    def create_database(self, name: str | None = None, template: str = "template1") -> str:
        """A new empty database (copied from `template`); returns its URL. A database prepared
        once (say, with stock's schema) and then marked a template makes per-test copies cheap."""
        name = name or f"t_{uuid.uuid4().hex[:16]}"
        # FILE_COPY: for a small template it beats PG15's default WAL_LOG strategy several times.
        self.psql(f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY FILE_COPY')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except (OSError, AssertionError):
            return ""

    def _run(self, args: list[str], what: str) -> None:
        result = subprocess.run(
            args,
            capture_output=True,
            text=True,
            cwd=self.base,
            preexec_fn=_preexec(self._ids, os.getpid(), deathsig=False),
        )
        if result.returncode != 0:
            raise PgClusterError(
                f"{what} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
            )


def _cleanup(base: Path, data_dir: Path) -> None:
    for pid in pids_in(data_dir):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 10
    while pids_in(data_dir) and time.monotonic() < deadline:
        time.sleep(0.02)
    shutil.rmtree(base, ignore_errors=True)


_RUNNING: weakref.WeakSet[PgCluster] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for cluster in list(_RUNNING):
        cluster.stop()


def main() -> None:
    """`python -m dagster_rs.pg_cluster`: start a throwaway cluster, print its `postgres`
    database's URL on one line, and keep it until standard input closes (or SIGTERM/SIGINT);
    then stop and remove it. For callers that are not Python: the Rust tests, a bench driver."""
    import sys

    cluster = PgCluster(max_connections=int(os.environ.get("DAGSTER_RS_PG_MAX_CONNECTIONS", "100")))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        cluster.start()
        print(cluster.url(), flush=True)
        try:
            while sys.stdin.read(65536):
                pass
        except KeyboardInterrupt:
            pass
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
