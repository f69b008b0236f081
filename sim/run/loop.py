"""The run loop: plan the curriculum, skip what is stored, hand the life lines to an executor, write what comes back.

Invariants:
- Idempotent: a scene is identified by (learner, pack, scene, variation, seed); stored scenes are
  skipped, so running the same command again adds nothing, and a killed run completes on the next.
- Deterministic: a scene sees only the life it may remember (`LifeLine.view`), which does not depend
  on the executor, on what else runs, in which order, or how many at once.
- Each variation is a life line of its own, handed to the executor whole (`LineTask`), with the
  effects earlier runs stored for it.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from importlib.metadata import version
from typing import Any

from sim.backends import Backend, create, registry
from sim.backends.providers.common import AuthError
from sim.errors import StoreError
from sim.run.executor import Executor, LineTask, worker_count
from sim.run.forkserver import start_context
from sim.run.lines import steady_collector
from sim.run.options import Progress, RunOptions, RunSummary
from sim.run.outcome import failure, outcome, sigterm_interrupts
from sim.run.writer import FLUSH_SECONDS, MODEL_FLUSH_SECONDS, BatchWriter
from sim.store.db import connect
from sim.store.lock import RunEnd, RunLock, run_lock
from sim.store.rows import FailedScene, RunRow, SceneRecord
from sim.store.trajectories import done_keys, finish_run, start_run
from sim.world.curriculum import SceneJob, plan
from sim.world.load import World


def pending(world: World, options: RunOptions) -> tuple[list[SceneJob], int]:
    """The scenes still to live, in curriculum order, and how many are already stored."""
    return _unstored(options, _plan(world, options))


def _plan(world: World, options: RunOptions) -> list[SceneJob]:
    return plan(world, options.learner, variations=options.variations, seed=options.seed, stages=options.stages)


def _unstored(options: RunOptions, jobs: list[SceneJob]) -> tuple[list[SceneJob], int]:
    if not options.db.exists():
        return jobs, 0
    with connect(options.db, read_only=True) as con:
        stored = done_keys(con, (j.key for j in jobs))
    return [j for j in jobs if j.key not in stored], len(stored)


def run(
    world: World, options: RunOptions, progress: Progress | None = None, planned: Callable[[int], None] | None = None
) -> RunSummary:
    """Live every pending scene and store it; returns the summary.

    `planned` is told how many scenes are to be lived, once they are known; `progress` is told of each one.

    Its status says how it ended, as `runs` records it: done, partial (some scenes failed, see `failed`) or
    stopped (`--max-cost` reached); or, raising what ended it, failed (an authentication error, a full disk)
    or interrupted (Ctrl-C, SIGTERM). Finished scenes are kept in every case.
    """
    with run_lock(options.db) as lock, sigterm_interrupts():
        jobs = _plan(world, options)
        _warm_up(options, jobs)
        with connect(options.db):  # creates it, or brings its schema up to date, before planning reads it
            pass
        todo, skipped = _unstored(options, jobs)
        summary = RunSummary(uuid.uuid4().hex[:12], options.db, len(todo), skipped)
        if planned:
            planned(len(todo))
        executor = choose_executor(world, options, todo)  # a pool's workers start importing now
        summary.workers = executor.workers
        backend = create(options.backend, options=options.model_options, db=options.db,
                         budget=executor.budget(options.model_options.max_cost))  # fmt: skip
        try:
            with connect(options.db) as con:
                start_run(con, _run_row(summary, world, options, backend), lock.unrecorded)
            lock.recorded()
            _live(executor, backend, todo, BatchWriter(options.db, summary.run_id), lock, summary, progress)
        finally:
            backend.close()
    return summary


def choose_executor(world: World, options: RunOptions, todo: Sequence[SceneJob]) -> Executor:
    """The executor for `todo`: this process, or a pool of `worker_count` processes."""
    count = _workers(options, todo)
    if count > 1:
        from sim.run.pool import ProcessPool  # each executor imports only what it needs (the pool: no LangGraph)

        return ProcessPool(world, options, todo, count)
    from sim.run.local import InProcess

    return InProcess(world, options.concurrency)


def _warm_up(options: RunOptions, jobs: Sequence[SceneJob]) -> None:
    """If the whole plan would use worker processes, start their fork server now, to import while this one prepares.

    A rerun that finds most scenes stored may then use fewer; an idle fork server ends with the run.
    """
    if _workers(options, jobs) > 1:
        start_context(options.backend)


def _workers(options: RunOptions, jobs: Sequence[SceneJob]) -> int:
    concurrent = registry.get(options.backend).concurrent
    lines, batch = len({job.variation for job in jobs}), options.model_options.batch
    return worker_count(options.workers, options.concurrency if concurrent else None, lines, len(jobs), batch=batch)


def _live(
    executor: Executor,
    backend: Backend,
    todo: Sequence[SceneJob],
    writer: BatchWriter,
    lock: RunLock,
    summary: RunSummary,
    progress: Progress | None,
) -> None:
    """Live `todo` through `executor`, then record how the run ended (also when it raised)."""
    writer.every = MODEL_FLUSH_SECONDS if backend.concurrent else FLUSH_SECONDS
    started = time.perf_counter()
    try:
        lines = _lines(writer, todo)
        stopped = asyncio.run(_lived(executor, backend, lines, writer, _Tally(writer, summary, progress)))
        if isinstance(stopped, AuthError):
            raise stopped
        summary.stopped = stopped.reason if stopped else None
    except BaseException as exc:
        summary.seconds = time.perf_counter() - started
        _end(writer, lock, summary, exc)
        raise
    summary.seconds = time.perf_counter() - started
    _end(writer, lock, summary, None)


def _lines(writer: BatchWriter, todo: Sequence[SceneJob]) -> list[LineTask]:
    """`todo` as life lines (one per variation), each with the effects earlier runs stored for it."""
    if not todo:
        return []
    stored = writer.stored_effects(todo[0].learner, sorted({j.variation for j in todo}))
    return [LineTask(tuple(jobs), tuple(stored.pop(v, ()))) for v, jobs in _by_variation(todo)]


async def _lived(
    executor: Executor, backend: Backend, lines: Sequence[LineTask], writer: BatchWriter, tally: _Tally
) -> Any:
    with steady_collector():  # also in this process when the workers live the scenes: it receives every record
        async with writer.flushing():
            return await executor.live(backend, lines, tally)


class _Tally:
    """The run's `Sink`: each scene to the writer, the summary and the progress bar."""

    def __init__(self, writer: BatchWriter, summary: RunSummary, progress: Progress | None) -> None:
        self.writer, self.summary, self.progress = writer, summary, progress

    def done(self, record: SceneRecord) -> None:
        """Queue a finished scene and count it."""
        self.writer.add(record)
        scene, summary = record.scene, self.summary
        summary.scenes[scene.stage] += 1
        summary.turns[scene.stage] += len(record.turns)
        summary.repairs += scene.repairs
        summary.count_calls(record.calls)
        if self.progress:
            self.progress(scene.stage, f"{scene.pack}/{scene.scene}")

    def failed(self, scene: FailedScene) -> None:
        """Queue a failed scene and count it (the bar still reaches the planned total)."""
        self.writer.add_failure(scene)
        row = scene.failure
        self.summary.failed[f"{row.pack}/{row.scene}#{row.variation}"] = row.reason
        self.summary.count_calls(scene.calls)
        if self.progress:
            self.progress(row.stage, f"{row.pack}/{row.scene} failed")


