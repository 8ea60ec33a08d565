"""Stock's alembic revision map, read once per test module instead of once per file.

Stock rebuilds alembic's revision map, executing each of Dagster's migration scripts, every time
it checks or stamps a file's revision (`check_alembic_revision`, `stamp_alembic_rev`,
`run_alembic_upgrade` each call `ScriptDirectory.from_config`): for every run shard it opens and
every storage it builds, about 50 ms each. Tests that make stock do that hundreds of times use
`scripts_read_once`: `ScriptDirectory.from_config` memoized per configuration object (stock's
configurations are themselves cached per storage kind by `get_alembic_config`). The scripts do
not change while the tests run, so what stock reads, answers and writes is the same. Processes
the tests start or fork (stock writers killed mid-write) are left as they are.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory


@contextmanager
def scripts_read_once() -> Iterator[None]:
    original = ScriptDirectory.__dict__["from_config"].__func__
    # Keyed by the configuration's identity, which it holds alive: no id is reused meanwhile.
    made: dict[int, tuple[Config, ScriptDirectory]] = {}

    def from_config(cls: type[ScriptDirectory], config: Config) -> ScriptDirectory:
        hit = made.get(id(config))
        if hit is None:
            hit = (config, original(cls, config))
            made[id(config)] = hit
        return hit[1]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ScriptDirectory, "from_config", classmethod(from_config))
        yield


@pytest.fixture(scope="module", autouse=True)
def alembic_scripts_read_once() -> Iterator[None]:
    """`scripts_read_once` around every test of a module that imports this fixture."""
    with scripts_read_once():
        yield
