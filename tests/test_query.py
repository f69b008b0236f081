"""`sim query`, `sim show`, `sim stats` and the README's example queries, against the shipped packs."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import duckdb
import pytest
from conftest import REPO, run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.store.lock import run_lock


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


REFUSED = ("error: refused: sim query only reads, and this is {}; the corpus is changed only by `sim run` "
           "(write query results elsewhere with `--format csv > file.csv` or `sim export`)\n")
OUTSIDE = ("error: refused: sim query reads only the corpus, not other files, extensions or the network ({}); "
           "read other files with duckdb itself, and write query results elsewhere with `--format csv > file.csv` "
           "or `sim export`\n")


@pytest.mark.parametrize("sql, what", [
    ("DELETE FROM scenes", "a DELETE statement"),
    ("DROP TABLE turns", "a DROP statement"),
    ("UPDATE scenes SET title = 'x'", "an UPDATE statement"),
    ("COPY scenes TO 'out.csv'", "a COPY statement"),
    ("ATTACH 'other.duckdb'", "an ATTACH statement"),
    ("SELECT 1; INSERT INTO runs SELECT * FROM runs", "an INSERT statement"),
    ("WITH r AS (SELECT * FROM runs) INSERT INTO runs SELECT * FROM r", "an INSERT statement"),
    ("INSTALL httpfs", "an INSTALL statement"),
    ("FORCE INSTALL httpfs", "a FORCE INSTALL statement"),
    ("UPDATE EXTENSIONS", "an UPDATE EXTENSIONS statement"),
    ("PRAGMA database_size", "a PRAGMA statement"),
    ("CALL pragma_version()", "a CALL statement"),
    ("CHECKPOINT", "a CHECKPOINT statement"),
    ("CREATE TABLE p AS PIVOT scenes ON stage USING count(*)", "a CREATE statement"),
    ("COPY (PIVOT scenes ON stage USING count(*)) TO 'out.csv'", "a COPY statement"),
])
def test_writes_are_refused_and_nothing_changes(corpus: Path, sql: str, what: str) -> None:
    before = corpus_state(corpus)
    result = run_cli("query", sql, "--db", str(corpus))
    assert result.exit_code == 1
    assert result.stderr == REFUSED.format(what)
    assert corpus_state(corpus) == before
    assert not Path("out.csv").exists()


def corpus_state(db: Path) -> tuple[str, dict[str, str]]:
    """The database file's bytes and every table's rows, as digests, to show a query changed nothing."""
    with duckdb.connect(str(db), read_only=True) as con:
        tables = [row[0] for row in con.execute("SELECT table_name FROM duckdb_tables() ORDER BY ALL").fetchall()]
        rows = {t: con.execute(f"SELECT count(*) || ':' || md5(coalesce(string_agg(t::VARCHAR, '|' ORDER BY "
                               f"t::VARCHAR), '')) FROM \"{t}\" t").fetchone()[0] for t in tables}  # type: ignore[index]
    return hashlib.sha256(db.read_bytes()).hexdigest(), rows


def files_under(*roots: Path) -> dict[str, str]:
    """Every file under the roots with a digest of its bytes, to show a query wrote nothing."""
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
            for root in roots for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def target(tmp_path: Path) -> Path:
    """A directory an attack aims at: a victim file to overwrite, a secret to read."""
    where = tmp_path / "target"
    where.mkdir()
    (where / "victim.txt").write_text("original\n")
    (where / "secret.txt").write_text("s3cret-in-target\n")
    return where


@pytest.mark.parametrize("sql, what", [
    ("EXPLAIN ANALYZE COPY (SELECT 'x' AS a) TO '{t}/victim.txt' (FORMAT csv, HEADER false)", "a COPY statement"),
    ("EXPLAIN ANALYZE COPY scenes TO '{t}/new.csv'", "a COPY statement"),
    ("explain (analyze, format json) /* plan */ copy scenes to '{t}/new.csv'", "a COPY statement"),
    ("EXPLAIN ANALYZE COPY (PIVOT scenes ON stage USING count(*)) TO '{t}/new.csv'", "a COPY statement"),
    ("EXPLAIN COPY scenes TO '{t}/new.csv'", "a COPY statement"),
    ("EXPLAIN ANALYZE INSTALL httpfs FROM '{t}/repo'", "an INSTALL statement"),
    ("EXPLAIN ANALYZE LOAD '{t}/httpfs.duckdb_extension'", "a LOAD statement"),
    ("EXPLAIN ANALYZE SET temp_directory = '{t}/spill'", "a SET statement"),
    ("EXPLAIN ANALYZE SET threads = 1; SELECT current_setting('threads') AS threads", "a SET statement"),
    ("EXPLAIN ANALYZE CREATE TABLE t AS SELECT 1", "a CREATE statement"),
])
def test_explain_analyze_cannot_run_what_it_wraps(corpus: Path, target: Path, hermetic: Path, sql: str,
                                                  what: str) -> None:
    files, state = files_under(target, hermetic.parent, corpus.parent), corpus_state(corpus)
    result = run_cli("query", sql.format(t=target), "--db", str(corpus))
    assert result.stderr == REFUSED.format(f"an EXPLAIN of {what}")
    assert result.exit_code == 1 and result.stdout == ""
    assert (target / "victim.txt").read_text() == "original\n"
    assert files_under(target, hermetic.parent, corpus.parent) == files
    assert corpus_state(corpus) == state


@pytest.mark.parametrize("sql, refused", [
    ("SELECT content FROM read_text('{t}/secret.txt')", 'Cannot access file "{t}/secret.txt"'),
    ("SELECT * FROM read_csv('{t}/secret.txt')", 'Cannot access file "{t}/secret.txt"'),
    ("SELECT content FROM read_blob('{t}/secret.txt')", 'Cannot access file "{t}/secret.txt"'),
    ("SELECT file FROM glob('{t}/*')", 'Cannot access file "{t}/*"'),
    ("WITH s AS (FROM read_text('{t}/secret.txt')) SELECT count(*) FROM scenes, s",
     'Cannot access file "{t}/secret.txt"'),
])
def test_a_query_cannot_read_outside_the_corpus(corpus: Path, target: Path, sql: str, refused: str) -> None:
    result = run_cli("query", sql.format(t=target), "--db", str(corpus))
    assert result.stderr == OUTSIDE.format(refused.format(t=target))
    assert result.exit_code == 1 and "s3cret" not in result.stdout


def test_a_file_name_is_not_a_table(corpus: Path, target: Path) -> None:
    result = run_cli("query", f"SELECT * FROM '{target}/secret.txt'", "--db", str(corpus))
    assert result.exit_code == 1 and "s3cret" not in result.output
    assert result.stderr.startswith(f"error: SQL error: Catalog Error: Table with name {target}/secret.txt does not")


def test_the_sandbox_is_on_and_settings_cannot_change(corpus: Path, target: Path) -> None:
    sql = ("SELECT current_setting('enable_external_access') AS external, current_setting('lock_configuration') "
           "AS locked, current_setting('autoload_known_extensions') AS autoload, "
           "current_setting('autoinstall_known_extensions') AS autoinstall")
    result = run_cli("query", sql, "--db", str(corpus), "--format", "csv")
    assert result.stdout == "external,locked,autoload,autoinstall\nFalse,True,False,False\n"
    logging = run_cli("query", f"SELECT * FROM enable_logging(storage='file', storage_path='{target}/logs')",
                      "--db", str(corpus))
    assert logging.exit_code == 1
    assert logging.stderr == (
        "error: refused: sim query cannot change DuckDB's settings (Cannot change configuration option "
        '"enable_logging"); write query results elsewhere with `--format csv > file.csv` or `sim export`\n')
    assert sorted(p.name for p in target.iterdir()) == ["secret.txt", "victim.txt"]


@pytest.mark.parametrize("sql", [
    "COPY (SELECT 'x' AS a) TO '{t}/victim.txt' (FORMAT csv, HEADER false)",
    "EXPLAIN ANALYZE COPY scenes TO '{t}/new.csv'",
    "ATTACH '{t}/other.duckdb' AS other",
    "INSTALL httpfs FROM '{t}/repo'",
    "LOAD '{t}/httpfs.duckdb_extension'",
    "SET enable_external_access = true",
    "RESET lock_configuration",
    "SET temp_directory = '{t}/spill'",
    "EXPORT DATABASE '{t}/export'",
    "SELECT * FROM read_text('{t}/secret.txt')",
    "SELECT * FROM enable_profiling(format='json', save_location='{t}/profile.json')",
])
def test_the_sandbox_holds_without_the_statement_check(corpus: Path, target: Path, sql: str) -> None:
    from sim.corpus.query import sandbox

    state = corpus_state(corpus)
    with sandbox(corpus) as con, pytest.raises(duckdb.Error) as refused:
        con.execute(sql.format(t=target)).fetchall()
    assert "disabled" in str(refused.value) or "configuration has been locked" in str(refused.value)
    assert sorted(p.name for p in target.iterdir()) == ["secret.txt", "victim.txt"]
    assert (target / "victim.txt").read_text() == "original\n"
    assert corpus_state(corpus) == state


ATTACKS = [
    "COPY (SELECT * FROM scenes) TO '@T@/new.csv'",
    "COPY (SELECT 'x' AS a) TO '@T@/victim.txt' (FORMAT csv, HEADER false)",
    "COPY scenes TO 'relative.csv'",
    "COPY (PIVOT scenes ON stage USING count(*)) TO '@T@/new.csv'",
    "EXPORT DATABASE '@T@/export'",
    "ATTACH '@T@/other.duckdb' AS other",
    "ATTACH '@T@/victim.txt'",
    "INSTALL httpfs FROM '@T@/repo'",
    "FORCE INSTALL json",
    "LOAD '@T@/httpfs.duckdb_extension'",
    "SET temp_directory = '@T@/spill'",
    "SET enable_external_access = true",
    "RESET lock_configuration",
    "SET VARIABLE v = (SELECT content FROM read_text('@T@/secret.txt'))",
    "PRAGMA enable_profiling = 'json'",
    "CALL enable_logging(storage = 'file', storage_path = '@T@/logs')",
    "CREATE TABLE t AS SELECT * FROM scenes",
    "CREATE TABLE t AS PIVOT scenes ON stage USING count(*)",
    "CREATE TEMP TABLE t AS SELECT * FROM read_csv('@T@/secret.txt')",
    "INSERT INTO runs SELECT * FROM runs",
    "UPDATE scenes SET title = 'x'",
    "DELETE FROM turns",
    "DROP VIEW training_text",
    "ALTER TABLE scenes ADD COLUMN z INTEGER DEFAULT 1",
    "CHECKPOINT",
    "SELECT content FROM read_text('@T@/secret.txt')",
    "SELECT * FROM read_csv('@T@/*.txt')",
    "SELECT * FROM read_blob('@T@/secret.txt')",
    "SELECT * FROM glob('@T@/*')",
    "SELECT * FROM '@T@/secret.txt'",
    "SELECT * FROM enable_logging(storage = 'file', storage_path = '@T@/logs')",
    "SELECT * FROM enable_profiling(format = 'json', save_location = '@T@/profile.json')",
]
WRAPS = [
    "{}", "EXPLAIN ANALYZE {}", "EXPLAIN {}", "EXPLAIN (ANALYZE, FORMAT json) {}", "/* a */ EXPLAIN -- b\n ANALYZE {}",
    "WITH c AS (SELECT 1) {}", "WITH c AS ({}) SELECT * FROM c", "SELECT * FROM ({})", "FROM scenes, ({}) x",
    "SELECT (SELECT count(*) FROM ({}))", "SELECT 1; {}", "{}; SELECT count(*) FROM scenes", "{};", "{} -- trailing",
]
Untouched = tuple[Path, dict[str, str], tuple[str, dict[str, str]]]
ATTACK_SQL = st.builds(
    lambda attack, wraps, case: _wrap(case(attack), wraps),
    st.sampled_from(ATTACKS), st.lists(st.sampled_from(WRAPS), max_size=2),
    st.sampled_from([str, str.lower, str.upper, str.swapcase]),
)


def _wrap(sql: str, wraps: list[str]) -> str:
    for wrap in wraps:
        sql = wrap.format(sql)
    return sql


@pytest.fixture
def untouched(corpus: Path, target: Path, hermetic: Path) -> Untouched:
    """The target, and what is in it, the test's home and working directory and the corpus's directory, and in the
    corpus, before any query runs (once for all a property test's examples)."""
    roots = (target, hermetic.parent, corpus.parent)
    return target, files_under(*roots), corpus_state(corpus)


@settings(max_examples=120, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sql=ATTACK_SQL)
def test_no_statement_reaches_outside_the_corpus(corpus: Path, hermetic: Path, untouched: Untouched, sql: str) -> None:
    """Whatever a generated statement tries, it exits 1 with one line, and no file and no row changes."""
    target, files, state = untouched
    sql = sql.replace("@T@", str(target)).replace("@t@", str(target))
    result = run_cli("query", sql, "--db", str(corpus), "--format", "csv")
    assert result.exit_code == 1, (sql, result.stdout)
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "s3cret" not in result.stdout
    assert files_under(target, hermetic.parent, corpus.parent) == files, sql
    assert corpus_state(corpus) == state, sql


def test_reads_a_user_expects_work(corpus: Path) -> None:
    pivot = run_cli("query", "PIVOT scenes ON stage USING count(*) GROUP BY pack ORDER BY pack", "--db", str(corpus),
                    "--format", "json")
    assert pivot.exit_code == 0, pivot.stderr
    rows = json.loads(pivot.stdout)
    assert {"pack", "toddler", "early_childhood"} <= set(rows[0])
    assert sum(v for r in rows for k, v in r.items() if k != "pack") == 74
    for sql, expect in [
        ("WITH s AS (FROM scenes WHERE variation = 0) SELECT * FROM (PIVOT s ON stage USING count(*) GROUP BY pack) "
         "ORDER BY pack", "toddler"),
        ("UNPIVOT (SELECT age, depth FROM scenes LIMIT 1) ON age, depth INTO NAME k VALUE v", "depth"),
        ("EXPLAIN SELECT count(*) FROM training_text", "physical_plan"),
        ("EXPLAIN ANALYZE SELECT stage, count(*) FROM training_text GROUP BY stage", "analyzed_plan"),
        ("EXPLAIN (SELECT 1)", "physical_plan"),
        ("EXPLAIN ANALYZE PIVOT scenes ON stage USING count(*)", "analyzed_plan"),
        ("SHOW TABLES", "training_text"),
        ("DESCRIBE training_text", "curriculum_position"),
        ("SUMMARIZE scenes", "null_percentage"),
        ("SELECT count(*) AS n FROM training_text_styled('dialogue'); -- all of it", "74"),
    ]:
        result = run_cli("query", sql, "--db", str(corpus), "--format", "csv")
        assert result.exit_code == 0, (sql, result.stderr)
        assert expect in result.stdout, sql


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
