"""Fuzzing the one YAML loader: whatever bytes a person saves, the answer is a model or a ConfigError.

Any other exception would reach the user as a traceback, which the CLI reserves for bugs.
"""

from __future__ import annotations

import io
import sys
import warnings
from pathlib import Path

import pytest
from conftest import REPO, run_cli
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML
from world_fixtures import MIA, PACK, write, write_world

from sim.errors import ConfigError
from sim.world.personas import load_persona
from sim.world.scenarios import load_pack
from sim.world.stages import load_stages

pytestmark = pytest.mark.filterwarnings("ignore::ruamel.yaml.error.ReusedAnchorWarning")
FUZZ = settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
SHIPPED_STAGES = (REPO / "sim" / "data" / "stages.yaml").read_text(encoding="utf-8")

SYNTAX = ["- ", ": ", "{", "}", "[", "]", ", ", "&a ", "*a", "<<: *a", "\t", "\n", "  ", "    ", "? ", "'", '"']
TAGS = ["!!str ", "!!binary ", "!!python/object:os.system ", "!tag ", "!!set ", "!!omap ", "!!timestamp "]
DIRECTIVES = ["%YAML 1.2\n", "---\n", "...\n", "# c", "|\n", ">-\n"]
ODD = ["\x00", "\ufeff", "\u2028", "é", "\\", "=", "@", "`", "%", "{learner}"]
WORDS = [
    "~",
    "null",
    "true",
    "1.5",
    "-3",
    ".nan",
    ".inf",
    "0x1F",
    "2020-01-01",
    "learner+2",
    "learner-99",
    "name",
    "role",
    "peer",
    "family",
    "kinship",
    "mother",
    "age",
    "relationships",
    "to",
    "kind",
    "parent_of",
    "closeness",
    "traits",
    "openness",
    "voice",
    "register",
    "values",
    "stages",
    "id",
    "scenes",
    "beats",
    "lines",
    "speaker",
    "cast",
    "slot",
    "follows",
    "language",
    "reading_grade",
    "ages",
]
TOKENS = SYNTAX + TAGS + DIRECTIVES + ODD + WORDS
yamlish = st.lists(st.sampled_from(TOKENS), max_size=40).map("".join)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["learner", "learner+3", "peer", "family", "sam", "parent_of", "toddler", "kindness", "{x}"]),
)
keys = st.one_of(st.sampled_from(WORDS), st.text(min_size=1, max_size=8))
trees = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(keys, children, max_size=5),
    ),
    max_leaves=25,
)


def dump(tree: object) -> str:
    """A random tree as YAML text: well-formed syntax with arbitrary shapes and values."""
    buffer = io.StringIO()
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = None
    yaml.dump(tree, buffer)
    return buffer.getvalue()


def deep(depth: int, kind: str) -> str:
    if kind == "flow-list":
        return "a: " + "[" * depth + "]" * depth + "\n"
    if kind == "flow-map":
        return "a: " + "{b: " * depth + "1" + "}" * depth + "\n"
    if kind == "block":
        return "".join(f"{'  ' * i}k{i}:\n" for i in range(depth)) + "  " * depth + "v\n"
    return "".join(f"{'  ' * i}- \n" for i in range(depth))


nested = st.builds(
    deep, st.integers(min_value=1, max_value=300), st.sampled_from(["flow-list", "flow-map", "block", "seq"])
)
ALIASES = [
    "a: &x [*x]\n",
    "a: &x {b: *x}\nname: *x\n",
    "base: &b {name: Mia, role: peer}\n<<: *b\n",
    "<<: [*nope]\n",
    "name: &n Mia\nrole: *n\nage: *n\n",
    "x: &a [&b [*a, *b]]\nrelationships: *a\n",
    "a: &a\n  - &a 1\n  - *a\n",
]


def mutate(text: str, ops: list[tuple[int, int, str]]) -> str:
    """Apply line edits to a valid file: delete, duplicate, replace the value, or insert a fragment."""
    lines = text.splitlines(keepends=True)
    for op, index, fragment in ops:
        if not lines:
            break
        i = index % len(lines)
        if op == 0:
            del lines[i]
        elif op == 1:
            lines.insert(i, lines[i])
        elif op == 2:
            head, sep, _ = lines[i].partition(": ")
            lines[i] = f"{head}{sep or ': '}{fragment}\n"
        else:
            lines.insert(i, fragment + "\n")
    return "".join(lines)


def near_valid(base: str) -> st.SearchStrategy[str]:
    ops = st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 200), st.one_of(yamlish, st.sampled_from(TOKENS))),
        min_size=1,
        max_size=4,
    )
    return ops.map(lambda o: mutate(base, o))


def texts(base: str) -> st.SearchStrategy[str | bytes]:
    return st.one_of(
        st.text(max_size=300),
        yamlish,
        trees.map(dump),
        nested,
        st.sampled_from(ALIASES),
        near_valid(base),
        st.binary(max_size=300),
        near_valid(base).map(lambda t: t.encode("utf-8") + b"\xff\xfe\x80"),
        near_valid(base).map(lambda t: t.replace("  ", "\t")),
    )


def expect_model_or_config_error(load: object, path: Path, shown: str) -> None:
    try:
        load(path)  # type: ignore[operator]
    except ConfigError as exc:
        assert exc.problems, "a ConfigError must name at least one problem"
        assert all(p.path == shown and p.message for p in exc.problems), exc.problems


