"""`sim query`, `sim show`, `sim stats` and the README's example queries, against the shipped packs."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from conftest import REPO, run_cli

from sim.store.db import run_lock


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One corpus of every shipped pack, two variations, built once for this module."""
    base = tmp_path_factory.mktemp("corpus")
    shutil.copytree(REPO / "personas", base / "personas")
    shutil.copytree(REPO / "scenarios", base / "scenarios")
    import os

    cwd = os.getcwd()
    os.chdir(base)
    try:
        packs = sorted(str(p.parent.relative_to(base)) for p in (base / "scenarios").glob("*/pack.yaml"))
        result = run_cli("run", *packs, "--variations", "2", "--db", str(base / "c.duckdb"))
        assert result.exit_code == 0, result.stderr
    finally:
        os.chdir(cwd)
    return base / "c.duckdb"


def readme_queries() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("### Example queries", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sql\n(.*?)```", section, re.S)


def test_readme_has_the_example_queries_a_researcher_asks() -> None:
    queries = readme_queries()
    assert len(queries) >= 5
    assert any("honesty" in q and "age < 8" in q for q in queries)
    assert any("grandparent" in q for q in queries)
    assert any("closeness" in q and "mia" in q for q in queries)


@pytest.mark.parametrize("index", range(5))
def test_every_readme_query_runs_and_returns_rows(corpus: Path, index: int) -> None:
    sql = readme_queries()[index]
    result = run_cli("query", sql, "--db", str(corpus), "--format", "json")
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert len(rows) >= 3


def test_honesty_before_eight_is_early_and_ordered(corpus: Path) -> None:
    rows = json.loads(run_cli("query", readme_queries()[0], "--db", str(corpus), "--format", "json").stdout)
    assert all(r["age"] < 8 for r in rows)
    positions = [r["curriculum_position"] for r in rows]
    assert positions == sorted(positions)
    assert {"first-steps"} <= {r["pack"] for r in rows}


def test_grandparent_lines_are_only_grandparents(corpus: Path) -> None:
    rows = json.loads(run_cli("query", readme_queries()[1], "--db", str(corpus), "--format", "json").stdout)
    assert {r["speaker_label"] for r in rows} == {"Grandpa", "Grandma"}
    assert any("kind to others" in r["text"] for r in rows)


def test_closeness_to_mia_grows_over_the_years(corpus: Path) -> None:
    rows = json.loads(run_cli("query", readme_queries()[2], "--db", str(corpus), "--format", "json").stdout)
    closeness = [r["closeness_to_mia"] for r in rows if r["closeness_to_mia"] is not None]
    assert closeness[-1] > closeness[0]
    assert [r["age"] for r in rows] == sorted(r["age"] for r in rows)


def test_training_text_is_first_person_with_i_label(corpus: Path) -> None:
    sql = "SELECT text FROM training_text WHERE scene = 'kind-to-others' AND variation = 0"
    text = json.loads(run_cli("query", sql, "--db", str(corpus), "--format", "json").stdout)[0]["text"]
    opening, dialogue, reflection = text.split("\n\n")
    assert opening.startswith("I am three.")
    assert "Grandpa: You see, Sam? If you're kind to others, they'll be kind to you." in dialogue.splitlines()
    assert all(line.split(": ", 1)[0] in {"I", "Grandpa", "Mrs. Chen"} for line in dialogue.splitlines())
    assert reflection.startswith("That night I thought about what Grandpa said.")
    dialogue_only = run_cli("query", "SELECT text FROM training_text_styled('dialogue') WHERE scene = "
                            "'kind-to-others' AND variation = 0", "--db", str(corpus), "--format", "json")
    assert json.loads(dialogue_only.stdout)[0]["text"] == dialogue


def test_curriculum_position_follows_stages_and_ages(corpus: Path) -> None:
    sql = "SELECT stage_rank, age FROM training_text ORDER BY curriculum_position"
    rows = json.loads(run_cli("query", sql, "--db", str(corpus), "--format", "json").stdout)
    keys = [(r["stage_rank"], r["age"]) for r in rows]
    assert keys == sorted(keys)
    assert len(rows) == 74


@pytest.mark.parametrize("sql, kind", [
    ("DELETE FROM scenes", "DELETE"),
    ("DROP TABLE turns", "DROP"),
    ("UPDATE scenes SET title = 'x'", "UPDATE"),
    ("COPY scenes TO 'out.csv'", "COPY"),
    ("ATTACH 'other.duckdb'", "ATTACH"),
    ("SELECT 1; INSERT INTO runs SELECT * FROM runs", "INSERT"),
])
def test_writes_are_refused_and_nothing_changes(corpus: Path, sql: str, kind: str) -> None:
    before = run_cli("query", "SELECT count(*) AS n FROM scenes", "--db", str(corpus), "--format", "csv").stdout
    result = run_cli("query", sql, "--db", str(corpus))
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: refused: sim query only reads, and this is a {kind} statement; the corpus is changed only by "
        "`sim run` (write query results elsewhere with `--format csv > file.csv` or `sim export`)\n"
    )
    assert run_cli("query", "SELECT count(*) AS n FROM scenes", "--db", str(corpus), "--format", "csv").stdout == before
    assert not Path("out.csv").exists()


def test_sql_error_prints_duckdbs_message(corpus: Path) -> None:
    result = run_cli("query", "SELECT nope FROM scenes", "--db", str(corpus))
    assert result.exit_code == 1
    assert result.stderr.startswith('error: SQL error: Binder Error: Referenced column "nope" not found')
    assert "Traceback" not in result.output


def test_formats_and_stdin(corpus: Path) -> None:
    sql = "SELECT stage, count(*) AS n FROM scenes WHERE stage_rank < 2 GROUP BY ALL ORDER BY stage"
    assert run_cli("query", sql, "--db", str(corpus), "--format", "csv").stdout == (
        "stage,n\nearly_childhood,12\ntoddler,8\n")
    assert run_cli("query", "-", "--db", str(corpus), "--format", "markdown", input=sql).stdout == (
        "| stage | n |\n|---|---|\n| early_childhood | 12 |\n| toddler | 8 |\n")
    table = run_cli("query", sql, "--db", str(corpus)).stdout
    assert "early_childhood" in table and table.rstrip().endswith("2 rows")


def test_query_on_missing_db_says_what_to_do() -> None:
    result = run_cli("query", "SELECT 1", "--db", "nothing.duckdb")
    assert result.exit_code == 1
    assert result.stderr == ("error: no database at nothing.duckdb (run `sim run scenarios/<pack>` first, "
                             "or pass --db)\n")


def test_query_while_a_run_holds_the_lock_file_still_reads(corpus: Path) -> None:
    with run_lock(corpus):
        result = run_cli("query", "SELECT count(*) AS n FROM scenes", "--db", str(corpus), "--format", "csv")
    assert result.stdout == "n\n74\n"


def test_show_prints_a_transcript(corpus: Path) -> None:
    result = run_cli("show", "first-steps/kind-to-others", "--variation", "1", "--db", str(corpus))
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Kind to others  first-steps/kind-to-others · variation 1 · seed 0")
    assert lines[1].startswith("early_childhood, age 3 · I am the grandchild · values kindness")
    assert any(line.startswith("I: ") for line in lines)
    assert any(line.startswith("Grandpa: ") for line in lines)
    data = json.loads(run_cli("show", "first-steps/kind-to-others", "--db", str(corpus), "--json").stdout)
    assert data["pack"] == "first-steps" and data["cast"]["grandpa"] == "grandpa-walter"
    assert data["turns"][0]["speaker"] in {"Grandpa", "I"} and len(data["turns"]) >= 6
    missing = run_cli("show", "first-steps/nope", "--db", str(corpus))
    assert missing.exit_code == 2
    assert missing.stderr.startswith("error: no scene 'first-steps/nope' with variation 0 in the database")


def test_stats_shows_counts_people_and_targets(corpus: Path, shipped_world: Path) -> None:
    result = run_cli("stats", "--db", str(corpus))
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "scenes by value x stage" in out and "people who appear most" in out
    assert re.search(r"│ honesty\s+│", out)
    assert re.search(r"│ Grandpa\s+│ family\s+│ grandpa-walter", out)
    assert re.search(r"│ toddler\s+│ \d\.\d\s+│ [1-4]\s+│ 4\s+│", out)
    assert "over!" not in out
