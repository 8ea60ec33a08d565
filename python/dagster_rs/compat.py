"""Which Dagster releases dagster-rs serves in Rust.

The native domains read and write Dagster's own files, so they are only as right as the Dagster
they were checked against: the package depends on `TESTED_RANGE`, the suite runs on the newest
release of it and a CI job on the oldest. A process that nevertheless runs another Dagster (an
install with `--no-deps`, a newer release than this package knows) keeps working: the instance
serves every domain with stock's code on stock's files and says so once.
"""

from __future__ import annotations

import functools

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

# Keep in step with pyproject.toml's `dependencies`.
TESTED_RANGE = ">=1.13,<1.14"


def installed_dagster() -> str:
    import dagster

    return str(dagster.__version__)


@functools.cache
def dagster_in_range(version: str | None = None) -> bool:
    """True when `version` (default: the installed Dagster) is in `TESTED_RANGE`. A version
    that does not parse (a source checkout's "1!0+dev") is outside it."""
    text = installed_dagster() if version is None else version
    try:
        parsed = Version(text)
    except InvalidVersion:
        return False
    return SpecifierSet(TESTED_RANGE).contains(parsed, prereleases=True)


def out_of_range_message(version: str | None = None) -> str:
    text = installed_dagster() if version is None else version
    return (
        f"dagster-rs is tested with dagster{TESTED_RANGE}; this process runs dagster {text}, so"
        " every domain is served by stock Dagster's code (on the same files). Install a"
        " dagster-rs release made for this Dagster to serve them from Rust."
    )


__all__ = ["TESTED_RANGE", "dagster_in_range", "installed_dagster", "out_of_range_message"]
