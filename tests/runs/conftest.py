"""Fixtures for the runs-domain compatibility suite.

Creating a DAGSTER_HOME from scratch runs every storage's alembic stamping and data migrations,
which costs a few hundred milliseconds per instance. Most tests here need a fresh, empty pair but
do not test initialisation itself, so `fast_pair` copies a pair of homes initialised once per
session (runs.db included, each written by its own implementation) and opens instances on the
copies (tests/homes.py). Tests about a brand-new home (alembic version, built indexes, storage id)
use the root `pair` fixture instead; `tests.homes.seeded_pair` makes module-scoped seeded pairs
for read-only tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import homes
from tests.conftest import InstancePair


@pytest.fixture(scope="session")
def template_homes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One initialised, empty, disposed DAGSTER_HOME per implementation."""
    # Make sure runs.db exists (dagster-rs opens its store lazily).
    return homes.init_template_homes(
        tmp_path_factory.mktemp("runs_templates"), lambda inst: inst.run_storage.get_runs_count()
    )


@pytest.fixture
def fast_pair(template_homes: dict[str, Path], tmp_path: Path) -> Iterator[InstancePair]:
    """Like the root `pair` fixture (fresh, empty, separate homes), but cheap to create."""
    with homes.clone_pair(template_homes, tmp_path) as p:
        yield p
