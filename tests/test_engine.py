"""The scene graph's state is the scene: streaming a scene shows each turn as it is spoken, and what is stored."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sim.backends import create
from sim.engine.graph import build_scene_graph, graph_config
from sim.engine.scene import alive, live
from sim.engine.state import START_STATE, SceneContext
from sim.learner.state import initial_state
from sim.world.curriculum import SceneJob, plan
from sim.world.load import World, WorldPaths, load_world
from sim.world.schedule import schedule


def first_scene(root: Path) -> tuple[World, SceneJob, SceneContext]:
    world = load_world(WorldPaths.from_env(), [root / "scenarios/first-steps"])
    job = plan(world, "sam")[0]
    sam = world.personas["sam"]
    return world, job, SceneContext(job, world, initial_state(sam, world.graph), create("scripted"), sam)


def test_streamed_updates_show_each_turn_as_it_is_spoken(shipped_world: Path) -> None:
    _, job, context = first_scene(shipped_world)
    graph = build_scene_graph().compile()
    turns = len(schedule(job.scene))

    updates = list(graph.stream(START_STATE, graph_config(job.scene), context=context, stream_mode="updates"))

    assert [node for update in updates for node in update] == ["setup", *["speak"] * turns, "reflect",
                                                               "update_learner"]  # fmt: skip
    spoken = [update["speak"]["turns"] for update in updates if "speak" in update]
    assert [len(said) for said in spoken] == [1] * turns  # one line per step, the moment it is said
    assert [said[0].turn_index for said in spoken] == list(range(turns))
    stored = live(graph, context)
    assert [t.text for t in stored.turns] == [said[0].text for said in spoken]  # what streamed is what is stored
    assert stored.scene.turn_count == turns and stored.scene.scene_key == job.key


def test_streamed_values_grow_by_one_turn_a_step_and_never_change_after(shipped_world: Path) -> None:
    _, job, context = first_scene(shipped_world)
    graph = build_scene_graph().compile()
    turns = len(schedule(job.scene))

    values = list(graph.stream(START_STATE, graph_config(job.scene), context=context, stream_mode="values"))

    counts = [len(state["turns"]) for state in values]
    assert counts == [0, 0, *range(1, turns + 1), turns, turns]  # start, setup, each turn, reflect, update
    for before, after in zip(values, values[1:], strict=False):  # a snapshot: later steps append, never rewrite
        assert after["turns"][: len(before["turns"])] == before["turns"]
    assert values[-1]["effect"].memory.scene_key == job.key


def test_the_asynchronous_graph_lives_the_same_scene(shipped_world: Path) -> None:
    _, _, context = first_scene(shipped_world)
    sync = live(build_scene_graph().compile(), context)

    lived: Any = asyncio.run(alive(build_scene_graph(asynchronous=True).compile(), context))

    assert [t.text for t in lived.turns] == [t.text for t in sync.turns]
    assert (lived.scene.opening, lived.scene.reflection, lived.scene.effect) == (
        sync.scene.opening, sync.scene.reflection, sync.scene.effect
    )  # fmt: skip
