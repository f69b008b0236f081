"""`--mode script`: one structured call writes a whole scene, checked, asked again once, and served line by line.

The model is the fake Anthropic API on 127.0.0.1, driven through the real SDK. Its replies are written
from the outline in the request (the speakers, in order), so what is asserted is what a run stores: the
calls in `llm_calls`, the lines in `turns` and `training_text`, the reasons in `scene_failures`, and the
requests the fake received.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import duckdb
import pytest
from conftest import run_cli
from fakes import AnthropicFake, Fault, Faults
from fakes.replies import content_text

from sim.backends import Backend, ModelOptions, Request, Utterance, create
from sim.backends.script_mode import ScriptMissing, script_schema
from sim.engine.graph import build_scene_graph
from sim.engine.state import START_STATE, SceneContext
from sim.learner.state import initial_state
from sim.world.curriculum import plan
from sim.world.load import WorldPaths, load_world
from sim.world.schedule import schedule

pytest_plugins = ["fakes.plugin"]

MODEL = "claude-sonnet-5"
RUN = ("run", "scenarios/first-steps", "--backend", "anthropic", "--model", MODEL, "--mode", "script")
OUTLINE = re.compile(r'^(\d+)\. speaker "([^"]*)", to ', re.MULTILINE)
ORANGE = "Grandma's orange"  # the first scene of first-steps: 7 turns, Grandma and I in turn
Script = dict[str, Any]


# ---- the fake's replies ------------------------------------------------------------------------


def outline(request: dict[str, Any]) -> list[str]:
    """The speaker labels the request's outline asks for, in order (the first user message)."""
    return [label for _, label in OUTLINE.findall(content_text(request["messages"][0]["content"]))]


def title(request: dict[str, Any]) -> str:
    """The scene's title, from the first system block."""
    found = re.search(r'The scene: "([^"]+)"', request["system"][0]["text"])
    return found.group(1) if found else ""


def good_script(request: dict[str, Any]) -> Script:
    """A script that follows the outline: numbered lines that are easy to find in the stored text."""
    turns = [
        {"speaker": label, "text": f"Me, line {n}." if label == "I" else f"Fake line {n} from {label}."}
        for n, label in enumerate(outline(request), start=1)
    ]
    opening = f"I am here. Fake opening of {title(request)}."
    return {"opening": opening, "turns": turns, "reflection": "Fake reflection."}


def reply(bad: Callable[[dict[str, Any], int], str | None] | None = None) -> Callable[[dict[str, Any]], str]:
    """A reply function: the good script, unless `bad(request, attempt)` gives another answer (attempt 1 or 2)."""

    def answer(request: dict[str, Any]) -> str:
        attempt = 1 + (len(request["messages"]) - 1) // 2
        wrong = bad(request, attempt) if bad else None
        return json.dumps(good_script(request)) if wrong is None else wrong

    return answer


def in_orange(change: Callable[[Script], str], attempts: tuple[int, ...] = (1, 2)) -> Callable[..., str | None]:
    """`bad` for `reply`: Grandma's orange gets `change(good script)` on the given attempts."""

    def bad(request: dict[str, Any], attempt: int) -> str | None:
        return change(good_script(request)) if title(request) == ORANGE and attempt in attempts else None

    return bad


def edited(**changes: Any) -> Callable[[Script], str]:
    """A `change` that sets top-level keys, or (`turn3=...`) the text of a turn, and dumps the script."""

    def change(script: Script) -> str:
        for key, value in changes.items():
            if key.startswith("turn"):
                script["turns"][int(key[4:]) - 1]["text"] = value
            else:
                script[key] = value
        return json.dumps(script)

    return change


# ---- running ------------------------------------------------------------------------------------


