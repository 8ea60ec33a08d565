"""Dagster definitions for the workload tests, at module level so that step subprocesses of the
multiprocess executor can import them again (`reconstructable` needs an importable module).

The ops report which instance class the step subprocess rebuilt from the run's `InstanceRef` and
what that instance sees of the run, so a test can check the subprocesses really used dagster-rs.
"""

from dagster import (
    AssetExecutionContext,
    OpExecutionContext,
    StaticPartitionsDefinition,
    asset,
    job,
    multiprocess_executor,
    op,
)

COLORS = StaticPartitionsDefinition(["red", "green", "blue"])


@asset
def raw_numbers() -> list[int]:
    return [1, 2, 3, 4]


@asset
def doubled(raw_numbers: list[int]) -> list[int]:
    return [2 * n for n in raw_numbers]


@asset
def total(doubled: list[int]) -> int:
    return sum(doubled)


@asset(partitions_def=COLORS)
def colored(context: AssetExecutionContext) -> str:
    return f"paint:{context.partition_key}"


@asset
def exploding() -> int:
    raise RuntimeError("this asset fails on purpose")


UNPARTITIONED_ASSETS = [raw_numbers, doubled, total]


def _observed(context: OpExecutionContext) -> dict[str, object]:
    """What the (step subprocess's) instance is and sees of the current run."""
    instance = context.instance
    run = instance.get_run_by_id(context.run_id)
    return {
        "instance_class": f"{type(instance).__module__}.{type(instance).__qualname__}",
        "run_storage_class": type(instance.run_storage).__name__,
        "event_log_storage_class": type(instance.event_log_storage).__name__,
        "rust_domains": sorted(getattr(instance, "rust_domains", [])),
        "run_status": run.status.value if run else None,
        "run_job_name": run.job_name if run else None,
    }


@op
def report_a(context: OpExecutionContext) -> dict[str, object]:
    return _observed(context)


@op
def report_b(context: OpExecutionContext) -> dict[str, object]:
    context.log.info("second report")
    return _observed(context)


# Two independent steps: each runs in its own subprocess, side by side.
@job(executor_def=multiprocess_executor.configured({"max_concurrent": 2}), tags={"workload": "mp"})
def multiprocess_job() -> None:
    report_a()
    report_b()
