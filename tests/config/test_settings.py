"""The settings readers of the instance (settings_methods.py and the scheduling / daemon readers
built on them) answer as stock on a few dagster.yaml configurations. They read the parsed
`dagster.yaml` only (ARCHITECTURE.md, "config"), so they are stock's code on both sides; this
checks the facade's configuration handling (`rust_domains`, `durability`, the storage it swaps
in) leaves every setting as stock parses it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance
from dagster._core.definitions.run_request import InstigatorType

from tests.conftest import InstancePair, make_instance

CONFIGS = {
    "empty": "",
    "settings": """\
run_monitoring:
  enabled: true
  start_timeout_seconds: 30
  cancel_timeout_seconds: 40
  max_runtime_seconds: 3600
  max_resume_run_attempts: 0
  poll_interval_seconds: 15
  cancellation_thread_poll_interval_seconds: 3
run_retries:
  enabled: true
  max_retries: 2
  retry_on_asset_or_op_failure: false
auto_materialize:
  enabled: false
  minimum_interval_seconds: 45
  run_tags: {team: data}
  respect_materialization_data_versions: true
  max_tick_retries: 5
  use_sensors: false
telemetry:
  enabled: false
nux:
  enabled: false
code_servers:
  local_startup_timeout: 120
  reload_timeout: 90
  wait_for_local_processes_on_shutdown: true
python_logs:
  managed_python_loggers: [my_logger]
  python_log_level: INFO
schedules:
  use_threads: true
  num_workers: 4
sensors:
  use_threads: true
  num_workers: 2
backfills:
  use_threads: true
  num_workers: 3
retention:
  schedule:
    purge_after_days: 10
  sensor:
    purge_after_days: {skipped: 1, failure: 30, success: -1}
freshness:
  enabled: false
""",
    "concurrency": """\
concurrency:
  pools:
    default_limit: 3
  runs:
    max_concurrent_runs: 7
    tag_concurrency_limits:
      - key: team
        limit: 2
""",
    "telemetry_nux_partial": """\
telemetry: {}
nux: {}
run_monitoring:
  enabled: false
""",
}

READERS: dict[str, Callable[[DagsterInstance], Any]] = {
    **{
        f"get_settings[{key}]": (lambda i, key=key: i.get_settings(key))
        for key in (
            "run_monitoring",
            "run_retries",
            "auto_materialize",
            "telemetry",
            "nux",
            "code_servers",
            "python_logs",
            "schedules",
            "sensors",
            "backfills",
            "retention",
            "concurrency",
            "freshness",
            "rust_domains",
            "no_such_key",
        )
    },
    "get_backfill_settings": lambda i: i.get_backfill_settings(),
    "get_scheduler_settings": lambda i: i.get_scheduler_settings(),
    "get_sensor_settings": lambda i: i.get_sensor_settings(),
    "get_auto_materialize_settings": lambda i: i.get_auto_materialize_settings(),
    "get_python_log_dagster_handler_config": lambda i: i.get_python_log_dagster_handler_config(),
    "get_concurrency_config": lambda i: i.get_concurrency_config(),
    "tick_retention[schedule]": lambda i: i.get_tick_retention_settings(InstigatorType.SCHEDULE),
    "tick_retention[sensor]": lambda i: i.get_tick_retention_settings(InstigatorType.SENSOR),
    "tick_retention[auto]": lambda i: i.get_tick_retention_settings(
        InstigatorType.AUTO_MATERIALIZE
    ),
    "get_required_daemon_types": lambda i: list(i.get_required_daemon_types()),
    **{
        name: (lambda i, name=name: getattr(i, name))
        for name in (
            "telemetry_enabled",
            "nux_enabled",
            "run_monitoring_enabled",
            "run_monitoring_settings",
            "run_monitoring_start_timeout_seconds",
            "run_monitoring_cancel_timeout_seconds",
            "run_monitoring_max_runtime_seconds",
            "run_monitoring_max_resume_run_attempts",
            "run_monitoring_poll_interval_seconds",
            "cancellation_thread_poll_interval_seconds",
            "code_server_settings",
            "code_server_process_startup_timeout",
            "code_server_reload_timeout",
            "wait_for_local_code_server_processes_on_shutdown",
            "run_retries_enabled",
            "run_retries_max_retries",
            "run_retries_retry_on_asset_or_op_failure",
            "auto_materialize_enabled",
            "freshness_enabled",
            "auto_materialize_minimum_interval_seconds",
            "auto_materialize_run_tags",
            "auto_materialize_respect_materialization_data_versions",
            "auto_materialize_max_tick_retries",
            "auto_materialize_use_sensors",
            "global_op_concurrency_default_limit",
            "managed_python_loggers",
            "python_log_level",
            "daemon_skip_heartbeats_without_errors",
            "is_ephemeral",
            "is_persistent",
        )
    },
}


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_settings_readers_match_stock(tmp_path: Path, config: str) -> None:
    text = CONFIGS[config]
    with InstancePair(
        make_instance(tmp_path, "stock", text), make_instance(tmp_path, "rust", text)
    ) as p:
        assert "config" in p.rust.rust_domains  # type: ignore[attr-defined]
        for name, reader in READERS.items():
            out = p.same(reader)
            assert out.error is None or name.startswith("get_settings"), (name, out)
