"""`sim run` with a real model backend, against fake providers on 127.0.0.1: what a user sees.

Tables, training text, the reply cache, costs, stage targets, faults, the budget and the key.
"""

from __future__ import annotations

import gc
import json
import re
from pathlib import Path
from typing import Any

import duckdb
import pytest
from conftest import run_cli
from fakes import AnthropicFake, Fault, Faults, OpenAIFake, in_character, last_user_text

from sim.backends.prices import load_prices
from sim.backends.providers.common import Completion
from sim.run.lines import YOUNG_GC_THRESHOLD

pytest_plugins = ["fakes.plugin"]

PACK = "scenarios/first-steps"
MODEL = "claude-sonnet-5"
KEY = "test-key"



@pytest.fixture
def anthropic(shipped_world: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    with AnthropicFake(reply=in_character) as fake:
        monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
        monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.base_url)
        yield fake


def sim_run(*extra: str) -> Any:
    return run_cli("run", PACK, "--backend", "anthropic", "--model", MODEL, "--db", "c.duckdb", *extra)


def rows(sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect("c.duckdb", read_only=True) as con:
        return con.execute(sql).fetchall()


def generations(fake: Any) -> int:
    return len(fake.requests_to("/v1/messages"))


def test_a_model_run_stores_scenes_calls_and_costs(anthropic: Any) -> None:
    result = sim_run("--concurrency", "4")
    assert result.exit_code == 0, result.output
    assert re.search(r"run \w+: 10 scenes lived, 0 already stored", result.output)
    assert rows("SELECT count(*), min(backend), min(model) FROM scenes") == [(10, "anthropic", MODEL)]
    ((turns,),) = rows("SELECT sum(turn_count) FROM scenes")
    calls = rows("SELECT purpose, count(*) FROM llm_calls GROUP BY purpose ORDER BY purpose")
    assert calls == [("opening", 10), ("reflection", 10), ("turn", turns)]
    assert generations(anthropic) == turns + 20
    text = rows("SELECT text FROM training_text WHERE scene = 'kind-to-others'")[0][0]
    assert "I: Okay, I will." in text
    assert text.startswith("I am little. Today I am at home with my family.")
    assert text.endswith("I felt warm inside afterwards.")
    prices = load_prices()
    for call in rows("SELECT input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_usd "
                     "FROM llm_calls"):  # fmt: skip
        usage = Completion("", input_tokens=call[0], output_tokens=call[1], cache_read_tokens=call[2],
                           cache_write_tokens=call[3])  # fmt: skip
        assert call[4] == pytest.approx(prices.cost(MODEL, usage), abs=1e-12)
    (read,) = rows("SELECT sum(cache_read_tokens) FROM llm_calls")[0]
    assert read > 0  # a speaker's stable prefix is cached across their turns
    ((total,),) = rows("SELECT round(sum(cost_usd), 4) FROM llm_calls")
    assert f"cost ${total:,.4f}" in result.output
    assert f"model calls: {turns + 20:,} paid, 0 replayed" in result.output


def test_every_call_carries_its_own_speakers_prefix_and_its_scenes_life(anthropic: Any) -> None:
    assert sim_run("--concurrency", "4").exit_code == 0
    lives: dict[str, set[str]] = {}  # scene title -> the life blocks its calls carried
    speakers = set()
    for request in anthropic.requests_to("/v1/messages"):
        prefix, life = (block["text"] for block in request.body["system"])
        asked = last_user_text(request.body)
        writer = re.search(r"Write (.+?)'s line now", asked)
        if writer is None or writer.group(1) == "I":  # the opening, the reflection and my own lines
            assert "you speak as me, Sam," in prefix, asked
        else:
            assert f"You speak as {writer.group(1)} (" in prefix, asked
            speakers.add(writer.group(1))
        title = re.search(r'The scene: "([^"]+)"', prefix)
        assert title is not None
        lives.setdefault(title.group(1), set()).add(life)
    assert len(speakers) >= 3  # several people speak, each with their own prefix
    assert len(lives) == 10 and all(len(blocks) == 1 for blocks in lives.values())


def test_running_again_costs_nothing_and_an_interrupted_scene_replays_its_turns(anthropic: Any) -> None:
    anthropic.faults = Faults(schedule={25: Fault.AUTH})
    stopped = sim_run("--concurrency", "1")
    assert stopped.exit_code == 1
    assert stopped.stderr.startswith("error: the Anthropic API refused the key in ANTHROPIC_API_KEY (401")
    kept = rows("SELECT count(*) FROM scenes")[0][0]
    assert 0 < kept < 10
    assert rows("SELECT status FROM runs") == [("failed",)]
    anthropic.faults = Faults()
    before = generations(anthropic)
    resumed = sim_run("--concurrency", "1")
    assert resumed.exit_code == 0, resumed.output
    ((replayed,),) = rows("SELECT count(*) FROM llm_calls WHERE source = 'cache'")
    assert replayed > 0  # the scene cut short by the 401 replays the turns it had paid for
    ((paid,),) = rows("SELECT count(*) FROM llm_calls WHERE source = 'api' AND status = 'ok'")
    assert generations(anthropic) - before + 24 == paid  # the 24 replies before the 401 were not asked again
    assert rows("SELECT count(*) FROM llm_calls WHERE status = 'failed'") == [(1,)]
    after = generations(anthropic)
    again = sim_run()
    assert again.exit_code == 0
    assert "0 scenes lived, 10 already stored" in again.output
    assert generations(anthropic) == after


def test_learner_lines_out_of_voice_or_too_long_are_regenerated_and_counted(anthropic: Any) -> None:
    said: list[str] = []

    def reply(request: dict[str, Any]) -> str:
        asked = last_user_text(request)
        if "Write I's line" in asked and not said:
            said.append("first")
            return "As an AI language model, I cannot pretend to be a child."
        if "Write I's line" in asked:
            return "I: " + " ".join(["yes"] * 30)  # a label to strip, and over every stage's limit
        return in_character(request)

    anthropic.reply = reply
    result = sim_run("--concurrency", "1")
    assert result.exit_code == 0, result.output
    ((regenerated,),) = rows("SELECT count(*) FROM llm_calls WHERE purpose = 'regenerate'")
    (learner_turns,) = rows("SELECT count(*) FROM turns WHERE role = 'learner'")[0]
    assert regenerated == learner_turns  # every learner line was asked twice
    longest = rows("SELECT max(len(string_split(t.text, ' '))) FROM turns t WHERE role = 'learner' "
                   "AND scene_key IN (SELECT scene_key FROM scenes WHERE stage = 'toddler')")  # fmt: skip
    assert longest == [(4,)]  # cut to the toddler limit
    assert not rows("SELECT text FROM turns WHERE text LIKE 'I:%' OR text ILIKE '%as an ai%'")
    assert rows("SELECT sum(repairs) > 0 FROM scenes") == [(True,)]
    assert "lines repaired or regenerated to meet the stage's targets:" in result.output


class CountingFake(AnthropicFake):
    """The fake, keeping the usage of every reply that reached the client whole."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.served: list[dict[str, int]] = []

    def _messages(self, request: Any, fault: Fault | None) -> Any:
        response = super()._messages(request, fault)
        if fault in (None, Fault.MAX_TOKENS) and response.status == 200:
            self.served.append(json.loads(response.body)["usage"])
        return response


def test_under_a_20_percent_fault_rate_every_scene_completes_or_fails_with_its_reason(
    shipped_world: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with CountingFake(reply=in_character) as anthropic:
        monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
        monkeypatch.setenv("ANTHROPIC_BASE_URL", anthropic.base_url)
        check_fault_run(anthropic)


def check_fault_run(anthropic: CountingFake) -> None:
    kinds = (Fault.RATE_LIMIT, Fault.OVERLOADED, Fault.SERVER_ERROR, Fault.MALFORMED, Fault.BAD_REQUEST,
             Fault.MAX_TOKENS, Fault.DROP)  # fmt: skip
    anthropic.faults = Faults(rate=0.2, kinds=kinds, seed=7, retry_after=0.01)
    result = sim_run("--concurrency", "4", "--max-retries", "2")
    assert result.exit_code in (0, 1), result.output
    done = {r[0] for r in rows("SELECT scene FROM scenes")}
    failed = dict(rows("SELECT scene, reason FROM scene_failures"))
    assert done | set(failed) == {r[0] for r in rows("SELECT DISTINCT scene FROM scene_failures UNION "
                                                     "SELECT scene FROM scenes")}  # fmt: skip
    assert len(done) + len(failed) == 10 and not done & set(failed)
    assert all(reason.strip() and "\n" not in reason for reason in failed.values())
    assert rows("SELECT count(*) = count(DISTINCT (scene_key, turn_index)) FROM turns") == [(True,)]
    # every reply that reached the client whole is one row, with the tokens the server reported
    counted = rows("SELECT count(*), sum(input_tokens), sum(output_tokens), sum(cache_read_tokens), "
                   "sum(cache_write_tokens) FROM llm_calls WHERE status = 'ok'")  # fmt: skip
    served = anthropic.served
    assert counted == [(len(served), *(sum(u[k] for u in served) for k in (
        "input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")))]
    assert rows("SELECT count(*) FROM llm_calls WHERE status = 'failed' AND error IS NULL") == [(0,)]
    if failed:
        assert f"{len(failed)} scenes failed (kept in scene_failures" in result.output
        assert result.exit_code == 1


def test_a_bad_request_fails_the_scene_without_retrying_and_the_run_goes_on(anthropic: Any) -> None:
    anthropic.faults = Faults(schedule={1: Fault.BAD_REQUEST})
    result = sim_run("--concurrency", "1")
    assert result.exit_code == 1
    ((scene, reason),) = rows("SELECT scene, reason FROM scene_failures WHERE reason NOT LIKE 'not lived%'")
    assert reason.startswith("the Anthropic API rejected the request (400 invalid_request_error")
    assert f"first-steps/{scene}#0: the Anthropic API rejected the request (400" in result.output
    sent = [r.body for r in anthropic.requests_to("/v1/messages")]
    assert len(sent) > 1 and sent.count(sent[0]) == 1  # the rejected request was never sent again
    assert rows("SELECT status, retries FROM llm_calls WHERE status = 'failed'") == [("failed", 0)]
    # the other toddler scenes do not remember it, so they are lived; later stages would, so they wait
    lived = {r[0] for r in rows("SELECT stage FROM scenes")}
    assert lived == {"toddler"}
    later = rows("SELECT DISTINCT reason FROM scene_failures WHERE stage = 'early_childhood'")
    assert later == [(f"not lived: first-steps/{scene} failed earlier in this life line ({reason})",)]
    assert rows("SELECT count(*) FROM scenes")[0][0] + rows("SELECT count(*) FROM scene_failures")[0][0] == 10


def test_runs_say_whether_scenes_failed_partial_when_some_did_failed_when_all_did(anthropic: Any) -> None:
    anthropic.faults = Faults(schedule={1: Fault.BAD_REQUEST})
    assert sim_run("--concurrency", "1").exit_code == 1
    ((lived,),) = rows("SELECT count(*) FROM scenes")
    assert rows("SELECT status, scenes_planned, scenes_done, scenes_failed, error FROM runs") == [
        ("partial", 10, lived, 10 - lived, f"{10 - lived} of 10 scenes failed (see scene_failures; the next run "
                                           "tries them again)"),
    ]  # fmt: skip
    anthropic.faults = Faults(rate=1.0, kinds=(Fault.BAD_REQUEST,))  # now every scene left fails
    assert sim_run("--concurrency", "1").exit_code == 1
    ((status, done, failed, error),) = rows("SELECT status, scenes_done, scenes_failed, error FROM runs "
                                            "ORDER BY started_at DESC LIMIT 1")  # fmt: skip
    assert (status, done, failed) == ("failed", 0, 10 - lived)
    assert error.startswith(f"every scene failed ({10 - lived}; see scene_failures), e.g. first-steps/")
    shown = run_cli("query", "SELECT status FROM runs ORDER BY started_at", "--db", "c.duckdb", "--format", "csv")
    assert shown.stdout == "status\npartial\nfailed\n"


def test_max_cost_stops_the_run_cleanly_and_keeps_finished_scenes(anthropic: Any) -> None:
    result = sim_run("--concurrency", "1", "--max-cost", "0.02")  # the whole pack costs about $0.06 here
    assert result.exit_code == 3, result.output
    assert "stopped: --max-cost 0.02 USD reached (spent 0.02" in result.output
    kept = rows("SELECT count(*) FROM scenes")[0][0]
    assert 0 < kept < 10
    assert rows("SELECT status FROM runs") == [("stopped",)]
    ((spent, most),) = rows("SELECT sum(cost_usd), max(cost_usd) FROM llm_calls")
    assert 0.02 <= spent < 0.02 + most  # past the budget by at most the one call in flight
    assert rows("SELECT count(*) FROM scene_failures WHERE reason LIKE '--max-cost 0.02 USD reached%'") == [(1,)]


def test_dry_run_estimates_calls_tokens_and_cost_per_stage(anthropic: Any) -> None:
    result = sim_run("--dry-run")
    assert result.exit_code == 0
    assert "dry run: 10 scenes to live, 0 already stored in c.duckdb; nothing written" in result.output
    assert re.search(r"toddler\s+4 scenes\s+\d+ calls\s+[\d,]+ in\s+[\d,]+ out\s+~\$\d+\.\d\d", result.output)
    assert "estimated cost of claude-sonnet-5 (turn mode): ~$" in result.output
    assert generations(anthropic) == 0 and not Path("c.duckdb").exists()


def test_the_api_key_never_reaches_the_database_the_cache_exports_or_output(anthropic: Any) -> None:
    result = sim_run("--concurrency", "2")
    assert result.exit_code == 0
    exported = run_cli("export", "--db", "c.duckdb", "--out", "out", "--format", "jsonl")
    stats = run_cli("stats", "--db", "c.duckdb")
    assert "model calls, tokens and cost by stage" in stats.output
    files = [Path("c.duckdb"), Path("c.duckdb.replies.sqlite"), *Path("out").iterdir()]
    for path in files:
        assert KEY.encode() not in path.read_bytes(), path
    for text in (result.output, exported.output, stats.output):
        assert KEY not in text


def test_a_missing_key_is_one_line_before_any_scene(shipped_world: Path) -> None:
    result = sim_run()
    assert result.exit_code == 2
    assert result.stderr == (
        "error: ANTHROPIC_API_KEY is not set: export your Anthropic API key (or use --backend scripted, "
        "which needs none)\n"
    )
    assert not Path("c.duckdb").exists() or rows("SELECT count(*) FROM scenes") == [(0,)]


def test_an_openai_compatible_server_writes_the_same_tables(
    shipped_world: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with OpenAIFake(reply=in_character) as fake:
        result = run_cli("run", PACK, "--backend", "openai-compatible", "--model", "llama-3.1-8b",
                         "--base-url", fake.base_url, "--db", "c.duckdb", "--stage", "toddler")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert rows("SELECT count(*), min(backend) FROM scenes") == [(4, "openai-compatible")]
    assert rows("SELECT count(*) FROM llm_calls WHERE cost_usd IS NULL") == rows("SELECT count(*) FROM llm_calls")
    assert "I: Okay, I will." in rows("SELECT text FROM training_text LIMIT 1")[0][0]


def test_model_options_with_the_offline_backend_are_one_clear_error(shipped_world: Path) -> None:
    result = run_cli("run", PACK, "--mode", "script", "--batch", "--db", "c.duckdb")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: --mode script, --batch only apply to a model backend; add --backend anthropic or --backend "
        "openai-compatible, or leave them out for the offline scripted backend\n"
    )
    assert not Path("c.duckdb").exists()


def test_while_scenes_are_lived_the_collector_runs_rarely_and_is_restored_after(anthropic: Any) -> None:
    seen: set[tuple[int, bool]] = set()

    def reply(request: dict[str, Any]) -> str:  # the fake answers in a thread of this process
        seen.add((gc.get_threshold()[0], gc.get_freeze_count() > 0))
        return in_character(request)

    anthropic.reply = reply
    before = gc.get_threshold()
    result = sim_run("--concurrency", "4")
    assert result.exit_code == 0, result.output
    assert seen == {(YOUNG_GC_THRESHOLD, True)}  # every call: young generation every 20,000, the start frozen
    assert (gc.get_threshold(), gc.get_freeze_count()) == (before, 0)
