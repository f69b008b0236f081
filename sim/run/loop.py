"""The run loop: plan the curriculum, skip what is stored, live each life line's scenes, write in batches.

Invariants:
- Idempotent: a scene is identified by (learner, pack, scene, variation, seed); stored scenes are
  skipped, so running the same command again adds nothing, and a killed run completes on the next.
- Deterministic: a scene sees only the life it may remember (`LifeLine.view`), which does not depend
  on what else runs, in which order, or how many at once.
- Each variation is a life line of its own: its scenes are lived in curriculum order, and only
  that line's life is held in memory, so memory stays flat however many scenes a run has.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import re
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from langgraph.graph.state import CompiledStateGraph

from sim.backends import Backend, ModelOptions, create
from sim.backends.model import Budget
from sim.backends.providers.common import AuthError
from sim.engine.graph import SceneRun, SceneState, build_scene_graph, graph_config
from sim.errors import StoreError
from sim.learner.lifeline import LifeLine, record
from sim.learner.state import LearnerState, SceneEffect, initial_state
from sim.run import pool as model_workers
from sim.run.lines import LocalScenes, live_lines
from sim.run.outcome import failure, outcome, sigterm_interrupts
from sim.store.db import connect
from sim.store.lock import RunEnd, RunLock, run_lock
from sim.store.trajectories import (
    FailedScene,
    SceneRecord,
    done_keys,
    finish_run,
    start_run,
    stored_effects,
    write_failures,
    write_scenes,
)
from sim.world.curriculum import SceneJob, plan
from sim.world.load import World

AUTO_WORKERS_MIN_SCENES = 400  # below this, starting worker processes costs more than it saves
FLUSH_SCENES = 256
FLUSH_TURNS = 20_000  # long scenes flush sooner, so a batch fits the writer's memory limit
FLUSH_SECONDS = 2.0
MODEL_FLUSH_SECONDS = 10.0
"""A model run flushes less often: what it paid for is durable in the reply cache the moment it arrives, so a
killed run re-lives at most this much from the cache, for free; opening DuckDB to write costs CPU the calls need."""


@dataclass(frozen=True)
class RunOptions:
    """What `sim run` was asked to do."""

    db: Path
    learner: str
    seed: int = 0
    variations: int = 1
    backend: str = "scripted"
    stages: tuple[str, ...] = ()
    workers: int = 1  # 0 = one per core for big runs
    command: str = "sim run"
    concurrency: int = 8  # scenes in flight at once with a model backend
    model_options: ModelOptions = field(default_factory=ModelOptions)


@dataclass
class RunSummary:
    """What a run did, for the closing summary."""

    run_id: str
    db: Path
    planned: int
    skipped: int
    scenes: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    turns: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    repairs: int = 0
    seconds: float = 0.0
    status: str = "running"  # then done, partial, stopped, failed or interrupted (as `runs` records it)
    failed: dict[str, str] = field(default_factory=dict)  # "pack/scene#variation" -> reason
    cost: dict[str, float] = field(default_factory=lambda: defaultdict(float))  # stage -> USD paid
    tokens: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # stage -> tokens paid for
    calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # source (api, cache) -> calls
    stopped: str | None = None  # why the run stopped early (budget, authentication)
    workers: int = 1  # processes that lived the scenes

    def count_calls(self, calls: Sequence[dict[str, Any]]) -> None:
        """Add a scene's model calls to the totals."""
        for call in calls:
            self.calls[call["source"]] += 1
            if call["source"] != "cache":
                self.cost[call["stage"]] += call["cost_usd"] or 0.0
                self.tokens[call["stage"]] += sum(
                    call[k] for k in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
                )

    @property
    def done(self) -> int:
        """Scenes lived in this run."""
        return sum(self.scenes.values())


Progress = Callable[[str, str], None]  # (stage, "pack/scene") of each scene stored


def pending(world: World, options: RunOptions) -> tuple[list[SceneJob], int]:
    """The scenes still to live, in curriculum order, and how many are already stored."""
    jobs = plan(world, options.learner, variations=options.variations, seed=options.seed, stages=options.stages)
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
        with connect(options.db):  # creates it, or brings its schema up to date, before planning reads it
            pass
        todo, skipped = pending(world, options)
        summary = RunSummary(uuid.uuid4().hex[:12], options.db, len(todo), skipped)
        if planned:
            planned(len(todo))
        processes = _model_workers(options, todo, summary)  # started first: imports while this process prepares
        budget = Budget(options.model_options.max_cost, shared=processes.ledger if processes else None)
        backend = create(options.backend, options=options.model_options, db=options.db, budget=budget)
        try:
            with connect(options.db) as con:
                start_run(con, _run_row(summary, world, options, backend), lock.unrecorded)
            lock.recorded()
            writer = BatchWriter(options.db, summary.run_id)
            started = time.perf_counter()
            try:
                _live(world, options, backend, todo, writer, summary, progress, processes)
            except BaseException as exc:
                summary.seconds = time.perf_counter() - started
                _end(writer, lock, summary, exc)
                raise
            summary.seconds = time.perf_counter() - started
            _end(writer, lock, summary, None)
        finally:
            backend.close()
    return summary


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


