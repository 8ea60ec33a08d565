"""Dagster's GraphQL API on a stock deployment and on a dagster-rs deployment: the same answers.

The queries (queries.py) go through the webserver's own schema (`create_schema()`), in this
process and over HTTP to a real `dagster-webserver` on each home; the workload is in conftest.py.
An answer is compared whole once normalized (ids the workload created become its labels, instants
of the run `<time>`); storage ids, cursors and the workload's fixed timestamps compare as they are.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import yaml

from dagster_rs.domains import IMPLEMENTED
from tests.graphql.conftest import Deployment, Deployments, normalizer
from tests.graphql.queries import CASES, HTTP_CASES, RUN_EVENTS, RUNS, RUNS_FEED, Case, tags


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


def walk_pages(
    dep: Deployment, deps: Deployments, query: str, variables: dict[str, Any], field: str
) -> list[Any]:
    """Every page of the connection `field` answers to `query` (`variables`, no cursor first),
    each next page asked with the page before's cursor: the last run id of a `runsOrError` page
    (until an empty page), the `cursor` of a runs feed or an event connection (until `hasMore` is
    false). Normalized."""
    pages: list[Any] = []
    cursor = None
    normalize = normalizer(dep, deps.started)
    while len(pages) < 50:
        result = dep.query(query, {**variables, "cursor": cursor, "after": cursor})
        assert result["errors"] == [], result["errors"]
        pages.append(normalize(result))
        answer = result["data"][field]
        if field == "runOrError":
            answer = answer["eventConnection"]
        if "hasMore" in answer:
            if not answer["hasMore"]:
                return pages
            cursor = answer["cursor"]
        else:
            if not answer["results"]:
                return pages
            cursor = answer["results"][-1]["runId"]
    raise AssertionError(f"{field} paging does not end")


PAGINGS = {
    "runs_all": (RUNS, {"limit": 3}, "runsOrError"),
    "runs_tag": (RUNS, {"limit": 2, "filter": {"tags": tags(team="sales")}}, "runsOrError"),
    "runs_status": (RUNS, {"limit": 3, "filter": {"statuses": ["SUCCESS"]}}, "runsOrError"),
    "feed_roots": (RUNS_FEED, {"limit": 4, "view": "ROOTS"}, "runsFeedOrError"),
    "feed_tag": (
        RUNS_FEED,
        {"limit": 2, "view": "ROOTS", "filter": {"tags": tags(team="sales")}},
        "runsFeedOrError",
    ),
}


@pytest.mark.parametrize("paging", PAGINGS.values(), ids=PAGINGS.keys())
def test_paging(deployments: Deployments, paging: tuple[str, dict[str, Any], str]) -> None:
    query, variables, field = paging
    stock = walk_pages(deployments.stock, deployments, query, variables, field)
    rust = walk_pages(deployments.rust, deployments, query, variables, field)
    assert len(stock) >= 3
    assert_equal(stock, rust)


def test_run_events_paging(deployments: Deployments) -> None:
    """A run's event log, four events a page through `eventConnection`'s cursor."""

    def pages(dep: Deployment) -> list[Any]:
        variables = {"runId": id_of(dep)("job:schedule"), "limit": 4}
        return walk_pages(dep, deployments, RUN_EVENTS, variables, "runOrError")

    stock = pages(deployments.stock)
    assert len(stock) >= 3
    assert_equal(stock, pages(deployments.rust))


def test_bad_query_same_errors(deployments: Deployments) -> None:
    """A query the schema rejects (an unknown field, a wrong argument type) fails the same way."""
    for text, variables in [
        ("{ runsOrError { ... on Runs { results { noSuchField } } } }", {}),
        ("query($l: Int) { runsOrError(limit: $l) { __typename } }", {"l": "three"}),
    ]:
        answers = [dep.query(text, variables) for dep in deployments]
        assert answers[0]["errors"], answers[0]
        assert_equal(answers[0], answers[1])


@pytest.mark.parametrize("case", HTTP_CASES, ids=[c.name for c in HTTP_CASES])
def test_http(deployments: Deployments, case: Case) -> None:
    deadline = time.monotonic() + 120.0
    for dep in deployments:
        assert dep.webserver is not None
        dep.webserver.wait_up(deadline)
    assert_same(deployments, case, http=True)


def test_http_serves_dagster_rs(deployments: Deployments) -> None:
    """The webserver on the dagster-rs home serves a dagster-rs instance with every implemented
    domain live (its `info` section, which only dagster-rs writes), the stock one stock's."""
    deadline = time.monotonic() + 120.0
    infos = {}
    for dep in deployments:
        assert dep.webserver is not None
        dep.webserver.wait_up(deadline)
        result = dep.webserver.post("{ instance { info } }")
        assert result["errors"] == []
        infos[dep.kind] = yaml.safe_load(result["data"]["instance"]["info"])
    assert "dagster_rs" not in infos["stock"], infos["stock"]
    assert set(infos["rust"]["dagster_rs"]["rust_domains"]) == IMPLEMENTED, infos["rust"]
