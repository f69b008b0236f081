"""`sim run --workers N` with a model backend: scenes spread over processes, against a fake Anthropic API.

What a user sees: the same corpus as one process, one budget, one clear error when a key is refused
or a worker dies, and a rerun that finishes the work from the reply cache.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, rows, run_cli
from fakes import AnthropicFake, Fault, Faults, in_character

from sim.backends import ModelOptions
from sim.cli import INTERRUPTED
from sim.run.executor import worker_count
from sim.run.forkserver import start_context
from sim.run.loop import run
from sim.run.options import RunOptions
from sim.world.load import WorldPaths, load_world

pytest_plugins = ["fakes.plugin"]

PACK = "scenarios/first-steps"
MODEL = "claude-sonnet-5"


@pytest.fixture
def anthropic(shipped_world: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    with AnthropicFake(reply=in_character) as fake:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.base_url)
        yield fake


def sim_run(db: str, *extra: str) -> Any:
    return run_cli("run", PACK, "--backend", "anthropic", "--model", MODEL, "--db", db, "--variations", "3", *extra)


TEXT = "SELECT pack, scene, variation, text FROM training_text ORDER BY pack, scene, variation"
CALLS = "SELECT purpose, count(*), sum(input_tokens), sum(output_tokens) FROM llm_calls GROUP BY purpose ORDER BY 1"


def test_two_workers_write_the_corpus_one_process_writes(anthropic: AnthropicFake) -> None:
    one = sim_run("one.duckdb", "--workers", "1", "--concurrency", "4")
    two = sim_run("two.duckdb", "--workers", "2", "--concurrency", "4")

    assert one.exit_code == 0 and two.exit_code == 0, two.output
    assert re.search(r"run \w+: 30 scenes lived, 0 already stored", two.output)
    assert rows("two.duckdb", TEXT) == rows("one.duckdb", TEXT)  # byte for byte, scene by scene
    assert rows("two.duckdb", CALLS) == rows("one.duckdb", CALLS)
    assert rows("two.duckdb", "SELECT count(*), count(DISTINCT scene_key) FROM scenes") == [(30, 30)]
    assert rows("two.duckdb", "SELECT count(*) FROM llm_calls WHERE source = 'api'") == rows(
        "one.duckdb", "SELECT count(*) FROM llm_calls WHERE source = 'api'"
    )
    asked = len(anthropic.requests_to("/v1/messages"))
    again = sim_run("two.duckdb", "--workers", "2", "--concurrency", "4")
    assert "0 scenes lived, 30 already stored" in again.output
    assert len(anthropic.requests_to("/v1/messages")) == asked


def test_workers_share_one_budget(anthropic: AnthropicFake) -> None:
    result = sim_run("c.duckdb", "--workers", "2", "--concurrency", "2", "--max-cost", "0.03")

    assert result.exit_code == 3, result.output
    assert "stopped: --max-cost 0.03 USD reached (spent 0.03" in result.output
    ((spent, most),) = rows("c.duckdb", "SELECT sum(cost_usd), max(cost_usd) FROM llm_calls")
    assert 0.03 <= spent < 0.03 + 2 * most  # past the budget by at most one call per scene in flight (2)
    assert rows("c.duckdb", "SELECT status FROM runs") == [("stopped",)]
    assert 0 < rows("c.duckdb", "SELECT count(*) FROM scenes")[0][0] < 30


def test_a_refused_key_stops_every_worker_with_one_error(anthropic: AnthropicFake) -> None:
    anthropic.faults = Faults(schedule=dict.fromkeys(range(20, 2000), Fault.AUTH))

    result = sim_run("c.duckdb", "--workers", "2", "--concurrency", "4")

    assert result.exit_code == 1
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("error: the Anthropic API refused the key in ANTHROPIC_API_KEY (401")
    assert rows("c.duckdb", "SELECT status FROM runs") == [("failed",)]
    assert len(anthropic.requests_to("/v1/messages")) < 20 + 8  # each worker stops at its scenes' next call


def test_batch_runs_in_one_process(anthropic: AnthropicFake) -> None:
    result = sim_run("c.duckdb", "--workers", "2", "--batch")

    assert result.exit_code == 2
    assert result.stderr == (
        "error: --batch runs in one process (a batch gathers every scene's next call); leave out --workers 2\n"
    )
    assert not Path("c.duckdb").exists()


def test_a_killed_worker_is_one_error_and_a_rerun_finishes_from_the_cache(anthropic: AnthropicFake) -> None:
    world = load_world(WorldPaths.from_env(), [Path(PACK)])
    options = RunOptions(
        db=Path("c.duckdb"), learner="sam", variations=3, backend="anthropic", workers=2, concurrency=4,
        model_options=ModelOptions(model=MODEL),
    )  # fmt: skip

    def kill_the_workers(stage: str, ref: str) -> None:  # at the first scene the parent takes in
        for child in multiprocessing.active_children():
            os.kill(child.pid or 0, signal.SIGKILL)

    with pytest.raises(Exception) as died:
        run(world, options, progress=kill_the_workers)

    assert type(died.value).__name__ == "WorkerDied"
    assert re.fullmatch(
        r"worker process \d ended without finishing \(killed by signal 9\); the scenes finished so far are kept "
        r"and the replies paid for are in the reply cache: run the same command again to finish",
        str(died.value),
    )
    kept = rows("c.duckdb", "SELECT count(*) FROM scenes")[0][0]
    assert kept >= 1  # the scene that came in before the kill was written
    assert rows("c.duckdb", "SELECT status FROM runs") == [("interrupted",)]
    with sqlite3.connect("c.duckdb.replies.sqlite") as cache:
        ((cached,),) = cache.execute("SELECT count(*) FROM replies").fetchall()
    ((recorded,),) = rows("c.duckdb", "SELECT count(*) FROM llm_calls")  # the stored scenes' calls

    summary = run(world, options)

    assert summary.done == 30 - kept and summary.skipped == kept and summary.workers == 2
    assert rows("c.duckdb", "SELECT count(*), count(DISTINCT scene_key) FROM scenes") == [(30, 30)]
    replayed = rows("c.duckdb", "SELECT count(*) FROM llm_calls WHERE source = 'cache'")[0][0]
    assert replayed == cached - recorded  # every reply paid for by a scene the kill cut short, and no other
    paid = len(anthropic.requests_to("/v1/messages"))
    clean = sim_run("clean.duckdb", "--workers", "2", "--concurrency", "4")  # the same corpus, never killed
    assert clean.exit_code == 0 and rows("clean.duckdb", TEXT) == rows("c.duckdb", TEXT)
    lost = paid - (len(anthropic.requests_to("/v1/messages")) - paid)
    assert 0 <= lost <= 4  # paid twice: at most the calls in flight when the workers were killed (4 scenes)


@pytest.mark.parametrize(
    ("asked", "concurrency", "lines", "scenes", "batch", "expected"),
    [
        (1, 64, 100, 5000, False, 1),
        (4, 64, 100, 50, False, 4),  # as asked, however small the run
        (4, 64, 3, 5000, False, 3),  # never more processes than life lines
        (4, 2, 100, 5000, False, 2),  # nor than scenes in flight
        (4, 64, 100, 5000, True, 1),  # a batch gathers every scene's next call in one process
        (0, 8, 100, 5000, False, 1),  # auto: one process per 32 scenes in flight
        (0, 64, 100, 5000, False, min(os.cpu_count() or 1, 2)),  # ... and at most one per core
        (0, 64, 100, 999, False, 1),  # ... for a run of 1,000 scenes or more
    ],
)
def test_worker_count(asked: int, concurrency: int, lines: int, scenes: int, batch: bool, expected: int) -> None:
    assert worker_count(asked, concurrency, lines, scenes, batch=batch) == expected


def sim_process(db: str, *extra: str, path: tuple[Path, ...] = ()) -> subprocess.Popen[str]:
    """`sim run` with two workers in a process group of its own (as a terminal runs it), against the fake.

    The `anthropic` fixture has set the key and the fake's URL; `path` goes before the repository on PYTHONPATH.
    """
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, [*path, REPO]))}
    args = ["run", PACK, "--backend", "anthropic", "--model", MODEL, "--db", db, "--workers", "2", *extra]
    return subprocess.Popen(
        [sys.executable, "-m", "sim", *args], env=env, stderr=subprocess.PIPE, text=True, start_new_session=True
    )


def group(pgid: int) -> dict[int, str]:
    """The processes still running in process group `pgid` (zombies left out): pid -> command line."""
    running = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            state, _, pgrp = stat.read_text().rsplit(")", 1)[1].split()[:3]
            if int(pgrp) == pgid and state != "Z":
                running[int(stat.parent.name)] = (stat.parent / "cmdline").read_text().replace("\0", " ")
    return running


def wait_for(condition: Callable[[], object], seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def forked(pgid: int) -> int:
    """How many processes of the group run the fork server's code: the server, and each worker forked from it."""
    return sum("multiprocessing.forkserver" in command for command in group(pgid).values())


