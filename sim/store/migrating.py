"""The list of migrations and how one is added to it: `@migration`, in the order the modules define them.

Invariant: `MIGRATIONS` is append-only and a name is never reused (a database records each migration it has
run by name, `sim.store.schema`); `sim.store.migrations` imports every module that defines migrations, in order.
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb

Migration = Callable[[duckdb.DuckDBPyConnection], None]
MIGRATIONS: list[Migration] = []


def migration(step: Migration) -> Migration:
    """Append `step` to `MIGRATIONS`: migrations run in the order they are written."""
    if step.__name__ in {m.__name__ for m in MIGRATIONS}:
        raise ValueError(f"a second migration named {step.__name__}: a name is a key in _migrations")
    MIGRATIONS.append(step)
    return step


def comment(con: duckdb.DuckDBPyConnection, table: str, text: str, columns: dict[str, str]) -> None:
    """Set a table's comment and its columns' (the README's table reference is generated from them)."""
    for target, doc in ((f"TABLE {table}", text), *((f"COLUMN {table}.{c}", d) for c, d in columns.items())):
        quoted = doc.replace("'", "''")
        con.execute(f"COMMENT ON {target} IS '{quoted}'")
