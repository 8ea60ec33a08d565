"""Run Dagster's CLI on many homes in one process: `python cli_batch.py JOBS.json RESULTS.json`.

JOBS.json is a list of {"home": path, "args": [...]} (e.g. ["instance", "migrate"]), a job
with "copy_from" first copies that home (one an earlier job of the batch upgraded) to "home". Each job
runs the `dagster` console script's own click group (`dagster._cli.cli`, what `dagster ...`
runs) with DAGSTER_HOME set to its home, one after another; the home's dagster.yaml chooses the
instance class. RESULTS.json gets, per job, the exit code, the output and the traceback of an
exception. One process for a batch saves the CLI's import (~1.5 s) per call: the suite upgrades
every fixture once per session this way.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sys
import time
import traceback


def run(home: str, args: list[str]) -> dict:
    from dagster._cli import ENV_PREFIX, cli

    os.environ["DAGSTER_HOME"] = home
    out = io.StringIO()
    code = 0
    tb = ""
    started = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            cli.main(
                args=args, prog_name="dagster", auto_envvar_prefix=ENV_PREFIX, standalone_mode=False
            )
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:  # noqa: BLE001 - reported to the test, which fails on it
            code = 1
            tb = traceback.format_exc()
    return {
        "home": home,
        "args": args,
        "code": code,
        "output": out.getvalue(),
        "traceback": tb,
        "seconds": round(time.perf_counter() - started, 2),
    }


def main() -> None:
    jobs_path, results_path = sys.argv[1], sys.argv[2]
    with open(jobs_path) as f:
        jobs = json.load(f)
    results = []
    for job in jobs:
        if "copy_from" in job:
            # A copy of a home an earlier job upgraded (e.g. migrate, then reindex on a copy);
            # skipped when that job failed.
            src = job["copy_from"]
            if not any(r["home"] == src and r["code"] == 0 for r in results):
                continue
            shutil.copytree(src, job["home"])
        results.append(run(job["home"], job["args"]))
    with open(results_path, "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
