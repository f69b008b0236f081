"""Read-only SQL over the corpus: refuse anything that could change it, and format results for people or scripts.

Invariant: `run_query` executes only statements DuckDB parses as SELECT or EXPLAIN, on a read-only
connection, so a query can never change or destroy the corpus.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from sim.errors import SimError
from sim.store.db import connect

READS = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}
QUERY_LOCK_WAIT_S = 10.0


class QueryError(SimError):
    """A query that was refused or failed."""


@dataclass(frozen=True)
class Result:
    """Column names and rows of one statement."""

    columns: list[str]
    rows: list[tuple[Any, ...]]


def statements(sql: str) -> list[str]:
    """Split SQL into statements, refusing any that would write.

    Raises:
        QueryError: a statement is not a read, or the SQL does not parse.
    """
    if not sql.strip():
        raise QueryError("empty query (pass SQL as an argument, or - to read it from standard input)")
    try:
        parsed = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryError(f"SQL error: {_first_line(exc)}") from None
    for statement in parsed:
        if statement.type not in READS:
            kind = statement.type.name
            raise QueryError(
                f"refused: sim query only reads, and this is a {kind} statement; the corpus is changed only by "
                "`sim run` (write query results elsewhere with `--format csv > file.csv` or `sim export`)"
            )
    return [s.query for s in parsed]


def run_query(db: Path, sql: str) -> list[Result]:
    """Run read-only SQL against the corpus; one result per statement."""
    parts = statements(sql)
    with connect(db, read_only=True, wait=QUERY_LOCK_WAIT_S) as con:
        results = []
        for part in parts:
            try:
                cursor = con.execute(part)
                rows = cursor.fetchall()
            except duckdb.Error as exc:
                raise QueryError(f"SQL error: {_first_line(exc)}") from None
            results.append(Result([d[0] for d in cursor.description or []], rows))
    return results


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return " ".join(lines[:3]) if lines else type(exc).__name__


def to_csv(result: Result) -> str:
    """CSV with a header row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(result.columns)
    writer.writerows([[_plain(v) for v in row] for row in result.rows])
    return out.getvalue()


def to_json(result: Result) -> str:
    """A JSON array of objects."""
    return json.dumps([dict(zip(result.columns, row, strict=True)) for row in result.rows], indent=2,
                      ensure_ascii=False, default=str)


def to_markdown(result: Result) -> str:
    """A Markdown pipe table."""
    lines = ["| " + " | ".join(result.columns) + " |", "|" + "---|" * len(result.columns)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in result.rows]
    return "\n".join(lines) + "\n"


def _plain(value: Any) -> Any:
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return value


def _cell(value: Any) -> str:
    text = "" if value is None else str(_plain(value))
    return text.replace("|", "\\|").replace("\n", "<br>")


def table_cells(row: Sequence[Any]) -> list[str]:
    """Row values as text for a terminal table."""
    return ["" if v is None else str(_plain(v)) for v in row]
