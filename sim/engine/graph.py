"""The scene graph (LangGraph): set up, then speaker after speaker, then reflection and the learner's update.

Invariants:
- `build_scene_graph()` returns an uncompiled `StateGraph`; callers compile it once and reuse it.
- One parameterised `speak` node serves every participant, so a bigger cast adds no nodes; after
  each line the director (`direct`) names the next node and the node goes there (a LangGraph
  `Command`). A separate routing edge would cost the async graph a task and callbacks per turn.
- The graph state is a few integers. Turns are streamed into the run context's sink as they are
  spoken, never copied through the state, so a turn costs the same at turn 5 and at turn 500.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Command

from sim.backends.base import Backend, Line, Request, Utterance
from sim.learner.state import LearnerState, Memory, SceneEffect, bond_after, recall
from sim.world.cast import Casting, cast_slot
from sim.world.curriculum import SceneJob
from sim.world.load import World
from sim.world.personas import Persona
from sim.world.scenarios import LEARNER, Scene
from sim.world.schedule import Slot, Turn, schedule

if TYPE_CHECKING:
    from langchain_core.runnables import RunnableConfig  # LangGraph's config type


class SceneState(TypedDict):
    """The graph state: where the scene is, nothing more."""

    turn: int


@dataclass
class SceneRun:
    """The run context of one scene: inputs, the turn sink and the results. Not part of the graph state."""

    job: SceneJob
    world: World
    life: LearnerState
    backend: Backend
    learner: Persona
    castings: list[Casting] = field(default_factory=list)
    schedule: list[Slot] = field(default_factory=list)
    memories: list[Memory] = field(default_factory=list)
    turns: list[Turn] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)  # the scene so far, as backends see it
    calls: list[dict[str, object]] = field(default_factory=list)  # model calls made, as `llm_calls` rows
    opening: str = ""
    reflection: str = ""
    effect: SceneEffect | None = None
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC).replace(tzinfo=None))

    @property
    def cast(self) -> dict[str, Persona]:
        """Slot -> person."""
        return {c.slot: c.person for c in self.castings}

    def said(self, reply: Utterance) -> Utterance:
        """Keep the calls behind a reply; returns the reply."""
        self.calls.extend(reply.calls)
        return reply

    def person(self, slot: str) -> Persona:
        """The person playing `slot` (or the learner)."""
        return self.learner if slot == LEARNER else self.cast[slot]

    def request(self, **kwargs: object) -> Request:
        """A backend request with this scene's common fields filled in."""
        stage = self.world.stages.by_id[self.job.scene.stage]
        return Request(
            scene_key=self.job.key,
            scene=self.job.scene,
            stage=stage,
            stage_rank=self.job.stage_rank,
            learner=self.learner,
            life=self.life,
            cast=self.cast,
            memories=self.memories,
            variation=self.job.variation,
            **kwargs,  # type: ignore[arg-type]
        )


Next = Command[Literal["speak", "reflect"]]


def setup(state: SceneState, runtime: Runtime[SceneRun]) -> Next:
    """Cast the scene from the persona graph, recall memories, schedule turns, narrate the opening."""
    run = runtime.context
    _cast_and_recall(run)
    run.opening = run.said(run.backend.speak(run.request(kind="opening"), seed=run.job.seed)).text
    return _go(run, 0)


def _cast_and_recall(run: SceneRun) -> None:
    job, world = run.job, run.world
    taken: set[str] = set()
    for slot in job.scene.cast:
        casting = cast_slot(
            world.graph,
            slot,
            stage=job.scene.stage,
            learner=job.learner,
            seed=job.seed,
            taken=frozenset(taken),
            value_ids=tuple(world.values.by_id),
            scene=job.ref,
        )
        taken.add(casting.person.id)
        run.castings.append(casting)
    run.memories = recall(run.life, taken, job.scene.values, {a: a for a in job.ancestors} | _direct(job))
    run.schedule = schedule(job.scene)


async def asetup(state: SceneState, runtime: Runtime[SceneRun]) -> Next:
    """`setup`, with the opening written by an asynchronous (model) backend."""
    run = runtime.context
    _cast_and_recall(run)
    run.opening = run.said(await run.backend.aspeak(run.request(kind="opening"), seed=run.job.seed)).text
    return _go(run, 0)


def _direct(job: SceneJob) -> dict[str, str]:
    return {link if "/" in link else f"{job.pack}/{link}": link for link in job.scene.follows}


def direct(turn: int, run: SceneRun) -> Literal["speak", "reflect"]:
    """The director: the next scheduled speaker speaks, until the beats or the turn limit are done."""
    return "speak" if turn < len(run.schedule) else "reflect"


def _go(run: SceneRun, turn: int) -> Next:
    """Move the scene on to `turn`, and to the node the director names for it."""
    return Command(update={"turn": turn}, goto=direct(turn, run))


def speak(state: SceneState, runtime: Runtime[SceneRun]) -> Next:
    """Whoever the schedule names speaks one line through the backend; the line goes to the sink."""
    run = runtime.context
    request, started = _turn_request(run, state["turn"]), time.perf_counter()
    _record_turn(run, request, run.backend.speak(request, seed=run.job.seed), started)
    return _go(run, state["turn"] + 1)


async def aspeak(state: SceneState, runtime: Runtime[SceneRun]) -> Next:
    """`speak`, through an asynchronous (model) backend."""
    run = runtime.context
    request, started = _turn_request(run, state["turn"]), time.perf_counter()
    _record_turn(run, request, await run.backend.aspeak(request, seed=run.job.seed), started)
    return _go(run, state["turn"] + 1)


