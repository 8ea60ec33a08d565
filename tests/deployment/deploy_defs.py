"""Definitions the deployment tests hand to Dagster's CLI (`-f deploy_defs.py`).

The CLI's code server imports this file by path, so it imports nothing from the test package.
Two assets (one downstream of the other), a job whose op records which instance its run worker
rebuilt from the run's `InstanceRef`, a schedule and a sensor that are stopped by default (the
tests start and stop them through the CLI).
"""

import os

from dagster import (
    Definitions,
    MetadataValue,
    OpExecutionContext,
    Output,
    RunRequest,
    ScheduleDefinition,
    SensorEvaluationContext,
    asset,
    in_process_executor,
    job,
    multiprocess_executor,
    op,
    sensor,
)

JOB = "deploy_job"
MULTIPROCESS_JOB = "deploy_multiprocess_job"
SCHEDULE = "deploy_schedule"
SENSOR = "deploy_sensor"
# The output metadata entry holding what the step saw of its instance.
INSTANCE_ENTRY = "instance"


@asset
def upstream() -> int:
    return 1


@asset
def downstream(upstream: int) -> int:
    return upstream + 1


def describe_instance(context: OpExecutionContext) -> dict:
    """What the process running this step rebuilt from the run's InstanceRef."""
    instance = context.instance
    domains = getattr(instance, "rust_domains", None)
    return {
        "class": f"{type(instance).__module__}.{type(instance).__qualname__}",
        "rust_domains": sorted(domains) if domains is not None else None,
        "durability": getattr(instance, "durability", None),
        "run_storage": type(instance.run_storage).__name__,
        "event_log_storage": type(instance.event_log_storage).__name__,
        "schedule_storage": type(instance.schedule_storage).__name__,
        "pid": os.getpid(),
    }


@op
def report_instance(context: OpExecutionContext):
    yield Output(1, metadata={INSTANCE_ENTRY: MetadataValue.json(describe_instance(context))})


@op
def add_one(value: int) -> int:
    return value + 1


@job(name=JOB, executor_def=in_process_executor)
def deploy_job() -> None:
    add_one(report_instance())


@job(name=MULTIPROCESS_JOB, executor_def=multiprocess_executor)
def deploy_multiprocess_job() -> None:
    add_one(report_instance())


deploy_schedule = ScheduleDefinition(
    name=SCHEDULE, job=deploy_job, cron_schedule="0 0 * * *", execution_timezone="UTC"
)


@sensor(name=SENSOR, job=deploy_job, minimum_interval_seconds=30)
def deploy_sensor(_context: SensorEvaluationContext):
    yield RunRequest(run_key="once")


defs = Definitions(
    assets=[upstream, downstream],
    jobs=[deploy_job, deploy_multiprocess_job],
    schedules=[deploy_schedule],
    sensors=[deploy_sensor],
)
