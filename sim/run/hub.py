"""The process pool's parent side while lines are lived: what goes to which worker, and what comes back.

Two placements, by backend:
- A model backend's scenes are placed one by one (`SceneHub`): the parent's scheduler (`live_lines`)
  keeps the one `--concurrency` gate and the life each scene may remember, and each scene goes to the
  ready worker with the fewest in flight (or is lived here while none is ready).
- A synchronous backend's lines are placed whole (`LineHub`): a worker lives a line through the same
  scheduler and streams back each scene as it finishes. A scene is all CPU, so a worker never waits
  for the parent between scenes, and the life a scene remembers never has to travel.

Invariants:
- Every message a worker sends is handled in the event loop, in the order it was sent.
- A worker's error, bug or death breaks the run at once (`Hub.run` raises it), unless the parent
  is already closing, when a worker ending is expected.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import queue
import threading
from collections import deque
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

from sim.backends.providers.common import SceneStopped
from sim.learner.state import LearnerState
from sim.run import worker as worker_process
from sim.run.executor import LineTask, Sink, WorkerDied, WorkerError
from sim.run.lines import live_lines
from sim.store.rows import SceneRecord
from sim.world.curriculum import SceneJob
from sim.world.load import World

if TYPE_CHECKING:
    from sim.run.local import LocalScenes

LINES_PER_WORKER = 2
"""Whole lines a worker holds at once: one being lived, one ready to start the moment it ends."""


@dataclass
class Worker:
    """The parent's side of a worker process."""

    index: int
    proc: BaseProcess
    results: Connection  # what the worker sends (`worker_process.Message`s)
    outbox: queue.SimpleQueue[object] = field(default_factory=queue.SimpleQueue)  # sent by `starter`; None ends
    starter: threading.Thread | None = None  # starts the process, then sends `outbox`
    not_started: str = ""  # why the process could not be started
    replies: dict[int, asyncio.Future[worker_process.Message]] = field(default_factory=dict)  # in flight
    ready: asyncio.Event = field(default_factory=asyncio.Event)


class Hub:
    """Reads every worker's messages into the event loop; a placement subclass decides what to send."""

    def __init__(self, workers: list[Worker], jobs: Sequence[SceneJob], sink: Sink) -> None:
        self.workers, self.sink = workers, sink
        self._place = {job.key: i for i, job in enumerate(jobs)}  # a job is sent as its place in the work
        self._numbers = itertools.count()
        self._closing = False
        self._broken: asyncio.Future[None] | None = None

    async def run(self, lived: Coroutine[Any, Any, SceneStopped | None]) -> SceneStopped | None:
        """Await `lived` while reading the workers; a worker's error or death cancels it and is raised."""
        loop = asyncio.get_running_loop()
        broken = self._broken = loop.create_future()
        for worker in self.workers:
            threading.Thread(target=self._read, args=(loop, worker), daemon=True).start()
        task = asyncio.ensure_future(lived)
        try:
            await asyncio.wait([task, broken], return_when=asyncio.FIRST_COMPLETED)
        finally:  # also when this is cancelled (Ctrl-C)
            self._closing = True  # from here on, a worker that ends is told to, and has not died
            if not task.done():
                task.cancel()
                await asyncio.wait([task])  # the model client closes
            if broken.done():
                broken.exception()  # seen, even when this is cancelled: asyncio would print it as never retrieved
        if broken.done():
            broken.result()  # raises the worker's error
        return task.result()

    async def ask(self, worker: Worker, task: tuple[Any, ...]) -> worker_process.Message:
        """Send `task` (after its number) to `worker`; its answer."""
        number = next(self._numbers)
        reply = worker.replies[number] = asyncio.get_running_loop().create_future()
        worker.outbox.put((number, *task))
        try:
            message: worker_process.Message = await reply
        finally:
            del worker.replies[number]
        return message

    def _read(self, loop: asyncio.AbstractEventLoop, worker: Worker) -> None:
        """A thread: hand every message from `worker` to the event loop, then the end of its pipe."""
        with contextlib.suppress(RuntimeError):  # the loop is closed: the run is over
            try:
                while True:
                    loop.call_soon_threadsafe(self._received, worker, worker.results.recv())
            except (EOFError, OSError):
                loop.call_soon_threadsafe(self._ended, worker)

    def _received(self, worker: Worker, message: worker_process.Message) -> None:
        kind, number, payload = message
        if kind == "ready":
            worker.ready.set()
        elif kind == "record":
            self.sink.done(payload)
        elif kind == "failure":
            self.sink.failed(payload)
        elif kind in ("done", "stopped"):
            if (reply := worker.replies.get(number)) and not reply.done():
                reply.set_result(message)
        elif kind == "error":
            self._break(WorkerError(*payload))
        else:
            self._break(RuntimeError(f"worker process {worker.index} failed:\n{payload}"))

    def _ended(self, worker: Worker) -> None:
        if not self._closing:
            self._break(died(worker))

    def _break(self, error: BaseException) -> None:
        if self._broken and not self._broken.done():
            self._broken.set_exception(error)


