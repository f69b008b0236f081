"""Migrations keyed by name: databases of the position-keyed scheme upgrade in place, newer ones are refused."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
from conftest import REPO, run_cli

from sim.errors import StoreError
from sim.store import docs
from sim.store.db import connect
from sim.store.migrations import MIGRATIONS, Migration, migration
from sim.store.schema import BY_POSITION, applied, migrate

NAMES = [m.__name__ for m in MIGRATIONS]
OLD_TABLE = "CREATE TABLE _migrations (id INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMP)"
PACK = "scenarios/first-steps"


def old_scheme(db: Path, count: int, *, names: bool = True) -> None:
    """A database as an earlier raising-sim left it: `count` migrations, recorded by list position."""
    with duckdb.connect(str(db)) as con:
        con.execute(OLD_TABLE)
        for number, step in enumerate(MIGRATIONS[:count], 1):
            step(con)
            con.execute("INSERT INTO _migrations VALUES (?, ?, ?)",
                        [number, step.__name__ if names else None, datetime(2026, 1, number)])  # fmt: skip


def bookkeeping(db: Path) -> list[tuple[object, ...]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("SELECT id, name, applied_at FROM _migrations ORDER BY id").fetchall()


def primary_key(db: Path) -> list[tuple[object, ...]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("SELECT constraint_column_names FROM duckdb_constraints() WHERE table_name = "
                           "'_migrations' AND constraint_type = 'PRIMARY KEY'").fetchall()  # fmt: skip


def test_migrations_are_registered_in_file_order_numbered_and_unique() -> None:
    assert [name[:5] for name in NAMES] == [f"m{n:03d}_" for n in range(1, len(NAMES) + 1)]
    assert list(BY_POSITION) == NAMES[: len(BY_POSITION)]  # the positions the old scheme recorded


def test_a_second_migration_of_the_same_name_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sim.store.migrations.MIGRATIONS", list(MIGRATIONS))

    def m001_trajectories(con: duckdb.DuckDBPyConnection) -> None:
        """Not the first."""

    with pytest.raises(ValueError, match="a second migration named m001_trajectories"):
        migration(m001_trajectories)


def test_a_new_database_records_each_migration_by_name(tmp_path: Path) -> None:
    db = tmp_path / "new.duckdb"
    with connect(db):
        pass
    assert [(n, name) for n, name, _ in bookkeeping(db)] == list(enumerate(NAMES, 1))
    assert primary_key(db) == [(["name"],)]


def test_a_database_of_the_position_scheme_is_rekeyed_by_name_keeping_its_rows(tmp_path: Path) -> None:
    db = tmp_path / "old.duckdb"
    old_scheme(db, len(BY_POSITION), names=False)  # positions alone: the names come from the map
    with duckdb.connect(str(db)) as con:
        con.execute("INSERT INTO runs (run_id, started_at, status, command, args, seed, backend, model, learner, "
                    "packs, versions, scenes_planned) VALUES ('r1', now(), 'done', 'sim run', '{}', 0, 'scripted', "
                    "'m', 'sam', ['p'], '{}', 1)")  # fmt: skip
    with connect(db) as con:
        assert migrate(con) == 0
        assert con.execute("SELECT run_id, status FROM runs").fetchall() == [("r1", "done")]
    kept, added = bookkeeping(db)[: len(BY_POSITION)], bookkeeping(db)[len(BY_POSITION) :]
    assert kept == [(n, name, datetime(2026, 1, n)) for n, name in enumerate(BY_POSITION, 1)]
    assert [(n, name) for n, name, _ in added] == list(enumerate(NAMES[len(BY_POSITION) :], len(BY_POSITION) + 1))
    assert primary_key(db) == [(["name"],)]


def test_a_half_migrated_database_of_the_position_scheme_finishes_by_name(tmp_path: Path) -> None:
    db = tmp_path / "old.duckdb"
    old_scheme(db, 3)
    with connect(db):
        pass
    rows = bookkeeping(db)
    assert [(n, name) for n, name, _ in rows] == list(enumerate(NAMES, 1))
    assert [at for _, _, at in rows[:3]] == [datetime(2026, 1, n) for n in (1, 2, 3)]  # when they really ran


def test_a_reader_reads_the_position_scheme_without_writing(tmp_path: Path) -> None:
    db = tmp_path / "old.duckdb"
    old_scheme(db, len(MIGRATIONS))
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    shown = run_cli("query", "SELECT count(*) AS runs FROM runs", "--db", str(db), "--format", "csv")
    assert (shown.exit_code, shown.stdout) == (0, "runs\n0\n")
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    assert primary_key(db) == [(["id"],)]


def test_names_not_positions_decide_what_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reordered, nothing runs again; one added in the middle (a forgotten entry) is run, once."""
    con = duckdb.connect(":memory:")
    migrate(con)
    monkeypatch.setattr("sim.store.schema.MIGRATIONS", list(reversed(MIGRATIONS)))
    assert migrate(con) == 0
    ran: list[str] = []

    def m003a_forgotten(con: duckdb.DuckDBPyConnection) -> None:
        ran.append("m003a_forgotten")

    forgotten: Migration = m003a_forgotten
    monkeypatch.setattr("sim.store.schema.MIGRATIONS", [*MIGRATIONS[:3], forgotten, *MIGRATIONS[3:]])
    assert (migrate(con), migrate(con), ran) == (1, 0, ["m003a_forgotten"])
    assert con.execute("SELECT id FROM _migrations WHERE name = 'm003a_forgotten'").fetchall() == [(len(NAMES) + 1,)]


