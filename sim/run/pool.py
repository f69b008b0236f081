"""The process-pool executor: scenes spread over worker processes, for runs one core cannot keep up with.

An offline scene is all CPU (about 3 ms); a model scene spends a few milliseconds of CPU on every
call (building the request, reading the reply, stepping the graph), so with a fast server and many
scenes in flight one event loop saturates a core before the server does. The pool lives scenes in
W worker processes (`sim.run.worker`), forked from a fork server on POSIX (spawned on Windows), each
through its own backend (and its own connection to the reply cache, SQLite, safe across processes).

What goes to a worker is decided by `sim.run.hub`: a model backend's scenes one by one (the parent keeps
the schedule and lives scenes itself until a worker is ready, so a run starts at once), a synchronous
backend's lines whole. Workers send back each scene's record; the parent alone writes DuckDB. A worker
takes about a second to start (its fork server is started as soon as the run knows it needs one).

Invariants:
- The corpus does not depend on W or on which process lives a scene: one scheduler decides what each
  scene remembers from its life line alone, and a request's hash does not say which process sent it.
- With a model backend, at most `concurrency` scenes are in flight across every process: there is one
  gate, the parent's.
- One budget: every process adds what it pays to one shared ledger (`budget`) and checks it before
  each paid call, so `--max-cost` can be passed by at most one call per scene in flight.
- A worker that dies, meets a user error (an unreadable reply cache) or a bug ends the run with one
  error (`WorkerDied`, `WorkerError`, the bug's traceback). Scenes received before are kept; replies
  paid for are in the reply cache.
- When the parent stops (the run is over, an error, Ctrl-C), workers cancel what they have in
  flight and exit; a worker whose parent is gone (killed) exits within a second.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection

from sim.backends.base import Backend
from sim.backends.budget import Budget
from sim.backends.providers.common import SceneStopped
from sim.run import worker as worker_process
from sim.run.executor import LineTask, Sink
from sim.run.forkserver import start_context
from sim.run.hub import LineHub, SceneHub, Worker
from sim.run.options import RunOptions
from sim.world.curriculum import SceneJob
from sim.world.load import World


class ProcessPool:
    """The `Executor` that lives scenes in `count` worker processes (and here, until one is ready)."""

    def __init__(self, world: World, options: RunOptions, jobs: Sequence[SceneJob], count: int) -> None:
        """Start the workers' fork server now (`start_context`); the workers start when lines are lived."""
        self.world, self.options, self.jobs, self.workers = world, options, tuple(jobs), count
        self.context = start_context(options.backend)
        self.ledger = self.context.Value("d", 0.0)

    def budget(self, limit: float | None) -> Budget:
        """A budget spending from the ledger every worker shares."""
        return Budget(limit, shared=self.ledger)

    async def live(self, backend: Backend, lines: Sequence[LineTask], sink: Sink) -> SceneStopped | None:
        """Live `lines` (see `Executor.live`): a model backend's scene by scene, a synchronous one's line by line.

        Until a worker is ready, a model backend's scenes are lived here through `backend` (they mostly wait on
        the network); a synchronous backend's lines wait for a worker, since a scene lived here would hold up
        the event loop that feeds the workers (and this process need not import the engine at all).
        """
        started: list[Worker] = []
        try:
            work = (self.world, self.options, dict(os.environ), self.jobs)
            for i in range(self.workers):  # one by one: if one cannot be set up, those before are still stopped
                started.append(_start(self, i, work))
            if not backend.concurrent:
                lines_hub = LineHub(started, self.jobs, sink)
                return await lines_hub.run(lines_hub.live_lines(lines))
            from sim.run.local import LocalScenes  # the engine (LangGraph), imported only when scenes are lived here

            hub = SceneHub(started, self.jobs, sink, LocalScenes(self.world, backend))
            stopped: SceneStopped | None = await hub.run(hub.live_lines(self.world, lines, self.options.concurrency))
            return stopped
        finally:
            for worker in started:  # its task pipe ends: it cancels what it has in flight, and exits
                worker.outbox.put(None)
            _stop(started)


def _start(pool: ProcessPool, index: int, work: worker_process.Work) -> Worker:
    """Worker `index`, starting in a thread, its work first in its outbox.

    The process is started by a thread because `start` waits: for a fork server still importing, or
    (spawn) for the process's arguments to be written. The work goes through the task pipe rather than
    as an argument: a payload larger than a pipe's buffer would hold `start` until the worker had
    imported what it needs to read it.
    """
    ctx = pool.context
    results, writer = ctx.Pipe(duplex=False)
    tasks, task_writer = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=worker_process.work, args=(tasks, pool.ledger, writer), name=f"sim-worker-{index}",
                       daemon=True)  # fmt: skip
    worker = Worker(index, proc, results)
    worker.outbox.put(work)
    worker.starter = threading.Thread(target=_launch, args=(worker, (writer, tasks), task_writer), daemon=True)
    worker.starter.start()
    return worker


def _launch(worker: Worker, ends: tuple[Connection, ...], tasks: Connection) -> None:
    """A thread: start the worker's process, close the pipe ends only it should hold, then send its outbox."""
    try:
        worker.proc.start()
    except Exception as exc:  # out of processes or memory, or the fork server gone: the pipes' ends say so
        worker.not_started = f"{type(exc).__name__}: {exc}"
    finally:
        for end in ends:  # the worker holds the only write end of its results: its exit ends the pipe
            end.close()
    worker_process.send_all(worker.outbox, tasks)


def _stop(workers: list[Worker]) -> None:
    """Wait for the workers to exit; on an early exit (Ctrl-C, an error) they are stopped after a grace period.

    A worker whose process is still starting then (its fork server importing) reads the end of its
    task pipe once it has started, and exits.
    """
    deadline = time.monotonic() + 5.0
    for worker in workers:
        if worker.starter:
            worker.starter.join(timeout=max(0.0, deadline - time.monotonic()))
    started = [worker.proc for worker in workers if worker.proc.pid is not None]
    for proc in started:
        proc.join(timeout=max(0.0, deadline - time.monotonic()))
    for proc in started:
        if proc.is_alive():
            proc.terminate()
            proc.join()
