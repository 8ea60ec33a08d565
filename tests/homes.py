"""Pairs of DAGSTER_HOMEs copied from templates, for the domain suites' cheap fixtures.

Creating a DAGSTER_HOME from scratch runs every storage's alembic stamping and data migrations,
which costs a few hundred milliseconds per instance. A suite initialises one home per
implementation once per session (`template_homes`), and its fixtures open instances on copies
(`clone_pair`). The suite's conftest defines the session fixture `template_homes` (with what its
templates must hold); the fixture factories here request it by that name.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance

from tests.conftest import KINDS, InstancePair, load_instance, write_home

# Settings of a developer's shell that would change what a suite tests.
OVERRIDES = ("DAGSTER_RS_DOMAINS", "DAGSTER_RS_DURABILITY", "DAGSTER_EVENT_BATCH_SIZE")


def clean_env(mp: pytest.MonkeyPatch) -> None:
    for name in OVERRIDES:
        mp.delenv(name, raising=False)


def init_template_homes(root: Path, init: Callable[[DagsterInstance], object]) -> dict[str, Path]:
    """One DAGSTER_HOME per implementation under `root`, `init` applied (it makes the storages
    create their files: dagster-rs opens its stores lazily), then disposed."""
    homes: dict[str, Path] = {}
    with pytest.MonkeyPatch.context() as mp:
        clean_env(mp)
        for kind in KINDS:
            home = write_home(root / kind, kind)
            inst = load_instance(home)
            try:
                init(inst)
            finally:
                inst.dispose()
            homes[kind] = home
    return homes


def clone_pair(templates: Mapping[str, Path], dest: Path) -> InstancePair:
    """A stock/dagster-rs pair opened on copies of `templates`, `dest`/{stock,rust}_home."""
    instances: dict[str, DagsterInstance] = {}
    for kind in KINDS:
        home = dest / f"{kind}_home"
        shutil.copytree(templates[kind], home)
        instances[kind] = load_instance(home)
    return InstancePair(instances["stock"], instances["rust"])


def seeded_pair(
    name: str,
    seed: Callable[[DagsterInstance], None],
    then: Callable[[InstancePair], None] = lambda pair: None,
) -> Any:
    """A module-scoped fixture: a pair cloned from `template_homes`, `seed` applied to both sides
    (stock first), then `then` to the pair; for read-only tests."""

    @pytest.fixture(scope="module")
    def seeded(
        template_homes: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
    ) -> Iterator[InstancePair]:
        with pytest.MonkeyPatch.context() as mp:
            clean_env(mp)
            with clone_pair(template_homes, tmp_path_factory.mktemp(name)) as p:
                p.both(seed)
                then(p)
                yield p

    return seeded


def seeded_homes(name: str, seed: Callable[[DagsterInstance], None]) -> Any:
    """A module-scoped fixture: homes cloned from `template_homes` with `seed` applied to both
    sides, disposed; tests that write clone them (`clone_pair`) instead of seeding again."""

    @pytest.fixture(scope="module")
    def homes(
        template_homes: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
    ) -> dict[str, Path]:
        with pytest.MonkeyPatch.context() as mp:
            clean_env(mp)
            root = tmp_path_factory.mktemp(name)
            with clone_pair(template_homes, root) as p:
                p.both(seed)
            return {kind: root / f"{kind}_home" for kind in KINDS}

    return homes
