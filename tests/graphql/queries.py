"""The GraphQL queries the differential tests send, as the UI sends them (fields it reads).

A `Case` is a query, its variables (a function of the deployment when they name an id the
workload created there), and what the stock answer must hold for the comparison to mean
something (a check that fails on an empty or wrong-typed answer).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dagster._core.storage.tags import SCHEDULE_NAME_TAG, SENSOR_NAME_TAG

from tests.graphql import graphql_defs as defs

REPOSITORY = "__repository__"
REPOSITORY_SELECTOR = {"repositoryName": REPOSITORY, "repositoryLocationName": defs.LOCATION}

META = """
fragment Meta on MetadataEntry {
  __typename label description
  ... on IntMetadataEntry { intValue }
  ... on TextMetadataEntry { text }
  ... on FloatMetadataEntry { floatValue }
  ... on BoolMetadataEntry { boolValue }
}
"""

ERROR = """
fragment Err on PythonError { message className errorChain { isExplicitLink error { message className } } }
"""

RUN_FIELDS = """
fragment RunFields on Run {
  id runId status jobName pipelineName mode rootRunId parentRunId
  tags { key value }
  creationTime startTime endTime updateTime
  canTerminate runConfigYaml stepKeysToExecute
  assetSelection { path }
  assetCheckSelection { name assetKey { path } }
  stats { __typename ... on RunStatsSnapshot {
    stepsSucceeded stepsFailed materializations expectations enqueuedTime launchTime startTime endTime
  } }
  stepStats { stepKey status startTime endTime attempts { startTime endTime }
    materializations { partition assetKey { path } } }
  assets { key { path } }
  assetMaterializations { assetKey { path } partition runId stepKey }
}
"""

RUNS = (
    RUN_FIELDS
    + """
query Runs($filter: RunsFilter, $cursor: String, $limit: Int) {
  runsOrError(filter: $filter, cursor: $cursor, limit: $limit) {
    __typename
    ... on Runs { count results { ...RunFields } }
    ... on InvalidPipelineRunsFilterError { message }
    ... on PythonError { message className }
  }
}
"""
)

PIPELINE_RUNS = """
query PipelineRuns($filter: RunsFilter, $cursor: String, $limit: Int) {
  pipelineRunsOrError(filter: $filter, cursor: $cursor, limit: $limit) {
    __typename
    ... on Runs { count results { runId status pipelineName tags { key value } } }
    ... on PythonError { message className }
  }
}
"""

RUNS_FEED = """
query Feed($view: RunsFeedView!, $filter: RunsFilter, $cursor: String, $limit: Int!) {
  runsFeedOrError(view: $view, filter: $filter, cursor: $cursor, limit: $limit) {
    __typename
    ... on RunsFeedConnection { cursor hasMore results {
      __typename id runStatus creationTime startTime endTime jobName tags { key value }
      assetSelection { path }
      ... on PartitionBackfill { backfillStatus: status numPartitions }
      ... on Run { status }
    } }
    ... on PythonError { message className }
  }
  runsFeedCountOrError(view: $view, filter: $filter) {
    __typename ... on RunsFeedCount { count } ... on PythonError { message className }
  }
}
"""

RUN_IDS = """
query RunIds($filter: RunsFilter, $cursor: String, $limit: Int) {
  runIdsOrError(filter: $filter, cursor: $cursor, limit: $limit) {
    __typename ... on RunIds { results } ... on PythonError { message className }
  }
}
"""

RUN_TAGS = """
query RunTags($keys: [String!]) {
  runTagKeysOrError { __typename ... on RunTagKeys { keys } }
  runTagsOrError(tagKeys: $keys) { __typename ... on RunTags { tags { key values } } }
}
"""

EVENTS = (
    META
    + ERROR
    + """
