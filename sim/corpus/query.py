"""Read-only SQL over the corpus: a sandboxed connection, a check that lets only reads through, formatting.

Results are formatted for people (a table, Markdown) or scripts (CSV, JSON).

Invariant: a query reaches the corpus and nothing else. `run_query` executes on a read-only connection
that can open no other file, reach no network, install or load no extension and change no setting
(`SANDBOX`), and only statements that read: SELECT (which DuckDB's parser also makes of SHOW, DESCRIBE,
SUMMARIZE, FROM-first, VALUES and PIVOT with an IN list), a PIVOT whose columns come from the data, and
EXPLAIN (ANALYZE) of those. The check is for a clear refusal; the sandbox holds even if it missed something.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from sim.errors import SimError
from sim.store.db import connect
from sim.store.faults import environment_fault

QUERY_LOCK_WAIT_S = 10.0
# Set on the open connection, in this order: the last locks every setting, itself included, for the
# connection's life, so no SET, RESET, PRAGMA or table function (enable_logging, ...) can undo the rest.
# DuckDB 2.0 accepts them after connecting; the database file is already open, so it stays readable.
SANDBOX = (
    ("enable_external_access", "false"),  # no file but the database, no network, no LOAD, no INSTALL
    ("autoload_known_extensions", "false"),  # the wheel's built-in extensions (json, icu, parquet) still work
    ("autoinstall_known_extensions", "false"),
    ("lock_configuration", "true"),
)
WRITE_ELSEWHERE = "write query results elsewhere with `--format csv > file.csv` or `sim export`"


class QueryError(SimError):
    """A query that was refused or failed."""


@dataclass(frozen=True)
class Result:
    """Column names and rows of one statement."""

    columns: list[str]
    rows: list[tuple[Any, ...]]


def statements(sql: str) -> list[str]:
    """Split SQL into statements, refusing any that is not a read.

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
        what = _not_a_read(statement)
        if what:
            raise QueryError(f"refused: sim query only reads, and this is {what}; the corpus is changed only by "
                             f"`sim run` ({WRITE_ELSEWHERE})")
    return [s.query for s in parsed]


@contextmanager
def sandbox(db: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the corpus that can reach nothing else (see `SANDBOX`)."""
    with connect(db, read_only=True, wait=QUERY_LOCK_WAIT_S) as con:
        for name, value in SANDBOX:
            con.execute(f"SET {name} = {value}")
        yield con


def run_query(db: Path, sql: str) -> list[Result]:
    """Run read-only SQL against the corpus; one result per statement."""
    parts = statements(sql)
    with sandbox(db) as con:
        results = []
        for part in parts:
            try:
                cursor = con.execute(part)
                rows = cursor.fetchall()
            except duckdb.Error as exc:  # a damaged file is the machine's fault, not the query's
                raise environment_fault(db, exc) or QueryError(_failed(exc)) from None
            results.append(Result([d[0] for d in cursor.description or []], rows))
    return results


def _failed(exc: duckdb.Error) -> str:
    """One line for a statement that failed, saying so when the sandbox refused it."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, duckdb.PermissionException):
        what = first.removeprefix("Permission Error: ").removesuffix(
            " - file system operations are disabled by configuration")
        return (f"refused: sim query reads only the corpus, not other files, extensions or the network ({what}); "
                f"read other files with duckdb itself, and {WRITE_ELSEWHERE}")
    if first.endswith(" - the configuration has been locked"):
        what = first.removeprefix("Invalid Input Error: ").removesuffix(" - the configuration has been locked")
        return f"refused: sim query cannot change DuckDB's settings ({what}); {WRITE_ELSEWHERE}"
    return f"SQL error: {_first_line(exc)}"


def _not_a_read(statement: duckdb.Statement) -> str | None:
    """None for a statement that only reads; else what it is, for the refusal ("a COPY statement")."""
    kind = _kind(statement)
    if kind == "SELECT":  # also SHOW, DESCRIBE, SUMMARIZE, FROM-first, VALUES, and PIVOT with an IN list
        return None
    tokens = _tokens(statement.query)
    words = [text.upper() for _, word, text in tokens if word]
    if words[:1] == ["EXPLAIN"]:  # EXPLAIN ANALYZE runs what it explains, so look inside
        try:
            [inner] = duckdb.extract_statements(statement.query[_explained(tokens):])
        except (duckdb.Error, ValueError):
            return "an EXPLAIN of something sim query cannot check"
        what = _not_a_read(inner)
        return what and f"an EXPLAIN of {what}"
    if kind == "MULTI" and _is_query(statement.query, tokens):
        return None  # a PIVOT whose columns come from the data: temporary enum types, then the query itself
    name = _name(kind, words)
    return f"{'an' if name[0] in 'AEIOU' else 'a'} {name} statement"


def _kind(statement: duckdb.Statement) -> str:
    try:
        return statement.type.name
    except ValueError:  # a type newer than the Python enum (UPDATE EXTENSIONS in DuckDB 2.0)
        return "UNKNOWN"


def _name(kind: str, words: list[str]) -> str:
    """The statement's name as the user wrote it (INSTALL, not DuckDB's LOAD), else DuckDB's."""
    if words[:1] == ["WITH"]:  # a statement that writes, after its common table expressions
        verbs = [w for w in words if w in {"INSERT", "UPDATE", "DELETE", "MERGE"}]
        return verbs[0] if verbs else kind
    if words[:1] == ["FORCE"] or kind == "UNKNOWN":
        return " ".join(words[:2]) or kind
    return words[0] if words and words[0].isalpha() else kind


def _is_query(sql: str, tokens: list[tuple[int, bool, str]]) -> bool:
    """Whether a statement is a query: in DuckDB's grammar only a query parses as a subquery."""
    end = tokens[-1][0] if tokens and tokens[-1][2] == ";" else len(sql)
    try:
        return len(duckdb.extract_statements(f"SELECT * FROM (\n{sql[:end]}\n)")) == 1
    except duckdb.Error:
        return False


def _explained(tokens: list[tuple[int, bool, str]]) -> int:
    """Where the statement an EXPLAIN explains starts: after EXPLAIN [ANALYZE] or EXPLAIN (options)."""
    rest = tokens[1:]
    if rest and rest[0][2].upper() in {"ANALYZE", "ANALYSE"}:
        rest = rest[1:]
    elif rest and rest[0][2] == "(":
        depth = 0
        for index, (_, word, text) in enumerate(rest):
            depth += (text.count("(") - text.count(")")) if word else 0
            if depth == 0:  # (options) then the statement; a parenthesised query alone is the statement
                rest = rest[index + 1:] or rest
                break
    return rest[0][0] if rest else tokens[-1][0] + len(tokens[-1][2])


def _tokens(sql: str) -> list[tuple[int, bool, str]]:
    """Each token but comments, by DuckDB's own tokenizer: position, whether a keyword or operator, text."""
    found = duckdb.tokenize(sql)
    ends = [position for position, _ in found[1:]] + [len(sql)]
    words = {duckdb.token_type.keyword, duckdb.token_type.operator}
    return [(position, kind in words, sql[position:end].strip())
            for (position, kind), end in zip(found, ends, strict=True) if kind != duckdb.token_type.comment]


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
