"""A sensor of a gRPC code location, and its ticks, for homes that need schedule-storage rows."""

from __future__ import annotations

from collections.abc import Sequence

from dagster import DagsterInstance
from dagster._core.definitions.run_request import InstigatorType
from dagster._core.remote_origin import (
    GrpcServerCodeLocationOrigin,
    RemoteInstigatorOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.scheduler.instigation import (
    InstigatorState,
    InstigatorStatus,
    SensorInstigatorData,
    TickData,
    TickStatus,
)

REPO = RemoteRepositoryOrigin(
    GrpcServerCodeLocationOrigin(host="localhost", port=4266, location_name="loc"), "repo"
)
START = 1767225600.0


def sensor_state(name: str) -> InstigatorState:
    return InstigatorState(
        RemoteInstigatorOrigin(REPO, name),
        InstigatorType.SENSOR,
        InstigatorStatus.RUNNING,
        SensorInstigatorData(last_tick_timestamp=START),
    )


def add_sensor(
    inst: DagsterInstance, name: str, ticks: Sequence[tuple[TickStatus, str | None]]
) -> InstigatorState:
    """The running sensor `name` and one tick a second from START for each (status, skip
    reason) of `ticks`."""
    st = sensor_state(name)
    inst.add_instigator_state(st)
    for t, (status, skip_reason) in enumerate(ticks):
        inst.create_tick(
            TickData(
                instigator_origin_id=st.instigator_origin_id,
                instigator_name=st.instigator_name,
                instigator_type=st.instigator_type,
                status=status,
                timestamp=START + t,
                selector_id=st.selector_id,
                skip_reason=skip_reason,
                run_ids=[],  # what a tick that launched nothing holds (a SUCCESS one needs it)
            )
        )
    return st
