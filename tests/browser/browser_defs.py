"""Definitions `dagster dev` serves in the browser test, through its workspace.yaml.

The code server imports this file by path (`python_file`), so it imports nothing from the test
package. Two unpartitioned assets (`numbers` -> `total`) with an asset check on `total`, a
statically partitioned asset (`by_region`), a job over the two unpartitioned assets, a schedule
and a sensor, both running by default. Every run uses the in-process executor (one run worker per
run, no step subprocesses: the 2-core CI machine runs webserver, daemon, code servers and runs at
once).

The sensor ticks every `SENSOR_INTERVAL` seconds: its first evaluation requests one run of
`by_region`'s job for partition `REQUESTED_PARTITION` (so the daemon, not the test, writes that
materialization), every later one skips with `SKIP_REASON`.
"""

import os
import time

from dagster import (
    AssetCheckResult,
    AssetExecutionContext,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    Definitions,
    RunRequest,
    ScheduleDefinition,
    SensorEvaluationContext,
    SkipReason,
    StaticPartitionsDefinition,
    asset,
    asset_check,
    define_asset_job,
    in_process_executor,
    sensor,
)

LOCATION = "browser_e2e"
JOB = "numbers_job"
PARTITIONED_JOB = "regions_job"
SCHEDULE = "numbers_daily"
SENSOR = "regions_sensor"
SENSOR_INTERVAL = 5
REGIONS = ["east", "north", "south", "west"]
REQUESTED_PARTITION = "north"
SKIP_REASON = "the requested region is done"
CHECK = "total_is_positive"
# What `numbers` logs: the run page's log table must show it while the run goes on.
LOG_LINE = "numbers: counted to"
# The run page must show the run while it runs: `numbers` waits, after logging, until the file
# this variable names exists (the test creates it once the page shows the step and the log line).
GATE_ENV = "DAGSTER_RS_BROWSER_GATE"
GATE_TIMEOUT = 120.0
# Which instance class the run worker rebuilt (the log line says it; the test reads it back).
INSTANCE_CLASS_PREFIX = "run worker instance class: "


@asset
def numbers(context: AssetExecutionContext) -> list[int]:
    instance = type(context.instance)
    context.log.info(f"{INSTANCE_CLASS_PREFIX}{instance.__module__}.{instance.__qualname__}")
    values = list(range(1, 11))
    context.log.info(f"{LOG_LINE} {len(values)}")
    gate = os.environ.get(GATE_ENV)
    deadline = time.monotonic() + GATE_TIMEOUT
    while gate and not os.path.exists(gate):
        if time.monotonic() > deadline:
            raise Exception(f"the gate {gate} was not opened within {GATE_TIMEOUT:.0f}s")
        time.sleep(0.2)
    return values


@asset
def total(numbers: list[int]) -> int:
    return sum(numbers)


@asset_check(asset=total, name=CHECK)
def total_is_positive(total: int) -> AssetCheckResult:
    return AssetCheckResult(passed=total > 0, metadata={"total": total})


@asset(partitions_def=StaticPartitionsDefinition(REGIONS))
def by_region(context: AssetExecutionContext) -> str:
    return context.partition_key.upper()


numbers_job = define_asset_job(JOB, selection=[numbers, total])
regions_job = define_asset_job(PARTITIONED_JOB, selection=[by_region])

numbers_daily = ScheduleDefinition(
    name=SCHEDULE,
    job=numbers_job,
    # Once a year (midnight, January 1st): running, so the scheduler daemon keeps its state,
    # but no tick of it launches a run into what the test reads.
    cron_schedule="0 0 1 1 *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
)


@sensor(
    name=SENSOR,
    job=regions_job,
    minimum_interval_seconds=SENSOR_INTERVAL,
    default_status=DefaultSensorStatus.RUNNING,
)
def regions_sensor(context: SensorEvaluationContext):
    if context.cursor:
        yield SkipReason(SKIP_REASON)
        return
    context.update_cursor(REQUESTED_PARTITION)
    yield RunRequest(run_key=REQUESTED_PARTITION, partition_key=REQUESTED_PARTITION)


defs = Definitions(
    assets=[numbers, total, by_region],
    asset_checks=[total_is_positive],
    jobs=[numbers_job, regions_job],
    schedules=[numbers_daily],
    sensors=[regions_sensor],
    executor=in_process_executor,
)
