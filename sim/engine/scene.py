"""One scene lived through the compiled scene graph, and the rows it is stored as.

Invariants:
- A scene that finishes becomes exactly one `SceneRecord`, built from its final graph state and
  its context (`record`): nothing else decides what is stored for it.
- A scene that stops (`SceneStopped`) carries up every model call it made, those of its earlier
  steps (from the last state the graph emitted) ahead of those of the step that stopped.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import cast

from langgraph.graph.state import CompiledStateGraph

from sim.backends.providers.common import SceneStopped
from sim.corpus.rendering import dialogue, learner_words
from sim.engine.graph import graph_config
from sim.engine.state import START_STATE, SceneContext, SceneState
from sim.learner.state import apply
from sim.store.rows import LearnerStateRow, PersonRow, SceneRecord, SceneRow
from sim.world.personas import Persona

SceneGraph = CompiledStateGraph[SceneState, SceneContext, SceneState, SceneState]


def live(graph: SceneGraph, context: SceneContext) -> SceneRecord:
    """Live one scene through a graph built for a synchronous backend; its record."""
    state: SceneState = {}
    try:
        for emitted in graph.stream(START_STATE, config=graph_config(context.job.scene), context=context,
                                    stream_mode="values"):  # fmt: skip
            state = cast(SceneState, emitted)
    except SceneStopped as exc:
        exc.calls[:0] = state.get("calls", ())
        raise
    return record(context, state)


async def alive(graph: SceneGraph, context: SceneContext) -> SceneRecord:
    """Live one scene through a graph built for an asynchronous (model) backend; its record.

    Raises:
        SceneStopped: the scene cannot finish; its `calls` are every call the scene made.
    """
    state: SceneState = {}
    try:
        async for emitted in graph.astream(START_STATE, config=graph_config(context.job.scene), context=context,
                                           stream_mode="values"):  # fmt: skip
            state = cast(SceneState, emitted)
    except SceneStopped as exc:
        exc.calls[:0] = state.get("calls", ())
        raise
    return record(context, state)


def record(context: SceneContext, state: SceneState) -> SceneRecord:
    """The rows stored for a finished scene."""
    job, effect = context.job, state.get("effect")
    if effect is None:
        raise ValueError(f"scene {job.ref} finished without updating the learner")
    turns, setup = state.get("turns", ()), state["setup"]
    castings = setup.castings
    spoken = learner_words(turns)
    row = SceneRow(
        scene_key=job.key,
        learner=job.learner,
        pack=job.pack,
        pack_version=job.pack_version,
        scene=job.scene.id,
        variation=job.variation,
        seed=job.seed,
        stage=job.scene.stage,
        stage_rank=job.stage_rank,
        depth=job.depth,
        position=job.position,
        age=job.age,
        title=job.scene.title,
        values=list(job.scene.values),
        learner_role=job.scene.learner_role,
        setting=job.scene.setting.model_dump_json(),
        cast=json.dumps({c.slot: c.person.id for c in castings}),
        opening=setup.opening,
        reflection=state["reflection"],
        memories_recalled=[m.scene_key for m in setup.memories],
        turn_count=len(turns),
        repairs=sum(t.repairs for t in turns),
        backend=context.backend.name,
        model=context.backend.model,
        started_at=setup.started_at,
        finished_at=datetime.now(UTC).replace(tzinfo=None),
        effect=effect.model_dump_json(),
        dialogue=dialogue(turns),
        learner_words=spoken[0],
        learner_turns=spoken[1],
    )
    people = tuple(person_row(p) for p in (*(c.person for c in castings), context.learner))
    after = apply(context.life, effect)
    state_row = LearnerStateRow(scene_key=job.key, learner=after.learner, variation=after.variation,
                                stage=effect.memory.stage, age=effect.memory.age, state=after.model_dump_json())
    return SceneRecord(row, turns, people, state_row, state.get("calls", ()))


def person_row(p: Persona) -> PersonRow:
    """A row of `people` (the writer adds the run that first met them)."""
    return PersonRow(person_id=p.id, name=p.name, known_as=p.known_as, role=p.role, kinship=p.kinship,
                     generated=p.generated, persona=p.model_dump_json(by_alias=True))  # fmt: skip
