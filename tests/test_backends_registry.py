"""Backends other packages register (entry point group `raising_sim.backends`), and `sim backends`: what a user sees.

Each test installs its plugin as pip would leave it: a module and a `*.dist-info` with `entry_points.txt`,
in a directory put on `sys.path`, so `importlib.metadata` finds it as it finds any installed package.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest
from conftest import run_cli
from fakes import OpenAIFake, in_character
from world_fixtures import write_world

from sim.backends import create, registry
from sim.errors import UsageError

pytest_plugins = ["fakes.plugin"]

PACK = "scenarios/first-steps"
BUILT_INS = ["scripted", "anthropic", "openai-compatible"]
ECHO = '''\
from sim.backends.registry import BackendInfo
from sim.backends.scripted import ScriptedBackend


class EchoBackend(ScriptedBackend):
    name = "echo"
    model = "echo-1"


BACKEND = BackendInfo("echo", "the scripted lines, under another name", lambda setup: EchoBackend(),
                      needs=("ECHO_VOLUME (optional)",))
'''
LOCAL = '''\
from sim.backends.builtin import model_backend
from sim.backends.providers.openai_compat import OpenAICompatibleProvider
from sim.backends.registry import BackendInfo


class LocalProvider(OpenAICompatibleProvider):
    name = "local-llm"


def make(setup):
    def provider():
        return LocalProvider(base_url=setup.environ["LOCAL_LLM_URL"], api_key=setup.environ["LOCAL_LLM_KEY"])

    return model_backend(setup, "local-llm", provider)


BACKEND = BackendInfo("local-llm", "a chat server at LOCAL_LLM_URL", make, concurrent=True,
                      needs=("--model", "LOCAL_LLM_URL", "LOCAL_LLM_KEY"))
'''


def install(root: Path, monkeypatch: pytest.MonkeyPatch, dist: str, entry_points: str, **modules: str) -> None:
    """Install distribution `dist` 0.1 with `entry_points` (lines under the group) and `modules` (name -> source)."""
    info = root / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[raising_sim.backends]\n{entry_points}\n")
    for name, source in modules.items():
        (root / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(root))
    for name in modules:
        monkeypatch.delitem(sys.modules, name, raising=False)


@pytest.fixture
def echo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install(tmp_path / "site", monkeypatch, "sim-echo", "echo = sim_echo:BACKEND", sim_echo=ECHO)


def rows(sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect("c.duckdb", read_only=True) as con:
        return con.execute(sql).fetchall()


def test_a_registered_backend_lives_scenes_through_sim_run(echo: None) -> None:
    write_world()
    result = run_cli("run", PACK, "--backend", "echo", "--db", "c.duckdb")
    assert result.exit_code == 0, result.output
    assert rows("SELECT count(*), min(backend), max(model) FROM scenes") == [(2, "echo", "echo-1")]
    shown = run_cli("show", "first-steps/sharing-toys", "--db", "c.duckdb")
    assert "· echo/echo-1" in shown.stdout


def test_sim_backends_lists_the_built_ins_then_the_registered_one(echo: None) -> None:
    result = run_cli("backends")
    assert (result.exit_code, result.stderr) == (0, "")
    lines = result.stdout.splitlines()
    assert [line.split(" (")[0] for line in lines if not line.startswith(" ")][:4] == [*BUILT_INS, "echo"]
    assert lines[lines.index("echo (from sim-echo 0.1, one scene at a time)") :] == [
        "echo (from sim-echo 0.1, one scene at a time)",
        "  the scripted lines, under another name",
        "  needs: ECHO_VOLUME (optional)",
        "use one with: sim run PACK... --backend NAME; packages add backends under the entry point group "
        "raising_sim.backends",
    ]
    assert "anthropic (built-in, concurrent: many scenes in flight)" in lines
    assert "  needs: --model, ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL (optional)" in lines


def test_sim_backends_json_says_what_each_backend_needs_and_where_it_came_from(echo: None) -> None:
    result = run_cli("backends", "--json")
    assert (result.exit_code, result.stderr) == (0, "")
    found = json.loads(result.stdout)
    assert [b["name"] for b in found] == [*BUILT_INS, "echo"]
    assert found[0] == {
        "name": "scripted",
        "description": registry.BUILTINS[0].description,
        "concurrent": False,
        "needs": [],
        "origin": "built-in",
    }
    assert found[3] == {
        "name": "echo",
        "description": "the scripted lines, under another name",
        "concurrent": False,
        "needs": ["ECHO_VOLUME (optional)"],
        "origin": "sim-echo 0.1",
    }
    assert [b["concurrent"] for b in found] == [False, True, True, False]


def test_run_offers_every_backend_and_refuses_an_unknown_one(echo: None) -> None:
    assert "--backend [scripted|anthropic|openai-compatible|echo]" in run_cli("run", "--help").stdout
    result = run_cli("run", PACK, "--backend", "nope")
    assert result.exit_code == 2
    assert "'nope' is not one of 'scripted', 'anthropic', 'openai-compatible', 'echo'." in result.stderr


def test_create_names_every_backend_when_the_name_is_unknown(echo: None) -> None:
    with pytest.raises(UsageError) as raised:
        create("nope")
    assert str(raised.value) == "unknown backend 'nope' (expected one of: scripted, anthropic, openai-compatible, echo)"


def test_model_options_with_a_registered_offline_backend_are_one_clear_error(echo: None) -> None:
    write_world()
    result = run_cli("run", PACK, "--backend", "echo", "--max-cost", "1", "--db", "c.duckdb")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: --max-cost only apply to a model backend; add --backend anthropic or --backend "
        "openai-compatible, or leave them out for the offline echo backend\n"
    )


def test_a_registered_model_backend_gets_the_reply_cache_prices_and_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install(tmp_path / "site", monkeypatch, "sim-local", "local-llm = sim_local:BACKEND", sim_local=LOCAL)
    write_world()
    monkeypatch.setenv("LOCAL_LLM_KEY", "test-key")
    with OpenAIFake(reply=in_character) as fake:
        monkeypatch.setenv("LOCAL_LLM_URL", fake.base_url)
        first = run_cli("run", PACK, "--backend", "local-llm", "--model", "llama-3.1-8b", "--db", "c.duckdb")
        assert first.exit_code == 0, first.output
        paid = len(fake.requests_to("/v1/chat/completions"))
        (tmp_path / "work" / "c.duckdb").unlink()
        again = run_cli("run", PACK, "--backend", "local-llm", "--model", "llama-3.1-8b", "--db", "c.duckdb")
        assert again.exit_code == 0, again.output
        assert len(fake.requests_to("/v1/chat/completions")) == paid  # all replayed from the reply cache
    assert paid > 0
    assert rows("SELECT count(*), min(backend), min(model) FROM scenes") == [(2, "local-llm", "llama-3.1-8b")]
    assert rows("SELECT DISTINCT backend, source, cost_usd FROM llm_calls") == [("local-llm", "cache", 0.0)]
    assert registry.preload("local-llm") == "sim_local"


def test_a_broken_entry_point_is_one_line_naming_it_and_the_built_ins_still_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install(tmp_path / "site", monkeypatch, "sim-broken", "broken = sim_broken:BACKEND",
            sim_broken="import sim_no_such_module\n")  # fmt: skip
    expected = (
        "error: backend entry point 'broken' (sim_broken:BACKEND, from sim-broken 0.1, group raising_sim.backends) "
        "could not be loaded (ModuleNotFoundError: No module named 'sim_no_such_module'); fix or uninstall "
        "sim-broken 0.1\n"
    )
    for args in (("backends",), ("backends", "--json"), ("run", PACK, "--backend", "broken")):
        result = run_cli(*args)
        assert (result.exit_code, result.stdout, result.stderr) == (1, "", expected)
    write_world()
    assert run_cli("run", PACK, "--db", "c.duckdb").exit_code == 0  # a built-in never loads a plugin


@pytest.mark.parametrize(
    ("entry", "source", "message"),
    [
        ("odd = sim_odd:BACKEND", "BACKEND = 42\n",
         "backend entry point 'odd' (sim_odd:BACKEND, from sim-odd 0.1, group raising_sim.backends) names a int, "
         "not a sim.backends.registry.BackendInfo; fix or uninstall sim-odd 0.1"),
        ("odd = sim_odd:BACKEND",
         "from sim.backends.registry import BackendInfo\nBACKEND = BackendInfo('even', 'x', print)\n",
         "backend entry point 'odd' (sim_odd:BACKEND, from sim-odd 0.1, group raising_sim.backends) names backend "
         "'even', not 'odd'; the two must agree"),
        ("anthropic = sim_odd:BACKEND", "",
         "backend entry point 'anthropic' (sim_odd:BACKEND, from sim-odd 0.1, group raising_sim.backends) takes the "
         "built-in name 'anthropic'; the package must rename it"),
    ],
    ids=["not-a-backend", "wrong-name", "built-in-name"],
)  # fmt: skip
def test_an_entry_point_that_is_not_a_usable_backend_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, entry: str, source: str, message: str
) -> None:
    install(tmp_path / "site", monkeypatch, "sim-odd", entry, sim_odd=source)
    result = run_cli("backends")
    assert (result.exit_code, result.stderr) == (1, f"error: {message}\n")


def test_a_backend_unlike_its_entry_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = ECHO.replace('lambda setup: EchoBackend(),', 'lambda setup: EchoBackend(), concurrent=True,')
    install(tmp_path / "site", monkeypatch, "sim-echo", "echo = sim_echo:BACKEND", sim_echo=source)
    write_world()
    result = run_cli("run", PACK, "--backend", "echo", "--model", "m", "--db", "c.duckdb")
    assert (result.exit_code, result.stderr) == (1, (
        "error: backend 'echo' (sim-echo 0.1) made a backend named 'echo' with concurrent=False, but registered "
        "concurrent=True; the two must agree\n"))  # fmt: skip


def test_worker_processes_preload_each_backends_module() -> None:
    assert [registry.preload(name) for name in BUILT_INS] == [
        "sim.backends",
        "sim.backends.providers.anthropic",
        "sim.backends.providers.openai_compat",
    ]


def test_sim_backends_imports_no_provider_sdk(hermetic: Path) -> None:
    """Listing describes the model backends without loading their SDKs or the world's models."""
    from test_cli_startup import HEAVY, WORLD, imported

    modules = imported(hermetic, "backends")
    assert "click" in modules
    assert modules & (HEAVY | WORLD) == set()
