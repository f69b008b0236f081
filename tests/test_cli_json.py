"""`--json` on `sim stats`, `sim scenarios validate` and `sim personas validate`: the shapes the README documents."""

from __future__ import annotations

import json
from pathlib import Path

import click
import duckdb
import pytest
from conftest import run_cli
from world_fixtures import MIA, PACK, replace_once, write_world

from sim.cli import _register, cli

VALIDATE = [("scenarios", "validate"), ("personas", "validate")]
STAGE_IDS = "adolescence, early_adolescence, early_childhood, late_childhood, middle_childhood, toddler, young_adult"
BAD_CLOSENESS = {
    "file": "personas/mia.yaml",
    "line": 8,
    "key_path": "relationships[1].closeness",
    "message": "1.5 is out of range (expected a number at most 1.0)",
}


def test_stats_and_validate_take_json() -> None:
    _register()
    groups = {g: cli.commands[g] for g, _ in VALIDATE}
    validators = [group.commands[c] for (g, c) in VALIDATE if isinstance(group := groups[g], click.Group)]
    assert len(validators) == 2
    for command in (cli.commands["stats"], *validators):
        assert "--json" in {opt for param in command.params for opt in getattr(param, "opts", [])}


def test_validate_json_when_all_is_well(hermetic: Path) -> None:
    write_world()
    scenarios = run_cli("scenarios", "validate", "--json")
    assert (scenarios.exit_code, scenarios.stderr) == (0, "")
    assert json.loads(scenarios.stdout) == {
        "ok": True,
        "counts": {"packs": 1, "scenes": 2, "personas": 5},
        "problems": [],
    }
    personas = run_cli("personas", "validate", "--json")
    assert (personas.exit_code, personas.stderr) == (0, "")
    assert json.loads(personas.stdout) == {
        "ok": True,
        "counts": {"personas": 5, "learners": 1, "relationship_edges": 12},
        "problems": [],
    }


@pytest.mark.parametrize("command", VALIDATE, ids=" ".join)
def test_validate_json_reports_every_problem_and_exits_2(hermetic: Path, command: tuple[str, str]) -> None:
    write_world(
        personas={"mia": replace_once(MIA, "closeness: 0.9", "closeness: 1.5")},
        pack=replace_once(PACK, "stage: toddler", "stage: todler"),
    )
    result = run_cli(*command, "--json")
    assert (result.exit_code, result.stderr) == (2, "")
    problems = [BAD_CLOSENESS]
    if command[0] == "scenarios":
        problems.append({
            "file": "scenarios/first-steps/pack.yaml",
            "line": 7,
            "key_path": "scenes[0].stage",
            "message": f"unknown stage 'todler' (did you mean 'toddler'? expected one of: {STAGE_IDS})",
        })  # fmt: skip
    assert json.loads(result.stdout) == {"ok": False, "counts": None, "problems": problems}


def test_a_problem_with_no_line_has_line_null(hermetic: Path) -> None:
    write_world()
    result = run_cli("scenarios", "validate", "--json", "--stages", "nope.yaml")
    assert result.exit_code == 2
    assert json.loads(result.stdout)["problems"] == [
        {"file": "nope.yaml", "line": None, "key_path": "(top level)",
         "message": "file not found (check the --stages path)"}  # fmt: skip
    ]


def test_stats_json(hermetic: Path) -> None:
    write_world()
    assert run_cli("run", "scenarios/first-steps", "--db", "c.duckdb").exit_code == 0
    with duckdb.connect("c.duckdb") as con:  # one paid model call, as a model backend would record it
        con.execute("INSERT INTO llm_calls VALUES ('c1', 'r1', 'k1', 'toddler', 'turn', 0, 'anthropic', 'm', 'h', "
                    "100, 20, 50, 0, 12.5, 0, 'end', 0.25, 'api', 'ok', NULL, now())")  # fmt: skip
    result = run_cli("stats", "--db", "c.duckdb", "--json")
    assert (result.exit_code, result.stderr) == (0, "")
    assert json.loads(result.stdout) == {
        "scenes_by_stage_value": [
            {"stage": "toddler", "stage_rank": 0, "value": "sharing", "scenes": 1},
            {"stage": "early_childhood", "stage_rank": 1, "value": "kindness", "scenes": 1},
            {"stage": "early_childhood", "stage_rank": 1, "value": "respect", "scenes": 1},
        ],
        "people": [
            {"known_as": "Grandpa", "role": "family", "person_id": "grandpa", "scenes": 1, "lines": 1},
            {"known_as": "Ms. Lee", "role": "teacher", "person_id": "ms-lee", "scenes": 1, "lines": 1},
        ],
        "learner_words": [
            {"stage": "toddler", "stage_rank": 0, "mean_words": 2.0, "longest": 2, "target_max_words": 4,
             "learner_turns": 1},
            {"stage": "early_childhood", "stage_rank": 1, "mean_words": 4.0, "longest": 4, "target_max_words": 8,
             "learner_turns": 1},
        ],  # fmt: skip
        "model_costs": [
            {"stage": "toddler", "calls_paid": 1, "calls_replayed": 0, "calls_failed": 0, "input_tokens": 100,
             "output_tokens": 20, "cache_read_tokens": 50, "cache_write_tokens": 0, "cost_usd": 0.25},
        ],  # fmt: skip
    }
