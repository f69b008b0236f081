"""The run's writer: finished and failed scenes buffered and written to DuckDB in batches.

Invariants:
- Only the run's own process writes the database, and only here (besides the `runs` row), opening it
  only to write, so `sim query` can read between batches.
- A batch is written in one transaction (`sim.store.trajectories`): a scene is stored whole or not at all.
- While lines are lived (`flushing`), batches are written from a thread, one at a time, when full or
  every `every` seconds, so the event loop goes on living scenes and serving replies meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

from sim.store.db import connect
from sim.store.rows import FailedScene, SceneRecord
from sim.store.trajectories import stored_effects, write_failures, write_scenes

FLUSH_SCENES = 256
FLUSH_TURNS = 20_000  # long scenes flush sooner, so a batch fits the writer's memory limit
FLUSH_SECONDS = 2.0
MODEL_FLUSH_SECONDS = 10.0
"""A model run flushes less often: what it paid for is durable in the reply cache the moment it arrives, so a
killed run re-lives at most this much from the cache, for free; opening DuckDB to write costs CPU the calls need."""


class BatchWriter:
    """Buffers finished scenes and writes them in batches, opening the database only to write."""

    def __init__(self, db: Path, run_id: str, every: float = FLUSH_SECONDS) -> None:
        self.db, self.run_id = db, run_id
        self.every = every  # write at least this often (seconds)
        self._buffer: list[SceneRecord] = []
        self._failures: list[FailedScene] = []
        self._lock = threading.Lock()
        self._turns = 0
        self._full: asyncio.Event | None = None  # set when a batch is full, while `flushing`

    def stored_effects(self, learner: str, variations: list[int]) -> dict[int, list[str]]:
        """Effects already stored for these life lines (from earlier runs), as JSON kept until needed."""
        with connect(self.db) as con:
            return stored_effects(con, learner, variations)

    def add(self, scene: SceneRecord) -> None:
        """Queue a finished scene; a full batch is written soon after (at once, when not `flushing`)."""
        with self._lock:
            self._buffer.append(scene)
            self._turns += len(scene.turns)
            full = len(self._buffer) >= FLUSH_SCENES or self._turns >= FLUSH_TURNS
        if full:
            if self._full is None:
                self.flush()
            else:
                self._full.set()

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

    @contextlib.asynccontextmanager
    async def flushing(self) -> AsyncIterator[None]:
        """Write batches from a thread while the body runs; on leaving, the write under way is finished."""
        self._full = wake = asyncio.Event()
        finished = asyncio.Event()
        flusher = asyncio.create_task(self._flush_until(finished, wake))
        try:
            yield
        finally:
            finished.set()
            wake.set()
            await flusher  # never cancelled mid-write: it sees `finished` and returns after its current flush
            self._full = None

    async def _flush_until(self, finished: asyncio.Event, wake: asyncio.Event) -> None:
        """Write a batch whenever one is full or `every` seconds have passed, until `finished`."""
        last = time.monotonic()
        while not finished.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), max(0.0, last + self.every - time.monotonic()))
            wake.clear()
            if finished.is_set():
                return
            await asyncio.to_thread(self.flush)
            last = time.monotonic()