fragment Events on EventConnection {
  cursor hasMore
  events {
    __typename
    ... on MessageEvent { runId message timestamp level stepKey eventType }
    ... on MaterializationEvent { assetKey { path } partition metadataEntries { ...Meta } }
    ... on ExecutionStepFailureEvent { errorSource error { ...Err } }
    ... on RunFailureEvent { error { ...Err } }
    ... on AssetCheckEvaluationEvent { evaluation { checkName success severity
      assetKey { path } targetMaterialization { storageId runId timestamp }
      metadataEntries { ...Meta } } }
    ... on LogsCapturedEvent { fileKey stepKeys }
  }
}
"""
)

RUN_EVENTS = (
    EVENTS
    + """
query RunEvents($runId: ID!, $after: String, $limit: Int) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { runId status eventConnection(afterCursor: $after, limit: $limit) { ...Events } }
    ... on RunNotFoundError { runId message }
    ... on PythonError { message className }
  }
}
"""
)

LOGS_FOR_RUN = (
    EVENTS
    + """
query Logs($runId: ID!, $after: String, $limit: Int) {
  logsForRun(runId: $runId, afterCursor: $after, limit: $limit) {
    __typename
    ... on EventConnection { ...Events }
    ... on RunNotFoundError { runId message }
    ... on PythonError { message className }
  }
}
"""
)

RUN_OR_ERROR = (
    RUN_FIELDS
    + """
query Run($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { ...RunFields }
    ... on RunNotFoundError { runId message }
    ... on PythonError { message className }
  }
}
"""
)

MATERIALIZATION = """
fragment Mat on MaterializationEvent {
  runId partition timestamp stepKey eventType label description message level
  assetKey { path } metadataEntries { ...Meta } tags { key value }
}
"""

PARTITIONS = """
fragment Partitions on AssetNode {
  isPartitioned partitionKeys
  partitionDefinition { type name description }
  assetPartitionStatuses {
    __typename
    ... on TimePartitionStatuses { ranges { startTime endTime startKey endKey status } }
    ... on DefaultPartitionStatuses {
      materializedPartitions failedPartitions unmaterializedPartitions materializingPartitions
    }
  }
  partitionStats { numMaterialized numPartitions numFailed numMaterializing }
}
"""

CHECK_EXECUTION = """
fragment CheckExecution on AssetCheckExecution {
  id runId status timestamp partition stepKey
  evaluation { timestamp checkName success severity description partition assetKey { path }
    targetMaterialization { storageId runId timestamp } metadataEntries { ...Meta } }
}
"""

ASSET_NODES = (
    META
    + MATERIALIZATION
    + PARTITIONS
    + CHECK_EXECUTION
    + """
query AssetNodes($group: AssetGroupSelector) {
  assetNodes(group: $group, loadMaterializations: true) {
    id assetKey { path } groupName jobNames opNames isMaterializable isExecutable
    dependencyKeys { path } dependedByKeys { path }
    ...Partitions
    assetMaterializations(limit: 20) { ...Mat }
    latestMaterializationByPartition(partitions: ["2024-01-02", "2024-01-05", "apple", "kiwi"]) {
      runId partition stepKey
    }
    latestRunForPartition(partition: "2024-01-02") { runId status tags { key value } }
    dataVersion
    hasAssetChecks
    assetChecksOrError {
      __typename
      ... on AssetChecks { checks { name description jobNames blocking
        executionForLatestMaterialization { ...CheckExecution } } }
    }
  }
}
"""
)

ASSET = (
    META
    + MATERIALIZATION
    + PARTITIONS
    + """
query Asset($key: AssetKeyInput!, $partitions: [String!], $limit: Int) {
  assetOrError(assetKey: $key) {
    __typename
    ... on Asset {
      id key { path } latestEventSortKey hasDefinitionOrRecord
      latestMaterializationTimestamp latestFailedToMaterializeTimestamp
      assetMaterializations(partitions: $partitions, limit: $limit) { ...Mat }
      definition { ...Partitions }
    }
    ... on AssetNotFoundError { message }
  }
}
"""
)

ASSET_NODE = (
    META
    + MATERIALIZATION
    + PARTITIONS
    + """
