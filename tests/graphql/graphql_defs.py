"""The code location the GraphQL differential tests serve, in process and through a webserver.

Loaded by path (`python_file`) by the workspace and by the webserver's code server, and imported
as a module by the tests that materialize its assets and execute its job, so it imports nothing
from the test package. Everything runs in process (no step subprocesses on the 2-core machine).

- `daily_sales`: daily partitions over a fixed ten days (the statuses do not move with the clock);
  the partition `FAILING_DAY` raises, so a run fails and the partition shows as failed.
- `summary`: unpartitioned, with the asset check `positive`, whose outcome the run's config picks.
- `fruit`: dynamically partitioned (`fruits`), the partitions added by the workload.
- `flaky_job`: an op job that fails when its config says so; the schedule and the sensor target it.
"""

from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    Config,
    DailyPartitionsDefinition,
    Definitions,
    DynamicPartitionsDefinition,
    MaterializeResult,
    OpExecutionContext,
    RunRequest,
    ScheduleDefinition,
    SensorEvaluationContext,
    SkipReason,
    asset,
    in_process_executor,
    job,
    op,
    sensor,
)

LOCATION = "graphql_diff"
GROUP = "diff"
DAILY = DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-01-11")
FRUITS_NAME = "fruits"
FRUITS = DynamicPartitionsDefinition(name=FRUITS_NAME)
FAILING_DAY = "2024-01-05"
CHECK = "positive"
JOB = "flaky_job"
SCHEDULE = "hourly_flaky"
SENSOR = "flaky_watcher"


@asset(partitions_def=DAILY, group_name=GROUP)
def daily_sales(context: AssetExecutionContext) -> MaterializeResult:
    day = context.partition_key
    if day == FAILING_DAY:
        raise ValueError(f"no sales recorded for {day}")
    return MaterializeResult(metadata={"rows": int(day[-2:]) * 10, "day": day})


class SummaryConfig(Config):
    total: int = 1


@asset(group_name=GROUP, deps=[daily_sales], check_specs=[AssetCheckSpec(CHECK, asset="summary")])
def summary(config: SummaryConfig) -> MaterializeResult:
    return MaterializeResult(
        metadata={"total": config.total},
        check_results=[
            AssetCheckResult(
                check_name=CHECK, passed=config.total > 0, metadata={"total": config.total}
            )
        ],
    )


@asset(partitions_def=FRUITS, group_name=GROUP)
def fruit(context: AssetExecutionContext) -> MaterializeResult:
    return MaterializeResult(metadata={"fruit": context.partition_key})


class FlakyConfig(Config):
    fail: bool = False


@op
def flaky(context: OpExecutionContext, config: FlakyConfig) -> int:
    context.log.info(f"flaky op runs with fail={config.fail}")
    if config.fail:
        raise RuntimeError("flaky op failed as configured")
    return 1


@job(name=JOB, executor_def=in_process_executor)
def flaky_job() -> None:
    flaky()


hourly_flaky = ScheduleDefinition(
    name=SCHEDULE, job=flaky_job, cron_schedule="0 * * * *", execution_timezone="UTC"
)


@sensor(name=SENSOR, job=flaky_job, minimum_interval_seconds=30)
def flaky_watcher(context: SensorEvaluationContext):  # type: ignore[no-untyped-def]
    if context.cursor:
        return RunRequest(run_key=context.cursor)
    return SkipReason("no cursor yet")


defs = Definitions(
    assets=[daily_sales, summary, fruit],
    jobs=[flaky_job],
    schedules=[hourly_flaky],
    sensors=[flaky_watcher],
    executor=in_process_executor,
)
