"""The seed shared by the read-only tests and the tests that clone its homes.

`seed` stores the same asset events in the same order on any instance (explicit run ids and
timestamps, tests/assets/conftest.py): an unpartitioned asset materialized, observed, planned and
failed across runs; a statically partitioned asset with materializations, a failure, an unfinished
planned partition, a partition observation and a planned partitions *subset*; a multi-partitioned
asset with its dimension tags; an observed-only asset; keys chosen for prefix search (nested keys,
`_` and case, non-ASCII); wiped assets (gone, back after a later materialization, "back" only
through an event older than the wipe, back through an observation); runless events and a freshness
state change. Runs r1 and r4 succeeded, r2 failed, r3 and r5 are still going.
"""

from __future__ import annotations

from dagster import (
    AssetKey,
    AssetMaterialization,
    AssetObservation,
    DagsterInstance,
    MultiPartitionsDefinition,
    StaticPartitionsDefinition,
)
from dagster._core.definitions.freshness import FreshnessState, FreshnessStateChange
from dagster._core.storage.dagster_run import DagsterRunStatus

from tests.assets.conftest import add_run, failed, mat, now, obs, planned, run_ids, store, t

R = run_ids("r1", "r2", "r3", "r4", "r5")
DV = "dagster/data_version"
CV = "dagster/code_version"

PLAIN = AssetKey("plain")
LETTERS = AssetKey("letters")
GRID = AssetKey("grid")
OBS_ONLY = AssetKey("obs_only")
NESTED_A = AssetKey(["nested", "a"])
NESTED_B = AssetKey(["nested", "b"])
NEST = AssetKey("nest")
LOWER_P = AssetKey("p")
A_UNDERSCORE_B = AssetKey("a_b")
AB = AssetKey("ab")
UNICODE = AssetKey(["é", "ü"])
GONE = AssetKey("wiped_gone")
BACK = AssetKey("wiped_back")
LATE = AssetKey("wiped_late")
OBSERVED_BACK = AssetKey("wiped_observed")
RUNLESS = AssetKey("runless")
UNKNOWN = AssetKey("never_seen")

LETTERS_DEF = StaticPartitionsDefinition(["x", "y", "z"])
GRID_DEF = MultiPartitionsDefinition(
    {
        "date": StaticPartitionsDefinition(["2024-01-01", "2024-01-02"]),
        "color": StaticPartitionsDefinition(["red", "blue"]),
    }
)
GRID_CELLS = [
    ("2024-01-01", "red"),
    ("2024-01-01", "blue"),
    ("2024-01-02", "red"),
    ("2024-01-02", "blue"),
]

PREFIX_KEYS = [NESTED_A, NESTED_B, NEST, LOWER_P, A_UNDERSCORE_B, AB, UNICODE]
VISIBLE = [PLAIN, LETTERS, GRID, OBS_ONLY, *PREFIX_KEYS, BACK, OBSERVED_BACK, RUNLESS]
WIPED_HIDDEN = [GONE, LATE]
EVERY_KEY = [*VISIBLE, *WIPED_HIDDEN, UNKNOWN]


def cell(date: str, color: str) -> str:
    """The partition string of a (date, color) MultiPartitionKey: dimensions sorted by name."""
    return f"{color}|{date}"


def grid_tags(date: str, color: str, version: str) -> dict[str, str]:
    return {"dagster/partition/date": date, "dagster/partition/color": color, DV: version}


def seed(inst: DagsterInstance) -> None:
    add_run(inst, R["r1"])
    add_run(inst, R["r2"], DagsterRunStatus.FAILURE)
    add_run(inst, R["r3"], DagsterRunStatus.STARTED)
    add_run(inst, R["r4"])
    add_run(inst, R["r5"], DagsterRunStatus.STARTED)
    r1, r2, r3, r4, r5 = (R[k] for k in ("r1", "r2", "r3", "r4", "r5"))
    store(
        inst,
        [
            # plain: planned+materialized (r1), observed, again (r2), planned and unfinished (r3)
            planned(r1, PLAIN, t(1)),
            mat(r1, PLAIN, t(2), tags={DV: "d1", CV: "v1"}, metadata={"rows": 1}),
            obs(r1, PLAIN, t(3), tags={DV: "d1"}),
            planned(r2, PLAIN, t(9)),
            mat(r2, PLAIN, t(10), tags={DV: "d2", CV: "v2"}),
            planned(r3, PLAIN, t(11)),
            # letters: x by r1, y planned and failed by r2, z planned by r3 (unfinished)
            planned(r1, LETTERS, t(4), "x"),
            mat(r1, LETTERS, t(5), "x", tags={DV: "x1"}),
            planned(r2, LETTERS, t(6), "y"),
            failed(r2, LETTERS, t(7), "y"),
            planned(r3, LETTERS, t(8), "z"),
            # r4 materializes x (new data version) and y; z is observed; r5 plans a subset
            planned(r4, LETTERS, t(12), "x"),
            mat(r4, LETTERS, t(13), "x", tags={DV: "x2"}),
            mat(r4, LETTERS, t(14), "y", tags={DV: "y1"}),
            obs(r4, LETTERS, t(15), "z", tags={DV: "z0"}),
            planned(r5, LETTERS, t(16), subset=LETTERS_DEF.subset_with_partition_keys(["x", "z"])),
            # grid: every cell once, then one cell again with a new data version
            *(
                mat(r4, GRID, t(17 + n), cell(d, c), tags=grid_tags(d, c, f"g{n}"))
                for n, (d, c) in enumerate(GRID_CELLS)
            ),
            mat(
                r4,
                GRID,
                t(21),
                cell("2024-01-01", "red"),
                tags=grid_tags("2024-01-01", "red", "g9"),
            ),
            # observed only
            obs(r4, OBS_ONLY, t(22), tags={DV: "o1"}),
            obs(r4, OBS_ONLY, t(23)),
            # keys for prefix search
            *(mat(r1, key, t(24 + n)) for n, key in enumerate(PREFIX_KEYS)),
            # failures: a failed unpartitioned materialization, a skipped partition
            failed(r1, PLAIN, t(31)),
            failed(r1, LETTERS, t(32), "z", skipped=True),
            # to be wiped
            mat(r1, GONE, t(33)),
            mat(r1, BACK, t(34)),
            mat(r1, LATE, t(35), tags={DV: "late"}),
            mat(r1, OBSERVED_BACK, t(37)),
        ],
    )
    inst.wipe_assets([GONE, BACK, LATE, OBSERVED_BACK])
    # After the wipe: a materialization stamped now brings BACK back; one stamped before the wipe
    # (stored after it) does not bring LATE back; an observation brings OBSERVED_BACK back.
    store(
        inst,
        [
            mat(r4, BACK, now(), tags={DV: "back"}),
            mat(r4, LATE, t(36), tags={DV: "late2"}),
            obs(r4, OBSERVED_BACK, now()),
        ],
    )
    inst.report_runless_asset_event(AssetMaterialization(asset_key=RUNLESS, tags={DV: "rl"}))
    inst.report_runless_asset_event(AssetObservation(asset_key=RUNLESS, partition="p1"))
    inst.report_runless_asset_event(
        FreshnessStateChange(
            key=PLAIN,
            new_state=FreshnessState.FAIL,
            previous_state=FreshnessState.PASS,
            state_change_timestamp=t(40),
        )
    )