@pytest.mark.skipif(sys.platform != "linux", reason="reads process groups from /proc")
@pytest.mark.parametrize("moment", ["while the fork server imports", "while the workers live scenes"])
def test_ctrl_c_is_one_line_and_status_130_and_leaves_no_process(anthropic: AnthropicFake, moment: str) -> None:
    anthropic.latency = 0.02
    run = sim_process("c.duckdb", "--variations", "40", "--concurrency", "8")
    if moment == "while the fork server imports":
        wait_for(lambda: forked(run.pid) == 1)  # started, and importing what workers need
    else:
        wait_for(lambda: forked(run.pid) == 3)  # the fork server and two workers
        asked = len(anthropic.requests_to("/v1/messages"))
        wait_for(lambda: len(anthropic.requests_to("/v1/messages")) > asked + 50)

    os.killpg(run.pid, signal.SIGINT)  # as a terminal's Ctrl-C: to every process of the group

    _, stderr = run.communicate(timeout=60)
    assert run.returncode == 130
    assert stderr == INTERRUPTED + "\n"  # no traceback, no warning, from any process
    wait_for(lambda: not group(run.pid), seconds=10)


@pytest.mark.skipif(sys.platform != "linux", reason="reads process groups from /proc")
def test_a_killed_run_leaves_no_worker_or_fork_server_behind(anthropic: AnthropicFake) -> None:
    anthropic.latency = 0.05
    run = sim_process("c.duckdb", "--variations", "40", "--concurrency", "8")
    wait_for(lambda: forked(run.pid) == 3)  # the fork server and two workers
    wait_for(lambda: len(anthropic.requests_to("/v1/messages")) > 50)

    run.kill()
    run.wait()

    wait_for(lambda: not group(run.pid), seconds=10)