@pytest.fixture
def fake(
    anthropic_fake: AnthropicFake, shipped_world: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[AnthropicFake]:
    """The fake Anthropic API answering good scripts, with the shipped world and the key in the environment."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", anthropic_fake.base_url)
    anthropic_fake.reply = reply()
    yield anthropic_fake


def sim_run(*extra: str, db: str = "out.duckdb", code: int = 0) -> str:
    """`sim run` the first-steps pack in script mode; returns what it printed."""
    result = run_cli(*RUN, "--db", db, *extra)
    assert result.exit_code == code, result.output
    return result.output


def query(sql: str, db: str = "out.duckdb") -> list[tuple[Any, ...]]:
    with duckdb.connect(db, read_only=True) as con:
        return con.execute(sql).fetchall()


def purposes(scene: str) -> list[tuple[str, str]]:
    """(purpose, status) of every call for `scene` of first-steps, in order."""
    return [
        (row[0], row[1])
        for row in query(
            "SELECT purpose, status FROM llm_calls WHERE scene_key IN "
            f"(SELECT scene_key FROM scenes WHERE scene = '{scene}' UNION "
            f"SELECT scene_key FROM scene_failures WHERE scene = '{scene}') ORDER BY created_at"
        )
    ]


def failures() -> list[tuple[str, str]]:
    return [(row[0], row[1]) for row in query("SELECT scene, reason FROM scene_failures ORDER BY scene")]


def orange_requests(fake: AnthropicFake) -> list[dict[str, Any]]:
    return [r.body for r in fake.requests if title(r.body) == ORANGE]


# ---- a whole scene in one call ------------------------------------------------------------------


def test_each_scene_is_one_structured_call_and_the_text_is_the_scripts(fake: AnthropicFake) -> None:
    sim_run()

    assert query("SELECT purpose, source, status, count(*), count(DISTINCT scene_key) FROM llm_calls GROUP BY ALL") == [
        ("script", "api", "ok", 10, 10)
    ]
    assert query("SELECT count(*) FROM llm_calls WHERE turn_index IS NOT NULL") == [(0,)]
    assert len(fake.requests) == 10
    for request in (r.body for r in fake.requests):
        assert request["output_config"] == {"format": {"type": "json_schema", "schema": script_schema()}}
        assert request["max_tokens"] == 400 + 120 * len(outline(request))
        assert len(request["messages"]) == 1
    [(turns,)] = query("SELECT count(*) FROM turns")
    assert turns == sum(len(outline(r.body)) for r in fake.requests)
    texts = [row[0] for row in query("SELECT text FROM training_text ORDER BY curriculum_position")]
    assert len(texts) == 10
    assert all("\nI: Me, line 2.\n" in text and "Fake reflection." in text for text in texts)
    assert texts[0].startswith(f"I am here. Fake opening of {ORANGE}.")


def test_the_outline_lists_every_scheduled_turn_with_the_scripted_example(fake: AnthropicFake) -> None:
    sim_run("--stage", "toddler")

    [request] = orange_requests(fake)
    assert outline(request) == ["Grandma", "I", "Grandma", "I", "Grandma", "I", "Grandma"]
    message = content_text(request["messages"][0]["content"])
    assert "turns: exactly 7 lines, in this order" in message
    assert '2. speaker "I", to Grandma: grab the piece without a word. In this spirit: "' in message
    assert re.search(r'^2\. .*" \(at most 4 words\)$', message, re.MULTILINE)
    assert not re.search(r'^1\. .*\(at most', message, re.MULTILINE)  # Grandma has no word limit
    system = [block["text"] for block in request["system"]]
    assert system[0].count("Traits (0-1):") == 2  # my card and Grandma's
    assert "my own lines (speaker \"I\") have at most 4 words each" in system[0]
    assert system[1].startswith("My life so far.")


def test_running_again_asks_nothing_and_a_lost_database_is_rebuilt_from_the_reply_cache(
    fake: AnthropicFake,
) -> None:
    sim_run()
    first = query("SELECT id, text FROM training_text ORDER BY id")
    sim_run()
    assert len(fake.requests) == 10  # every scene is stored: nothing to ask

    Path("out.duckdb").unlink()
    sim_run()
    assert len(fake.requests) == 10  # every script replayed from out.duckdb.replies.sqlite
    assert query("SELECT purpose, source, sum(cost_usd), count(*) FROM llm_calls GROUP BY ALL") == [
        ("script", "cache", 0.0, 10)
    ]
    assert query("SELECT id, text FROM training_text ORDER BY id") == first


# ---- checked, repaired, asked again once --------------------------------------------------------


def test_a_malformed_script_is_asked_again_once_with_what_was_wrong(fake: AnthropicFake) -> None:
    fake.reply = reply(in_orange(lambda script: "{'opening': oops", attempts=(1,)))

    sim_run()

    assert purposes("grandmas-orange") == [("script", "ok"), ("regenerate", "ok")]
    assert query("SELECT count(*) FROM llm_calls") == [(11,)]
    first, again = orange_requests(fake)
    assert [m["role"] for m in again["messages"]] == ["user", "assistant", "user"]
    assert again["messages"][0] == first["messages"][0]
    assert again["messages"][1]["content"] == "{'opening': oops"
    assert again["messages"][2]["content"] == (
        "Your last answer could not be used: the answer is not valid JSON (Invalid JSON: key must be a string at "
        "line 1 column 2). Answer again, following the instructions exactly."
    )
    assert failures() == []
    assert query("SELECT count(*) FROM training_text") == [(10,)]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda s: "", "the answer is not valid JSON (Invalid JSON: EOF while parsing a value at line 1 column 0)"),
        (edited(reflection=None), "reflection: input should be a valid string"),
        (lambda s: json.dumps({k: v for k, v in s.items() if k != "opening"} | {"mood": 1}),
         "opening: field required (and 1 more problem)"),
        (lambda s: json.dumps({**s, "turns": s["turns"][:6]}), "the script has 6 turns; the outline has 7"),
        (lambda s: json.dumps({**s, "turns": [s["turns"][1], s["turns"][0], *s["turns"][2:]]}),
         "turn 1 is spoken by 'I'; the outline gives it to 'Grandma'"),
        (edited(turn3="  ", opening="Grandma:"), "the opening: the line was empty; turn 3: the line was empty"),
        (edited(turn5="As an AI, I cannot pretend to be a grandmother."),
         "turn 5: the line stepped out of the scene to talk about being an AI; stay in role"),
    ],
    ids=["not-json", "wrong-type", "missing-key", "turn-count", "speaker-order", "empty-lines", "out-of-voice"],
)
def test_two_unusable_scripts_fail_the_scene_with_the_reason(
    fake: AnthropicFake, change: Callable[[Script], str], reason: str
) -> None:
    fake.reply = reply(in_orange(change))

    output = sim_run("--stage", "toddler", code=1)

    full = f"the script could not be used, twice; the second answer: {reason}"
    assert failures() == [("grandmas-orange", full)]
    assert f"first-steps/grandmas-orange#0: {full}\n" in output
    assert purposes("grandmas-orange") == [("script", "ok"), ("regenerate", "ok")]  # both paid calls recorded
    assert query("SELECT count(*) FROM scenes") == [(3,)]  # the other toddler scenes do not depend on it


def test_lines_are_repaired_and_learner_lines_cut_to_the_stage_limit(fake: AnthropicFake) -> None:
    fake.reply = reply(
        in_orange(
            edited(turn1='Grandma: "Here is a piece for you."', turn2="I want that orange right now please!",
                   turn4="I: Thank you, Grandma."),
            attempts=(1,),
        )
    )

    sim_run("--stage", "toddler")

    assert purposes("grandmas-orange") == [("script", "ok")]  # repairs need no second call
    rows = query(
        "SELECT turn_index, text, turns.repairs FROM turns JOIN scenes USING (scene_key) "
        "WHERE scene = 'grandmas-orange' AND turn_index IN (0, 1, 3) ORDER BY turn_index"
    )
    assert rows == [(0, "Here is a piece for you.", 2), (1, "I want that orange.", 1), (3, "Thank you, Grandma.", 1)]


# ---- failures on the wire, and the backend's own contract ----------------------------------------


def test_a_failed_second_call_keeps_the_first_calls_row(fake: AnthropicFake) -> None:
    fake.reply = reply(in_orange(lambda s: "not json", attempts=(1,)))
    fake.faults = Faults(when=lambda body: Fault.BAD_REQUEST if len(body["messages"]) > 1 else None)

    sim_run("--stage", "toddler", "--max-retries", "0", code=1)

    [(scene, reason)] = failures()
    assert (scene, reason) == (
        "grandmas-orange",
        "the Anthropic API rejected the request (400 invalid_request_error: messages.0.content: Input should be a "
        "valid list)",
    )
    assert purposes("grandmas-orange") == [("script", "ok"), ("regenerate", "failed")]


class Recorder:
    """A backend that passes every request on, keeping the requests."""

    def __init__(self, inner: Backend) -> None:
        self.inner, self.requests = inner, list[Request]()
        self.name, self.model, self.concurrent = inner.name, inner.model, True

    def speak(self, request: Request, *, seed: int) -> Utterance:
        raise TypeError("asynchronous only")

    async def aspeak(self, request: Request, *, seed: int) -> Utterance:
        self.requests.append(request)
        return await self.inner.aspeak(request, seed=seed)

    async def aclose(self) -> None:
        await self.inner.aclose()

    def close(self) -> None:
        self.inner.close()


def test_the_engine_is_served_from_the_script_and_a_turn_without_one_is_a_bug(fake: AnthropicFake) -> None:
    world = load_world(WorldPaths(), [Path("scenarios/first-steps")])
    job = plan(world, "sam", stages=("toddler",))[0]
    options = ModelOptions(model=MODEL, mode="script")
    environ = {"ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": fake.base_url}
    backend = Recorder(create("anthropic", options=options, db=Path("x.duckdb"), environ=environ))
    sam = world.personas["sam"]
    context = SceneContext(job, world, initial_state(sam, world.graph), backend, sam)
    state: dict[str, Any] = {}

    async def live() -> Utterance:
        try:
            state.update(await build_scene_graph(asynchronous=True).compile().ainvoke(START_STATE, context=context))
            with pytest.raises(ScriptMissing) as caught:
                await backend.inner.aspeak(backend.requests[1], seed=job.seed)  # the script was dropped
            assert str(caught.value) == f"script mode: turn 0 of scene {job.key} was asked before its opening"
            return await backend.inner.aspeak(backend.requests[0], seed=job.seed)  # a new opening: a cache hit
        finally:
            await backend.aclose()

    again = asyncio.run(live())
    backend.close()
    run = SimpleNamespace(**state)  # the scene, as the graph's final state holds it
    kinds = [r.kind for r in backend.requests]
    assert kinds == ["opening", *["turn"] * len(schedule(job.scene)), "reflection"]
    assert [t.text for t in run.turns] == [t["text"] for t in good_script(fake.requests[0].body)["turns"]]
    assert run.reflection == "Fake reflection."
    assert [c.purpose for c in run.calls] == ["script"]  # the rows ride on the opening only
    assert len(fake.requests) == 1 and again.calls[0].source == "cache"
    with pytest.raises(TypeError):
        backend.inner.speak(backend.requests[0], seed=job.seed)
