"""Naming packs on the command line: by path or by id, a directory of packs, and a shell glob that picks up READMEs.

Every command that names packs (`run`, `scenarios list`, `scenarios validate`, `scenarios show`) resolves them alike;
`sim show PACK/SCENE` takes a stored scene's pack by id or by directory too.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli

SKIP_README = "skipped scenarios/README.md: not a pack (a pack is a directory holding pack.yaml)\n"
KNOWN = "known packs in scenarios: crossroads, first-steps, professions, school-days"


def glob(pattern: str) -> list[str]:
    """What the shell passes for `pattern`: sorted matches."""
    return sorted(str(p) for p in Path().glob(pattern))


def test_a_shell_glob_over_scenarios_skips_the_readme_and_runs_every_pack(shipped_world: Path) -> None:
    args = glob("scenarios/*")
    assert "scenarios/README.md" in args
    result = run_cli("run", *args, "--db", "g.duckdb")
    assert (result.exit_code, result.stderr) == (0, SKIP_README)
    assert "run " in result.stdout and ": 37 scenes lived, 0 already stored" in result.stdout


def test_a_directory_of_packs_means_every_pack_in_it_in_order(shipped_world: Path) -> None:
    result = run_cli("run", "scenarios/", "--dry-run", "--db", "d.duckdb")
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout.startswith("dry run: 37 scenes to live, 0 already stored")
    listed = run_cli("scenarios", "list", "scenarios", "--json")
    assert (listed.exit_code, listed.stderr) == (0, "")
    packs = list(dict.fromkeys(row["pack"] for row in json.loads(listed.stdout)))
    assert packs == ["crossroads", "first-steps", "professions", "school-days"]


PATHS = ["scenarios/first-steps", "scenarios/first-steps/", "scenarios/first-steps/pack.yaml"]
FORMS = [*PATHS, "first-steps", "first-steps/"]


@pytest.mark.parametrize("name", FORMS)
def test_a_pack_is_named_by_path_or_by_id_in_every_command(shipped_world: Path, name: str) -> None:
    run = run_cli("run", name, "--dry-run", "--db", "d.duckdb")
    assert (run.exit_code, run.stderr) == (0, "")
    assert run.stdout.startswith("dry run: 10 scenes to live")
    listed = run_cli("scenarios", "list", name, "--json")
    assert {row["pack"] for row in json.loads(listed.stdout)} == {"first-steps"}
    validated = run_cli("scenarios", "validate", name)
    assert (validated.exit_code, validated.stdout) == (0, "ok: 1 pack, 10 scenes, 20 personas, no problems\n")
    shown = run_cli("scenarios", "show", name, "--json")
    assert (shown.exit_code, json.loads(shown.stdout)["id"]) == (0, "first-steps")


@pytest.mark.parametrize("pack", ["scenarios/first-steps", "scenarios/first-steps/", "first-steps"])
def test_show_takes_pack_slash_scene_with_either_form_of_pack(shipped_world: Path, pack: str) -> None:
    result = run_cli("scenarios", "show", f"{pack.rstrip('/')}/kind-to-others", "--json")
    assert (result.exit_code, result.stderr) == (0, "")
    assert json.loads(result.stdout)["id"] == "kind-to-others"


def test_a_pack_named_twice_is_loaded_once(shipped_world: Path) -> None:
    result = run_cli("run", "scenarios/", "first-steps", "scenarios/first-steps/", "--dry-run", "--db", "d.duckdb")
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout.startswith("dry run: 37 scenes to live")


def test_what_is_skipped_is_said_once_on_one_line(shipped_world: Path) -> None:
    Path("notes").mkdir()
    Path("todo.txt").write_text("later\n")
    result = run_cli("scenarios", "validate", "scenarios/README.md", "notes", "todo.txt", "first-steps")
    assert result.exit_code == 0
    assert result.stderr == (
        "skipped scenarios/README.md, notes, todo.txt: not packs (a pack is a directory holding pack.yaml)\n"
    )
    assert result.stdout == "ok: 1 pack, 10 scenes, 20 personas, no problems\n"


@pytest.mark.parametrize("command", [("run",), ("scenarios", "list"), ("scenarios", "validate"), ("scenarios", "show")])
def test_nothing_runnable_is_one_error(shipped_world: Path, command: tuple[str, ...]) -> None:
    Path("notes").mkdir()
    result = run_cli(*command, "notes")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == f"error: no pack in notes (a pack is a directory holding pack.yaml; {KNOWN})\n"


@pytest.mark.parametrize("command", [("run",), ("scenarios", "list"), ("scenarios", "validate"), ("scenarios", "show")])
def test_an_unknown_pack_lists_the_known_ids(shipped_world: Path, command: tuple[str, ...]) -> None:
    result = run_cli(*command, "fist-steps")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        f"error: no pack 'fist-steps' (did you mean 'first-steps'? {KNOWN}; name a pack by its id or its directory)\n"
    )


def test_show_of_a_directory_of_packs_asks_for_one(shipped_world: Path) -> None:
    result = run_cli("scenarios", "show", "scenarios/")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        "error: scenarios/ holds 4 packs (crossroads, first-steps, professions, school-days); "
        "name one, e.g. crossroads\n"
    )


@pytest.mark.parametrize("target", ["first-steps/kind-to-others", "scenarios/first-steps/kind-to-others",
                                    "./scenarios/first-steps/kind-to-others/"])
def test_sim_show_takes_the_pack_of_a_stored_scene_by_id_or_by_directory(shipped_world: Path, target: str) -> None:
    assert run_cli("run", "first-steps", "--db", "s.duckdb").exit_code == 0

    result = run_cli("show", target, "--db", "s.duckdb", "--json")

    assert (result.exit_code, result.stderr) == (0, "")
    assert (json.loads(result.stdout)["pack"], json.loads(result.stdout)["scene"]) == ("first-steps", "kind-to-others")
