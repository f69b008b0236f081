"""Living scenes concurrently with a model backend: many scenes wait on the network at once.

Life lines (variations) are independent. Within a line, a scene may start once every scene of the
earlier stages is done and its own follow-on ancestors in its stage are done: exactly the life it
may remember (`LifeLine.view`), so the corpus does not depend on timing. At most `concurrency`
scenes are in flight. The schedule is kept here; where a scene is lived is a `Scenes`: this event
loop (`LocalScenes`), or worker processes (`model_workers`), which are sent the scene and the life
it may remember and send back its record.

Invariants:
- A scene either finishes (its record goes to `done`) or fails with one reason (its failure, with
  the calls it paid for, goes to `failed`). Scenes that would remember it (its follow-ons and every
  later stage of its life line) are not lived but recorded as failed, naming it; the next run
  tries them all again.
- An authentication error or a spent budget stops new scenes everywhere; the first such error is
  returned for the caller to report.
- While lines are lived, Python's cyclic garbage collector runs rarely and never walks what was
  alive before (`steady_collector`); its settings are restored afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from sim.backends.base import Backend
from sim.backends.model import BudgetSpent
from sim.backends.providers.common import AuthError, SceneStopped
from sim.engine.graph import SceneRun, build_scene_graph, graph_config
from sim.learner.lifeline import LifeLine, record
from sim.learner.state import LearnerState, SceneEffect, initial_state
from sim.store.trajectories import FailedScene, SceneRecord
from sim.world.curriculum import SceneJob
from sim.world.load import World

LineTask = tuple[list[SceneJob], list[str]]
YOUNG_GC_THRESHOLD = 20_000
"""Collect the youngest generation after this many new container objects (Python's default is 700)."""


class Scenes(Protocol):
    """Where a scene is lived: in this event loop (`LocalScenes`) or in a worker process (`model_workers`)."""

    async def live(self, job: SceneJob, life: LearnerState) -> SceneRecord:
        """Live `job` remembering `life`; its record.

        Raises:
            SceneStopped: the scene cannot finish; its `calls` are the ones it paid for.
        """
        ...

    async def aclose(self) -> None:
        """Close the model client(s)."""
        ...


class LocalScenes:
    """Scenes lived in this process's event loop, through `backend`."""

    def __init__(self, world: World, backend: Backend) -> None:
        self.world, self.backend = world, backend
        self.graph = build_scene_graph(asynchronous=True).compile()

    async def live(self, job: SceneJob, life: LearnerState) -> SceneRecord:
        """Live `job` through the scene graph (see `Scenes.live`)."""
        learner = self.world.personas[job.learner]
        run = SceneRun(job=job, world=self.world, life=life, backend=self.backend, learner=learner)
        try:
            await self.graph.ainvoke({"turn": 0}, context=run, config=graph_config(job.scene))
        except SceneStopped as exc:
            exc.calls[:0] = run.calls
            raise
        return record(run)

    async def aclose(self) -> None:
        """Close the backend's client."""
        await self.backend.aclose()


class _Scheduler:
    def __init__(
        self,
        world: World,
        scenes: Scenes,
        concurrency: int,
        done: Callable[[SceneRecord], None],
        failed: Callable[[FailedScene], None],
    ) -> None:
        self.world, self.scenes = world, scenes
        self.gate = asyncio.Semaphore(concurrency)
        self.done, self.failed = done, failed
        self.stopped: SceneStopped | None = None

    async def line(self, jobs: Sequence[SceneJob], stored: Sequence[str]) -> None:
        learner = self.world.personas[jobs[0].learner]
        effects = [SceneEffect.model_validate_json(raw) for raw in stored]
        life = LifeLine(initial_state(learner, self.world.graph, jobs[0].variation), effects)
        lost: dict[str, str] = {}  # ref -> why it was not lived
        for _, stage_jobs in itertools.groupby(jobs, key=lambda j: j.stage_rank):
            batch = list(stage_jobs)
            if lost:
                for job in batch:  # later scenes would remember a life without the failed one
                    self.failed(failure(job, _after(lost)))
                continue
            finished = {job.ref: asyncio.Event() for job in batch}
            await asyncio.gather(*(self.scene(job, life, finished, lost) for job in batch))
            if self.stopped:
                return

    async def scene(
        self, job: SceneJob, life: LifeLine, finished: dict[str, asyncio.Event], lost: dict[str, str]
    ) -> None:
        try:
            for ancestor in job.ancestors:
                if ancestor in finished:
                    await finished[ancestor].wait()
            if self.stopped:
                return
            if failed_before := {a: lost[a] for a in job.ancestors if a in lost}:
                lost[job.ref] = _after(failed_before)
                self.failed(failure(job, lost[job.ref]))
                return
            async with self.gate:
                if not self.stopped:
                    await self._live(job, life, lost)
        finally:
            finished[job.ref].set()

    async def _live(self, job: SceneJob, life: LifeLine, lost: dict[str, str]) -> None:
        try:
            rec = await self.scenes.live(job, life.view(job))
        except SceneStopped as exc:
            if isinstance(exc, AuthError | BudgetSpent):
                self.stopped = self.stopped or exc
            else:
                lost[job.ref] = exc.reason
            self.failed(failure(job, exc.reason, exc.calls))
            return
        life.add(SceneEffect.model_validate_json(rec.scene["effect"]))  # as a resumed line reads it
        self.done(rec)


def _after(lost: dict[str, str]) -> str:
    ref, reason = min(lost.items())
    return f"not lived: {ref} failed earlier in this life line ({reason})"


def failure(job: SceneJob, reason: str, calls: Sequence[dict[str, Any]] = ()) -> FailedScene:
    """The rows stored for a scene that could not finish (or was not lived because an earlier one failed)."""
    row: dict[str, Any] = {
        "scene_key": job.key,
        "learner": job.learner,
        "pack": job.pack,
        "scene": job.scene.id,
        "variation": job.variation,
        "stage": job.scene.stage,
        "reason": reason,
        "failed_at": datetime.now(UTC).replace(tzinfo=None),
    }
    return FailedScene(row, list(calls))


async def live_lines(
    world: World,
    scenes: Scenes,
    lines: Sequence[LineTask],
    concurrency: int,
    done: Callable[[SceneRecord], None],
    failed: Callable[[FailedScene], None],
    flush: Callable[[], None] | None = None,
    flush_every: float = 2.0,
) -> SceneStopped | None:
    """Live every line's scenes through `scenes`, `concurrency` at a time; returns what stopped the run, if any.

    `flush` (writing finished scenes) runs every `flush_every` seconds in a thread, so the event loop
    goes on serving replies while the database is written.
    """
    scheduler = _Scheduler(world, scenes, concurrency, done, failed)
    finished = asyncio.Event()
    flusher = asyncio.create_task(_flush_every(flush, flush_every, finished)) if flush else None
    try:
        with steady_collector():
            await asyncio.gather(*(scheduler.line(jobs, stored) for jobs, stored in lines))
    finally:
        finished.set()
        if flusher:
            await flusher  # never cancelled mid-write: it sees `finished` and returns after its current flush
        await scenes.aclose()
    return scheduler.stopped


@contextlib.contextmanager
def steady_collector(young: int = YOUNG_GC_THRESHOLD) -> Iterator[None]:
    """Python's cyclic garbage collector set for a long event loop; restored on exit.

    Every model call allocates thousands of short-lived containers (the SDK's request, LangGraph's
    step), so with the default thresholds the collector ran about every third call. Every few
    seconds that reached a full collection: about 0.2 s walking every object the imports made
    (some 300,000) while every scene in flight waited on the loop. That was 5% of a worker's time,
    and replies came back late by as much. Here, what is alive at the start is frozen out of
    collection (`gc.freeze`), and the youngest generation waits for `young` new containers:
    in a run of 6,000 calls, a dozen collections of a few milliseconds.
    """
    threshold = gc.get_threshold()
    froze = gc.get_freeze_count() == 0  # an enclosing caller may have frozen already
    if froze:
        gc.freeze()  # no collection first: what garbage is frozen is collected after `unfreeze`
    gc.set_threshold(young, *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        if froze:
            gc.unfreeze()


async def _flush_every(flush: Callable[[], None], seconds: float, finished: asyncio.Event) -> None:
    while not finished.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(finished.wait(), seconds)
        if not finished.is_set():
            await asyncio.to_thread(flush)
