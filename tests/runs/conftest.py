"""Fixtures for the runs-domain compatibility suite.

Creating a DAGSTER_HOME from scratch runs every storage's alembic stamping and data migrations,
which costs a few hundred milliseconds per instance. Most tests here need a fresh, empty pair but
do not test initialisation itself, so `fast_pair` copies a pair of homes initialised once per
session (runs.db included, each written by its own implementation) and opens instances on the
copies. Tests about a brand-new home (alembic version, built indexes, storage id) use the root
`pair` fixture instead.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance

from tests.conftest import KINDS, InstancePair, load_instance, write_home


@pytest.fixture(scope="session")
def template_homes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One initialised, empty, disposed DAGSTER_HOME per implementation."""
    root = tmp_path_factory.mktemp("runs_templates")
    homes: dict[str, Path] = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("DAGSTER_RS_DOMAINS", raising=False)
        mp.delenv("DAGSTER_RS_DURABILITY", raising=False)
        for kind in KINDS:
            home = write_home(root / kind, kind)
            inst = load_instance(home)
            try:
                # Make sure runs.db exists (dagster-rs opens its store lazily).
                inst.run_storage.get_runs_count()
            finally:
                inst.dispose()
            homes[kind] = home
    return homes


def clone_pair(templates: dict[str, Path], dest: Path) -> InstancePair:
    instances: dict[str, DagsterInstance] = {}
    for kind in KINDS:
        home = dest / f"{kind}_home"
        shutil.copytree(templates[kind], home)
        instances[kind] = load_instance(home)
    return InstancePair(instances["stock"], instances["rust"])


@pytest.fixture
def fast_pair(template_homes: dict[str, Path], tmp_path: Path) -> Iterator[InstancePair]:
    """Like the root `pair` fixture (fresh, empty, separate homes), but cheap to create."""
    p = clone_pair(template_homes, tmp_path)
    try:
        yield p
    finally:
        p.dispose()


def module_pair(
    template_homes: dict[str, Path], tmp_path_factory: pytest.TempPathFactory, name: str
) -> InstancePair:
    """A pair for module-scoped, read-only fixtures; the caller disposes it."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("DAGSTER_RS_DOMAINS", raising=False)
        mp.delenv("DAGSTER_RS_DURABILITY", raising=False)
        return clone_pair(template_homes, tmp_path_factory.mktemp(name))


def seeded_fixture(name: str, seed: Callable[[DagsterInstance], None]) -> Any:
    """A module-scoped pair with `seed` applied to both sides, for read-only tests."""

    @pytest.fixture(scope="module")
    def seeded(
        template_homes: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
    ) -> Iterator[InstancePair]:
        p = module_pair(template_homes, tmp_path_factory, name)
        try:
            p.both(seed)
            yield p
        finally:
            p.dispose()

    return seeded
