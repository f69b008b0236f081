"""Model scenes spread over worker processes, each with its own event loop, for runs the client's CPU limits.

One event loop spends a few milliseconds of CPU on every call (building the request, reading the
reply, stepping the scene graph), so with a fast server (a local vLLM, a fake) and many scenes in
flight it saturates a core before the server does. `sim run --workers W` then splits the life lines
over W spawned processes. Each lives its share with `live_lines` and its part of `--concurrency`,
through its own provider client and its own connection to the reply cache (SQLite, safe across
processes); finished and failed scenes come back to the parent, which alone writes DuckDB.

Invariants:
- The corpus does not depend on W: life lines are independent, each is lived whole by one process,
  and a request's hash does not say which process sent it.
- One budget: every worker adds what it pays to a shared ledger and checks it before each paid call,
  so `--max-cost` can be passed by at most one call per scene in flight, as in one process.
- The parent hears how every worker ended: done, stopped (authentication, budget: the first reason
  is returned, as `live_lines` returns it), a user error (raised), or dead (a `WorkerDied` naming
  its exit status). Scenes received before are kept; replies paid for are in the reply cache.
- A worker whose parent is gone (killed) exits within a second instead of living on as an orphan.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection, wait
from multiprocessing.context import SpawnContext, SpawnProcess
from multiprocessing.sharedctypes import Synchronized
from typing import TYPE_CHECKING, Any

from sim.backends import create
from sim.backends.model import Budget, BudgetSpent
from sim.backends.provider import AuthError, SceneStopped
from sim.errors import SimError
from sim.scheduler import LineTask, live_lines
from sim.store.trajectories import FailedScene, SceneRecord
from sim.world import World

if TYPE_CHECKING:
    from sim.runner import RunOptions

SCENES_PER_WORKER = 32
"""With `--workers 0` (auto), one process per this many scenes in flight (up to one per core)..."""
AUTO_MIN_SCENES = 1000
"""... once a run has this many scenes: a worker takes seconds to start (importing the SDK and LangGraph),
which a shorter run does not win back."""
_STOPS: dict[str, type[SceneStopped]] = {"auth": AuthError, "budget": BudgetSpent}


class WorkerDied(SimError):
    """A worker process ended without reporting (killed, out of memory, crashed in C code)."""


class WorkerError(SimError):
    """A user error a worker met (an unreadable reply cache, say), raised again in the parent."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def worker_count(asked: int, concurrency: int, lines: int, scenes: int, *, batch: bool) -> int:
    """Processes for a model run: as asked, or with 0 (auto) one per `SCENES_PER_WORKER` scenes in flight.

    Auto uses one for a run of fewer than `AUTO_MIN_SCENES` scenes, and at most one per core. Never more
    than there are life lines or scenes in flight. A `--batch` run uses one: a batch gathers every
    scene's next call.
    """
    if batch:
        return 1
    if asked == 0:
        per_flight = -(-concurrency // SCENES_PER_WORKER)
        asked = min(os.cpu_count() or 1, 8, per_flight) if scenes >= AUTO_MIN_SCENES else 1
    return max(1, min(asked, lines, concurrency))


def live_in_processes(
    ctx: SpawnContext,
    world: World,
    options: RunOptions,
    lines: Sequence[LineTask],
    workers: int,
    done: Callable[[SceneRecord], None],
    failed: Callable[[FailedScene], None],
) -> SceneStopped | None:
    """Live `lines` in `workers` processes; returns the error that stopped the run, if any (as `live_lines`).

    Each worker writes to a pipe of its own, so a worker that dies, even halfway through a message,
    shows as the end of its pipe rather than as a wait that never ends. Its work (the world, the
    options, its lines) goes through a second pipe once every worker has started: given as the
    process's arguments, it would be written before `start` returns, and a payload larger than a
    pipe's buffer would hold the next worker back until this one had imported what it needs to read it.

    Raises:
        SimError: a worker could not start (its user error, e.g. an unreadable reply cache), or died.
    """
    ledger: Synchronized[float] = ctx.Value("d", 0.0)
    slots = [options.concurrency // workers + (i < options.concurrency % workers) for i in range(workers)]
    readers: dict[Connection, int] = {}
    procs: list[SpawnProcess] = []
    tasks: list[Connection] = []
    try:
        for i in range(workers):
            reader, writer = ctx.Pipe(duplex=False)
            task_reader, task_writer = ctx.Pipe(duplex=False)
            args = (task_reader, ledger, writer, os.getpid())
            proc = ctx.Process(target=_work, args=args, name=f"sim-worker-{i}", daemon=True)
            proc.start()
            writer.close()  # the worker holds the only write end: its exit ends the pipe
            task_reader.close()
            readers[reader], procs, tasks = i, [*procs, proc], [*tasks, task_writer]
        for i, task in enumerate(tasks):
            with task:
                try:
                    task.send((world, options, list(lines[i::workers]), slots[i]))
                except OSError:  # the worker died before reading its work
                    raise _died(i, procs[i]) from None
        ended: dict[int, tuple[str, Any]] = {}
        while readers:
            for ready in wait(list(readers)):
                assert isinstance(ready, Connection)
                index = readers[ready]
                try:
                    kind, payload = ready.recv()
                except (EOFError, OSError):
                    del readers[ready]
                    if index not in ended:
                        raise _died(index, procs[index]) from None
                    continue
                if kind == "scene":
                    done(payload)
                elif kind == "failed":
                    failed(payload)
                else:
                    ended[index] = (kind, payload)
    finally:
        for task in tasks:  # a worker still waiting for its work reads the end of it, and returns
            task.close()
        _stop(procs)
    return _outcome(ended)


def _died(index: int, proc: SpawnProcess) -> WorkerDied:
    proc.join(timeout=5.0)
    code = proc.exitcode
    how = "still running" if code is None else f"killed by signal {-code}" if code < 0 else f"exit status {code}"
    return WorkerDied(
        f"worker process {index} ended without finishing ({how}); the scenes finished so far are kept and the "
        "replies paid for are in the reply cache: run the same command again to finish"
    )


def _outcome(ended: dict[int, tuple[str, Any]]) -> SceneStopped | None:
    """The run's stop (an authentication error before a spent budget), or the first worker's error, raised."""
    for index in sorted(ended):
        kind, payload = ended[index]
        if kind == "error":
            raise WorkerError(*payload)
        if kind == "crash":
            raise RuntimeError(f"worker process {index} failed:\n{payload}")
    stops = [(kind, payload) for kind, payload in ended.values() if kind in _STOPS]
    if not stops:
        return None
    kind, reason = min(stops, key=lambda stop: stop[0] != "auth")
    return _STOPS[kind](reason)


def _stop(procs: list[SpawnProcess]) -> None:
    """Wait for the workers to exit; on an early exit (Ctrl-C, an error) they are stopped after a grace period."""
    deadline = time.monotonic() + 5.0
    for proc in procs:
        proc.join(timeout=max(0.0, deadline - time.monotonic()))
    for proc in procs:
        if proc.is_alive():
            proc.terminate()
            proc.join()


def _work(tasks: Connection, ledger: Synchronized[float], pipe: Connection, parent: int) -> None:
    """A worker process: live the life lines it is sent, send back every scene, then how it ended.

    Its work (the world, the options, its lines and scenes in flight) arrives on `tasks`. Messages go
    through a thread, so the event loop never waits on a full pipe while the parent writes DuckDB.
    """
    threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True).start()
    with tasks:
        try:
            world, options, lines, concurrency = tasks.recv()
        except EOFError:  # the parent stopped before sending the work (Ctrl-C, another worker died)
            return
    outbox: queue.SimpleQueue[tuple[str, Any] | None] = queue.SimpleQueue()
    sender = threading.Thread(target=_send_all, args=(outbox, pipe))
    sender.start()
    try:
        budget = Budget(options.model_options.max_cost, shared=ledger)
        backend = create(options.backend, options=options.model_options, db=options.db, budget=budget)
        try:
            stopped = asyncio.run(
                live_lines(
                    world,
                    backend,
                    lines,
                    concurrency,
                    lambda rec: outbox.put(("scene", rec)),
                    lambda scene: outbox.put(("failed", scene)),
                )
            )
        finally:
            backend.close()
        kind = "auth" if isinstance(stopped, AuthError) else "budget" if stopped else "finished"
        outbox.put((kind, stopped.reason if stopped else ""))
    except KeyboardInterrupt:
        pass  # the parent was interrupted too, and says so
    except SimError as exc:
        outbox.put(("error", (str(exc), exc.exit_code)))
    except BaseException:  # a bug: the parent shows it with its traceback
        outbox.put(("crash", traceback.format_exc()))
    finally:
        outbox.put(None)
        sender.join()
    # Everything is sent and closed: skip tearing down the interpreter (its objects, then modules), which
    # took about a second in which the parent waited for this process to end.
    sys.stderr.flush()
    os._exit(0)


def _send_all(outbox: queue.SimpleQueue[tuple[str, Any] | None], pipe: Connection) -> None:
    with contextlib.suppress(OSError), pipe:  # the parent is gone: nobody is left to tell
        while (message := outbox.get()) is not None:
            pipe.send(message)


def _exit_when_orphaned(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)
