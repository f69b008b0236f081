"""`sim check`: the corpus measured, stored beside the text, judged by gates; incremental; clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import rows, run_cli

PACK = "scenarios/first-steps"


@pytest.fixture
def corpus(shipped_world: Path) -> Path:
    """first-steps, three lives (30 scenes)."""
    assert run_cli("run", PACK, "--variations", "3", "--db", "c.duckdb").exit_code == 0
    return shipped_world / "c.duckdb"


def loose(path: Path) -> Path:
    """A gates file every corpus passes."""
    path.write_text("gates:\n  i_label: {min: 0.0}\n  meta_talk: {max: 1.0}\n")
    return path


def test_check_measures_every_scene_and_stores_it_beside_the_text(corpus: Path) -> None:
    result = run_cli("check", "--db", str(corpus), "--json")
    report = json.loads(result.stdout)
    assert (report["scenes"], report["measured"]) == (30, 30)
    assert rows(corpus, "SELECT count(*), count(signature), count(cluster) FROM scene_quality") == [(30, 30, 30)]
    names = {m["name"] for m in report["measures"]}
    assert {"learner_turns_within_limit", "near_duplicates", "distinct_3", "adjacent_twins", "i_label"} <= names
    by_stage = {(m["name"], m["stage"]): m for m in report["measures"]}
    assert set(m["stage"] for m in report["measures"]) == {"toddler", "early_childhood", None}
    assert by_stage[("i_label", "toddler")] == {"name": "i_label", "stage": "toddler", "value": 1.0,
                                                 "threshold": {"min": 1.0}, "pass": True}  # fmt: skip
    assert result.exit_code == (1 if any(m["pass"] is False for m in report["measures"]) else 0)
    covered = by_stage[("values_covered", "toddler")]
    counted = rows(corpus, "SELECT v, count(*) FROM scenes, unnest(\"values\") AS u(v) WHERE stage = 'toddler' "
                           "GROUP BY v ORDER BY v")  # fmt: skip
    assert covered["detail"] == dict(counted) and covered["value"] == len(counted)


def test_a_failing_gate_exits_1_and_names_it(corpus: Path) -> None:
    Path("strict.yaml").write_text("gates:\n  learner_words_per_turn: {max: 0.5}\n")
    result = run_cli("check", "--db", str(corpus), "--gates", "strict.yaml")
    assert result.exit_code == 1
    assert "learner_words_per_turn in toddler is" in result.stdout
    assert "gate <= 0.5" in result.stdout


def test_a_corpus_that_passes_every_gate_exits_0(corpus: Path) -> None:
    result = run_cli("check", "--db", str(corpus), "--gates", str(loose(Path("loose.yaml"))))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("30 scenes, 30 measured now; the corpus measured again\n")
    assert result.stdout.rstrip().endswith("every gate passed")


def test_a_second_check_of_an_unchanged_corpus_measures_nothing(corpus: Path) -> None:
    gates = str(loose(Path("loose.yaml")))
    run_cli("check", "--db", str(corpus), "--gates", gates)
    before = rows(corpus, "SELECT scene_key, measured_at FROM scene_quality ORDER BY 1")
    stamped = rows(corpus, "SELECT DISTINCT measured_at FROM corpus_quality")
    again = run_cli("check", "--db", str(corpus), "--gates", gates)
    assert again.stdout.startswith("30 scenes, 0 measured now; nothing changed since the last check\n")
    assert rows(corpus, "SELECT scene_key, measured_at FROM scene_quality ORDER BY 1") == before
    assert rows(corpus, "SELECT DISTINCT measured_at FROM corpus_quality") == stamped


def test_new_scenes_are_measured_and_the_corpus_again(corpus: Path) -> None:
    gates = str(loose(Path("loose.yaml")))
    run_cli("check", "--db", str(corpus), "--gates", gates)
    assert run_cli("run", PACK, "--variations", "4", "--db", str(corpus)).exit_code == 0
    result = run_cli("check", "--db", str(corpus), "--gates", gates)
    assert result.stdout.startswith("40 scenes, 10 measured now; the corpus measured again\n")
    assert rows(corpus, "SELECT count(*), count(cluster) FROM scene_quality") == [(40, 40)]


def test_a_gate_on_an_unknown_measure_is_one_located_error(corpus: Path) -> None:
    Path("typo.yaml").write_text("gates:\n  i_label: {min: 1.0}\n  meta_tlak: {max: 0.0}\n")
    result = run_cli("check", "--db", str(corpus), "--gates", "typo.yaml")
    assert result.exit_code == 2
    assert result.stderr.startswith("typo.yaml:3: gates.meta_tlak: 'meta_tlak' is not a measure sim check knows")
    assert rows(corpus, "SELECT count(*) FROM scene_quality") == [(0,)]


def test_a_gate_needs_exactly_one_bound(corpus: Path) -> None:
    Path("both.yaml").write_text("gates:\n  i_label: {min: 1.0, max: 1.0}\n")
    result = run_cli("check", "--db", str(corpus), "--gates", "both.yaml")
    assert result.exit_code == 2
    assert "both.yaml:2: gates.i_label: a gate has exactly one bound: {min: N} or {max: N}" in result.stderr


def test_check_without_a_database_is_one_line(hermetic: Path) -> None:
    result = run_cli("check", "--db", "none.duckdb")
    assert result.exit_code == 1
    assert result.stderr == "error: no database at none.duckdb (run `sim run scenarios/<pack>` first, or pass --db)\n"
    assert not Path("none.duckdb").exists()


def test_the_readme_lists_every_measure_as_sim_check_describes_it() -> None:
    from conftest import REPO

    from sim.corpus.quality.gates import MEASURES

    readme = (REPO / "README.md").read_text()
    for name, description in MEASURES.items():
        assert f"| `{name}` | {description} |" in readme


def exported_ids(out: Path) -> set[str]:
    return {json.loads(line)["id"] for line in (out / "train-00000-of-00001.jsonl").read_text().splitlines()}


def test_export_only_passing_needs_a_check_first(corpus: Path) -> None:
    result = run_cli("export", "--db", str(corpus), "--out", "out", "--format", "jsonl", "--only-passing")
    assert result.exit_code == 2
    assert result.stderr == ("error: 30 scene(s) have not been measured: run `sim check` first "
                             "(--only-passing and --dedup read what it stores)\n")  # fmt: skip
    assert not Path("out").exists()


def test_export_only_passing_keeps_the_scenes_that_pass_each_gate_in_its_per_scene_form(corpus: Path) -> None:
    Path("g.yaml").write_text("gates:\n  self_repeats: {max: 0.05}\n  distinct_3: {min: 0.9}\n")
    run_cli("check", "--db", str(corpus), "--gates", "g.yaml")
    result = run_cli("export", "--db", str(corpus), "--out", "out", "--format", "jsonl", "--only-passing",
                     "--gates", "g.yaml")  # fmt: skip
    assert result.exit_code == 0, result.output
    passing = {k for (k,) in rows(corpus, "SELECT scene_key FROM scene_quality WHERE self_repeats = 0")}
    assert 0 < len(passing) < 30  # the shipped text has speakers who repeat themselves
    assert exported_ids(Path("out")) == passing
    card = (Path("out") / "README.md").read_text()
    assert f"| fails self_repeats | {30 - len(passing)} |" in card
    assert "distinct_3" not in card.split("## Quality")[0]  # a corpus gate holds nothing back
    assert f"held back by quality: {30 - len(passing)} fails self_repeats" in result.stdout


def test_export_dedup_keeps_the_first_scene_of_each_near_twin_cluster(corpus: Path) -> None:
    run_cli("check", "--db", str(corpus), "--gates", str(loose(Path("loose.yaml"))))
    keys = [k for (k,) in rows(corpus, "SELECT scene_key FROM scene_quality ORDER BY scene_key")]
    with __import__("duckdb").connect(str(corpus)) as con:  # three scenes made near twins, as a check would find
        con.execute("UPDATE scene_quality SET cluster = ? WHERE scene_key IN (?, ?, ?)", [keys[3], *keys[3:6]])
    result = run_cli("export", "--db", str(corpus), "--out", "out", "--format", "jsonl", "--dedup")
    assert result.exit_code == 0, result.output
    assert exported_ids(Path("out")) == set(keys) - {keys[4], keys[5]}
    assert "| near twin of a kept scene | 2 |" in (Path("out") / "README.md").read_text()