query AssetNode($key: AssetKeyInput!) {
  assetNodeOrError(assetKey: $key) {
    __typename
    ... on AssetNode { id assetKey { path } ...Partitions assetMaterializations { ...Mat }
      staleStatus staleCauses { reason category key { path } } }
    ... on AssetNotFoundError { message }
  }
}
"""
)

ASSETS = """
query Assets($cursor: String, $limit: Int, $prefix: [String!]) {
  assetsOrError(cursor: $cursor, limit: $limit, prefix: $prefix) {
    __typename
    ... on AssetConnection { cursor nodes { id key { path } latestEventSortKey
      definition { assetKey { path } } } }
    ... on PythonError { message className }
  }
}
"""

ASSETS_LATEST = """
query Latest($keys: [AssetKeyInput!]!) {
  assetsLatestInfo(assetKeys: $keys) {
    id assetKey { path } unstartedRunIds inProgressRunIds
    latestRun { runId status }
    latestMaterialization { runId partition }
  }
}
"""

CHECK_EXECUTIONS = (
    META
    + CHECK_EXECUTION
    + """
query Checks($key: AssetKeyInput!, $check: String!, $limit: Int!, $cursor: String) {
  assetCheckExecutions(assetKey: $key, checkName: $check, limit: $limit, cursor: $cursor) {
    ...CheckExecution
  }
}
"""
)

ASSET_HISTORY = """
query History($key: AssetKeyInput!, $cursor: String, $limit: Int!) {
  assetOrError(assetKey: $key) {
    __typename
    ... on Asset { assetEventHistory(limit: $limit, cursor: $cursor,
        eventTypeSelectors: [MATERIALIZATION, FAILED_TO_MATERIALIZE, OBSERVATION]) {
      cursor
      results { __typename
        ... on MaterializationEvent { runId partition stepKey timestamp }
        ... on FailedToMaterializeEvent { runId partition stepKey timestamp
          materializationFailureReason materializationFailureType }
        ... on ObservationEvent { runId partition } }
    } }
  }
}
"""

ASSET_RECORDS = """
query Records($cursor: String, $limit: Int) {
  assetRecordsOrError(cursor: $cursor, limit: $limit) {
    __typename
    ... on AssetRecordConnection { cursor assets { id key { path } } }
    ... on PythonError { message className }
  }
}
"""

PARTITION_DETAIL = """
query PartitionDetail($key: AssetKeyInput!, $partitions: [String!]) {
  assetNodeOrError(assetKey: $key) {
    __typename
    ... on AssetNode {
      dataVersionByPartition(partitions: $partitions)
      staleStatusByPartition(partitions: $partitions)
      latestMaterializationByPartition(partitions: $partitions) { runId partition }
      partitionKeyConnection(limit: 4, ascending: false) { results cursor hasMore }
      partitionKeysByDimension { name partitionKeys }
    }
    ... on AssetNotFoundError { message }
  }
}
"""

RUN_GROUP = """
query Group($runId: ID!) {
  runGroupOrError(runId: $runId) {
    __typename
    ... on RunGroup { rootRunId runs { runId status rootRunId parentRunId } }
    ... on RunGroupNotFoundError { runId message }
    ... on PythonError { message className }
  }
}
"""

INSTANCE = """
{
  instance {
    hasInfo runQueuingSupported useAutoMaterializeSensors
    daemonHealth { allDaemonStatuses { daemonType required healthy lastHeartbeatTime } }
    concurrencyLimits { concurrencyKey slotCount }
  }
}
"""

TICK = (
    ERROR
    + """
fragment Tick on InstigationTick {
  id tickId status timestamp endTimestamp runIds runKeys skipReason cursor originRunIds
  instigationType error { ...Err } runs { runId status }
}
"""
)

INSTIGATION_STATE = (
    TICK
    + """
