"""Input a person controls but the tool must bound: YAML files too large or nested too deeply, seeds out of range.

Every test drives `sim` as a user would and asserts the exact text and exit status. A file at exactly each
limit still gets past the reader, so the limits are the ones the README documents (1 MiB, 32 levels).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from conftest import run_cli
from world_fixtures import MIA, write, write_world

from sim.world.yaml_limits import MAX_BYTES, MAX_DEPTH, TooDeep, limited_yaml

SUMMARY = "1 problem in 1 file; nothing was changed"
TOO_DEEP = "invalid YAML: lists and mappings nested more than 32 levels deep (use fewer levels)"
SPLIT_HINT = "(expected at most 1,048,576 bytes, 1 MiB; shorten it, or split a pack into packs that follow each other)"
SEED_RANGE = "-9223372036854775808<=x<=9223372036854775807"


def stderr_of(*args: str) -> str:
    """The stderr of a `sim` run that must fail as a user error: exit 2, nothing on stdout, no traceback."""
    result = run_cli(*args)
    assert (result.exit_code, result.stdout) == (2, ""), result.output
    assert "Traceback" not in result.output
    return result.stderr


def test_the_limits_are_the_documented_ones() -> None:
    assert (MAX_BYTES, MAX_DEPTH) == (1_048_576, 32)


@pytest.mark.parametrize("depth", [2_000, 20_000])
def test_deep_brackets_are_refused_where_they_pass_the_limit(depth: int) -> None:
    # Line 9 of mia.yaml; before the limit, 2,000 levels took 40 s to reject and 20,000 never finished.
    write_world(personas={"mia": MIA + "backstory: " + "[" * depth + "]" * depth + "\n"})
    assert stderr_of("personas", "validate") == f"personas/mia.yaml:9: (top level): {TOO_DEEP}\n{SUMMARY}\n"


def test_deep_block_nesting_is_refused_at_the_line_of_the_33rd_level() -> None:
    # The file's mapping is level 1 and backstory's (from k0 on line 10) level 2: k31, on line 41, opens level 33.
    nested = "".join(f"{'  ' * (i + 1)}k{i}:\n" for i in range(40)) + "  " * 41 + "leaf\n"
    write_world(personas={"mia": MIA + "backstory:\n" + nested})
    assert stderr_of("personas", "validate") == f"personas/mia.yaml:41: (top level): {TOO_DEEP}\n{SUMMARY}\n"


def test_nesting_at_the_limit_is_read_and_then_validated() -> None:
    # 31 brackets under the file's own mapping are 32 levels: the file is read, and the schema answers.
    write_world(personas={"mia": MIA + "backstory: " + "[" * 31 + "]" * 31 + "\n"})
    expected = "personas/mia.yaml:9: backstory: found a list (expected text)"
    assert stderr_of("personas", "validate") == f"{expected}\n{SUMMARY}\n"


def test_the_scanner_alone_stops_at_the_33rd_bracket() -> None:
    # The composer counts the depth too, but only after the scanner's look-ahead, quadratic in open brackets,
    # has run: 0.8 s for 20,000 brackets on one line. Reading tokens alone must already stop.
    tokens = limited_yaml().scan("a: " + "[" * 20_000 + "]" * 20_000 + "\n")
    with pytest.raises(TooDeep):
        list(tokens)


def padded(text: str, size: int) -> str:
    """`text` followed by a comment line, `size` bytes in all."""
    return text + "#" + "x" * (size - len(text) - 2) + "\n"


def test_a_persona_of_exactly_the_size_limit_loads() -> None:
    write_world(personas={"mia": padded(MIA, 1_048_576)})
    assert Path("personas/mia.yaml").stat().st_size == 1_048_576
    result = run_cli("personas", "validate")
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == "ok: 5 personas (1 learner), 12 relationship edges, no problems\n"


def test_a_persona_one_byte_over_the_limit_is_refused_with_its_size() -> None:
    write_world(personas={"mia": padded(MIA, 1_048_577)})
    expected = f"personas/mia.yaml: (top level): file is too large: 1,048,577 bytes {SPLIT_HINT}"
    assert stderr_of("personas", "validate") == f"{expected}\n{SUMMARY}\n"


def test_a_stages_file_over_the_limit_is_refused_too() -> None:
    write_world()
    write("big-stages.yaml", padded("stages: []\n", 2_000_000))
    expected = f"big-stages.yaml: (top level): file is too large: 2,000,000 bytes {SPLIT_HINT}"
    assert stderr_of("scenarios", "validate", "--stages", "big-stages.yaml") == f"{expected}\n{SUMMARY}\n"


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_a_persona_with_no_size_to_stat_is_read_only_up_to_the_limit() -> None:
    # stat() says 0 bytes for a device; before the bounded read, this one filled memory until killed.
    write_world()
    Path("personas/mia.yaml").unlink()
    Path("personas/mia.yaml").symlink_to("/dev/zero")
    expected = f"personas/mia.yaml: (top level): file is too large: more than 1,048,576 bytes {SPLIT_HINT}"
    assert stderr_of("personas", "validate") == f"{expected}\n{SUMMARY}\n"


@pytest.mark.parametrize("seed", [str(2**63), str(-(2**63) - 1)])
@pytest.mark.parametrize("dry_run", [(), ("--dry-run",)], ids=["run", "dry-run"])
def test_run_refuses_a_seed_the_store_cannot_hold(seed: str, dry_run: tuple[str, ...]) -> None:
    write_world()
    stderr = stderr_of("run", "scenarios/first-steps", "--db", "out.duckdb", "--seed", seed, *dry_run)
    assert stderr.startswith("Usage: ") and " run [OPTIONS] " in stderr.splitlines()[0]
    assert stderr.splitlines()[-1] == f"Error: Invalid value for '--seed': {seed} is not in the range {SEED_RANGE}."
    assert not Path("out.duckdb").exists()


@pytest.mark.parametrize(
    "command",
    [("export", "--out", "x", "--format", "jsonl"), ("personas", "new", "--role", "peer"), ("show", "some-scene")],
    ids=lambda c: c[0],
)
def test_every_seed_option_takes_the_same_range(command: tuple[str, ...]) -> None:
    stderr = stderr_of(*command, "--seed", str(2**63))
    assert stderr.splitlines()[-1] == f"Error: Invalid value for '--seed': {2**63} is not in the range {SEED_RANGE}."


def test_the_largest_seed_is_stored() -> None:
    write_world()
    result = run_cli("run", "scenarios/first-steps", "--db", "out.duckdb", "--seed", str(2**63 - 1))
    assert result.exit_code == 0, result.output
    with duckdb.connect("out.duckdb", read_only=True) as con:
        assert con.execute("SELECT DISTINCT seed FROM scenes").fetchall() == [(2**63 - 1,)]
