"""The scene graph (LangGraph): set up, then speaker after speaker, then reflection and the learner's update.

Invariants:
- `build_scene_graph()` returns an uncompiled `StateGraph`; callers compile it once and reuse it.
- The scene is the graph state: its cast, memories and schedule, the opening, every turn, line and
  model call (appended by reducers, so `graph.stream()` shows each turn as it is spoken), the
  reflection and the effect. What does not change during a scene (the job, the world, the backend,
  the learner and the life they remember) is the runtime context, `SceneContext`.
- One parameterised `speak` node serves every participant, so a bigger cast adds no nodes; after
  each line the director (`direct`) names the next node and the node goes there (a LangGraph
  `Command`). A separate routing edge would cost the async graph a task and callbacks per turn.
- Each step is written once, as a generator that yields its backend request and receives the reply
  (`sim.engine.steps`); the graph for a synchronous backend drives it with `speak`, the graph for a
  model backend with `await aspeak`, so the two graphs cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from typing import TYPE_CHECKING, Any, Protocol

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from sim.backends.base import Request, Utterance
from sim.engine import steps
from sim.engine.state import SceneContext, SceneState
from sim.world.scenarios import Scene

if TYPE_CHECKING:
    from langchain_core.runnables import RunnableConfig  # LangGraph's config type


Update = Any  # a `SceneState` update, or a `Command` carrying one
Step = Callable[[SceneState, SceneContext], Generator[Request, Utterance, Update]]
"""A step that asks the backend: yields each request, is sent its reply, returns the state update."""
Pure = Callable[[SceneState, SceneContext], Update]
"""A step that asks nothing of the backend."""


class Node(Protocol):
    """A node of the scene graph, as LangGraph calls it."""

    def __call__(self, state: SceneState, *, runtime: Runtime[SceneContext]) -> Update | Awaitable[Update]:
        """Run the step on `state`."""


def graph_config(scene: Scene) -> RunnableConfig:
    """What a scene's graph is invoked with: a step limit (one step per turn) that its turns cannot reach."""
    return {"recursion_limit": scene.turn_limit * 2 + 20}


def build_scene_graph(*, asynchronous: bool = False) -> StateGraph[SceneState, SceneContext, SceneState, SceneState]:
    """The scene graph, uncompiled: setup -> (speak)* -> reflect -> update_learner.

    With `asynchronous`, the nodes await the backend (model backends; run with `ainvoke` or `astream`).
    """
    drive = _driven_async if asynchronous else _driven
    graph = StateGraph(SceneState, context_schema=SceneContext)
    graph.add_node("setup", drive(steps.setup), destinations=steps.AFTER_LINE)
    graph.add_node("speak", drive(steps.speak), destinations=steps.AFTER_LINE)
    graph.add_node("reflect", drive(steps.reflect))
    graph.add_node("update_learner", _pure_async(steps.update_learner) if asynchronous else _pure(steps.update_learner))
    graph.add_edge(START, "setup")  # setup and speak go on where their `Command` says (see `steps.direct`)
    graph.add_edge("reflect", "update_learner")
    graph.add_edge("update_learner", END)
    return graph


def _driven(step: Step) -> Node:
    """`step` as a node of the synchronous graph: each request is answered by `backend.speak`."""

    def node(state: SceneState, runtime: Runtime[SceneContext]) -> Update:
        context = runtime.context
        asks = step(state, context)
        try:
            request = next(asks)
            while True:
                request = asks.send(context.backend.speak(request, seed=context.job.seed))
        except StopIteration as done:
            return done.value

    return node


def _driven_async(step: Step) -> Node:
    """`step` as a node of the asynchronous graph: each request is answered by `await backend.aspeak`."""

    async def node(state: SceneState, runtime: Runtime[SceneContext]) -> Update:
        context = runtime.context
        asks = step(state, context)
        try:
            request = next(asks)
            while True:
                request = asks.send(await context.backend.aspeak(request, seed=context.job.seed))
        except StopIteration as done:
            return done.value

    return node


def _pure(step: Pure) -> Node:
    def node(state: SceneState, runtime: Runtime[SceneContext]) -> Update:
        return step(state, runtime.context)

    return node


def _pure_async(step: Pure) -> Node:
    """A pure step in the asynchronous graph, run in the event loop (a synchronous node would go to a thread)."""

    async def node(state: SceneState, runtime: Runtime[SceneContext]) -> Update:
        return step(state, runtime.context)

    return node
