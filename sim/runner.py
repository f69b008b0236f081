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

import json
import multiprocessing
import os
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

from sim.backends import Backend, create
from sim.curriculum import SceneJob, plan
from sim.engine import SceneRun, SceneState, build_scene_graph
from sim.learner import LearnerState, SceneEffect, apply, initial_state
from sim.rendering import dialogue, learner_words
from sim.store.db import connect, run_lock
from sim.store.trajectories import SceneRecord, done_keys, finish_run, start_run, stored_effects, write_scenes
from sim.world import World

AUTO_WORKERS_MIN_SCENES = 400  # below this, starting worker processes costs more than it saves
FLUSH_SCENES = 256
FLUSH_TURNS = 20_000  # long scenes flush sooner, so a batch fits the writer's memory limit
FLUSH_SECONDS = 2.0


@dataclass(frozen=True)
class RunOptions:
    """What `sim run` was asked to do."""

    db: Path
    learner: str
    seed: int = 0
    variations: int = 1
    backend: str = "scripted"
    model: str | None = None
    stages: tuple[str, ...] = ()
    workers: int = 1  # 0 = one per core for big runs
    command: str = "sim run"


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
    status: str = "running"

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


def run(world: World, options: RunOptions, progress: Progress | None = None) -> RunSummary:
    """Live every pending scene and store it; returns the summary (status 'done' or 'interrupted')."""
    with run_lock(options.db):
        todo, skipped = pending(world, options)
        backend = create(options.backend, model=options.model)
        summary = RunSummary(uuid.uuid4().hex[:12], options.db, len(todo), skipped)
        with connect(options.db) as con:
            start_run(con, _run_row(summary, world, options, backend))
        writer = BatchWriter(options.db, summary.run_id)
        started = time.perf_counter()
        try:
            _live(world, options, backend, todo, writer, summary, progress)
            summary.status = "done"
        finally:
            summary.seconds = time.perf_counter() - started
            status = summary.status if summary.status == "done" else "interrupted"
            writer.close(status, None if status == "done" else "stopped before the run finished")
            summary.status = status
    return summary


def _live(
    world: World,
    options: RunOptions,
    backend: Backend,
    todo: Sequence[SceneJob],
    writer: BatchWriter,
    summary: RunSummary,
    progress: Progress | None,
) -> None:
    stored = writer.stored_effects(options.learner, sorted({j.variation for j in todo}))
    lines = [(jobs, stored.pop(variation, [])) for variation, jobs in _by_variation(todo)]
    for records in _lived_lines(world, options, backend, lines):
        for rec in records:
            writer.add(rec)
            stage = rec.scene["stage"]
            summary.scenes[stage] += 1
            summary.turns[stage] += len(rec.turns)
            summary.repairs += int(rec.scene["repairs"])
            if progress:
                progress(stage, f"{rec.scene['pack']}/{rec.scene['scene']}")


LineTask = tuple[list[SceneJob], list[str]]


def _lived_lines(
    world: World, options: RunOptions, backend: Backend, lines: list[LineTask]
) -> Iterator[list[SceneRecord]]:
    """Live each life line, in this process or spread over worker processes; yields each line's records."""
    workers = worker_count(options.workers, sum(len(jobs) for jobs, _ in lines), len(lines))
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
    _WORKER.update(
        world=world, graph=build_scene_graph().compile(), backend=create(options.backend, model=options.model)
    )


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
    graph.invoke({"turn": 0}, context=scene, config={"recursion_limit": job.scene.turn_limit * 2 + 20})
    return scene


class LifeLine:
    """One life line: the stored effects it may draw on, and the views scenes see."""

    def __init__(self, start: LearnerState, stored: list[SceneEffect]) -> None:
        self._start = start
        self._effects = sorted(stored, key=lambda e: e.memory.order)
        self._base = start
        self._base_rank = -1
        self._folded = 0

    def view(self, job: SceneJob) -> LearnerState:
        """The life as `job` may see it: all earlier stages, plus its own follow-on chain in its stage."""
        if job.stage_rank < self._base_rank:
            self._base, self._base_rank, self._folded = self._start, -1, 0
        while self._folded < len(self._effects) and self._effects[self._folded].memory.stage_rank < job.stage_rank:
            self._base = apply(self._base, self._effects[self._folded])
            self._folded += 1
        self._base_rank = job.stage_rank
        life = self._base
        for effect in self._effects[self._folded :]:
            memory = effect.memory
            if memory.stage_rank == job.stage_rank and f"{memory.pack}/{memory.scene}" in job.ancestors:
                life = apply(life, effect)
        stage = job.scene.stage
        return life.model_copy(update={"age": job.age, "stage": stage})

    def add(self, effect: SceneEffect | None) -> None:
        """A scene of this line finished: later scenes may remember it."""
        if effect is None:
            return
        index = next((i for i, e in enumerate(self._effects) if e.memory.order > effect.memory.order), None)
        if index is None:
            self._effects.append(effect)
        else:
            self._effects.insert(index, effect)
            if index < self._folded:
                self._base, self._base_rank, self._folded = self._start, -1, 0


