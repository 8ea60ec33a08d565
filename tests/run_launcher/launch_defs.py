"""The code location of the run_launcher tests: one job whose run worker the default run
launcher starts in a subprocess, and one whose first worker waits to be killed (the run
monitoring test resumes it)."""

import os
import time
from pathlib import Path

from dagster import Definitions, OpExecutionContext, in_process_executor, job, op

# The directory where `wait_for_the_kill` leaves a mark per run (set by the test, inherited by
# the run workers).
MARKS_ENV = "DAGSTER_RS_TEST_MARKS"


@op
def say_hello() -> str:
    return "hello"


@job
def hello_job() -> None:
    say_hello()


@op
def wait_for_the_kill(context: OpExecutionContext) -> str:
    """The first worker of a run marks that it got here and waits (to be SIGKILLed); the worker
    that resumes the run finds the mark and finishes."""
    mark = Path(os.environ[MARKS_ENV]) / context.run_id
    if not mark.exists():
        mark.write_text(str(os.getpid()))
        time.sleep(300)
    return "resumed"


@op
def after_the_kill(value: str) -> str:
    return value


# In process: killing the run worker kills the op with it (no orphaned step process).
@job(executor_def=in_process_executor)
def resumable_job() -> None:
    after_the_kill(wait_for_the_kill())


defs = Definitions(jobs=[hello_job, resumable_job])
