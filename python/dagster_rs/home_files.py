"""The SQLite files of a DAGSTER_HOME, looked at without changing them.

What `dagster-rs info` and `dagster-rs check` know about a home's files: where stock puts them,
their alembic revision against stock Dagster's, and what state each is in. A file is examined
read-only (`mode=ro`); a file whose rollback journal is hot (an interrupted transaction that
SQLite rolls back on the next read-write open) is examined on a temporary copy with its journal,
where SQLite does that rollback, so the home is never written.

The states a file can be in, and what they mean:

- `ok`: a Dagster file at the alembic head.
- `older`: at an older revision stock knows. Stock serves it as it is; `dagster instance
  migrate` brings it to the head. Advice, not damage.
- `empty` (zero bytes), `no_tables` (a SQLite header and nothing else), `half_built` (some of
  Dagster's tables and no alembic stamp): what a writer killed (or out of disk) while creating
  the file leaves. Both implementations use such a file normally (they create what is missing).
- `absent`: a main file that is not there (created on first use, unless other files need it).
- `newer` (a revision stock does not know), `not_database`, `damaged` (integrity_check fails or
  SQLite calls the file malformed), `unreadable`: real damage.
"""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from dagster_rs import _native
from dagster_rs.errors import DagsterRsStorageError

# The database files of a SQLite DAGSTER_HOME, as stock lays them out.
RUNS_DB = "history/runs.db"
INDEX_DB = "history/runs/index.db"
SCHEDULES_DB = "schedules/schedules.db"
MAIN_DBS = (RUNS_DB, INDEX_DB, SCHEDULES_DB)
SHARDS_DIR = "history/runs"
SHARDS_GLOB = "history/runs/*.db"
KIND_OF = {RUNS_DB: "runs", INDEX_DB: "index", SCHEDULES_DB: "schedules"}

SQLITE_HEADER = b"SQLite format 3\x00"
# The first 8 bytes of a rollback journal that holds a transaction to roll back.
JOURNAL_MAGIC = bytes.fromhex("d9d505f920a163d7")

# States that are real damage (exit 1), benign crash leftovers, and advice.
DAMAGE = frozenset({"newer", "not_database", "damaged", "unreadable"})
LEFTOVERS = frozenset({"empty", "no_tables", "half_built"})

LEFTOVER_TEXT = {
    "empty": "empty (zero bytes: created by a killed writer; used normally)",
    "no_tables": "no tables (created by a killed writer; used normally)",
    "half_built": (
        "half-built (some of Dagster's tables, no alembic stamp: a writer was killed while"
        " creating it; the missing tables are created on first use)"
    ),
}

BUSY_TIMEOUT_S = 60.0


# -- reading -----------------------------------------------------------------------------------


@contextmanager
def read_only(path: str) -> Iterator[sqlite3.Connection]:
    """A read-only connection (`mode=ro`): nothing is created or written, the file is not
    migrated, and a missing file is an error rather than a new empty database."""
    uri = Path(path).resolve().as_uri() + "?mode=ro"
    with closing(sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S)) as conn:
        yield conn


def tables(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        " ORDER BY name"
    ).fetchall()
    return [name for (name,) in rows]


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def row_counts(path: str) -> dict[str, int]:
    with read_only(path) as conn:
        return {
            t: conn.execute(f"SELECT count(*) FROM {quoted(t)}").fetchone()[0] for t in tables(conn)
        }


def revision_of(conn: sqlite3.Connection) -> str | None:
    if "alembic_version" not in tables(conn):
        return None
    row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    return None if row is None else str(row[0])


def revision(path: str) -> str | None:
    """The file's alembic revision, None when it has no `alembic_version` row."""
    with read_only(path) as conn:
        return revision_of(conn)


def integrity(path: str) -> str:
    with read_only(path) as conn:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    return "; ".join(str(r[0]) for r in rows)


@dataclass(frozen=True)
class Revisions:
    """Stock Dagster's alembic revisions: its head and every revision it knows."""

    head: str
    known: frozenset[str]

    def describe(self, rev: str | None) -> tuple[bool, str]:
        """(at the head, what to say about `rev`)."""
        if rev == self.head:
            return True, f"{rev} (head)"
        if rev is None:
            return False, "no alembic revision stamped (not a Dagster file, or never created)"
        if rev in self.known:
            return False, f"{rev}: older than the head {self.head}; run `dagster instance migrate`"
        return False, f"{rev}: unknown to dagster (a newer Dagster?); head is {self.head}"

    def state(self, rev: str) -> str:
        if rev == self.head:
            return "ok"
        return "older" if rev in self.known else "newer"


