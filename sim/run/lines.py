"""The scheduler every executor shares: which scene may start, the life it may remember, failures and stops.

Life lines (variations) are independent. Within a line, a scene may start once every scene of the
earlier stages is done and its own follow-on ancestors in its stage are done: exactly the life it
may remember (`LifeLine.view`), so the corpus does not depend on timing. At most `concurrency`
scenes are in flight, and at most `open_lines` lines are open (their lives held in memory). The
schedule is kept here; where a scene is lived is the executor's `Scenes` (`sim.run.executor`):
this process, or a worker process that is sent the scene and the life it may remember and sends
back its record.

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
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

from sim.backends.budget import BudgetSpent
from sim.backends.providers.common import AuthError, SceneStopped
from sim.learner.lifeline import LifeLine
from sim.learner.state import SceneEffect
from sim.run.executor import LineTask, Scenes, Sink
from sim.store.rows import FailedScene, LlmCallRow, SceneFailureRow
from sim.world.curriculum import SceneJob
from sim.world.load import World

YOUNG_GC_THRESHOLD = 20_000
"""Collect the youngest generation after this many new container objects (Python's default is 700)."""


class _Scheduler:
    def __init__(self, world: World, scenes: Scenes, concurrency: int, open_lines: int, sink: Sink) -> None:
        self.world, self.scenes, self.sink = world, scenes, sink
        self.gate = asyncio.Semaphore(concurrency)
        self.open = asyncio.Semaphore(open_lines)
        self.stopped: SceneStopped | None = None

    async def line(self, task: LineTask) -> None:
        async with self.open:
            if not self.stopped:
                await self._line(LifeLine.start(self.world, task.jobs, task.stored), task.jobs)

    async def _line(self, life: LifeLine, jobs: Sequence[SceneJob]) -> None:
        lost: dict[str, str] = {}  # ref -> why it was not lived
        for _, stage_jobs in itertools.groupby(jobs, key=lambda j: j.stage_rank):
            batch = list(stage_jobs)
            if lost:
                for job in batch:  # later scenes would remember a life without the failed one
                    self.sink.failed(failure(job, _after(lost)))
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
                self.sink.failed(failure(job, lost[job.ref]))
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
            self.sink.failed(failure(job, exc.reason, exc.calls))
            return
        life.add(SceneEffect.model_validate_json(rec.scene.effect))  # as a resumed line reads it
        self.sink.done(rec)


def _after(lost: dict[str, str]) -> str:
    ref, reason = min(lost.items())
    return f"not lived: {ref} failed earlier in this life line ({reason})"


def failure(job: SceneJob, reason: str, calls: Sequence[LlmCallRow] = ()) -> FailedScene:
    """The rows stored for a scene that could not finish (or was not lived because an earlier one failed)."""
    row = SceneFailureRow(
        scene_key=job.key,
        learner=job.learner,
        pack=job.pack,
        scene=job.scene.id,
        variation=job.variation,
        stage=job.scene.stage,
        reason=reason,
        failed_at=datetime.now(UTC).replace(tzinfo=None),
    )
    return FailedScene(row, tuple(calls))


async def live_lines(
    world: World, scenes: Scenes, lines: Sequence[LineTask], concurrency: int, sink: Sink, open_lines: int
) -> SceneStopped | None:
    """Live every line's scenes through `scenes`; returns what stopped the run, if anything.

    At most `concurrency` scenes are in flight and `open_lines` lines open; the caller closes `scenes`.
    """
    scheduler = _Scheduler(world, scenes, concurrency, open_lines, sink)
    with steady_collector():
        await asyncio.gather(*(scheduler.line(task) for task in lines))
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