def _end(writer: BatchWriter, lock: RunLock, summary: RunSummary, raised: BaseException | None) -> None:
    """Write what is queued and record how the run ended (in the lock file when the database cannot take it).

    A last batch that cannot be written fails a run that was ending well, and is raised.
    """
    summary.status, error = failure(raised) if raised else outcome(summary)
    late: StoreError | None = None
    try:
        writer.flush()
    except StoreError as exc:
        late = exc
        if raised is None:
            summary.status, error = "failed", str(exc)
    end = RunEnd(writer.run_id, datetime.now(UTC).replace(tzinfo=None), summary.status, error)
    try:
        with connect(writer.db) as con:
            finish_run(con, end)
    except StoreError:
        lock.note(end)
    if late is not None and raised is None:
        raise late


def _by_variation(jobs: Sequence[SceneJob]) -> Iterator[tuple[int, list[SceneJob]]]:
    lines: dict[int, list[SceneJob]] = defaultdict(list)
    for job in jobs:
        lines[job.variation].append(job)
    yield from sorted(lines.items())


def _model_args(options: RunOptions, backend: Backend) -> dict[str, Any]:
    """The model options worth keeping with the run (a URL's user and password are not)."""
    if not backend.concurrent:
        return {"model": None}
    model = options.model_options
    url = re.sub(r"//[^/@]*@", "//", model.base_url) if model.base_url else None
    return {"model": model.model, "base_url": url, "mode": model.mode, "concurrency": options.concurrency,
            "max_cost": model.max_cost, "batch": model.batch}  # fmt: skip


def _run_row(summary: RunSummary, world: World, options: RunOptions, backend: Backend) -> RunRow:
    args = {"seed": options.seed, "variations": options.variations, "stages": list(options.stages),
            "backend": options.backend, **_model_args(options, backend)}  # fmt: skip
    return RunRow(
        run_id=summary.run_id,
        started_at=datetime.now(UTC).replace(tzinfo=None),
        command=options.command,
        args=args,
        seed=options.seed,
        backend=backend.name,
        model=backend.model,
        learner=options.learner,
        packs=[p.id for p in world.packs],
        versions={name: version(name) for name in ("raising-sim", "langgraph", "duckdb", "faker")},
        scenes_planned=summary.planned,
    )