@FUZZ
@given(text=texts(MIA), stem=st.sampled_from(["mia", "Bad Name", "x_1", "-dash"]))
@example(text="a: " + "[" * 300 + "]" * 300, stem="mia")  # deeper than the nesting limit
@example(text=b"\xef\xbb\xbfname: Mia\nrole: peer\naddress_as: Mia\nage: 3\n", stem="mia")
@example(text="id: [1, 2]\nname: x\n", stem="mia")
@example(text="? [a, b]\n: c\n", stem="mia")
@example(text="1: 2\nnull: 3\n", stem="mia")
def test_load_persona_never_raises_anything_but_config_error(text: str | bytes, stem: str) -> None:
    path = write(f"fuzz/{stem}.yaml", text)
    expect_model_or_config_error(load_persona, path, str(path))


@FUZZ
@given(text=texts(PACK))
@example(text="id: [x]\n")
@example(text="title: t\ndescription: d\nversion: 1\nscenes: [{cast: [{slot: a, role: peer, traits: {x: 1}}]}]\n")
def test_load_pack_never_raises_anything_but_config_error(text: str | bytes) -> None:
    write("fuzz/some-pack/pack.yaml", text)
    expect_model_or_config_error(load_pack, Path("fuzz/some-pack"), "fuzz/some-pack/pack.yaml")


@FUZZ
@given(text=texts(SHIPPED_STAGES))
@example(
    text="stages:\n  - {id: a, label: A, ages: [.nan, 1], language: {max_words_per_turn: .inf, reading_grade: [1]}}\n"
)
def test_load_stages_never_raises_anything_but_config_error(text: str | bytes) -> None:
    path = write("fuzz/stages.yaml", text)
    expect_model_or_config_error(load_stages, path, str(path))


def test_the_fuzzers_reach_both_outcomes() -> None:
    """A fuzz target that always fails (or always loads) would test nothing: check both outcomes exist."""
    ok = write("fuzz/mia.yaml", MIA)
    assert load_persona(ok).model.name == "Mia Torres"
    broken = write("fuzz/mia.yaml", MIA + "nmae: x\n")
    with pytest.raises(ConfigError):
        load_persona(broken)


SMALL_STAGES = """\
stages:
  - {id: toddler, label: Toddler, ages: [2, 2], language: {max_words_per_turn: 4, reading_grade: [-3, 1]}}
  - {id: early_childhood, label: Early, ages: [3, 5], language: {max_words_per_turn: 8, reading_grade: [-2, 2]}}
"""
SMALL_VALUES = "values:\n" + "".join(
    f"  - {{id: {v}, label: {v.title()}, description: A value.}}\n"
    for v in ("honesty", "kindness", "sharing", "respect")
)
# The shipped stages and values files take most of a CLI run to parse; small overrides keep the fuzzing fast.
SMALL = ("--stages", "small-stages.yaml", "--values", "small-values.yaml")
CLI_FUZZ = settings(FUZZ, max_examples=50)


@pytest.fixture
def world(hermetic: Path) -> Path:
    write("small-stages.yaml", SMALL_STAGES)
    write("small-values.yaml", SMALL_VALUES)
    return write_world()


def assert_clean_exit(args: tuple[str, ...], *shown: str) -> None:
    result = run_cli(*args)
    assert result.exit_code in (0, 2), result.output
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        assert result.stdout == ""
        assert result.stderr.startswith(shown), result.stderr
        assert result.stderr.endswith("; nothing was changed\n")
    else:
        assert result.stderr == ""
        assert result.stdout.startswith("ok: ")


def test_the_small_world_is_valid(world: Path) -> None:
    result = run_cli("scenarios", "validate", *SMALL)
    assert (result.exit_code, result.stdout) == (0, "ok: 1 pack, 2 scenes, 5 personas, no problems\n")


@CLI_FUZZ
@given(text=texts(MIA))
def test_cli_personas_validate_exits_0_or_2(world: Path, text: str | bytes) -> None:
    write("personas/mia.yaml", text)
    assert_clean_exit(("personas", "validate", *SMALL), "personas/mia.yaml:", "personas/mia.yaml: ")


@CLI_FUZZ
@given(text=texts(PACK))
def test_cli_scenarios_validate_exits_0_or_2(world: Path, text: str | bytes) -> None:
    write("scenarios/first-steps/pack.yaml", text)
    assert_clean_exit(("scenarios", "validate", *SMALL), "scenarios/first-steps/pack.yaml:")


@CLI_FUZZ
@given(text=texts(SMALL_STAGES))
def test_cli_stages_override_exits_0_or_2(world: Path, text: str | bytes) -> None:
    write("stages.yaml", text)
    assert_clean_exit(
        ("scenarios", "validate", "--stages", "stages.yaml", "--values", "small-values.yaml"),
        "stages.yaml:",
        "personas/",
        "scenarios/",
    )


def test_control_character_is_one_problem_on_one_line() -> None:
    path = write("fuzz/mia.yaml", "name: Mia\x1f\n")
    with pytest.raises(ConfigError) as caught:
        load_persona(path)
    assert [line.count("\n") for line in caught.value.lines()] == [0]
    assert caught.value.problems[0].line == 1
    assert "<unicode string>" not in str(caught.value)


def test_unknown_key_with_a_newline_stays_on_one_line() -> None:
    write_world(personas={"mia": MIA + '"a\\nb": 1\n'})
    result = run_cli("personas", "validate")
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 2


def print_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int, *_: object) -> None:
    """Python's own way of showing a warning (pytest records them instead)."""
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno))


def test_reused_anchor_prints_no_library_warning() -> None:
    mia = MIA.replace("name: Mia Torres", "name: &a Mia Torres").replace("age: learner", "age: &a learner")
    write_world(personas={"mia": mia})
    with warnings.catch_warnings():
        warnings.simplefilter("default")  # what a user's `sim` does; pytest would otherwise record it
        warnings.showwarning = print_warning
        result = run_cli("personas", "validate")
    assert result.stdout == "ok: 5 personas (1 learner), 12 relationship edges, no problems\n"
    assert result.stderr == ""
