"""The code location of the run_launcher tests: one job whose run worker the default run
launcher starts in a subprocess."""

from dagster import Definitions, job, op


@op
def say_hello() -> str:
    return "hello"


@job
def hello_job() -> None:
    say_hello()


defs = Definitions(jobs=[hello_job])
