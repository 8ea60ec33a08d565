"""A 20-asset graph for the events workload test, at module level so that the multiprocess
executor's step subprocesses can import it again (`reconstructable` needs an importable module).

Five layers of four assets; each asset depends on up to two of the layer above, logs, and returns
a value with output metadata. One asset check and one asset with a data version widen the kinds of
events written. Everything an asset logs or emits is deterministic, so two executions of the job
(on stock and on dagster-rs) write the same events up to ids, timestamps and process ids.
"""

from dagster import (
    AssetCheckResult,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetsDefinition,
    DataVersion,
    Definitions,
    JobDefinition,
    Output,
    asset,
    asset_check,
    define_asset_job,
    multiprocess_executor,
)

LAYERS = 5
WIDTH = 4
JOB_NAME = "assets20_job"


def _name(layer: int, i: int) -> str:
    return f"a{layer}_{i}"


def _parents(layer: int, i: int) -> list[str]:
    if layer == 0:
        return []
    return sorted({_name(layer - 1, i), _name(layer - 1, (i + 1) % WIDTH)})


def _make(layer: int, i: int) -> AssetsDefinition:
    name = _name(layer, i)
    parents = _parents(layer, i)

    @asset(
        name=name,
        ins={p: AssetIn(key=AssetKey(p)) for p in parents},
        group_name=f"layer{layer}",
        tags={"layer": str(layer)},
    )
    def _asset(context: AssetExecutionContext, **inputs: int) -> Output[int]:
        value = sum(inputs.values()) + layer * 10 + i
        context.log.info(f"{name} from {sorted(inputs)} is {value}")
        if i == 0:
            # Which event log the step subprocess rebuilt from the run's InstanceRef.
            storage = type(context.instance.event_log_storage).__name__
            context.log.warning(f"{name} is the first of its layer, on {storage}")
        return Output(
            value,
            metadata={"value": value, "parents": len(inputs)},
            data_version=DataVersion(f"v{value}") if layer == LAYERS - 1 else None,
        )

    return _asset


ASSETS = [_make(layer, i) for layer in range(LAYERS) for i in range(WIDTH)]
assert len(ASSETS) == 20


@asset_check(asset=AssetKey(_name(LAYERS - 1, 0)))
def last_layer_is_positive(context) -> AssetCheckResult:
    return AssetCheckResult(passed=True, metadata={"checked": 1})


defs = Definitions(
    assets=ASSETS,
    asset_checks=[last_layer_is_positive],
    jobs=[define_asset_job(JOB_NAME)],
    executor=multiprocess_executor,
)


def assets20_job() -> JobDefinition:
    """The job, rebuilt in every process that reconstructs it."""
    return defs.resolve_job_def(JOB_NAME)