NEWER = ("error: {db} was made by a newer raising-sim (it records migration(s) m999_from_the_future, which this "
         "version does not know); use that newer raising-sim, or --db to work on another database\n")  # fmt: skip


@pytest.mark.parametrize("scheme", ["by name", "by position"])
def test_a_database_of_a_newer_raising_sim_is_refused_in_one_line_untouched(shipped_world: Path, scheme: str) -> None:
    db = Path("newer.duckdb")
    if scheme == "by name":
        assert run_cli("run", PACK, "--db", str(db)).exit_code == 0
        with duckdb.connect(str(db)) as con:
            con.execute("INSERT INTO _migrations VALUES ('m999_from_the_future', 999, now())")
    else:  # not a scheme any raising-sim wrote; a position past the map is refused the same way
        old_scheme(db, len(BY_POSITION))
        with duckdb.connect(str(db)) as con:
            con.execute("INSERT INTO _migrations VALUES (7, 'm999_from_the_future', now())")
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    for args in (("query", "SELECT 1"), ("run", PACK), ("stats",)):
        result = run_cli(*args, "--db", str(db))
        assert (result.exit_code, result.stderr) == (1, NEWER.format(db=db)), args
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


def test_the_refusal_names_every_unknown_migration() -> None:
    con = duckdb.connect(":memory:")
    migrate(con)
    con.execute("INSERT INTO _migrations VALUES ('m998_b', 998, now()), ('m997_a', 997, now())")
    assert applied(con) == {*NAMES, "m997_a", "m998_b"}
    with pytest.raises(StoreError, match=r"^here was made by a newer raising-sim \(it records migration\(s\) "
                                         r"m997_a, m998_b, which"):  # fmt: skip
        migrate(con, "here")


def test_query_help_names_come_from_a_migrated_database() -> None:
    source = (REPO / "sim" / "store" / "docs.py").read_text(encoding="utf-8")
    generated = f"{docs.NAMES_BEGIN}\n{docs.names_source()}{docs.NAMES_END}\n"
    assert generated in source, "sim/store/docs.py TABLES/VIEWS are stale: run `make docs`"
    assert docs.schema_names() == (list(docs.TABLES), list(docs.VIEWS))
