"""Definitions the `dagster-daemon` end-to-end test serves through its workspace.yaml.

The daemon's code server imports this file by path (`python_file`), so it imports nothing from
the test package. A job of two trivial ops on the in-process executor (one run worker per run, no
step subprocesses: the 2-core CI machine runs the daemon, its code server and every run at once),
a schedule every minute and a sensor every 5 seconds, both running by default.

The sensor counts its evaluations in its cursor: evaluation n requests a run (run key
`evaluation-n`) when n is a multiple of `REQUEST_EVERY`, up to `MAX_REQUESTS` runs, and skips
otherwise; so a test knows which ticks succeeded, which skipped, and which runs to expect.
"""

from dagster import (
    DefaultScheduleStatus,
    DefaultSensorStatus,
    Definitions,
    OpExecutionContext,
    RunRequest,
    ScheduleDefinition,
    SensorEvaluationContext,
    SkipReason,
    in_process_executor,
    job,
    op,
    sensor,
)

JOB = "e2e_job"
SCHEDULE = "every_minute"
SENSOR = "every_third_evaluation"
SENSOR_INTERVAL = 5
REQUEST_EVERY = 3
MAX_REQUESTS = 2
# The line the first op logs: which instance class the run worker rebuilt from the run's
# InstanceRef (the daemon's code server starts the worker; the test reads the line back).
INSTANCE_CLASS_PREFIX = "run worker instance class: "


@op
def emit(context: OpExecutionContext) -> int:
    instance = type(context.instance)
    context.log.info(f"{INSTANCE_CLASS_PREFIX}{instance.__module__}.{instance.__qualname__}")
    return 1


@op
def add_one(value: int) -> int:
    return value + 1


@job(name=JOB, executor_def=in_process_executor)
def e2e_job() -> None:
    add_one(emit())


every_minute = ScheduleDefinition(
    name=SCHEDULE,
    job=e2e_job,
    cron_schedule="* * * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
)


@sensor(
    name=SENSOR,
    job=e2e_job,
    minimum_interval_seconds=SENSOR_INTERVAL,
    default_status=DefaultSensorStatus.RUNNING,
)
def every_third_evaluation(context: SensorEvaluationContext):
    n = int(context.cursor or 0) + 1
    context.update_cursor(str(n))
    if n % REQUEST_EVERY == 0 and n // REQUEST_EVERY <= MAX_REQUESTS:
        yield RunRequest(run_key=f"evaluation-{n}", tags={"e2e/evaluation": str(n)})
    else:
        yield SkipReason(f"evaluation {n} requests nothing")


defs = Definitions(jobs=[e2e_job], schedules=[every_minute], sensors=[every_third_evaluation])
