"""Fixtures for the config domain's suite (daemon heartbeats, daemon cursors, the run storage's
id, settings): `fast_pair` as in the runs suite (copies of homes initialised once per session),
and `config_off_pair`, whose dagster-rs side has every domain live but config."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dagster_rs.domains import IMPLEMENTED
from tests import homes
from tests.conftest import InstancePair, load_instance, write_home
from tests.runs.conftest import fast_pair, template_homes

__all__ = ["config_off_pair", "fast_pair", "template_homes", "without_config"]

WITHOUT_CONFIG = sorted(IMPLEMENTED - {"config"})


def without_config(home: Path) -> Path:
    """Make `home` a dagster-rs DAGSTER_HOME with the config domain switched off."""
    return write_home(home, "rust", "rust_domains: [" + ", ".join(WITHOUT_CONFIG) + "]\n")


@pytest.fixture
def config_off_pair(template_homes: dict[str, Path], tmp_path: Path) -> Iterator[InstancePair]:
    """A fresh stock / dagster-rs pair whose dagster-rs side runs stock's config code."""
    with homes.clone_pair(template_homes, tmp_path) as p:
        p.rust.dispose()
        p.rust = load_instance(without_config(tmp_path / "rust_home"))
        assert "config" not in p.rust.rust_domains  # type: ignore[attr-defined]
        yield p
