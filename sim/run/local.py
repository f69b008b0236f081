"""The in-process executor: every scene lived in this process, through the scene graph for its backend.

A synchronous (offline) backend's scenes are lived one at a time, straight through the synchronous
graph; a model backend's scenes wait on the network together in this event loop, `concurrency` at
a time.

Invariant: one backend, one compiled graph, one event loop; the scheduler (`sim.run.lines`) decides
what each scene remembers, so this executor's corpus is the process pool's, scene for scene.
"""

from __future__ import annotations

from collections.abc import Sequence

from sim.backends.base import Backend
from sim.backends.budget import Budget
from sim.backends.providers.common import SceneStopped
from sim.engine.graph import build_scene_graph
from sim.engine.scene import alive, live
from sim.engine.state import SceneContext
from sim.learner.state import LearnerState
from sim.run.executor import LineTask, Sink
from sim.run.lines import live_lines
from sim.store.rows import SceneRecord
from sim.world.curriculum import SceneJob
from sim.world.load import World


class LocalScenes:
    """Scenes lived in this process through `backend` (the executors' `Scenes`)."""

    def __init__(self, world: World, backend: Backend) -> None:
        self.world, self.backend = world, backend
        self.graph = build_scene_graph(asynchronous=backend.concurrent).compile()

    async def live(self, job: SceneJob, life: LearnerState) -> SceneRecord:
        """Live `job` remembering `life` (see `Scenes.live`); a synchronous backend's scene holds the loop."""
        context = SceneContext(job, self.world, life, self.backend, self.world.personas[job.learner])
        if self.backend.concurrent:
            return await alive(self.graph, context)
        return live(self.graph, context)

    async def aclose(self) -> None:
        """Close the backend's client."""
        await self.backend.aclose()


class InProcess:
    """The `Executor` that lives every scene here."""

    workers = 1

    def __init__(self, world: World, concurrency: int) -> None:
        self.world, self.concurrency = world, concurrency

    def budget(self, limit: float | None) -> Budget:
        """A budget of this process alone."""
        return Budget(limit)

    async def live(self, backend: Backend, lines: Sequence[LineTask], sink: Sink) -> SceneStopped | None:
        """Live `lines` here (see `Executor.live`): a synchronous backend's lines one after another."""
        concurrency = self.concurrency if backend.concurrent else 1
        scenes = LocalScenes(self.world, backend)
        try:
            return await live_lines(self.world, scenes, lines, concurrency, sink, concurrency)
        finally:
            await scenes.aclose()