def _model_workers(
    options: RunOptions, todo: Sequence[SceneJob], summary: RunSummary
) -> model_workers.Processes | None:
    """Count the processes a model run lives `todo` in (`summary.workers`); with more than one, their handle.

    Their fork server is started now, importing what a worker needs while the run prepares.
    """
    if options.backend == "scripted":
        return None
    lines, batch = len({job.variation for job in todo}), options.model_options.batch
    summary.workers = model_workers.worker_count(options.workers, options.concurrency, lines, len(todo), batch=batch)
    return model_workers.start_processes(options.backend, summary.workers) if summary.workers > 1 else None


def _live(
    world: World,
    options: RunOptions,
    backend: Backend,
    todo: Sequence[SceneJob],
    writer: BatchWriter,
    summary: RunSummary,
    progress: Progress | None,
    processes: model_workers.Processes | None = None,
) -> None:
    stored = writer.stored_effects(options.learner, sorted({j.variation for j in todo}))
    lines = [(jobs, stored.pop(variation, [])) for variation, jobs in _by_variation(todo)]

    def done(rec: SceneRecord) -> None:
        writer.add(rec)
        stage = rec.scene["stage"]
        summary.scenes[stage] += 1
        summary.turns[stage] += len(rec.turns)
        summary.repairs += int(rec.scene["repairs"])
        summary.count_calls(rec.calls)
        if progress:
            progress(stage, f"{rec.scene['pack']}/{rec.scene['scene']}")

    def failed(scene: FailedScene) -> None:
        writer.add_failure(scene)
        row = scene.failure
        summary.failed[f"{row['pack']}/{row['scene']}#{row['variation']}"] = row["reason"]
        summary.count_calls(scene.calls)
        if progress:  # a failed scene is done with too, so the bar still reaches the planned total
            progress(row["stage"], f"{row['pack']}/{row['scene']} failed")

    scenes = sum(len(jobs) for jobs, _ in lines)
    if backend.concurrent:
        writer.every, writer.deferred = MODEL_FLUSH_SECONDS, True  # written from a thread, off the event loop
        if processes:
            lived = model_workers.live_in_processes(
                processes, world, options, backend, lines, done, failed, writer.flush, writer.every
            )
        else:
            here = LocalScenes(world, backend)
            lived = live_lines(world, here, lines, options.concurrency, done, failed, writer.flush, writer.every)
        stopped = asyncio.run(lived)
        if isinstance(stopped, AuthError):
            raise stopped
        summary.stopped = stopped.reason if stopped else None
        return
    summary.workers = worker_count(options.workers, scenes, len(lines))
    for records in _lived_lines(world, backend, lines, options, summary.workers):
        for rec in records:
            done(rec)


LineTask = tuple[list[SceneJob], list[str]]


def _lived_lines(
    world: World, backend: Backend, lines: list[LineTask], options: RunOptions, workers: int
) -> Iterator[list[SceneRecord]]:
    """Live each life line, in this process or spread over `workers` processes; yields each line's records."""
    if workers <= 1:
        graph = build_scene_graph().compile()
        for jobs, stored in lines:
            yield from ([rec] for rec in live_line(graph, world, backend, jobs, stored))
        return
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, initializer=_worker_init, initargs=(world, options)) as pool:
        yield from pool.imap_unordered(_worker_line, lines)


def worker_count(asked: int, scenes: int, lines: int) -> int:
    """Processes to use: as asked, or with 0 (auto) one per core once a run is big enough to repay start-up."""
    if asked == 0:
        asked = min(os.cpu_count() or 1, 8) if scenes >= AUTO_WORKERS_MIN_SCENES else 1
    return max(1, min(asked, lines))


