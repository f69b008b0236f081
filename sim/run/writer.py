"""The run's writer: finished and failed scenes buffered and written to DuckDB in batches.

Invariants:
- Only the run's own process writes the database, and only here (besides the `runs` row), opening it
  only to write, so `sim query` can read between batches.
- A batch is written in one transaction (`sim.store.trajectories`): a scene is stored whole or not at all.
- A batch fits the writer's memory (`sim.store.db.WRITER_MEMORY`) however long the life: it is bounded in
  bytes as well as in scenes (late in a life the learner's state, every memory, is the bulk of a scene),
  and a batch DuckDB still cannot hold is written in halves.
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

import duckdb

from sim.errors import StoreError, first_line
from sim.store.db import WRITER_MEMORY, connect
from sim.store.rows import FailedScene, SceneRecord
from sim.store.trajectories import stored_effects, write_failures, write_scenes

FLUSH_SCENES = 256
FLUSH_BYTES = 6_000_000
"""The text a batch may hold (the learner's states and the turns): inserting it takes DuckDB four to five times
as much, and a batch of 14 MB was the first to fail under the writer's 64 MB limit."""
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
        self._bytes = 0
        self._full: asyncio.Event | None = None  # set when a batch is full, while `flushing`

    def stored_effects(self, learner: str, variations: list[int]) -> dict[int, list[str]]:
        """Effects already stored for these life lines (from earlier runs), as JSON kept until needed."""
        with connect(self.db) as con:
            return stored_effects(con, learner, variations)

    def add(self, scene: SceneRecord) -> None:
        """Queue a finished scene; a full batch is written soon after (at once, when not `flushing`)."""
        with self._lock:
            self._buffer.append(scene)
            self._bytes += _size(scene)
            full = self._full_locked()
        if full:
            if self._full is None:
                self.flush()
            else:
                self._full.set()

    def _full_locked(self) -> bool:
        """Whether the queued scenes make a batch (with `_lock` held)."""
        return len(self._buffer) >= FLUSH_SCENES or self._bytes >= FLUSH_BYTES

    def add_failure(self, scene: FailedScene) -> None:
        """Queue a failed scene; it is written with the next batch."""
        with self._lock:
            self._failures.append(scene)

    def flush(self) -> None:
        """Write every queued scene now (safe from another thread while scenes are being added)."""
        with self._lock:
            scenes, failures = self._buffer, self._failures
            self._buffer, self._failures, self._bytes = [], [], 0
        if scenes or failures:
            self._write(scenes, failures)

    def _write(self, scenes: list[SceneRecord], failures: list[FailedScene]) -> None:
        """Write one batch; if DuckDB runs out of memory for it (nothing was written), each half on its own."""
        try:
            with connect(self.db) as con:
                write_scenes(con, scenes, self.run_id)
                write_failures(con, failures, self.run_id)
        except duckdb.OutOfMemoryException as exc:
            if len(scenes) < 2:
                raise StoreError(
                    f"cannot store scene {scenes[0].scene.scene_key if scenes else '(failures)'} in {self.db}: "
                    f"{first_line(exc)} (the writer's limit is {WRITER_MEMORY}; report it, with the scene)"
                ) from None
            half = len(scenes) // 2
            self._write(scenes[:half], failures)
            self._write(scenes[half:], [])

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
            if finished.is_set():
                return
            await asyncio.to_thread(self.flush)
            last = time.monotonic()
            with self._lock:
                if not self._full_locked():  # scenes that came during the write are not a batch yet
                    wake.clear()


def _size(record: SceneRecord) -> int:
    """About the bytes a scene adds to a batch: the learner's state after it, its lines, and its row."""
    return len(record.state.state) + sum(len(turn.text) for turn in record.turns) + 2_000
