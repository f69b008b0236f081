"""The steps of a scene, each written once: what it asks the backend, and what it adds to the scene's state.

A step that writes an utterance is a generator: it yields its `Request`, is sent the backend's
`Utterance`, and returns the state update (`sim.engine.graph` drives it with a synchronous or an
asynchronous backend). `update_learner` asks nothing and returns its update directly.

Invariant: a step reads only the state and the context it is given and returns an update; it never
changes either, so a scene is the fold of its steps' updates.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Literal

from langgraph.types import Command

from sim.backends.base import Line, Request, Utterance
from sim.engine.state import SceneContext, SceneState, SetUp
from sim.learner.effects import scene_effect
from sim.learner.state import recall
from sim.store.rows import TurnRow
from sim.world.cast import Casting, cast_slot
from sim.world.curriculum import SceneJob
from sim.world.personas import Persona
from sim.world.scenarios import LEARNER
from sim.world.schedule import Slot, schedule

AFTER_LINE = ("speak", "reflect")
"""Where the scene goes after its opening and after each line: the next speaker, or the reflection."""
Next = Command[Literal["speak", "reflect"]]
Asks = Generator[Request, Utterance, Next]


def setup(state: SceneState, context: SceneContext) -> Asks:
    """Cast the scene from the persona graph, recall memories, schedule turns, narrate the opening."""
    castings = _cast(context)
    job, taken = context.job, {c.person.id for c in castings}
    memories = recall(context.life, taken, job.scene.values, {a: a for a in job.ancestors} | _direct(job))
    now = datetime.now(UTC).replace(tzinfo=None)
    prepared = SetUp(now, castings, tuple(memories), tuple(schedule(job.scene)))
    reply = yield request(context, prepared, kind="opening")
    return _go(prepared.schedule, 0, {"setup": replace(prepared, opening=reply.text), **_calls(reply)})


def speak(state: SceneState, context: SceneContext) -> Asks:
    """Whoever the schedule names speaks one line through the backend; the line is added to the scene."""
    index = state["turn"]
    asked = _turn_request(context, state, index)
    started = time.perf_counter()
    reply = yield asked
    turn = _turn_row(context, asked, reply, started)
    return _go(state["setup"].schedule, index + 1, {"turns": (turn,), **_calls(reply)})


def reflect(state: SceneState, context: SceneContext) -> Generator[Request, Utterance, SceneState]:
    """The learner looks back on the scene, in the first person."""
    transcript = _transcript(state)
    reply = yield request(context, state["setup"], kind="reflection", turn=state["turn"], transcript=transcript)
    return {"reflection": reply.text, **_calls(reply)}


def update_learner(state: SceneState, context: SceneContext) -> SceneState:
    """Turn the scene into a memory, closer bonds and strengthened values."""
    job = context.job
    feeling = context.world.values.by_id[job.scene.values[0]].feeling
    cast = [c.person for c in state["setup"].castings]
    return {"effect": scene_effect(job, context.life, cast, state.get("turns", ()), feeling)}


def direct(turn: int, slots: tuple[Slot, ...]) -> Literal["speak", "reflect"]:
    """The director: the next scheduled speaker speaks, until the beats or the turn limit are done."""
    return "speak" if turn < len(slots) else "reflect"


def request(context: SceneContext, setup: SetUp, **kwargs: object) -> Request:
    """A backend request with the scene's common fields filled in."""
    job = context.job
    return Request(
        scene_key=job.key,
        scene=job.scene,
        stage=context.world.stages.by_id[job.scene.stage],
        stage_rank=job.stage_rank,
        learner=context.learner,
        life=context.life,
        cast=setup.cast,
        memories=setup.memories,
        variation=job.variation,
        **kwargs,  # type: ignore[arg-type]
    )


def _cast(context: SceneContext) -> tuple[Casting, ...]:
    job, world = context.job, context.world
    castings: list[Casting] = []
    for slot in job.scene.cast:
        taken = frozenset(c.person.id for c in castings)
        castings.append(
            cast_slot(world.graph, slot, stage=job.scene.stage, learner=job.learner, seed=job.seed, taken=taken,
                      value_ids=tuple(world.values.by_id), scene=job.ref)  # fmt: skip
        )
    return tuple(castings)


def _direct(job: SceneJob) -> dict[str, str]:
    return {link if "/" in link else f"{job.pack}/{link}": link for link in job.scene.follows}


def _go(slots: tuple[Slot, ...], turn: int, update: SceneState) -> Next:
    """Move the scene on to `turn`, and to the node the director names for it."""
    return Command(update={**update, "turn": turn}, goto=direct(turn, slots))


def _calls(reply: Utterance) -> SceneState:
    """The reply's model calls, as an update (none for an offline backend: no update at all)."""
    return {"calls": reply.calls} if reply.calls else {}


def _transcript(state: SceneState) -> tuple[Line, ...]:
    """The scene so far, as backends see it."""
    return tuple(Line(t.speaker_label, t.text) for t in state.get("turns", ()))


def _turn_request(context: SceneContext, state: SceneState, index: int) -> Request:
    setup = state["setup"]
    slot = setup.schedule[index]
    return request(
        context,
        setup,
        kind="turn",
        turn=index,
        speaker=_person(context, setup, slot.speaker),
        addressee=_person(context, setup, slot.to),
        beat=context.job.scene.beats[slot.beat],
        beat_index=slot.beat,
        exchange=slot.exchange,
        transcript=_transcript(state),
    )


def _person(context: SceneContext, setup: SetUp, slot: str) -> Persona:
    if slot == LEARNER:
        return context.learner
    return next(c.person for c in setup.castings if c.slot == slot)


def _turn_row(context: SceneContext, asked: Request, reply: Utterance, started: float) -> TurnRow:
    speaker, addressee, beat = asked.speaker, asked.addressee, asked.beat
    if speaker is None or addressee is None or beat is None:
        raise ValueError(f"turn {asked.turn} of {asked.scene_key} was asked without a speaker, addressee or beat")
    return TurnRow(
        scene_key=asked.scene_key,
        turn_index=asked.turn,
        speaker_id=speaker.id,
        speaker_label=speaker.known_as,
        role=speaker.role,
        addressee_id=addressee.id,
        text=reply.text,
        beat=asked.beat_index,
        exchange=asked.exchange,
        intent=beat.intent,
        repairs=reply.repairs,
        latency_ms=(time.perf_counter() - started) * 1000,
    )
