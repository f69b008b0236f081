"""The authoring commands as a user runs them: help, list/show (--json), validate, new, graph and schema."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from conftest import REPO, run_cli
from ruamel.yaml import YAML
from world_fixtures import MIA, write, write_world

from sim import INTERRUPTED
from sim.cli import _register, cli

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def command_tree(cmd: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, cmd
    if isinstance(cmd, click.Group):
        for name, sub in sorted(cmd.commands.items()):
            yield from command_tree(sub, (*path, name))


_register()
COMMANDS = list(command_tree(cli))


def squash(text: str) -> str:
    return " ".join(text.split())


def lines(text: str) -> list[str]:
    return text.splitlines()


@pytest.fixture
def world(hermetic: Path) -> Path:
    return write_world()


# --- help ------------------------------------------------------------------------------------------------------


def test_the_authoring_commands_are_all_there() -> None:
    assert {" ".join(p) for p, _ in COMMANDS} >= {
        "",
        "personas",
        "personas graph",
        "personas list",
        "personas new",
        "personas show",
        "personas validate",
        "scenarios",
        "scenarios list",
        "scenarios show",
        "scenarios validate",
        "schema",
    }


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) or "sim" for p, _ in COMMANDS])
def test_every_command_has_help(path: tuple[str, ...], command: click.Command) -> None:
    assert command.help, f"`sim {' '.join(path)}` has no docstring"
    first_line = command.help.strip().splitlines()[0]
    for flag in ("--help", "-h"):
        result = run_cli(*path, flag)
        assert result.exit_code == 0, result.output
        assert squash(first_line) in squash(result.stdout)
        assert result.stdout.startswith("Usage: ")


@pytest.mark.parametrize(
    "path",
    [p for p, _ in COMMANDS if len(p) == 2 and p[0] in {"personas", "scenarios"} and p[1] in {"list", "show"}],
    ids=lambda p: " ".join(p),
)
def test_every_list_and_show_takes_json(path: tuple[str, ...]) -> None:
    command = dict(COMMANDS)[path]
    assert "--json" in {opt for param in command.params for opt in getattr(param, "opts", [])}


# --- personas list / show / validate ---------------------------------------------------------------------------


def test_personas_list_json(world: Path) -> None:
    result = run_cli("personas", "list", "--json")
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    assert [r["id"] for r in rows] == ["grandpa", "mia", "ms-lee", "mum", "sam"]
    assert all(set(r) == {"id", "known_as", "name", "role", "kinship", "age", "stages"} for r in rows)
    by_id = {r["id"]: r for r in rows}
    assert by_id["sam"] == {
        "id": "sam",
        "known_as": "I",
        "name": "Sam Adeyemi",
        "role": "learner",
        "kinship": None,
        "age": None,
        "stages": [],
    }
    assert by_id["mum"]["age"] == "learner+31"
    assert by_id["ms-lee"]["stages"] == ["early_childhood"]


def test_personas_list_table(world: Path) -> None:
    result = run_cli("personas", "list")
    assert result.exit_code == 0
    out = result.stdout
    assert "known as" in out
    for pid in ("grandpa", "mia", "ms-lee", "mum", "sam"):
        assert f" {pid} " in out


def test_personas_show_json_includes_derived_ties(world: Path) -> None:
    result = run_cli("personas", "show", "sam", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert {"id", "name", "role", "traits", "voice", "relationships", "ties"} <= set(data)
    assert data["voice"]["register"] == "curious"
    assert data["traits"]["openness"] == 0.7
    assert data["ties"] == [
        {"kind": "grandchild_of", "to": "grandpa", "closeness": 0.85, "declared": False},
        {"kind": "classmate_of", "to": "mia", "closeness": 0.7, "declared": False},
        {"kind": "friend_of", "to": "mia", "closeness": 0.9, "declared": False},
        {"kind": "student_of", "to": "ms-lee", "closeness": 0.6, "declared": False},
        {"kind": "child_of", "to": "mum", "closeness": 0.9, "declared": False},
    ]


def test_personas_show_text(world: Path) -> None:
    result = run_cli("personas", "show", "mum")
    assert result.exit_code == 0
    assert lines(result.stdout) == [
        "Amara Adeyemi (mum) — known to the learner as 'Mum'",
        "role family, mother; age learner+31; stages all; pronouns she/her",
        "traits: openness 0.50, conscientiousness 0.50, extraversion 0.50, agreeableness 0.50, neuroticism 0.50",
        "values: honesty, kindness",
        "voice: plain, everyday vocabulary; catchphrases: -",
        "  child_of grandpa (closeness 0.80)",
        "  parent_of sam (closeness 0.90)",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("personas", "show", "mai"), "error: no person 'mai' (did you mean 'mia'? see `sim personas list`)"),
        (("personas", "show", "zzz", "--json"), "error: no person 'zzz' (see `sim personas list`)"),
        (
            ("scenarios", "show", "first-steps/kind-word"),
            "error: no scene 'kind-word' in pack 'first-steps' (did you mean first-steps/kind-words? "
            "see `sim scenarios list first-steps`)",
        ),
        (
            ("scenarios", "show", "nothing"),
            "error: no pack 'nothing' (known packs in scenarios: first-steps; name a pack by its id or its directory)",
        ),
    ],
)
def test_show_of_an_unknown_id_is_one_line(world: Path, args: tuple[str, ...], message: str) -> None:
    result = run_cli(*args)
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", message + "\n")


def test_show_of_a_misspelt_pack_has_a_did_you_mean(world: Path) -> None:
    result = run_cli("scenarios", "show", "first-step")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        "error: no pack 'first-step' (did you mean 'first-steps'? known packs in scenarios: first-steps; "
        "name a pack by its id or its directory)\n"
    )


def test_personas_validate_ok(world: Path) -> None:
    result = run_cli("personas", "validate")
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == "ok: 5 personas (1 learner), 12 relationship edges, no problems\n"


def test_world_paths_from_options(world: Path) -> None:
    Path("personas").rename("people")
    Path("scenarios").rename("packs")
    assert run_cli("personas", "validate").exit_code == 2
    result = run_cli("scenarios", "validate", "--personas", "people", "--scenarios", "packs")
    assert (result.exit_code, result.stdout) == (0, "ok: 1 pack, 2 scenes, 5 personas, no problems\n")


# --- scenarios list / show -------------------------------------------------------------------------------------


def test_scenarios_list_json(world: Path) -> None:
    result = run_cli("scenarios", "list", "--json")
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    keys = {"pack", "position", "scene", "title", "stage", "stage_rank", "values", "cast", "beats", "follows"}
    assert all(set(r) == keys for r in rows)
    assert [(r["position"], r["scene"], r["stage"], r["stage_rank"]) for r in rows] == [
        (1, "sharing-toys", "toddler", 0),
        (2, "kind-words", "early_childhood", 1),
    ]
    assert rows[1]["cast"] == ["teacher", "friend"]
    assert rows[1]["follows"] == ["sharing-toys"]


def test_scenarios_list_table_ends_with_a_summary(world: Path) -> None:
    result = run_cli("scenarios", "list")
    assert result.exit_code == 0
    assert lines(result.stdout)[-1] == (
        "2 scenes in 1 pack; by stage: toddler 1, early_childhood 1, middle_childhood 0, late_childhood 0, "
        "early_adolescence 0, adolescence 0, young_adult 0"
    )


def test_scenarios_show_pack_json(world: Path) -> None:
    result = run_cli("scenarios", "show", "first-steps", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert (data["id"], data["version"], len(data["scenes"])) == ("first-steps", "1.0.0", 2)
    grandpa = data["scenes"][0]["cast"][0]
    assert {k: grandpa[k] for k in ("slot", "role", "relation", "kinship", "traits")} == {
        "slot": "grandpa",
        "role": "family",
        "relation": "grandparent_of",
        "kinship": [],
        "traits": {},
    }


def test_scenarios_show_scene_json(world: Path) -> None:
    result = run_cli("scenarios", "show", "first-steps/kind-words", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["id"] == "kind-words"
    assert data["beats"][1] == {
        "speaker": "learner",
        "intent": "comfort",
        "lines": ["Are you okay, {friend}?", "Do you want a hug?"],
        "to": "friend",
        "exchanges": 1,
    }


def test_scenarios_show_scene_text(world: Path) -> None:
    result = run_cli("scenarios", "show", "first-steps/sharing-toys")
    assert result.exit_code == 0
    assert lines(result.stdout) == [
        "Sharing the blocks (sharing-toys) — stage toddler; values sharing; the learner as grandchild",
        "setting: the cottage, a rainy morning: two children and one box of blocks",
        "objective: I learn to share the blocks.",
        "cast grandpa: family, grandparent_of the learner",
        "opening: I am {age}. Today {grandpa} and I are in {place}.",
        " 1. grandpa — ask the learner to share",
        "      | Can you share, {learner}?",
        "      | {learner}, one block for me?",
        " 2. learner — share",
        "      | Share, {speaker}!",
        "      | Here, {speaker}.",
        "reflection: That night I thought about what {grandpa} said.",
    ]


def test_scenarios_show_pack_text_shows_each_stage(world: Path) -> None:
    result = run_cli("scenarios", "show", "first-steps")
    assert result.exit_code == 0
    assert lines(result.stdout)[2:] == [
        "   1. sharing-toys [toddler] Sharing the blocks — sharing",
        "   2. kind-words [early_childhood] Kind words at school — kindness, respect",
    ]


def test_scenarios_show_pack_text_header(world: Path) -> None:
    result = run_cli("scenarios", "show", "first-steps")
    assert result.exit_code == 0
    assert lines(result.stdout)[:2] == ["First steps (first-steps 1.0.0)", "Two small scenes for tests."]


# --- personas new ----------------------------------------------------------------------------------------------


def new(*args: str) -> str:
    result = run_cli("personas", "new", *args)
    assert (result.exit_code, result.stderr) == (0, ""), result.output
    return result.stdout


def save_drafted(output: str) -> Path:
    first = lines(output)[0]
    assert first.startswith("# save as personas/gen-")
    return write(first.removeprefix("# save as "), output)


def test_personas_new_prints_a_persona_that_validates(world: Path) -> None:
    output = new("--role", "peer", "--seed", "7")
    path = save_drafted(output)
    assert path.name == "gen-peer-31fcd2.yaml"
    data = YAML(typ="safe").load(output)
    assert "id" not in data and "generated" not in data
    assert data["role"] == "peer"
    assert data["relationships"] == [{"to": "sam", "kind": "classmate_of", "closeness": 0.4}]
    result = run_cli("personas", "validate")
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == "ok: 6 personas (1 learner), 14 relationship edges, no problems\n"


def test_personas_new_same_seed_same_bytes(world: Path) -> None:
    assert new("--role", "peer", "--seed", "7") == new("--role", "peer", "--seed", "7")
    assert new("--role", "peer", "--seed", "7") != new("--role", "peer", "--seed", "8")


def test_personas_new_without_a_world_relates_to_a_placeholder_learner() -> None:
    output = new("--role", "peer", "--seed", "7")
    assert YAML(typ="safe").load(output)["relationships"][0]["to"] == "learner"


def test_personas_new_slot_names_the_id(world: Path) -> None:
    assert lines(new("--role", "peer", "--slot", "buddy", "--seed", "1"))[0].startswith("# save as personas/gen-buddy-")


def test_personas_new_rejects_the_learner_role(world: Path) -> None:
    result = run_cli("personas", "new", "--role", "learner")
    assert result.exit_code == 2
    assert "Invalid value for '--role'" in result.stderr


@pytest.mark.parametrize("role", ["teacher", "community", "family"])
def test_personas_new_other_roles_validate(world: Path, role: str) -> None:
    save_drafted(new("--role", role, "--seed", "7"))
    result = run_cli("personas", "validate")
    assert (result.exit_code, result.stderr) == (0, "")


@pytest.mark.parametrize("role", ["teacher", "community"])
def test_personas_new_writes_an_absolute_age_as_a_number(world: Path, role: str) -> None:
    age = YAML(typ="safe").load(new("--role", role, "--seed", "7"))["age"]
    assert isinstance(age, int) and not isinstance(age, bool)


def test_personas_new_family_gets_a_kinship_that_fits_the_relation(world: Path) -> None:
    data = YAML(typ="safe").load(new("--role", "family", "--seed", "7"))
    assert (data["kinship"], data["relationships"][0]["kind"]) == ("cousin", "cousin_of")
    assert data["address_as"].startswith("Cousin ")


# --- personas graph --------------------------------------------------------------------------------------------


def graph(out: str) -> Any:
    return run_cli("personas", "graph", "--out", out)


def test_graph_dot(world: Path) -> None:
    result = graph("g.dot")
    assert (result.exit_code, result.stdout) == (0, "wrote g.dot (5 people, 6 relationships)\n")
    dot = Path("g.dot").read_text(encoding="utf-8")
    assert dot.startswith("digraph")
    assert 'mum -> sam [key="parent_of", label="parent_of 0.9", penwidth=2.75];' in dot
    assert '"ms-lee" -> sam' in dot
    assert "child_of" in dot and "sam -> mum" not in dot  # derived inverses are not drawn
    graph("again.gv")
    assert Path("again.gv").read_text(encoding="utf-8") == dot


def test_graph_png_and_svg(world: Path) -> None:
    assert graph("g.png").exit_code == 0
    assert Path("g.png").read_bytes().startswith(PNG_MAGIC)
    assert graph("G.SVG").exit_code == 0
    svg = Path("G.SVG").read_text(encoding="utf-8")
    assert "<svg" in svg and "Grandpa" in svg


def test_graph_svg_is_byte_stable(world: Path) -> None:
    graph("a.svg")
    graph("b.svg")
    assert Path("a.svg").read_bytes() == Path("b.svg").read_bytes()


@pytest.mark.parametrize(
    ("out", "message"),
    [
        ("g.jpg", "error: cannot draw to 'g.jpg': unknown extension (use one of .png, .svg, .dot, .gv)"),
        ("graph", "error: cannot draw to 'graph': unknown extension (use one of .png, .svg, .dot, .gv)"),
        ("nodir/g.dot", "error: cannot write nodir/g.dot: directory nodir does not exist (create it first)"),
    ],
)
def test_graph_bad_output_is_one_line(world: Path, out: str, message: str) -> None:
    result = graph(out)
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", message + "\n")
    assert not Path(out).exists()


def test_graph_of_a_broken_world_reports_problems(world: Path) -> None:
    write("personas/mia.yaml", MIA.replace("role: peer", "role: pear"))
    result = graph("g.dot")
    assert result.exit_code == 2
    assert lines(result.stderr)[-1] == "1 problem in 1 file; nothing was changed"
    assert not Path("g.dot").exists()


# --- schema ----------------------------------------------------------------------------------------------------


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def check_schema(schema: dict[str, Any], kind: str) -> None:
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == f"raising-sim {kind} file"
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert set(schema.get("required", [])) <= set(schema["properties"])
    for ref in refs(schema):
        assert ref.startswith("#/$defs/") and ref.removeprefix("#/$defs/") in schema["$defs"], ref


@pytest.mark.parametrize("kind", ["persona", "pack", "stages", "values"])
def test_schema_of_each_kind(kind: str) -> None:
    result = run_cli("schema", kind)
    assert result.exit_code == 0
    check_schema(json.loads(result.stdout), kind)


def test_persona_schema_matches_what_people_write() -> None:
    schema = json.loads(run_cli("schema", "persona").stdout)
    assert schema["required"] == ["name", "role"]  # id comes from the file name
    assert "id" in schema["properties"] and "generated" not in schema["properties"]
    assert "register" in schema["$defs"]["Voice"]["properties"]
    fixture_keys = {line.split(":")[0] for line in MIA.splitlines() if not line.startswith(" ")}
    assert fixture_keys <= set(schema["properties"])


def test_pack_schema_does_not_require_id() -> None:
    schema = json.loads(run_cli("schema", "pack").stdout)
    assert "id" not in schema["required"]
    assert schema["required"] == ["title", "description", "version", "scenes"]


def test_schema_without_kind_prints_all_four() -> None:
    result = run_cli("schema")
    data = json.loads(result.stdout)
    assert sorted(data) == ["pack", "persona", "stages", "values"]
    for kind, schema in data.items():
        check_schema(schema, kind)


def test_schema_out_writes_four_files() -> None:
    result = run_cli("schema", "--out", "schemas")
    assert (result.exit_code, result.stdout) == (0, "wrote 4 schema file(s) to schemas\n")
    files = sorted(p.name for p in Path("schemas").iterdir())
    assert files == ["pack.schema.json", "persona.schema.json", "stages.schema.json", "values.schema.json"]
    for name in files:
        check_schema(json.loads((Path("schemas") / name).read_text(encoding="utf-8")), name.split(".")[0])
    assert json.loads(Path("schemas/persona.schema.json").read_text(encoding="utf-8")) == json.loads(
        run_cli("schema", "persona").stdout
    )


def test_schema_unknown_kind_is_a_usage_error() -> None:
    result = run_cli("schema", "people")
    assert result.exit_code == 2
    assert "'people' is not one of 'pack', 'persona', 'stages', 'values'" in result.stderr


def test_ctrl_c_while_the_commands_are_still_importing_is_one_line_and_status_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sim.cli

    def interrupted() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(sim.cli, "_register", interrupted)
    with pytest.raises(SystemExit) as stop:
        sim.cli.main()
    assert stop.value.code == 130
    assert capsys.readouterr().err == "interrupted: finished work is kept; run the same command again to continue\n"


class _InterruptedImport:
    """A meta path finder that is interrupted (as by a Ctrl-C) when Python looks for `name`."""

    def __init__(self, name: str) -> None:
        self.name = name

    def find_spec(self, fullname: str, path: object, target: object = None) -> None:
        if fullname == self.name:
            raise KeyboardInterrupt


def test_ctrl_c_while_python_loads_the_cli_is_one_line_and_status_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sys

    from sim.__main__ import main

    monkeypatch.delitem(sys.modules, "sim.cli")
    monkeypatch.setattr(sys, "meta_path", [_InterruptedImport("sim.cli"), *sys.meta_path])
    with pytest.raises(SystemExit) as stop:
        main()
    assert stop.value.code == 130
    assert capsys.readouterr().err == "interrupted: finished work is kept; run the same command again to continue\n"



# A Ctrl-C that comes while Python runs code made by `exec` of a string (as dataclasses and namedtuples are
# made, when a module is imported) is taken by Python as never handled: after sim had reported it, Python
# would end the process by SIGINT. This sitecustomize sends one from such code as MODULE starts to import.
_CTRL_C_IN_EXEC = """\
import importlib.abc, sys

class CtrlC(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == MODULE:
            sys.meta_path.remove(self)
            exec("import os, signal; os.kill(os.getpid(), signal.SIGINT); [0 for _ in range(10 ** 7)]")

sys.meta_path.insert(0, CtrlC())
"""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize(
    ("module", "args"),
    [("sim.cli", ["--version"]), ("sim.cli.schema", ["--version"]), ("sim.world.scenarios", ["schema", "pack"])],
    ids=["as the CLI is imported", "as the commands are imported", "in a command"],
)
def test_ctrl_c_inside_code_python_execs_still_ends_with_one_line_and_status_130(
    hermetic: Path, module: str, args: list[str]
) -> None:
    hook = hermetic / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(f"MODULE = {module!r}\n" + _CTRL_C_IN_EXEC)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(hook), str(REPO)])}
    done = subprocess.run([sys.executable, "-m", "sim", *args], env=env, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr) == (130, INTERRUPTED + "\n")