def test_workers_run_with_the_environment_of_the_run_not_of_the_first(
    anthropic: AnthropicFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert sim_run("first.duckdb", "--workers", "2", "--concurrency", "4").exit_code == 0
    asked = len(anthropic.requests_to("/v1/messages"))
    with AnthropicFake(reply=in_character, latency=0.02) as other:  # the run lasts until the workers are ready
        monkeypatch.setenv("ANTHROPIC_BASE_URL", other.base_url)

        result = sim_run("second.duckdb", "--workers", "2", "--concurrency", "4", "--seed", "9")

        assert result.exit_code == 0, result.output
        assert len(anthropic.requests_to("/v1/messages")) == asked  # the fork server's URL was the first one
        assert len(other.requests_to("/v1/messages")) == rows("second.duckdb", "SELECT count(*) FROM llm_calls")[0][0]


@pytest.mark.skipif(sys.platform != "linux", reason="reads process groups from /proc")
def test_while_the_workers_start_the_run_already_lives_scenes(anthropic: AnthropicFake, tmp_path: Path) -> None:
    slow = tmp_path / "slow"  # a fork server that takes 2 s longer to start than it does on its own
    slow.mkdir()
    (slow / "sitecustomize.py").write_text(
        "import sys, time\nif any('multiprocessing.forkserver' in arg for arg in sys.orig_argv):\n    time.sleep(2)\n"
    )
    run = sim_process("c.duckdb", "--variations", "3", "--concurrency", "4", path=(slow,))

    wait_for(lambda: len(anthropic.requests_to("/v1/messages")) >= 20)
    assert forked(run.pid) == 1  # the fork server is still starting: no worker yet
    _, stderr = run.communicate(timeout=60)
    assert run.returncode == 0 and stderr == ""
    assert rows("c.duckdb", "SELECT count(*), count(DISTINCT scene_key) FROM scenes") == [(30, 30)]


@pytest.mark.skipif(sys.platform == "win32", reason="no fork server on Windows")
def test_a_ctrl_c_while_the_fork_server_is_being_started_waits_for_it_and_is_not_lost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reached = []

    def interrupted_while_starting() -> None:  # a Ctrl-C reaches this thread while it spawns the fork server
        signal.pthread_kill(threading.get_ident(), signal.SIGINT)
        time.sleep(0.05)
        reached.append("the start went on")

    monkeypatch.setattr(multiprocessing.forkserver, "ensure_running", interrupted_while_starting)

    with pytest.raises(KeyboardInterrupt):
        start_context("anthropic")

    assert reached == ["the start went on"]  # held back while the server started, delivered right after
