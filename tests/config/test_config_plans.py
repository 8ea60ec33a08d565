"""The query plans of the config domain's statements (`ConfigStore.query_plans`) on the runs.db
a stock instance created, on the one a dagster-rs instance created, and on a copy of stock's
where `ANALYZE` statistics say the opposite of the truth, each in every index layout Dagster's
migrations leave in runs.db (tests/index_layouts.py, 047's alone included): the same plans
everywhere, key lookups
through stock's unique index, and the only scans the one-row-per-daemon-type heartbeat table and
the one-row instance_info (src/config/plans.rs pins each plan line by line)."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from dagster_rs import _native
from tests.conftest import load_instance, write_home
from tests.index_layouts import LAYOUTS, make_layout

ALLOWED_SCANS = {
    "SCAN daemon_heartbeats": {"heartbeats"},
    "SCAN instance_info": {"run storage id"},
    "SCAN 2 CONSTANT ROWS": {"upsert cursor values"},
}


def _plans(home: Path) -> dict[str, list[str]]:
    store = _native.DagsterInstance(str(home), "off").config
    return {p["statement"]: p["plan"] for p in store.query_plans()}


@pytest.fixture(scope="module", params=(*LAYOUTS, "047"))
def homes(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    root = tmp_path_factory.mktemp(f"config_plans_{request.param}")
    out = {}
    for kind in ("stock", "rust"):
        home = write_home(root / f"{kind}_home", kind)
        inst = load_instance(home)
        inst.run_storage.set_cursor_values({f"k{i}": "v" for i in range(50)})
        inst.get_daemon_heartbeats()
        inst.dispose()
        make_layout(home / "history" / "runs.db", request.param)
        out[kind] = home
    misleading = root / "analyzed_home"
    shutil.copytree(out["stock"], misleading)
    conn = sqlite3.connect(misleading / "history" / "runs.db")
    try:
        conn.execute("ANALYZE")
        conn.execute("DELETE FROM sqlite_stat1")
        conn.executemany(
            "INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES (?, ?, ?)",
            [
                ("kvs", "idx_kvs_keys_unique", "1000000 1000000"),
                ("kvs", None, "10"),
                ("daemon_heartbeats", "sqlite_autoindex_daemon_heartbeats_1", "1000000 1000000"),
                ("daemon_heartbeats", None, "10"),
            ],
        )
        conn.commit()
    finally:
        conn.close()
    out["analyzed"] = misleading
    return out


def test_plans_alike_everywhere(homes: dict[str, Path]) -> None:
    plans = {kind: _plans(home) for kind, home in homes.items()}
    assert plans["stock"] == plans["rust"] == plans["analyzed"]


def test_lookups_use_indexes(homes: dict[str, Path]) -> None:
    plans = _plans(homes["analyzed"])
    assert plans["cursor values"] == ["SEARCH kvs USING INDEX idx_kvs_keys_unique (key=?)"]
    for statement, plan in plans.items():
        for line in plan:
            if line.startswith("SCAN"):
                assert statement in ALLOWED_SCANS.get(line, set()), (statement, line)
            assert "TEMP B-TREE" not in line, (statement, line)
