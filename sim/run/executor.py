"""The executor contract: what the run loop hands over (life lines) and gets back (finished and failed scenes).

Every executor lives lines through the one scheduler (`sim.run.lines.live_lines`: which scene may start,
the life it may remember, failures and stops, the `--concurrency` gate) and differs only in where it
runs and where a scene is lived (`Scenes`): this process (`sim.run.local.InProcess`), or worker
processes (`sim.run.pool.ProcessPool`: a model backend's scenes placed one by one by the parent's
scheduler, a synchronous backend's lines placed whole, each lived by the scheduler in its worker;
see `sim.run.hub`). Both serve every backend, scripted and model alike. Another executor (Ray, say)
is a new module implementing `Executor`, usually by running `live_lines` with its own `Scenes`; the
run loop only chooses it (`sim.run.loop.choose_executor`).

Invariants:
- The corpus does not depend on the executor or its number of workers: what a scene remembers is
  decided by the scheduler from its life line alone.
- `Executor.live` returns only once no scene is in flight anywhere; every scene given to it is
  reported exactly once to its `Sink`, as finished or as failed, unless the run stops early.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sim.backends.base import Backend
from sim.backends.budget import Budget
from sim.backends.providers.common import SceneStopped
from sim.errors import SimError
from sim.learner.state import LearnerState
from sim.store.rows import FailedScene, SceneRecord
from sim.world.curriculum import SceneJob

AUTO_MIN_SCENES = 1000
"""With `--workers 0` (auto), a run of fewer scenes is lived in one process: a worker costs about a second of
CPU to start (the fork server imports LangGraph, the backend and Faker once), which a shorter run does not win
back (a thousand scenes take 3 s in one process offline, and minutes with a model)."""
MAX_AUTO_WORKERS = 8
"""Auto never starts more worker processes than this, nor more than there are cores."""
SCENES_PER_WORKER = 32
"""With a model backend, auto starts one worker per this many scenes in flight: one event loop keeps about
this many scenes' calls going before its CPU (building requests, reading replies, stepping the graph) saturates."""


@dataclass(frozen=True)
class LineTask:
    """One life line to live: its scenes still to live, in curriculum order, and the effects stored for it (JSON)."""

    jobs: tuple[SceneJob, ...]
    stored: tuple[str, ...] = ()


class Sink(Protocol):
    """Where an executor reports each scene: finished (its record) or failed (why, and the calls it paid for)."""

    def done(self, record: SceneRecord) -> None:
        """A scene finished."""

    def failed(self, scene: FailedScene) -> None:
        """A scene failed, or was not lived because one it would remember failed."""


class Scenes(Protocol):
    """Where a scene is lived: an executor's part of the contract with the scheduler."""

    async def live(self, job: SceneJob, life: LearnerState) -> SceneRecord:
        """Live `job` remembering `life`; its record.

        Raises:
            SceneStopped: the scene cannot finish; its `calls` are the ones it paid for.
        """
        ...

    async def aclose(self) -> None:
        """Close the model client(s)."""
        ...


class Executor(Protocol):
    """Lives life lines and reports every scene to a `Sink`."""

    @property
    def workers(self) -> int:
        """Processes that live scenes (1: this one)."""
        ...

    def budget(self, limit: float | None) -> Budget:
        """The run's budget, one ledger for every process this executor lives scenes in."""
        ...

    async def live(self, backend: Backend, lines: Sequence[LineTask], sink: Sink) -> SceneStopped | None:
        """Live every line's scenes (in this process through `backend`); returns what stopped the run, if anything.

        Raises:
            SimError: a worker could not start or died (`WorkerError`, `WorkerDied`).
        """
        ...


class WorkerDied(SimError):
    """A worker process ended without reporting (killed, out of memory, crashed in C code)."""


class WorkerError(SimError):
    """A user error a worker met (an unreadable reply cache, say), raised again in the parent."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def worker_count(asked: int, concurrency: int | None, lines: int, scenes: int, *, batch: bool = False) -> int:
    """Processes to live a run's scenes in: as asked, or with 0 (auto) by one policy for every backend.

    `concurrency` is the scenes a model backend keeps in flight, or None for a synchronous backend (one
    scene at a time per process). Auto uses one process for a run of fewer than `AUTO_MIN_SCENES`
    scenes; otherwise one per core (at most `MAX_AUTO_WORKERS`), and with a model backend at most one
    per `SCENES_PER_WORKER` scenes in flight. Never more than there are life lines or scenes in
    flight. A `--batch` run uses one: a batch gathers every scene's next call.
    """
    if batch:
        return 1
    if asked == 0:
        cores = min(os.cpu_count() or 1, MAX_AUTO_WORKERS)
        per_flight = cores if concurrency is None else -(-concurrency // SCENES_PER_WORKER)
        asked = min(cores, per_flight) if scenes >= AUTO_MIN_SCENES else 1
    return max(1, min(asked, lines, concurrency or asked))