fragment State on InstigationState {
  id selectorId name instigationType status repositoryName repositoryLocationName
  typeSpecificData { __typename
    ... on SensorData { lastTickTimestamp lastRunKey lastCursor }
    ... on ScheduleData { cronSchedule startTimestamp } }
  runsCount runs(limit: 10) { runId status tags { key value } }
  ticks(limit: 10) { ...Tick }
  failed: ticks(statuses: [FAILURE, SKIPPED]) { tickId status }
  older: ticks(limit: 2, cursor: "tick:1704153720") { tickId status timestamp }
  window: ticks(afterTimestamp: 1704153700, beforeTimestamp: 1704157200) { tickId timestamp }
}
"""
)

INSTIGATION = (
    INSTIGATION_STATE
    + """
query Instigation($selector: InstigationSelector!) {
  instigationStateOrError(instigationSelector: $selector) {
    __typename
    ... on InstigationState { ...State }
    ... on InstigationStateNotFoundError { name message }
    ... on PythonError { message className }
  }
}
"""
)

SENSOR = (
    INSTIGATION_STATE
    + """
query Sensor($selector: SensorSelector!) {
  sensorOrError(sensorSelector: $selector) {
    __typename
    ... on Sensor { name minIntervalSeconds sensorState { ...State } }
    ... on SensorNotFoundError { sensorName message }
    ... on PythonError { message className }
  }
}
"""
)

SCHEDULE = (
    INSTIGATION_STATE
    + """
query Schedule($selector: ScheduleSelector!) {
  scheduleOrError(scheduleSelector: $selector) {
    __typename
    ... on Schedule { name cronSchedule pipelineName scheduleState { ...State } }
    ... on ScheduleNotFoundError { scheduleName message }
    ... on PythonError { message className }
  }
}
"""
)

INSTIGATORS = """
query Instigators($repo: RepositorySelector!) {
  sensorsOrError(repositorySelector: $repo) {
    __typename ... on Sensors { results { name sensorState { status runsCount
      ticks(limit: 3) { tickId status } } } }
  }
  schedulesOrError(repositorySelector: $repo) {
    __typename ... on Schedules { results { name scheduleState { status runsCount
      ticks(limit: 3) { tickId status } } } }
  }
}
"""

BACKFILLS = """
query Backfills($status: BulkActionStatus) {
  partitionBackfillsOrError(status: $status) {
    __typename
    ... on PartitionBackfills { results {
      id status timestamp title description numPartitions isAssetBackfill fromFailure
      partitionNames assetSelection { path } tags { key value } runs { runId }
      partitionStatusCounts { runStatus count }
    } }
    ... on PythonError { message className }
  }
}
"""

BACKFILL = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { id status numPartitions partitionNames
      assetBackfillData { rootTargetedPartitions { partitionKeys } } }
    ... on BackfillNotFoundError { backfillId message }
    ... on PythonError { message className }
  }
}
"""


# A deployment's variables: fixed, or made from the ids its workload created (`id_of(label)`).
Variables = dict[str, Any] | Callable[[Callable[[str], str]], dict[str, Any]]


@dataclass(frozen=True)
class Case:
    name: str
    query: str
    variables: Variables
    # What stock's (normalized) data must show for the comparison to test something.
    expect: Callable[[Any], bool]

    def variables_for(self, id_of: Callable[[str], str]) -> dict[str, Any]:
        return self.variables(id_of) if callable(self.variables) else self.variables


def tags(**pairs: str) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in pairs.items()]


def runs(data: Any, key: str = "runsOrError") -> list[Any]:
    return data[key]["results"] if data[key]["__typename"] == "Runs" else []


def typename(data: Any, key: str) -> str:
    return str(data[key]["__typename"])


SENSOR_TAG = {"key": SENSOR_NAME_TAG, "value": defs.SENSOR}
DAILY = {"path": ["daily_sales"]}
SUMMARY = {"path": ["summary"]}
FRUIT = {"path": ["fruit"]}
UNKNOWN_RUN = "00000000-0000-0000-0000-000000000000"

