"""The DuckDB schema: migrations from blank to latest, and the README reference generated from them."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest
from conftest import REPO, run_cli

from sim.store.db import connect, migrate
from sim.store.docs import BEGIN, END, tables_markdown
from sim.store.migrations import MIGRATIONS


def test_blank_to_latest_records_every_migration(tmp_path: Path) -> None:
    db = tmp_path / "new.duckdb"
    with connect(db) as con:
        rows = con.execute("SELECT id, name FROM _migrations ORDER BY id").fetchall()
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert rows == [(i, m.__name__) for i, m in enumerate(MIGRATIONS, 1)]
    assert {"runs", "people", "scenes", "turns", "learner_states"} <= tables
    with connect(db) as con:  # opening again applies nothing
        assert migrate(con) == 0
        assert con.execute("SELECT count(*) FROM _migrations").fetchone() == (len(MIGRATIONS),)


def test_every_table_and_column_is_documented() -> None:
    con = duckdb.connect(":memory:")
    migrate(con)
    undocumented = con.execute(
        "SELECT table_name || '.' || column_name FROM duckdb_columns() "
        "WHERE schema_name = 'main' AND NOT internal AND NOT starts_with(table_name, '_') "
        "AND (comment IS NULL OR comment = '')"
    ).fetchall()
    assert undocumented == []


def test_readme_table_reference_is_generated_from_the_migrations() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = re.search(re.escape(BEGIN) + r"\n(.*?)" + re.escape(END), readme, re.S)
    assert section is not None, "README lacks the generated tables section"
    assert section.group(1) == tables_markdown(), "README tables are stale: run `make docs`"
    assert "| `scene_key` | VARCHAR | Hash of (learner, pack, scene, variation, seed): the idempotency key. |" in readme


def test_read_only_open_of_a_missing_database_says_what_to_do(tmp_path: Path) -> None:
    import pytest

    from sim.errors import StoreError

    expected = r"no database at .*missing.duckdb \(run `sim run scenarios/<pack>` first"
    with pytest.raises(StoreError, match=expected), connect(tmp_path / "missing.duckdb", read_only=True):
        pass


def test_oldest_to_latest_keeps_the_training_text(tmp_path: Path) -> None:
    """A database made before m003 (dialogue aggregated in the view) reads the same after migrating."""
    from datetime import datetime

    db = tmp_path / "old.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE _migrations (id INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMP)")
    for number, migration in enumerate(MIGRATIONS[:2], 1):
        migration(con)
        con.execute("INSERT INTO _migrations VALUES (?, ?, ?)", [number, migration.__name__, datetime(2026, 1, 1)])
    now = datetime(2026, 1, 1)
    con.execute(
        "INSERT INTO scenes VALUES ('k1', 'r1', 'sam', 'p', '1.0', 's', 0, 0, 'toddler', 0, 0, 0, 2, 'T', ['kindness'],"
        " 'grandchild', '{}', '{}', 'I am two.', 'I smiled.', [], 2, 0, 'done', 'scripted', 'm', ?, ?, '{}')",
        [now, now])
    con.executemany("INSERT INTO turns VALUES ('k1', ?, ?, ?, ?, 'x', ?, 0, 0, 'i', 0, 1.0)", [
        [0, "gp", "Grandpa", "family", "Be kind, sprout."],
        [1, "sam", "I", "learner", "Okay Grandpa."],
    ])
    before = con.execute("SELECT text, learner_words, learner_turns FROM training_text").fetchall()
    every_field = con.execute("SELECT * FROM training_text_styled('dialogue')").fetchall()
    con.close()
    with connect(db) as con:
        after = con.execute("SELECT text, learner_words, learner_turns FROM training_text").fetchall()
        assert con.execute("SELECT * FROM training_text_styled('dialogue')").fetchall() == every_field
        applied = [r[0] for r in con.execute("SELECT name FROM _migrations ORDER BY id").fetchall()]
        stored = con.execute("SELECT dialogue FROM scenes").fetchone()
    assert applied == [m.__name__ for m in MIGRATIONS]
    assert before == after == [("I am two.\n\nGrandpa: Be kind, sprout.\nI: Okay Grandpa.\n\nI smiled.", 2, 1)]
    assert stored == ("Grandpa: Be kind, sprout.\nI: Okay Grandpa.",)


def test_query_help_names_every_table_and_view_without_opening_a_database(monkeypatch: pytest.MonkeyPatch) -> None:
    con = duckdb.connect(":memory:")
    migrate(con)
    tables = con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' AND NOT internal "
                         "AND NOT starts_with(table_name, '_') ORDER BY 1").fetchall()  # fmt: skip
    views = con.execute("SELECT view_name FROM duckdb_views() WHERE schema_name = 'main' AND NOT internal "
                        "ORDER BY 1").fetchall()  # fmt: skip
    con.close()

    def no_database(*args: object, **kwargs: object) -> None:
        raise AssertionError("`sim query --help` opened a database")

    monkeypatch.setattr(duckdb, "connect", no_database)
    result = run_cli("query", "--help")
    assert result.exit_code == 0
    listed = re.search(r"Tables: ([\w, ]+)\. Views: ([\w, ]+)\.", " ".join(result.stdout.split()))
    assert listed, result.stdout
    assert listed.group(1).split(", ") == [t for (t,) in tables]
    assert listed.group(2).split(", ") == [v for (v,) in views]


def test_runs_recorded_done_by_an_older_sim_say_how_they_really_ended(tmp_path: Path) -> None:
    """m006: a run whose scenes failed was recorded 'done'; now it is partial, or failed if none was lived."""
    from datetime import datetime

    db = tmp_path / "old.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE _migrations (id INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMP)")
    for number, migration in enumerate(MIGRATIONS[:5], 1):
        migration(con)
        con.execute("INSERT INTO _migrations VALUES (?, ?, ?)", [number, migration.__name__, datetime(2026, 1, 1)])
    for run_id, status, done, error in (("clean", "done", 10, None), ("some", "done", 7, None),
                                        ("none", "done", 0, None), ("cut", "interrupted", 2, "stopped")):
        con.execute("INSERT INTO runs (run_id, started_at, status, command, args, seed, backend, model, learner, packs,"
                    " versions, scenes_planned, scenes_done, error) VALUES (?, now(), ?, 'sim run', '{}', 0, 'b', 'm',"
                    " 'sam', ['p'], '{}', 10, ?, ?)", [run_id, status, done, error])  # fmt: skip
    for run_id, failed in (("some", 3), ("none", 10), ("cut", 1)):
        con.executemany("INSERT INTO scene_failures VALUES (?, ?, 'sam', 'p', 's', 0, 'toddler', 'why', now())",
                        [[run_id, f"k{i}"] for i in range(failed)])  # fmt: skip
    con.close()
    with connect(db) as con:
        got = con.execute("SELECT run_id, status, scenes_done, scenes_failed, error FROM runs ORDER BY 1").fetchall()
    assert got == [
        ("clean", "done", 10, 0, None),
        ("cut", "interrupted", 2, 1, "stopped"),
        ("none", "failed", 0, 10, "10 of 10 scenes failed (see scene_failures)"),
        ("some", "partial", 7, 3, "3 of 10 scenes failed (see scene_failures)"),
    ]


def test_a_new_database_is_made_whole_beside_its_real_path_and_old_leftovers_go(tmp_path: Path) -> None:
    from sim.store.db import creating_path

    (tmp_path / "real").mkdir()
    link = tmp_path / "link.duckdb"
    link.symlink_to(tmp_path / "real" / "c.duckdb")
    leftover = creating_path(link)
    assert leftover == tmp_path / "real" / "c.duckdb.creating"
    leftover.write_bytes(b"half a database")  # left by a run killed while creating
    leftover.with_name(leftover.name + ".wal").write_bytes(b"and its log")
    with connect(link) as con:
        assert con.execute("SELECT count(*) FROM _migrations").fetchone() == (len(MIGRATIONS),)
    assert link.is_symlink()
    assert sorted(p.name for p in (tmp_path / "real").iterdir()) == ["c.duckdb"]
