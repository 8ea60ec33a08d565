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
TESTED_RANGE = ">=1.13.26,<1.14"
# The range's oldest release, which CI's second virtualenv runs the storage tests on
# (scripts/test.sh); the suite itself runs on constraints.txt's pin, the newest.
OLDEST_TESTED = "1.13.26"


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


def only_what_stock_has(cls: type, stock: type, names: tuple[str, ...]) -> None:
    """Removes from `cls` each method of `names` that `stock` (the installed Dagster's class it
    stands for) lacks: the range's earlier releases predate some storage methods, and a storage
    must not answer where stock's would raise `AttributeError`."""
    for name in names:
        if not hasattr(stock, name) and name in vars(cls):
            delattr(cls, name)


def out_of_range_message(version: str | None = None) -> str:
    text = installed_dagster() if version is None else version
    return (
        f"dagster-rs is tested with dagster{TESTED_RANGE}; this process runs dagster {text}, so"
        " every domain is served by stock Dagster's code (on the same files). Install a"
        " dagster-rs release made for this Dagster to serve them from Rust."
    )


__all__ = [
    "OLDEST_TESTED",
    "TESTED_RANGE",
    "dagster_in_range",
    "installed_dagster",
    "only_what_stock_has",
    "out_of_range_message",
]