CASES = [
    Case("runs_all", RUNS, {}, lambda d: len(runs(d)) == d["runsOrError"]["count"] >= 10),
    Case(
        "runs_tag_team",
        RUNS,
        {"filter": {"tags": tags(team="sales")}},
        lambda d: 0 < len(runs(d)) < d["runsOrError"]["count"] + 1,
    ),
    Case(
        "runs_tag_and_status",
        RUNS,
        {"filter": {"tags": tags(team="sales"), "statuses": ["FAILURE"]}},
        lambda d: {r["status"] for r in runs(d)} == {"FAILURE"} and len(runs(d)) == 2,
    ),
    Case(
        "runs_two_tags",
        RUNS,
        {"filter": {"tags": [SENSOR_TAG, *tags(team="ops")]}},
        lambda d: len(runs(d)) == 3,
    ),
    Case(
        "runs_schedule_tag_limit",
        RUNS,
        {"filter": {"tags": tags(**{SCHEDULE_NAME_TAG: defs.SCHEDULE})}, "limit": 1},
        lambda d: len(runs(d)) == 1,
    ),
    Case(
        "runs_status_limit",
        RUNS,
        {"filter": {"statuses": ["SUCCESS"]}, "limit": 4},
        lambda d: len(runs(d)) == 4 and d["runsOrError"]["count"] > 4,
    ),
    Case(
        "runs_job_name",
        RUNS,
        {"filter": {"pipelineName": defs.JOB}},
        lambda d: len(runs(d)) == 2,
    ),
    Case(
        "runs_by_ids",
        RUNS,
        lambda id_of: {
            "filter": {"runIds": [id_of("job:sensor"), id_of("daily:2024-01-01:sales")]}
        },
        lambda d: len(runs(d)) == 2,
    ),
    Case(
        "runs_cursor",
        RUNS,
        lambda id_of: {"cursor": id_of("summary:3"), "limit": 3},
        lambda d: len(runs(d)) == 3,
    ),
    Case(
        "runs_unknown_cursor",
        RUNS,
        {"cursor": UNKNOWN_RUN, "limit": 3},
        lambda d: typename(d, "runsOrError") == "Runs",
    ),
    Case(
        "runs_no_match",
        RUNS,
        {"filter": {"tags": tags(team="nobody")}},
        lambda d: typename(d, "runsOrError") == "Runs" and not runs(d),
    ),
    Case(
        "runs_created_window",
        RUNS,
        {"filter": {"createdBefore": 1e10, "createdAfter": 1.0, "statuses": ["FAILURE"]}},
        lambda d: len(runs(d)) == 2,
    ),
    Case(
        "pipeline_runs_tag",
        PIPELINE_RUNS,
        {"filter": {"tags": tags(team="ops")}, "limit": 10},
        lambda d: len(runs(d, "pipelineRunsOrError")) == 5,
    ),
    Case(
        "runs_feed",
        RUNS_FEED,
        {"view": "ROOTS", "limit": 20, "filter": {"tags": tags(team="sales")}},
        lambda d: (
            {e["__typename"] for e in d["runsFeedOrError"]["results"]}
            == {"Run", "PartitionBackfill"}
        ),
    ),
    Case(
        "runs_feed_runs",
        RUNS_FEED,
        {"view": "RUNS", "limit": 5, "filter": {"statuses": ["FAILURE"]}},
        lambda d: len(d["runsFeedOrError"]["results"]) == 2,
    ),
    Case(
        "run_ids",
        RUN_IDS,
        {"filter": {"tags": tags(team="analytics")}},
        lambda d: len(d["runIdsOrError"]["results"]) == 2,
    ),
    Case(
        "run_tags",
        RUN_TAGS,
        {"keys": ["team", SENSOR_NAME_TAG]},
        lambda d: "team" in d["runTagKeysOrError"]["keys"],
    ),
    Case(
        "run_failed",
        RUN_OR_ERROR,
        lambda id_of: {"runId": id_of(f"daily:{defs.FAILING_DAY}:sales")},
        lambda d: d["runOrError"]["status"] == "FAILURE",
    ),
    Case(
        "run_unknown",
        RUN_OR_ERROR,
        {"runId": UNKNOWN_RUN},
        lambda d: typename(d, "runOrError") == "RunNotFoundError",
    ),
    Case(
        "run_events_page",
        RUN_EVENTS,
        lambda id_of: {"runId": id_of("summary:-1"), "limit": 6},
        lambda d: d["runOrError"]["eventConnection"]["hasMore"] is True,
    ),
    Case(
        "logs_failed_run",
        LOGS_FOR_RUN,
        lambda id_of: {"runId": id_of("job:schedule")},
        lambda d: any(
            e["__typename"] == "ExecutionStepFailureEvent" for e in d["logsForRun"]["events"]
        ),
    ),
    Case(
        "logs_unknown_run",
        LOGS_FOR_RUN,
        {"runId": UNKNOWN_RUN},
        lambda d: typename(d, "logsForRun") == "RunNotFoundError",
    ),
    Case(
        "asset_nodes",
        ASSET_NODES,
        {"group": {**REPOSITORY_SELECTOR, "groupName": defs.GROUP}},
        lambda d: len(d["assetNodes"]) == 3,
    ),
    Case(
        "asset_daily",
        ASSET,
        {"key": DAILY},
        lambda d: len(d["assetOrError"]["assetMaterializations"]) == 5,
    ),
    Case(
        "asset_daily_partitions",
        ASSET,
        {"key": DAILY, "partitions": ["2024-01-02", defs.FAILING_DAY, "2024-01-09"], "limit": 5},
        lambda d: len(d["assetOrError"]["assetMaterializations"]) == 2,
    ),
    Case(
        "asset_fruit_latest",
        ASSET,
        {"key": FRUIT, "limit": 1},
        lambda d: len(d["assetOrError"]["assetMaterializations"]) == 1,
    ),
    # Stock answers an Asset for any key (one without records or definition).
    Case(
        "asset_unknown",
        ASSET,
        {"key": {"path": ["no", "such", "asset"]}},
        lambda d: d["assetOrError"]["hasDefinitionOrRecord"] is False,
    ),
    Case(
        "asset_node_unknown",
        ASSET_NODE,
        {"key": {"path": ["no", "such", "asset"]}},
        lambda d: typename(d, "assetNodeOrError") == "AssetNotFoundError",
    ),
    Case(
        "asset_node_summary",
        ASSET_NODE,
        {"key": SUMMARY},
        lambda d: d["assetNodeOrError"]["assetMaterializations"] != [],
    ),
    Case(
        "asset_history",
        ASSET_HISTORY,
        {"key": DAILY, "limit": 10},
        # Five materializations (a failed step records no failed-to-materialize event).
        lambda d: len(d["assetOrError"]["assetEventHistory"]["results"]) == 5,
    ),
    Case(
        "asset_partition_detail",
        PARTITION_DETAIL,
        {"key": DAILY, "partitions": ["2024-01-01", "2024-01-02", defs.FAILING_DAY, "2024-01-07"]},
        lambda d: d["assetNodeOrError"]["dataVersionByPartition"][0] is not None,
    ),
    Case(
        "asset_partition_detail_dynamic",
        PARTITION_DETAIL,
        {"key": FRUIT, "partitions": ["apple", "cherry", "kiwi"]},
        lambda d: d["assetNodeOrError"]["partitionKeyConnection"]["results"] != [],
    ),
    Case(
        "asset_records",
        ASSET_RECORDS,
        {"limit": 10},
        lambda d: len(d["assetRecordsOrError"]["assets"]) == 3,
    ),
    Case(
        "run_group",
        RUN_GROUP,
        lambda id_of: {"runId": id_of("summary:3")},
        lambda d: len(d["runGroupOrError"]["runs"]) == 1,
    ),
    Case(
        "run_group_unknown",
        RUN_GROUP,
        {"runId": UNKNOWN_RUN},
        lambda d: typename(d, "runGroupOrError") == "RunGroupNotFoundError",
    ),
    Case(
        "instance",
        INSTANCE,
        {},
        lambda d: len(d["instance"]["daemonHealth"]["allDaemonStatuses"]) > 0,
    ),
    Case("assets_all", ASSETS, {}, lambda d: len(d["assetsOrError"]["nodes"]) == 3),
    Case(
        "assets_page",
        ASSETS,
        {"cursor": '["daily_sales"]', "limit": 1},
        lambda d: len(d["assetsOrError"]["nodes"]) == 1,
    ),
    Case(
        "assets_latest",
        ASSETS_LATEST,
        {"keys": [DAILY, SUMMARY, FRUIT]},
        lambda d: len(d["assetsLatestInfo"]) == 3,
    ),
    Case(
        "check_executions",
        CHECK_EXECUTIONS,
        {"key": SUMMARY, "check": defs.CHECK, "limit": 10},
        lambda d: [e["status"] for e in d["assetCheckExecutions"]] == ["FAILED", "SUCCEEDED"],
    ),
    Case(
        "check_executions_unknown",
        CHECK_EXECUTIONS,
        {"key": SUMMARY, "check": "no_such_check", "limit": 10},
        lambda d: d["assetCheckExecutions"] == [],
    ),
    Case(
        "sensor_state",
        INSTIGATION,
        {"selector": {**REPOSITORY_SELECTOR, "name": defs.SENSOR}},
        lambda d: len(d["instigationStateOrError"]["ticks"]) == 3,
    ),
    Case(
        "schedule_state",
        INSTIGATION,
        {"selector": {**REPOSITORY_SELECTOR, "name": defs.SCHEDULE}},
        lambda d: len(d["instigationStateOrError"]["ticks"]) == 1,
    ),
    Case(
        "instigation_unknown",
        INSTIGATION,
        {"selector": {**REPOSITORY_SELECTOR, "name": "no_such_sensor"}},
        lambda d: typename(d, "instigationStateOrError") != "InstigationState",
    ),
    Case(
        "sensor",
        SENSOR,
        {"selector": {**REPOSITORY_SELECTOR, "sensorName": defs.SENSOR}},
        lambda d: d["sensorOrError"]["sensorState"]["status"] == "RUNNING",
    ),
    Case(
        "schedule",
        SCHEDULE,
        {"selector": {**REPOSITORY_SELECTOR, "scheduleName": defs.SCHEDULE}},
        lambda d: d["scheduleOrError"]["scheduleState"]["status"] == "RUNNING",
    ),
    Case(
        "sensor_unknown",
        SENSOR,
        {"selector": {**REPOSITORY_SELECTOR, "sensorName": "no_such_sensor"}},
        lambda d: typename(d, "sensorOrError") == "SensorNotFoundError",
    ),
    Case(
        "instigators",
        INSTIGATORS,
        {"repo": REPOSITORY_SELECTOR},
        lambda d: len(d["sensorsOrError"]["results"]) == 1,
    ),
    Case(
        "backfills",
        BACKFILLS,
        {},
        lambda d: len(d["partitionBackfillsOrError"]["results"]) == 1,
    ),
    Case(
        "backfills_by_status",
        BACKFILLS,
        {"status": "COMPLETED"},
        lambda d: d["partitionBackfillsOrError"]["results"] == [],
    ),
    Case(
        "backfill",
        BACKFILL,
        {"id": "bfdaily"},
        lambda d: d["partitionBackfillOrError"]["numPartitions"] == 2,
    ),
    Case(
        "backfill_unknown",
        BACKFILL,
        {"id": "nosuch"},
        lambda d: typename(d, "partitionBackfillOrError") == "BackfillNotFoundError",
    ),
]

# What the HTTP tests send through each real webserver: the run lists, an asset, the ticks.
HTTP_CASES = [
    c
    for c in CASES
    if c.name
    in {
        "runs_tag_team",
        "runs_tag_and_status",
        "runs_by_ids",
        "runs_unknown_cursor",
        "run_unknown",
        "logs_failed_run",
        "asset_nodes",
        "asset_daily_partitions",
        "asset_unknown",
        "asset_node_unknown",
        "check_executions",
        "sensor_state",
        "backfills",
    }
]
