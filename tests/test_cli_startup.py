"""The light commands start without loading the heavy libraries: each is run in a fresh interpreter.

`sim --help` imports every command's module, so it checks that no command module loads LangGraph, a provider
SDK, Arrow, matplotlib or Faker at import, nor the world's models; `query` and the list commands check that
the work they do needs no more than it must. Timings are for `bench/bench_cli.py`; this only reads `sys.modules`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

# Never needed by a command that only reads: the scene graph, the provider SDKs and their HTTP stacks,
# Arrow, drawing, drafting people, text statistics and tokenizers.
HEAVY = frozenset(
    {
        "langgraph",
        "langchain_core",
        "langsmith",
        "anthropic",
        "openai",
        "aiohttp",
        "httpx",
        "httpx2",
        "pyarrow",
        "matplotlib",
        "faker",
        "pydot",
        "textstat",
        "tokenizers",
    }
)
# What reading the world costs (pydantic and the YAML loader, the persona graph): about as much again as
# `import click, rich, duckdb`, so only commands that load the world may pay it.
WORLD = frozenset({"pydantic", "ruamel", "networkx"})
# Run a `sim` command line as `python -m sim` does, then write the top-level packages it imported to a file.
WRAPPER = """\
import json, runpy, sys
out, sys.argv = sys.argv[1], ["sim", *sys.argv[2:]]
code = 0
try:
    runpy.run_module("sim", run_name="__main__", alter_sys=True)
except SystemExit as exit:
    code = exit.code
with open(out, "w") as handle:
    json.dump({"code": code, "modules": sorted({name.partition(".")[0] for name in sys.modules})}, handle)
"""


def imported(tmp: Path, *args: str) -> set[str]:
    """The top-level packages a fresh `sim ARGS...` process imported; the command must succeed."""
    out = tmp / "modules.json"
    done = subprocess.run(
        [sys.executable, "-c", WRAPPER, str(out), *args], cwd=tmp, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert report["code"] in (0, None), done.stdout + done.stderr
    return set(report["modules"])


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small corpus, as a user makes one: `sim run scenarios/first-steps` (run once for the module)."""
    work = tmp_path_factory.mktemp("corpus")
    db = work / "small.duckdb"
    subprocess.run(
        [sys.executable, "-m", "sim", "run", str(REPO / "scenarios" / "first-steps"), "--db", str(db),
         "--personas", str(REPO / "personas")],
        cwd=work, check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return db


@pytest.mark.parametrize("args", [("--help",), ("--version",), ("query", "--help"), ("run", "--help")])
def test_help_and_version_import_no_heavy_library(hermetic: Path, args: tuple[str, ...]) -> None:
    modules = imported(hermetic, *args)
    assert "click" in modules  # the wrapper did run the CLI
    assert modules & (HEAVY | WORLD) == set()


def test_query_imports_no_heavy_library(hermetic: Path, corpus: Path) -> None:
    modules = imported(hermetic, "query", "select count(*) from scenes", "--db", str(corpus))
    assert "duckdb" in modules
    assert modules & (HEAVY | WORLD) == set()


@pytest.mark.parametrize("noun", ["scenarios", "personas"])
def test_list_commands_import_no_heavy_library(shipped_world: Path, noun: str) -> None:
    """Listing loads and checks the world, which builds the persona graph (networkx), and nothing heavier."""
    modules = imported(shipped_world, noun, "list")
    assert modules >= WORLD
    assert modules & HEAVY == set()


def test_the_wrapper_sees_what_a_command_imports(hermetic: Path) -> None:
    """The check can fail: `sim personas graph` draws with matplotlib, and the wrapper reports it."""
    shutil.copytree(REPO / "personas", hermetic / "personas")
    modules = imported(hermetic, "personas", "graph", "--out", "graph.png")
    assert "matplotlib" in modules


def test_schema_kinds_are_the_models_kinds() -> None:
    """`sim schema` names its kinds without loading the models (for `sim --help`); the two lists agree."""
    from sim.cli.schema import KINDS, models

    assert sorted(KINDS) == sorted(models())