def record(scene: SceneRun) -> SceneRecord:
    """The rows stored for a finished scene."""
    job, effect = scene.job, scene.effect
    if effect is None:
        raise ValueError(f"scene {job.ref} finished without updating the learner")
    spoken = learner_words(scene.turns)
    row: dict[str, Any] = {
        "scene_key": job.key,
        "learner": job.learner,
        "pack": job.pack,
        "pack_version": job.pack_version,
        "scene": job.scene.id,
        "variation": job.variation,
        "seed": job.seed,
        "stage": job.scene.stage,
        "stage_rank": job.stage_rank,
        "depth": job.depth,
        "position": job.position,
        "age": job.age,
        "title": job.scene.title,
        "values": list(job.scene.values),
        "learner_role": job.scene.learner_role,
        "setting": job.scene.setting.model_dump_json(),
        "cast": json.dumps(scene_cast(scene)),
        "opening": scene.opening,
        "reflection": scene.reflection,
        "memories_recalled": [m.scene_key for m in scene.memories],
        "dialogue": dialogue(scene.turns),
        "learner_words": spoken[0],
        "learner_turns": spoken[1],
        "turn_count": len(scene.turns),
        "repairs": sum(t.repairs for t in scene.turns),
        "status": "done",
        "backend": scene.backend.name,
        "model": scene.backend.model,
        "started_at": scene.started_at,
        "finished_at": datetime.now(UTC).replace(tzinfo=None),
        "effect": effect.model_dump_json(),
    }
    people = [c.person for c in scene.castings] + [scene.learner]
    return SceneRecord.build(row, scene.turns, people, apply(scene.life, effect))


def scene_cast(scene: SceneRun) -> dict[str, str]:
    """Slot -> person id."""
    return {c.slot: c.person.id for c in scene.castings}


class BatchWriter:
    """Buffers finished scenes and writes them in batches, opening the database only to write."""

    def __init__(self, db: Path, run_id: str) -> None:
        self.db, self.run_id = db, run_id
        self._buffer: list[SceneRecord] = []
        self._turns = 0
        self._last = time.monotonic()

    def stored_effects(self, learner: str, variations: list[int]) -> dict[int, list[str]]:
        """Effects already stored for these life lines (from earlier runs), as JSON kept until needed."""
        self.flush()
        with connect(self.db) as con:
            return stored_effects(con, learner, variations)

    def add(self, scene: SceneRecord) -> None:
        """Queue a finished scene; write when the batch is full or old enough."""
        self._buffer.append(scene)
        self._turns += len(scene.turns)
        full = len(self._buffer) >= FLUSH_SCENES or self._turns >= FLUSH_TURNS
        if full or time.monotonic() - self._last > FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        """Write every queued scene now."""
        if self._buffer:
            with connect(self.db) as con:
                write_scenes(con, self._buffer, self.run_id)
            self._buffer.clear()
            self._turns = 0
        self._last = time.monotonic()

    def close(self, status: str, error: str | None) -> None:
        """Write what is queued and record how the run ended."""
        try:
            self.flush()
        finally:
            with connect(self.db) as con:
                finish_run(con, self.run_id, status, datetime.now(UTC).replace(tzinfo=None), error)


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
            "model": options.model,
        },
        "seed": options.seed,
        "backend": backend.name,
        "model": backend.model,
        "learner": options.learner,
        "packs": [p.id for p in world.packs],
        "versions": {name: version(name) for name in ("raising-sim", "langgraph", "duckdb", "faker")},
        "scenes_planned": summary.planned,
    }