def stock_revisions() -> Revisions:
    from alembic.script import ScriptDirectory
    from dagster._core.storage.runs.sqlite import sqlite_run_storage
    from dagster._core.storage.sql import get_alembic_config

    script = ScriptDirectory.from_config(get_alembic_config(sqlite_run_storage.__file__))
    heads = script.get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"stock Dagster has {len(heads)} alembic heads: {heads}")
    return Revisions(heads[0], frozenset(r.revision for r in script.walk_revisions()))


# -- the files of a home -----------------------------------------------------------------------


@dataclass(frozen=True)
class ShardEntry:
    path: str
    size: int
    mtime: float
    journal: bool  # a `-journal` file beside it


def shard_entries(home: str) -> list[ShardEntry]:
    """Every run shard (and the runless `.db`), not the index: one directory listing, one stat
    per file (cheap at a million shards)."""
    directory = os.path.join(home, SHARDS_DIR)
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return []
    names = {e.name for e in entries}
    out = []
    for e in entries:
        if not e.name.endswith(".db") or e.name == "index.db":
            continue
        try:
            st = e.stat()
        except FileNotFoundError:  # deleted while listed
            continue
        out.append(ShardEntry(e.path, st.st_size, st.st_mtime, e.name + "-journal" in names))
    return sorted(out, key=lambda s: s.path)


def shard_files(home: str) -> list[str]:
    return [s.path for s in shard_entries(home)]


def database_files(home: str) -> list[str]:
    """Every SQLite file of the home that exists, main files first."""
    main = [os.path.join(home, rel) for rel in MAIN_DBS if os.path.isfile(os.path.join(home, rel))]
    return main + shard_files(home)


@dataclass(frozen=True)
class Sample:
    """The shards examined: all of them, or (above `limit`) the newest, some at random, and
    every one a listing shows something about (zero bytes, a journal)."""

    examined: list[ShardEntry]
    total: int
    description: str


def sample_shards(entries: Sequence[ShardEntry], limit: int | None) -> Sample:
    total = len(entries)
    if limit is None or total <= limit:
        return Sample(list(entries), total, f"all {total:,} run shard(s)")
    half = limit // 2
    newest = sorted(entries, key=lambda s: s.mtime, reverse=True)[:half]
    chosen = {s.path for s in newest}
    rest = [s for s in entries if s.path not in chosen]
    # The same sample on every run over the same shards: a result can be reproduced.
    at_random = random.Random(total).sample(rest, min(limit - half, len(rest)))
    chosen |= {s.path for s in at_random}
    flagged = [s for s in entries if (s.size == 0 or s.journal) and s.path not in chosen]
    chosen |= {s.path for s in flagged}
    examined = [s for s in entries if s.path in chosen]
    return Sample(
        examined,
        total,
        f"{len(examined):,} of {total:,} run shards (the {len(newest):,} newest,"
        f" {len(at_random):,} at random, and every one that is empty or has a journal;"
        " --full examines all)",
    )


# -- one file's state --------------------------------------------------------------------------


@dataclass(frozen=True)
class FileReport:
    path: str
    kind: str  # runs | index | schedules | shard
    state: str
    revision: str | None = None
    # What integrity_check said ("ok"), None when it was not run.
    integrity: str | None = None
    # A hot rollback journal beside the file: the rest of the report is of a copy rolled back.
    hot_journal: bool = False
    error: str = ""
    table_names: tuple[str, ...] = field(default=())

    @property
    def damaged(self) -> bool:
        return self.state in DAMAGE

    @property
    def needs_copy(self) -> bool:
        """Opening it read-write changes it (a rollback, tables created, a stamp, a `-wal` a
        writer left folded in by the last close): an instance that reads it for check reads a
        copy."""
        return self.hot_journal or self.state in LEFTOVERS or wal_left(self.path)


def wal_left(path: str) -> bool:
    """A `-wal` with frames in it beside `path` (a writer that exited without closing, or one
    still open): the last connection to close folds it into the file."""
    try:
        return os.path.getsize(path + "-wal") > 0
    except OSError:
        return False


def journal_is_hot(path: str) -> bool:
    """A rollback journal with a transaction in it beside `path`. (A live writer's journal
    looks the same: then the copy examined is the file as it was before that transaction.)"""
    journal = path + "-journal"
    try:
        with open(journal, "rb") as f:
            return f.read(8) == JOURNAL_MAGIC
    except FileNotFoundError:
        return False


def copy_file(path: str, dest: str, journal: bool = False) -> None:
    """A copy of a database file (or of its rollback journal) at `dest`. The file is read
    through SQLite's VFS (`_native.read_database_file`), never opened here: POSIX locks belong to
    the process, and closing any descriptor of the file would drop every lock this process holds
    on it through SQLite (an instance open in this process)."""
    data = _native.read_database_file(path, journal=journal)
    with open(dest, "wb") as f:
        f.write(data)


