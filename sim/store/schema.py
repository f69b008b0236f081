"""Bringing a database's schema up to date: `_migrations` records every migration it has run, by name.

Invariants:
- Each migration in `MIGRATIONS` runs once, in order, inside the transaction that records its name; so a
  reordered list runs nothing twice and a migration added anywhere is run by the next open.
- Earlier versions recorded a migration by its position in the list. Such a bookkeeping table is
  rewritten keyed by name (`BY_POSITION` maps the positions that scheme used) in one transaction, before
  anything else, keeping its rows and their times; until then a reader sees it through the same map.
- A database that records a name this version does not know was made by a newer raising-sim: it is
  refused before anything is written to it.
"""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb

from sim.errors import StoreError
from sim.store.migrations import MIGRATIONS

# What the position-keyed scheme recorded as ids 1 to 6, the last migrations it ever numbered. Frozen:
# a migration added later is recorded by name only.
BY_POSITION = (
    "m001_trajectories",
    "m002_training_text",
    "m003_stored_dialogue",
    "m004_scene_records",
    "m005_model_calls",
    "m006_run_outcomes",
)
# `id` is the order in which migrations were applied, from 1; the name is the key.
_TABLE = "_migrations (name VARCHAR PRIMARY KEY, id INTEGER NOT NULL UNIQUE, applied_at TIMESTAMP)"


def migrate(con: duckdb.DuckDBPyConnection, where: object = "the database") -> int:
    """Apply pending migrations in order; returns how many ran.

    Args:
        con: A writable connection.
        where: How to name the database in an error (its path).

    Raises:
        StoreError: the database was made by a newer raising-sim.
    """
    found = _bookkeeping(con)
    done, by_position = found or (set(), False)
    _refuse_newer(done, where)
    if found is None:
        con.execute(f"CREATE TABLE {_TABLE}")
    elif by_position:
        _key_by_name(con)
    ran = 0
    for step in MIGRATIONS:
        if step.__name__ in done:
            continue
        con.execute("BEGIN")
        step(con)
        con.execute("INSERT INTO _migrations SELECT ?, coalesce(max(id), 0) + 1, ? FROM _migrations",
                    [step.__name__, _now()])  # fmt: skip
        con.execute("COMMIT")
        ran += 1
    return ran


def pending_migrations(con: duckdb.DuckDBPyConnection, where: object = "the database") -> int:
    """How many migrations a database of sim's lacks; 0 for one without `_migrations`, which is not sim's.

    A reader leaves another program's DuckDB file as it is (what it reads there is its own error);
    only `sim run` makes a corpus of it. It reads either bookkeeping scheme and writes nothing.

    Raises:
        StoreError: the database was made by a newer raising-sim.
    """
    done = applied(con)
    _refuse_newer(done or set(), where)
    return 0 if done is None else sum(step.__name__ not in done for step in MIGRATIONS)


def applied(con: duckdb.DuckDBPyConnection) -> set[str] | None:
    """The names of the migrations a database has run, under either scheme; None without `_migrations`."""
    found = _bookkeeping(con)
    return None if found is None else found[0]


def _bookkeeping(con: duckdb.DuckDBPyConnection) -> tuple[set[str], bool] | None:
    """(the names applied, whether `_migrations` is keyed by position), or None without `_migrations`."""
    try:
        rows = con.execute("SELECT id, name FROM _migrations").fetchall()
    except duckdb.CatalogException:
        return None
    if not _keyed_by_position(con):
        return {name for _, name in rows}, False
    return {_legacy_name(number, name) for number, name in rows}, True


def _legacy_name(number: int, name: str | None) -> str:
    """The name of the migration the position-keyed scheme recorded as `number`."""
    if 1 <= number <= len(BY_POSITION):
        return BY_POSITION[number - 1]
    return name or f"migration number {number}"  # beyond what that scheme knew: refused as unknown


def _keyed_by_position(con: duckdb.DuckDBPyConnection) -> bool:
    key = con.execute(
        "SELECT constraint_column_names FROM duckdb_constraints() "
        "WHERE table_name = '_migrations' AND constraint_type = 'PRIMARY KEY'"
    ).fetchall()
    return key == [(["id"],)]


def _key_by_name(con: duckdb.DuckDBPyConnection) -> None:
    """Rewrite a position-keyed `_migrations` keyed by name, in one transaction, keeping every row."""
    con.execute("BEGIN")
    old = con.execute("SELECT id, name, applied_at FROM _migrations ORDER BY id").fetchall()
    con.execute(f"CREATE TABLE _migrations_by_name {_TABLE.removeprefix('_migrations ')}")
    for number, name, at in old:
        con.execute("INSERT INTO _migrations_by_name VALUES (?, ?, ?)", [_legacy_name(number, name), number, at])
    con.execute("DROP TABLE _migrations")
    con.execute("ALTER TABLE _migrations_by_name RENAME TO _migrations")
    con.execute("COMMIT")


def _refuse_newer(done: set[str], where: object) -> None:
    unknown = sorted(done - {step.__name__ for step in MIGRATIONS})
    if unknown:
        raise StoreError(
            f"{where} was made by a newer raising-sim (it records migration(s) {', '.join(unknown)}, which this "
            "version does not know); use that newer raising-sim, or --db to work on another database"
        )


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