def live_line(
    graph: CompiledStateGraph[SceneState, SceneRun, SceneState, SceneState],
    world: World,
    backend: Backend,
    jobs: Sequence[SceneJob],
    stored: Sequence[str],
) -> Iterator[SceneRecord]:
    """Live one life line's scenes in curriculum order, each seeing only the life it may remember."""
    learner = world.personas[jobs[0].learner]
    effects = [SceneEffect.model_validate_json(raw) for raw in stored]
    line = LifeLine(initial_state(learner, world.graph, jobs[0].variation), effects)
    for job in jobs:
        scene = live_scene(graph, world, backend, job, line.view(job))
        line.add(scene.effect)
        yield record(scene)


_WORKER: dict[str, Any] = {}


def _worker_init(world: World, options: RunOptions) -> None:
    _WORKER.update(world=world, graph=build_scene_graph().compile(), backend=create(options.backend))


def _worker_line(task: LineTask) -> list[SceneRecord]:
    jobs, stored = task
    return list(live_line(_WORKER["graph"], _WORKER["world"], _WORKER["backend"], jobs, stored))


def _by_variation(jobs: Sequence[SceneJob]) -> Iterator[tuple[int, list[SceneJob]]]:
    lines: dict[int, list[SceneJob]] = defaultdict(list)
    for job in jobs:
        lines[job.variation].append(job)
    yield from sorted(lines.items())


def live_scene(
    graph: CompiledStateGraph[SceneState, SceneRun, SceneState, SceneState],
    world: World,
    backend: Backend,
    job: SceneJob,
    life: LearnerState,
) -> SceneRun:
    """Run one scene through the compiled scene graph."""
    learner = world.personas[job.learner]
    scene = SceneRun(job=job, world=world, life=life, backend=backend, learner=learner)
    graph.invoke({"turn": 0}, context=scene, config=graph_config(job.scene))
    return scene


class BatchWriter:
    """Buffers finished scenes and writes them in batches, opening the database only to write."""

    def __init__(self, db: Path, run_id: str) -> None:
        self.db, self.run_id = db, run_id
        self._buffer: list[SceneRecord] = []
        self._failures: list[FailedScene] = []
        self._lock = threading.Lock()
        self.deferred = False  # True: `add` never writes; the caller flushes (from a thread, off the event loop)
        self.every = FLUSH_SECONDS  # write at least this often (seconds)
        self._turns = 0
        self._last = time.monotonic()

    def stored_effects(self, learner: str, variations: list[int]) -> dict[int, list[str]]:
        """Effects already stored for these life lines (from earlier runs), as JSON kept until needed."""
        self.flush()
        with connect(self.db) as con:
            return stored_effects(con, learner, variations)

    def add(self, scene: SceneRecord) -> None:
        """Queue a finished scene; write when the batch is full or old enough (unless `deferred`)."""
        with self._lock:
            self._buffer.append(scene)
            self._turns += len(scene.turns)
        full = len(self._buffer) >= FLUSH_SCENES or self._turns >= FLUSH_TURNS
        if not self.deferred and (full or time.monotonic() - self._last > self.every):
            self.flush()

    def add_failure(self, scene: FailedScene) -> None:
        """Queue a failed scene; it is written with the next batch."""
        with self._lock:
            self._failures.append(scene)

    def flush(self) -> None:
        """Write every queued scene now (safe from another thread while scenes are being added)."""
        with self._lock:
            scenes, failures = self._buffer, self._failures
            self._buffer, self._failures, self._turns = [], [], 0
        if scenes or failures:
            with connect(self.db) as con:
                write_scenes(con, scenes, self.run_id)
                write_failures(con, failures, self.run_id)
        self._last = time.monotonic()


def _model_args(options: RunOptions) -> dict[str, Any]:
    """The model options worth keeping with the run (a URL's user and password are not)."""
    if options.backend == "scripted":
        return {"model": None}
    model = options.model_options
    url = re.sub(r"//[^/@]*@", "//", model.base_url) if model.base_url else None
    return {"model": model.model, "base_url": url, "mode": model.mode, "concurrency": options.concurrency,
            "max_cost": model.max_cost, "batch": model.batch}  # fmt: skip


def _run_row(summary: RunSummary, world: World, options: RunOptions, backend: Backend) -> dict[str, Any]:
    return {
        "run_id": summary.run_id,
        "started_at": datetime.now(UTC).replace(tzinfo=None),
        "status": "running",
        "command": options.command,
        "args": {
            "seed": options.seed,
            "variations": options.variations,
            "stages": list(options.stages),
            "backend": options.backend,
            **_model_args(options),
        },
        "seed": options.seed,
        "backend": backend.name,
        "model": backend.model,
        "learner": options.learner,
        "packs": [p.id for p in world.packs],
        "versions": {name: version(name) for name in ("raising-sim", "langgraph", "duckdb", "faker")},
        "scenes_planned": summary.planned,
    }
