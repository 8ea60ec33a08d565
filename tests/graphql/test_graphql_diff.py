"""Dagster's GraphQL API on a stock deployment and on a dagster-rs deployment: the same answers.

The queries (queries.py) go through the webserver's own schema (`create_schema()`), in this
process and over HTTP to a real `dagster-webserver` on each home; the workload is in conftest.py.
An answer is compared whole once normalized (ids the workload created become its labels, instants
of the run `<time>`); storage ids, cursors and the workload's fixed timestamps compare as they are.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from dagster_rs.domains import IMPLEMENTED
from tests.graphql import graphql_defs as defs
from tests.graphql.conftest import WEBSERVER_STARTUP, Deployment, Deployments, normalizer
from tests.graphql.queries import (
    ASSET_HISTORY,
    ASSET_RECORDS,
    CASES,
    CHECK_EXECUTIONS,
    HTTP_CASES,
    RUN_EVENTS,
    RUNS,
    RUNS_FEED,
    Case,
    tags,
)


def id_of(dep: Deployment) -> Any:
    by_label = {label: actual for actual, label in dep.labels.items()}
    return by_label.__getitem__


def answer(dep: Deployment, case: Case, deps: Deployments, http: bool = False) -> Any:
    variables = case.variables_for(id_of(dep))
    if http:
        assert dep.webserver is not None
        result = dep.webserver.post(case.query, variables)
    else:
        result = dep.query(case.query, variables)
    return normalizer(dep, deps.started)(result)


def differences(stock: Any, rust: Any, path: str = "") -> list[str]:
    """Where two answers differ, by path (the first few), for a failure message one can read."""
    if isinstance(stock, dict) and isinstance(rust, dict) and stock.keys() == rust.keys():
        return [d for k in stock for d in differences(stock[k], rust[k], f"{path}.{k}")]
    if isinstance(stock, list) and isinstance(rust, list) and len(stock) == len(rust):
        return [
            d
            for i, (a, b) in enumerate(zip(stock, rust, strict=True))
            for d in differences(a, b, f"{path}[{i}]")
        ]
    return [] if stock == rust else [f"{path}: stock {stock!r} != rust {rust!r}"]


def assert_equal(stock: Any, rust: Any) -> None:
    assert rust == stock, "\n".join(differences(stock, rust)[:20])


def assert_same(deps: Deployments, case: Case, http: bool = False) -> None:
    stock = answer(deps.stock, case, deps, http)
    rust = answer(deps.rust, case, deps, http)
    assert stock["errors"] == [], stock["errors"]
    assert case.expect(stock["data"]), stock["data"]
    assert_equal(stock, rust)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_in_process(deployments: Deployments, case: Case) -> None:
    assert_same(deployments, case)


# Where a connection's next page starts: from a page's data, the cursor of the next page, or None
# when that page was the last.
NextCursor = Callable[[Any], "str | None"]


def last_run(field: str) -> NextCursor:
    """`runsOrError`-like lists: the last run id of a page, until an empty page."""

    def cursor(data: Any) -> str | None:
        results = data[field]["results"]
        return str(results[-1]["runId"]) if results else None

    return cursor


def has_more(*path: str) -> NextCursor:
    """Connections with `hasMore` and `cursor` (runs feed, event connections)."""

    def cursor(data: Any) -> str | None:
        for key in path:
            data = data[key]
        return str(data["cursor"]) if data["hasMore"] else None

    return cursor


def until_empty(items: str, *path: str) -> NextCursor:
    """Connections with a `cursor` and a list of `items` that is empty after the last page."""

    def cursor(data: Any) -> str | None:
        for key in path:
            data = data[key]
        return str(data["cursor"]) if data[items] else None

    return cursor


def last_id(field: str) -> NextCursor:
    """Lists whose cursor is the last item's `id` (asset check executions)."""

    def cursor(data: Any) -> str | None:
        return str(data[field][-1]["id"]) if data[field] else None

    return cursor


def walk_pages(
    dep: Deployment,
    deps: Deployments,
    query: str,
    variables: dict[str, Any],
    next_cursor: NextCursor,
    http: bool = False,
) -> list[Any]:
    """Every page `query` answers with `variables` (no cursor first), each next page asked with
    the cursor the page before gives; normalized. In process, or through the webserver."""
    pages: list[Any] = []
    cursor = None
    normalize = normalizer(dep, deps.started)
    send = dep.webserver.post if http and dep.webserver is not None else dep.query
    while len(pages) < 50:
        result = send(query, {**variables, "cursor": cursor, "after": cursor})
        assert result["errors"] == [], result["errors"]
        pages.append(normalize(result))
        cursor = next_cursor(result["data"])
        if cursor is None:
            return pages
    raise AssertionError("paging does not end")


