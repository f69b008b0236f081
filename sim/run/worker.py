"""A worker process of the process pool: lives each scene the parent sends, and sends back its record.

The pool's fork server preloads this module and `sim.run.local` (the engine, LangGraph); the parent
imports this one only to name the worker's entry point and messages, and does not pay for LangGraph.
Nothing here imports what the parent alone needs (DuckDB, Arrow, the writer).

Invariants:
- A worker lives exactly the scenes it is sent, each remembering the life it is sent with, and
  answers each with one message: its record, or why it stopped.
- It spends from the run's one budget (the ledger it is started with), through its own backend.
- A user error or a bug ends it with one message (`error`, `crash`); when its task pipe ends it
  cancels what it has in flight and exits; when its parent is gone (killed) it exits within a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import queue
import sys
import threading
import traceback
from collections.abc import Coroutine
from multiprocessing.connection import Connection
from multiprocessing.sharedctypes import Synchronized
from typing import TYPE_CHECKING, Any

from sim.backends import create
from sim.backends.budget import Budget, BudgetSpent
from sim.backends.providers.common import AuthError, SceneStopped
from sim.errors import SimError
from sim.learner.state import LearnerState
from sim.run.executor import LineTask
from sim.run.lines import live_lines, steady_collector
from sim.run.options import RunOptions
from sim.store.rows import FailedScene, SceneRecord
from sim.world.curriculum import SceneJob
from sim.world.load import World

if TYPE_CHECKING:
    from sim.run.local import LocalScenes

STOPS: dict[str, type[SceneStopped]] = {"auth": AuthError, "budget": BudgetSpent, "scene": SceneStopped}
Work = tuple[World, RunOptions, dict[str, str], tuple[SceneJob, ...]]
"""A worker's work: the world, the run's options, the parent's environment and the run's scenes (sent once;
a scene is then named by its place among them)."""
Task = tuple[int, int, LearnerState] | tuple[int, tuple[int, ...], tuple[str, ...]]
"""What to live: a scene (its number, its place in the work's scenes, the life it may remember), or a whole
line (its number, its scenes' places, the effects stored for it)."""
Message = tuple[str, int, Any]
"""What a worker sends: (kind, the task's number or -1, payload). Kinds: ready; done (a scene's record, or a
line's end: None or how it stopped); stopped ((auth | budget | scene, reason, the calls paid for)); record and
failure (a scene of a line, as it ends); error ((message, exit code)); crash (a traceback)."""


def work(tasks: Connection, ledger: Synchronized[float], pipe: Connection) -> None:
    """A worker process: live every scene the parent sends, sending back its record or why it stopped.

    Its `Work` comes first on `tasks`, then the scenes, until the pipe ends. Messages go through a
    thread, so the event loop never waits on a full pipe.
    """
    threading.Thread(target=_exit_when_orphaned, daemon=True).start()
    try:
        given: Work = tasks.recv()
    except EOFError:  # the parent stopped before sending the work (Ctrl-C, another worker died)
        return
    outbox: queue.SimpleQueue[Message | None] = queue.SimpleQueue()
    sender = threading.Thread(target=send_all, args=(outbox, pipe))
    sender.start()
    try:
        _work(given, tasks, ledger, outbox)
    except KeyboardInterrupt:
        pass  # the parent was interrupted too, and says so
    except SimError as exc:
        outbox.put(("error", -1, (str(exc), exc.exit_code)))
    except BaseException:  # a bug: the parent shows it with its traceback
        outbox.put(("crash", -1, traceback.format_exc()))
    finally:
        outbox.put(None)
        sender.join()
    # Everything is sent and closed: skip tearing down the interpreter (its objects, then modules), which
    # took about a second in which the parent waited for this process to end.
    sys.stderr.flush()
    os._exit(0)


def _work(given: Work, tasks: Connection, ledger: Synchronized[float], outbox: queue.SimpleQueue[Any]) -> None:
    from sim.run.local import LocalScenes  # imported by the fork server already (`sim.run.forkserver.start_context`)

    world, options, environ, jobs = given
    # A fork server's child has the environment the fork server started with; the run's is the parent's now
    # (the key, the base URL, proxies), as a spawned child would have it.
    os.environ.clear()
    os.environ.update(environ)
    budget = Budget(options.model_options.max_cost, shared=ledger)
    backend = create(options.backend, options=options.model_options, db=options.db, budget=budget)
    try:
        asyncio.run(_serve(LocalScenes(world, backend), jobs, tasks, outbox))
    finally:
        backend.close()


async def _serve(
    scenes: LocalScenes, jobs: tuple[SceneJob, ...], tasks: Connection, outbox: queue.SimpleQueue[Message | None]
) -> None:
    """Live each task that arrives on `tasks` as an asyncio task of its own, until the pipe ends.

    Scenes run at once (a model backend's wait on the network together); whole lines run one after another
    (`lines`), so the next line given waits ready while one is lived, instead of all progressing in step and
    ending together.
    """
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[Task | None] = asyncio.Queue()
    threading.Thread(target=_receive, args=(tasks, loop, inbox), daemon=True).start()
    running: set[asyncio.Task[None]] = set()
    lines = asyncio.Lock()
    outbox.put(("ready", -1, None))
    try:
        with steady_collector():
            while (task := await inbox.get()) is not None:
                live = asyncio.create_task(_answer(task[0], _lived(scenes, jobs, task, outbox, lines), outbox))
                running.add(live)
                live.add_done_callback(running.discard)
    finally:
        for live in running:  # the parent stopped early: a scene still in flight could not be stored
            live.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        await scenes.aclose()


async def _lived(
    scenes: LocalScenes,
    jobs: tuple[SceneJob, ...],
    task: Task,
    outbox: queue.SimpleQueue[Message | None],
    lines: asyncio.Lock,
) -> Any:
    """A scene's record; or, for a line, each scene streamed as it ends and then how the line stopped (or None)."""
    number, what, given = task
    if isinstance(given, LearnerState):
        return await scenes.live(jobs[what], given)  # type: ignore[index]
    line = LineTask(tuple(jobs[i] for i in what), given)  # type: ignore[union-attr]
    async with lines:
        stopped = await live_lines(scenes.world, scenes, [line], 1, _Streamed(number, outbox), 1)
    return None if stopped is None else (_kind(stopped), stopped.reason, [])


class _Streamed:
    """A line's `Sink` in a worker: each scene sent to the parent as it ends."""

    def __init__(self, number: int, outbox: queue.SimpleQueue[Message | None]) -> None:
        self.number, self.outbox = number, outbox

    def done(self, record: SceneRecord) -> None:
        self.outbox.put(("record", self.number, record))

    def failed(self, scene: FailedScene) -> None:
        self.outbox.put(("failure", self.number, scene))


async def _answer(number: int, lived: Coroutine[Any, Any, Any], outbox: queue.SimpleQueue[Message | None]) -> None:
    """Send what living a task gave (`done`), or why it stopped, or the error it met."""
    try:
        outbox.put(("done", number, await lived))
    except SceneStopped as exc:
        outbox.put(("stopped", number, (_kind(exc), exc.reason, exc.calls)))
    except SimError as exc:
        outbox.put(("error", number, (str(exc), exc.exit_code)))
    except Exception:
        outbox.put(("crash", number, traceback.format_exc()))


def _kind(stop: SceneStopped) -> str:
    return next(kind for kind, cls in STOPS.items() if isinstance(stop, cls))  # "scene" last: any stop


def _receive(tasks: Connection, loop: asyncio.AbstractEventLoop, inbox: asyncio.Queue[Task | None]) -> None:
    """A thread: hand every scene from the parent to the event loop, then None when the pipe ends."""
    with contextlib.suppress(RuntimeError):  # the loop is closed: the worker is ending
        try:
            while True:
                loop.call_soon_threadsafe(inbox.put_nowait, tasks.recv())
        except (EOFError, OSError):
            loop.call_soon_threadsafe(inbox.put_nowait, None)


def send_all(outbox: queue.SimpleQueue[Any], pipe: Connection) -> None:
    """A thread: send everything put in `outbox` until None, then close `pipe`."""
    with contextlib.suppress(OSError), pipe:  # the other end is gone: nobody is left to tell
        while (message := outbox.get()) is not None:
            pipe.send(message)


def _exit_when_orphaned() -> None:
    """A thread: end this process as soon as its parent is gone (killed), instead of living on as an orphan."""
    parent = multiprocessing.parent_process()
    if parent is not None:
        parent.join()  # returns when the parent's end of the pipe behind its sentinel closes
        os._exit(1)
