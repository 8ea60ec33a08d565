"""ARCHITECTURE.md's domain map agrees with the code.

- Each domain of `dagster_rs.domains` has one `### <domain> — Rust` or `### <domain> — Python
  (stock)` heading under "## Domain map", Rust exactly for the implemented domains.
- In a Rust domain's method tables, every row marked as served in Rust (an "in Rust" column with
  ✓, a "core" column naming the core's calls, or no such column: the whole table is Rust) names
  methods that exist on that domain's Rust storage class (the instance, for rows marked
  "(instance)"); where the table has no core column, the methods before "→" / ", so" (those that
  follow are stock's methods over them) are defined by dagster-rs code, not inherited from stock;
  every call named in a core column exists on the native class its header names, else on the
  domain's native store.

The checks are functions of the document's text, so the tests below also run them on altered
copies and see them fail.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import dagster_rs
from dagster_rs import _native
from dagster_rs.domains import DOMAINS, IMPLEMENTED
from dagster_rs.storage.event_log_storage import EVENT_LOG_DOMAINS, event_log_class
from dagster_rs.storage.run_storage import RUN_STORAGE_DOMAINS, run_storage_class
from dagster_rs.storage.schedule_storage import RustScheduleStorage

ARCHITECTURE = Path(__file__).resolve().parent.parent / "ARCHITECTURE.md"

RUST, STOCK = "Rust", "Python (stock)"

# The native store serving each domain whose table has a core column.
NATIVE = {
    "scheduling": _native.ScheduleStore,
    "storage": _native.StorageStore,
    "config": _native.ConfigStore,
}

IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def rust_storage_class(domain: str) -> type | None:
    """The storage class serving `domain` when it alone (with what it needs) is live."""
    if domain == "events" or domain in EVENT_LOG_DOMAINS:
        return event_log_class(frozenset({domain} - {"events"}))
    if domain == "runs" or domain in RUN_STORAGE_DOMAINS:
        return run_storage_class(frozenset({domain} - {"runs"}))
    if domain == "scheduling":
        return RustScheduleStorage
    return None


def domain_sections(text: str) -> dict[str, tuple[str, str]]:
    """{domain: (status, body)} of the "## Domain map" headings `### <domain> — <status>`."""
    start = text.index("\n## Domain map\n")
    end = text.find("\n## ", start + 1)
    section = text[start : end if end >= 0 else len(text)]
    parts = re.split(r"^### (.+)$", section, flags=re.MULTILINE)
    found: dict[str, tuple[str, str]] = {}
    for heading, body in zip(parts[1::2], parts[2::2], strict=True):
        name, _, status = heading.partition(" — ")
        found[name.strip()] = (status.strip(), body)
    return found


def heading_problems(text: str) -> list[str]:
    sections = domain_sections(text)
    problems = [f"{d}: no heading in the domain map" for d in DOMAINS if d not in sections]
    for name, (status, _) in sections.items():
        if name not in DOMAINS:
            problems.append(f"{name}: a heading for a domain dagster_rs.domains does not have")
        elif status != (RUST if name in IMPLEMENTED else STOCK):
            expected = RUST if name in IMPLEMENTED else STOCK
            problems.append(
                f"{name}: heading says {status!r}, domains.IMPLEMENTED says {expected!r}"
            )
    return problems


def _names(cell: str) -> list[str]:
    """The identifiers in backticks, outside parentheses (which hold arguments and asides)."""
    previous = None
    while previous != cell:
        previous, cell = cell, re.sub(r"\([^()]*\)", "", cell)
    return [token for token in re.findall(r"`([^`]*)`", cell) if IDENT.match(token)]


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def table_rows(body: str) -> list[tuple[list[str], list[str]]]:
    """(header, row) of every row of every table in a section."""
    rows: list[tuple[list[str], list[str]]] = []
    header: list[str] | None = None
    for line in body.splitlines():
        if not line.startswith("|"):
            header = None
            continue
        cells = _cells(line)
        if header is None:
            header = cells
        elif not all(set(c) <= set("-: ") for c in cells):
            rows.append((header, cells))
    return rows


def table_problems(text: str) -> list[str]:
    problems: list[str] = []
    for domain, (status, body) in domain_sections(text).items():
        rows = table_rows(body)
        if status != RUST or not rows:
            continue
        # A domain without a storage object of its own (run_launcher) is the instance's.
        cls = rust_storage_class(domain) or dagster_rs.DagsterInstance
        for header, row in rows:
            first = row[0]
            in_rust = next((i for i, h in enumerate(header) if h == "in Rust"), None)
            core = next((i for i, h in enumerate(header) if h.startswith("core")), None)
            if in_rust is not None and row[in_rust] != "✓":
                continue
            if core is not None and row[core].strip() in ("—", "-", ""):
                continue
            owner: type = dagster_rs.DagsterInstance if "(instance)" in first else cls
            # Methods after "→" / ", so" are stock's, served through those before it.
            named = _names(re.split(r"→|, so ", first, maxsplit=1)[0])
            if not named:
                problems.append(f"{domain}: a Rust row names no method: {first!r}")
            for name in named:
                definer = next((k for k in owner.__mro__ if name in k.__dict__), None)
                if definer is None:
                    problems.append(f"{domain}: {name} is not an attribute of {owner.__name__}")
                elif core is None and not definer.__module__.startswith("dagster_rs"):
                    problems.append(
                        f"{domain}: {name} is listed as Rust but is stock's"
                        f" ({definer.__module__}.{definer.__name__})"
                    )
            if core is not None and not row[core].startswith("via "):
                # The native class the header names (core (`ScheduleStore.`)), else the domain's.
                named_class = re.findall(r"`(\w+)\.?`", header[core])
                native = (
                    getattr(_native, named_class[0], None) if named_class else NATIVE.get(domain)
                )
                if native is None:
                    problems.append(
                        f"{domain}: a core column whose native class is not known: name it in the"
                        " header, core (`Store`)"
                    )
                    continue
                for call in _names(row[core]):
                    if not hasattr(native, call):
                        problems.append(f"{domain}: {native.__name__}.{call} does not exist")
    return problems


def test_domain_headings_match_the_domain_table() -> None:
    assert heading_problems(ARCHITECTURE.read_text()) == []


def test_rust_tables_name_methods_the_rust_classes_have() -> None:
    text = ARCHITECTURE.read_text()
    # The tables are there to be checked: a parse that found none would pass vacuously.
    sections = domain_sections(text)
    checked = [d for d, (status, body) in sections.items() if status == RUST and table_rows(body)]
    assert {"events", "assets", "scheduling", "storage", "config"} <= set(checked)
    assert table_problems(text) == []


# -- the checks fail on a document that disagrees with the code --------------------------------


def _altered(old: str, new: str) -> str:
    text = ARCHITECTURE.read_text()
    assert text.count(old) == 1, old
    return text.replace(old, new)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("### scheduling — Rust", "### scheduling — Python (stock)", "scheduling: heading says"),
        ("### run_launcher — Rust", "### run_launcher — Python (stock)", "run_launcher: heading"),
        ("### config — Rust", "### settings — Rust", "config: no heading"),
    ],
)
def test_heading_check_fails_on_a_wrong_heading(old: str, new: str, expected: str) -> None:
    problems = heading_problems(_altered(old, new))
    assert any(p.startswith(expected) for p in problems), problems


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # a method the Rust class does not have
        ("| `get_tick` / `get_ticks_by_ids` |", "| `get_tick` / `get_tickz` |", "get_tickz"),
        # a core call the native store does not have
        ("| `purge_ticks` | `purge_ticks` |", "| `purge_ticks` | `purge_all` |", "purge_all"),
        # a core column naming another native class
        ("| core (`ConfigStore`) |", "| core (`RunStore`) |", "RunStore.add_heartbeat"),
        # a stock method claimed as served by dagster-rs code
        ("| `wipe_asset_partitions` | — |", "| `wipe_asset_partitions` | ✓ |", "stock's"),
        ("| `delete_events` |", "| `delete_events`, `get_logs_for_run` |", "get_logs_for_run"),
    ],
)
def test_table_check_fails_on_a_wrong_row(old: str, new: str, expected: str) -> None:
    problems = table_problems(_altered(old, new))
    assert any(expected in p for p in problems), problems
