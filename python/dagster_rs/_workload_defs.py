"""The assets and jobs of `python -m dagster_rs.workload`.

They live in their own importable module so that the multiprocess executor's step subprocesses can
rebuild the job (`reconstructable(workload_graph_job)` points here) and load the same instance.
"""

# No `from __future__ import annotations`: Dagster inspects the real annotations (context, I/O).

import os
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetSelection,
    DailyPartitionsDefinition,
    Definitions,
    JobDefinition,
    MaterializeResult,
    asset,
    define_asset_job,
    multiprocess_executor,
)

WORKLOAD_TAG = "dagster_rs/workload"
GRAPH_JOB_NAME = "workload_graph_job"
DAILY_PARTITIONS = DailyPartitionsDefinition(start_date="2024-01-01")
PARTITION_KEYS = ("2024-01-01", "2024-01-02", "2024-01-03")

Rows = list[dict[str, Any]]


def _instance_label(context: AssetExecutionContext) -> dict[str, Any]:
    """Which instance class this step process runs on, recorded as materialization metadata."""
    inst = context.instance
    return {
        "instance_class": f"{type(inst).__module__}.{type(inst).__qualname__}",
        "rust_domains": ",".join(sorted(getattr(inst, "rust_domains", ()))) or "-",
        "pid": os.getpid(),
    }


@asset
def raw_orders() -> Rows:
    return [
        {"order_id": i, "customer_id": i % 7, "amount": round(10 + (i * 37) % 90 + 0.5, 2)}
        for i in range(200)
    ]


@asset
def raw_customers() -> Rows:
    regions = ("north", "south", "east", "west")
    return [{"customer_id": c, "region": regions[c % 4]} for c in range(7)]


@asset
def clean_orders(raw_orders: Rows) -> Rows:
    return [o for o in raw_orders if o["amount"] > 15]


@asset
def clean_customers(raw_customers: Rows) -> Rows:
    return sorted(raw_customers, key=lambda c: c["customer_id"])


@asset
def order_summary(clean_orders: Rows, clean_customers: Rows) -> dict[str, float]:
    region_of = {c["customer_id"]: c["region"] for c in clean_customers}
    totals: dict[str, float] = {}
    for order in clean_orders:
        region = region_of[order["customer_id"]]
        totals[region] = round(totals.get(region, 0.0) + order["amount"], 2)
    return totals


@asset
def sales_report(context: AssetExecutionContext, order_summary: dict[str, float]) -> str:
    lines = [f"{region}: {total:.2f}" for region, total in sorted(order_summary.items())]
    context.add_output_metadata({**_instance_label(context), "regions": len(lines)})
    return "\n".join(lines)


@asset(partitions_def=DAILY_PARTITIONS)
def daily_events(context: AssetExecutionContext) -> MaterializeResult:
    day = context.partition_key
    count = sum(ord(ch) for ch in day) % 100 + 1
    return MaterializeResult(metadata={"day": day, "events": count, **_instance_label(context)})


GRAPH_ASSETS = [
    raw_orders,
    raw_customers,
    clean_orders,
    clean_customers,
    order_summary,
    sales_report,
]

graph_job = define_asset_job(
    GRAPH_JOB_NAME,
    selection=AssetSelection.assets(*GRAPH_ASSETS),
    executor_def=multiprocess_executor,
    tags={WORKLOAD_TAG: "graph"},
)

defs = Definitions(assets=[*GRAPH_ASSETS, daily_events], jobs=[graph_job])


def workload_graph_job() -> JobDefinition:
    """The six-asset graph as a multiprocess job; the target of `reconstructable`."""
    return defs.resolve_job_def(GRAPH_JOB_NAME)