class SceneHub(Hub):
    """The scheduler's `Scenes` for a model backend: each scene to the ready worker with the fewest in flight."""

    def __init__(self, workers: list[Worker], jobs: Sequence[SceneJob], sink: Sink, here: LocalScenes) -> None:
        super().__init__(workers, jobs, sink)
        self.here = here

    async def live_lines(self, world: World, lines: Sequence[LineTask], concurrency: int) -> SceneStopped | None:
        """`live_lines` through this hub, and then the model client closed."""
        try:
            return await live_lines(world, self, lines, concurrency, self.sink, concurrency)
        finally:
            await self.here.aclose()

    async def live(self, job: SceneJob, life: LearnerState) -> SceneRecord:
        """Live `job` in a ready worker, or here while none is (see `Scenes.live`)."""
        ready = [worker for worker in self.workers if worker.ready.is_set()]
        if not ready:
            return await self.here.live(job, life)
        kind, _, payload = await self.ask(min(ready, key=lambda w: len(w.replies)), (self._place[job.key], life))
        if kind == "done":
            record: SceneRecord = payload
            return record
        raise _stop(payload, with_calls=True)

    async def aclose(self) -> None:
        """Nothing to close: `live_lines` closes this process's model client when the lines are lived."""


class LineHub(Hub):
    """Whole lines of a synchronous backend, `LINES_PER_WORKER` at a time to each worker, as it is ready."""

    async def live_lines(self, lines: Sequence[LineTask]) -> SceneStopped | None:
        """Live every line in the workers; returns the first stop one reported (no new line starts after it)."""
        waiting = deque(lines)
        stopped: list[SceneStopped] = []

        async def feed(worker: Worker) -> None:
            await worker.ready.wait()
            while waiting and not stopped:
                task = waiting.popleft()
                _, _, payload = await self.ask(worker, (tuple(self._place[j.key] for j in task.jobs), task.stored))
                if payload is not None:
                    stopped.append(_stop(payload, with_calls=False))

        await asyncio.gather(*(feed(w) for w in self.workers for _ in range(LINES_PER_WORKER)))
        return stopped[0] if stopped else None


def _stop(payload: tuple[Any, ...], *, with_calls: bool) -> SceneStopped:
    """The stop a worker reported, raised again here (with the calls the scene paid for, if they came with it)."""
    stop, reason, calls = payload
    stopped = worker_process.STOPS[stop](reason)
    if with_calls:
        stopped.calls = calls
    return stopped


def died(worker: Worker) -> WorkerDied:
    """The error for a worker process that ended without finishing (or never started)."""
    if worker.not_started:
        how = f"could not be started: {worker.not_started}"
    else:
        worker.proc.join(timeout=5.0)
        code = worker.proc.exitcode
        status = "still running" if code is None else f"killed by signal {-code}" if code < 0 else f"exit status {code}"
        how = f"ended without finishing ({status})"
    return WorkerDied(
        f"worker process {worker.index} {how}; the scenes finished so far are kept and the replies paid for are "
        "in the reply cache: run the same command again to finish"
    )

