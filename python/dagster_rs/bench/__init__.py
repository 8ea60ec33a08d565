"""Benchmarks of dagster-rs against stock Dagster: `python -m dagster_rs.bench <domain>`.

Each subcommand measures one domain's instance methods on a stock instance and a dagster-rs
instance side by side, in the same process, each on its own fresh DAGSTER_HOME.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    from dagster_rs.bench import (
        assets,
        events,
        graphql,
        multiprocess,
        run_launcher,
        runs,
        scheduling,
    )

    parser = argparse.ArgumentParser(
        prog="python -m dagster_rs.bench",
        description="Benchmark dagster-rs against stock Dagster, one domain per subcommand.",
    )
    sub = parser.add_subparsers(
        dest="bench",
        metavar="{runs,events,assets,scheduling,run_launcher,graphql,multiprocess}",
        required=True,
    )
    runs.add_parser(sub)
    events.add_parser(sub)
    assets.add_parser(sub)
    scheduling.add_parser(sub)
    run_launcher.add_parser(sub)
    graphql.add_parser(sub)
    multiprocess.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


__all__ = ["build_parser", "main"]