PAGINGS: dict[str, tuple[str, dict[str, Any], NextCursor]] = {
    "runs_all": (RUNS, {"limit": 3}, last_run("runsOrError")),
    "runs_tag": (
        RUNS,
        {"limit": 2, "filter": {"tags": tags(team="sales")}},
        last_run("runsOrError"),
    ),
    "runs_status": (
        RUNS,
        {"limit": 3, "filter": {"statuses": ["SUCCESS"]}},
        last_run("runsOrError"),
    ),
    "feed_roots": (RUNS_FEED, {"limit": 4, "view": "ROOTS"}, has_more("runsFeedOrError")),
    "feed_tag": (
        RUNS_FEED,
        {"limit": 2, "view": "ROOTS", "filter": {"tags": tags(team="sales")}},
        has_more("runsFeedOrError"),
    ),
    "run_events": (
        RUN_EVENTS,
        {"limit": 4, "label": "job:schedule"},
        has_more("runOrError", "eventConnection"),
    ),
    "asset_history": (
        ASSET_HISTORY,
        {"limit": 2, "key": {"path": ["daily_sales"]}},
        until_empty("results", "assetOrError", "assetEventHistory"),
    ),
    "asset_records": (
        ASSET_RECORDS,
        {"limit": 1},
        until_empty("assets", "assetRecordsOrError"),
    ),
    "check_executions": (
        CHECK_EXECUTIONS,
        {"limit": 1, "key": {"path": ["summary"]}, "check": defs.CHECK},
        last_id("assetCheckExecutions"),
    ),
}


def assert_same_pages(
    deployments: Deployments, paging: tuple[str, dict[str, Any], NextCursor], http: bool = False
) -> None:
    query, variables, next_cursor = paging

    def pages(dep: Deployment) -> list[Any]:
        own = dict(variables)
        if "label" in own:
            own["runId"] = id_of(dep)(own.pop("label"))
        return walk_pages(dep, deployments, query, own, next_cursor, http)

    stock = pages(deployments.stock)
    assert len(stock) >= 3
    assert_equal(stock, pages(deployments.rust))


@pytest.mark.parametrize("paging", PAGINGS.values(), ids=PAGINGS.keys())
def test_paging(deployments: Deployments, paging: tuple[str, dict[str, Any], NextCursor]) -> None:
    assert_same_pages(deployments, paging)


HTTP_PAGINGS = {name: PAGINGS[name] for name in ("runs_tag", "feed_roots", "run_events")}


@pytest.mark.parametrize("paging", HTTP_PAGINGS.values(), ids=HTTP_PAGINGS.keys())
def test_http_paging(
    deployments: Deployments, paging: tuple[str, dict[str, Any], NextCursor]
) -> None:
    wait_up(deployments)
    assert_same_pages(deployments, paging, http=True)


def test_bad_query_same_errors(deployments: Deployments) -> None:
    """A query the schema rejects (an unknown field, a wrong argument type) fails the same way."""
    for text, variables in [
        ("{ runsOrError { ... on Runs { results { noSuchField } } } }", {}),
        ("query($l: Int) { runsOrError(limit: $l) { __typename } }", {"l": "three"}),
    ]:
        answers = [dep.query(text, variables) for dep in deployments]
        assert answers[0]["errors"], answers[0]
        assert_equal(answers[0], answers[1])


def wait_up(deployments: Deployments) -> None:
    deadline = time.monotonic() + WEBSERVER_STARTUP
    for dep in deployments:
        assert dep.webserver is not None
        dep.webserver.wait_up(deadline)


@pytest.mark.parametrize("case", HTTP_CASES, ids=[c.name for c in HTTP_CASES])
def test_http(deployments: Deployments, case: Case) -> None:
    wait_up(deployments)
    assert_same(deployments, case, http=True)


def test_http_serves_dagster_rs(deployments: Deployments) -> None:
    """The webserver on the dagster-rs home serves a dagster-rs instance with every implemented
    domain live (its `info` section, which only dagster-rs writes), the stock one stock's."""
    wait_up(deployments)
    infos = {}
    for dep in deployments:
        assert dep.webserver is not None
        result = dep.webserver.post("{ instance { info } }")
        assert result["errors"] == []
        infos[dep.kind] = yaml.safe_load(result["data"]["instance"]["info"])
    assert "dagster_rs" not in infos["stock"], infos["stock"]
    assert set(infos["rust"]["dagster_rs"]["rust_domains"]) == IMPLEMENTED, infos["rust"]
