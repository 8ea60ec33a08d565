"""A small code location for the instance-level tests: one job, a schedule and a sensor on it."""

from dagster import Definitions, RunRequest, ScheduleDefinition, SkipReason, job, op, sensor


@op
def noop() -> None:
    pass


@job
def tiny() -> None:
    noop()


every_minute = ScheduleDefinition(name="every_minute", cron_schedule="* * * * *", job=tiny)


@sensor(job=tiny, minimum_interval_seconds=5)
def watcher(context):  # type: ignore[no-untyped-def]
    if context.cursor:
        return RunRequest(run_key=context.cursor)
    return SkipReason("nothing yet")


defs = Definitions(jobs=[tiny], schedules=[every_minute], sensors=[watcher])
