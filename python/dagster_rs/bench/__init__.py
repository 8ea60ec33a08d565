"""Benchmarks of dagster-rs against stock Dagster: `python -m dagster_rs.bench <domain>`.

Each subcommand measures one domain's instance methods on a stock instance and a dagster-rs
instance side by side, in the same process, each on its own fresh DAGSTER_HOME.

`--backend postgres` (anywhere on the line; `sqlite` is the default) runs the PostgreSQL bench
instead (`pg`: runs, config and scheduling against stock dagster-postgres); a domain named first
(`runs --backend postgres`) becomes its `--domain`. It needs dagster-postgres, which only
`.venv-pg` holds: run from another interpreter, it re-executes itself with `.venv-pg/bin/python`.
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
        pg,
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
        metavar="{runs,events,assets,scheduling,run_launcher,graphql,multiprocess,pg}",
        required=True,
    )
    runs.add_parser(sub)
    events.add_parser(sub)
    assets.add_parser(sub)
    scheduling.add_parser(sub)
    run_launcher.add_parser(sub)
    graphql.add_parser(sub)
    multiprocess.add_parser(sub)
    pg.add_parser(sub)
    return parser


def postgres_argv(argv: Sequence[str]) -> list[str]:
    """`argv` with `--backend` taken out; for `--backend postgres`, as the `pg` subcommand's (a
    leading domain name becomes `--domain NAME`)."""
    from dagster_rs.bench.pg import DOMAINS

    rest: list[str] = []
    backend = "sqlite"
    items = iter(argv)
    for item in items:
        if item == "--backend":
            backend = next(items, "")
        elif item.startswith("--backend="):
            backend = item.partition("=")[2]
        else:
            rest.append(item)
    if backend not in ("sqlite", "postgres"):
        raise SystemExit(f"--backend: expected sqlite or postgres, got {backend!r}")
    if backend == "sqlite" or (rest and rest[0] == "pg"):
        return rest
    if rest and not rest[0].startswith("-"):
        if rest[0] not in DOMAINS:
            raise SystemExit(
                f"no PostgreSQL bench for {rest[0]!r}; --backend postgres covers {list(DOMAINS)}"
            )
        rest = ["--domain", rest[0], *rest[1:]]
    return ["pg", *rest]


def main(argv: Sequence[str] | None = None) -> int:
    import sys

    argv = postgres_argv(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "pg":
        from dagster_rs.bench.pg_env import NoPgVenv, reexec_if_needed

        try:
            reexec_if_needed(argv)
        except NoPgVenv as exc:
            raise SystemExit(f"dagster-rs bench --backend postgres: {exc}") from None
    args = build_parser().parse_args(argv)
    return int(args.func(args))


__all__ = ["build_parser", "main"]