def copy_tree(src: str, dst: str) -> None:
    """`shutil.copytree` for a directory holding database files (a home, a run-shard
    directory): each `.db` and its `-wal` / `-journal` copied by `copy_file`, the `-shm` left
    out (an index of the WAL that SQLite rebuilds; its locks are held through a descriptor of
    SQLite's own, so not even the VFS may open it here), other files as `copytree` copies them.
    Consistent only while nobody writes the files."""

    def copy(source: str, dest: str) -> None:
        if source.endswith(".db"):
            copy_file(source, dest)
        elif source.endswith((".db-wal", ".db-journal")):
            copy_file(source, dest, journal=True)
        elif not source.endswith(".db-shm"):
            shutil.copy2(source, dest)

    shutil.copytree(src, dst, copy_function=copy)


@contextmanager
def rolled_back_copy(path: str) -> Iterator[str]:
    """A copy of `path` and its side files in a temporary directory, a hot journal rolled back
    and a `-wal` folded in (what the next read-write open and last close of the real file do)."""
    with tempfile.TemporaryDirectory(prefix="dagster-rs-check-copy-") as tmp:
        copy = os.path.join(tmp, os.path.basename(path))
        # The side files first: a journal holds the pages the file had before the transaction,
        # a WAL the pages committed after what the file holds.
        for side in ("-journal", "-wal"):
            if os.path.exists(path + side):
                copy_file(path + side, copy + side, journal=True)
        copy_file(path, copy)
        with closing(sqlite3.connect(copy, timeout=BUSY_TIMEOUT_S)) as conn:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        yield copy


def examine(path: str, kind: str, revisions: Revisions, check_integrity: bool = True) -> FileReport:
    """What state the file at `path` is in (see the module's docstring). Read-only."""
    if not os.path.exists(path):
        return FileReport(path, kind, "absent")
    if journal_is_hot(path):
        with rolled_back_copy(path) as copy:
            report = examine(copy, kind, revisions, check_integrity)
        return replace(report, path=path, hot_journal=True)
    size = os.path.getsize(path)
    if size == 0:
        return FileReport(path, kind, "empty")
    try:
        header = _native.read_database_file(path, limit=len(SQLITE_HEADER))
    except DagsterRsStorageError as exc:
        return FileReport(path, kind, "unreadable", error=str(exc))
    if header != SQLITE_HEADER:
        return FileReport(path, kind, "not_database", error="no SQLite header")
    try:
        with read_only(path) as conn:
            names = tuple(tables(conn))
            rev = revision_of(conn)
            verdict = None
            if check_integrity:
                rows = conn.execute("PRAGMA integrity_check").fetchall()
                verdict = "; ".join(str(r[0]) for r in rows)
    except sqlite3.DatabaseError as exc:
        text = str(exc)
        if "readonly" in text and os.path.exists(path + "-journal"):
            # A journal SQLite wants to roll back that our header check did not recognize.
            with rolled_back_copy(path) as copy:
                report = examine(copy, kind, revisions, check_integrity)
            return replace(report, path=path, hot_journal=True)
        state = "not_database" if "not a database" in text else "damaged"
        if isinstance(exc, sqlite3.OperationalError) and "malformed" not in text:
            state = "unreadable"
        return FileReport(path, kind, state, error=text)
    if verdict is not None and verdict != "ok":
        return FileReport(path, kind, "damaged", rev, verdict, error=verdict, table_names=names)
    if not names:
        return FileReport(path, kind, "no_tables", integrity=verdict)
    if rev is None:
        return FileReport(path, kind, "half_built", None, verdict, table_names=names)
    return FileReport(path, kind, revisions.state(rev), rev, verdict, table_names=names)


def describe(report: FileReport, revisions: Revisions) -> str:
    """One line about the file's state."""
    state = report.state
    if state == "absent":
        text = "absent"
    elif state == "ok":
        text = f"ok, revision {report.revision} (head)"
    elif state == "older":
        text = (
            f"revision {report.revision}, older than the head {revisions.head}: stock serves it"
            " as it is; run `dagster instance migrate` to bring it to the head"
        )
    elif state == "newer":
        text = (
            f"revision {report.revision} is unknown to this Dagster (written by a newer one?);"
            f" its head is {revisions.head}"
        )
    elif state in LEFTOVER_TEXT:
        text = LEFTOVER_TEXT[state]
    elif state == "not_database":
        text = f"not a SQLite database ({report.error})"
    elif state == "damaged":
        text = f"damaged: {report.error}"
    else:
        text = f"cannot be read: {report.error}"
    if report.hot_journal:
        text += (
            "; a hot rollback journal beside it (an interrupted transaction, rolled back when the"
            " file is next opened; examined on a copy rolled back)"
        )
    return text