def _turn_request(run: SceneRun, index: int) -> Request:
    slot = run.schedule[index]
    return run.request(
        kind="turn",
        turn=index,
        speaker=run.person(slot.speaker),
        addressee=run.person(slot.to),
        beat=run.job.scene.beats[slot.beat],
        beat_index=slot.beat,
        exchange=slot.exchange,
        transcript=run.lines,
    )


def _record_turn(run: SceneRun, request: Request, reply: Utterance, started: float) -> None:
    speaker, addressee, beat = request.speaker, request.addressee, request.beat
    if speaker is None or addressee is None or beat is None:
        raise ValueError(f"turn {request.turn} of {request.scene_key} was asked without a speaker, addressee or beat")
    run.said(reply)
    run.turns.append(
        Turn(
            request.turn,
            speaker.id,
            speaker.known_as,
            speaker.role,
            addressee.id,
            reply.text,
            request.beat_index,
            request.exchange,
            beat.intent,
            reply.repairs,
            (time.perf_counter() - started) * 1000,
        )
    )
    run.lines.append(Line(speaker.known_as, reply.text))


def reflect(state: SceneState, runtime: Runtime[SceneRun]) -> SceneState:
    """The learner looks back on the scene, in the first person."""
    run = runtime.context
    request = run.request(kind="reflection", turn=state["turn"], transcript=run.lines)
    run.reflection = run.said(run.backend.speak(request, seed=run.job.seed)).text
    return state


async def areflect(state: SceneState, runtime: Runtime[SceneRun]) -> SceneState:
    """`reflect`, through an asynchronous (model) backend."""
    run = runtime.context
    request = run.request(kind="reflection", turn=state["turn"], transcript=run.lines)
    run.reflection = run.said(await run.backend.aspeak(request, seed=run.job.seed)).text
    return state


def update_learner(state: SceneState, runtime: Runtime[SceneRun]) -> SceneState:
    """Turn the scene into a memory, closer bonds and strengthened values."""
    run = runtime.context
    run.effect = scene_effect(run)
    return state


async def aupdate_learner(state: SceneState, runtime: Runtime[SceneRun]) -> SceneState:
    """`update_learner`, for the asynchronous graph (under `ainvoke` a synchronous node runs in a thread pool)."""
    return update_learner(state, runtime)


def scene_effect(run: SceneRun) -> SceneEffect:
    """What this scene changes in the learner's life."""
    job, scene = run.job, run.job.scene
    people = tuple(c.person.id for c in run.castings)
    spoke = {t.speaker_id for t in run.turns}
    bonds = {
        c.person.id: bond_after(run.life, c.person.id, _initial_closeness(c, job.learner),
                                1.0 if c.person.id in spoke else 0.5)
        for c in run.castings
    }
    values = run.world.values.by_id
    memory = Memory(
        scene_key=job.key,
        pack=job.pack,
        scene=scene.id,
        variation=job.variation,
        stage=scene.stage,
        stage_rank=job.stage_rank,
        order=job.order,
        age=run.life.age or 0,
        title=scene.title,
        place=scene.setting.place,
        people=people,
        names=tuple(c.person.known_as for c in run.castings),
        values=tuple(scene.values),
        summary=_summary(run),
        felt=values[scene.values[0]].feeling,
        learned=scene.objective,
    )
    return SceneEffect(memory=memory, bonds=bonds, values=tuple(scene.values))


def _initial_closeness(casting: Casting, learner: str) -> float:
    """How close the learner starts out to someone met for the first time: their declared tie, if any."""
    ties = [r.closeness for r in casting.person.relationships if r.to == learner]
    return max(ties, default=0.3)


def _summary(run: SceneRun) -> str:
    """What "I" remembers: the weightiest sentence someone else said, quoted."""
    said = [t for t in run.turns if t.speaker_id != run.learner.id]
    if not said:
        return f"{run.job.scene.title.lower()} at {run.job.scene.setting.place}"
    best = max(said, key=lambda t: (len(t.text), -t.turn_index))
    return f"{best.speaker_label} told me, \u201c{key_sentence(best.text)}\u201d"


def key_sentence(text: str) -> str:
    """The longest sentence of a line (the one that carries its point)."""
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()]
    return max(sentences, key=len) if sentences else text


def graph_config(scene: Scene) -> RunnableConfig:
    """What a scene's graph is invoked with: a step limit (one step per turn) that its turns cannot reach."""
    return {"recursion_limit": scene.turn_limit * 2 + 20}


def build_scene_graph(*, asynchronous: bool = False) -> StateGraph[SceneState, SceneRun, SceneState, SceneState]:
    """The scene graph, uncompiled: setup -> (speak)* -> reflect -> update_learner.

    With `asynchronous`, the nodes that call the backend await it (model backends; run with `ainvoke`).
    """
    graph = StateGraph(SceneState, context_schema=SceneRun)
    graph.add_node("setup", asetup if asynchronous else setup)
    graph.add_node("speak", aspeak if asynchronous else speak)
    graph.add_node("reflect", areflect if asynchronous else reflect)
    graph.add_node("update_learner", aupdate_learner if asynchronous else update_learner)
    graph.add_edge(START, "setup")  # setup and speak go on where their `Command` says (see `Next`)
    graph.add_edge("reflect", "update_learner")
    graph.add_edge("update_learner", END)
    return graph
