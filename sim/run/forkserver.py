"""Where the process pool's workers start from: a fork server, set going as early as a run can know it may need one.

This module imports only the standard library and the backend registry, so `sim run` can start the fork
server before it imports the run loop, the world's models or DuckDB: the two processes then import at once.

Invariants:
- A Ctrl-C while the fork server starts or imports is never lost and never a traceback from it (see
  `start_context`).
- Starting it is idempotent: a process starts one fork server at most, and a run that turns out to need
  no worker leaves it idle; it ends with the run.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from multiprocessing import forkserver, resource_tracker
from typing import TYPE_CHECKING

from sim.backends import registry

if TYPE_CHECKING:
    from multiprocessing.context import ForkServerContext, SpawnContext  # no fork server on Windows

    Context = SpawnContext | ForkServerContext

WORKER = "sim.run.worker"
"""The worker's module (`sim.run.worker`), named here so that starting the fork server does not import it."""


def warm_up(backend: str, workers: int, variations: int, *, batch: bool = False) -> None:
    """Start the worker processes' fork server now, before the world is loaded, if this run could use workers.

    It could when there is more than one life line (`variations`) and `workers` asks for more than one process,
    or for auto on a machine with more than one core (see `sim.run.executor.worker_count`; whether auto does use
    them is known only once the world is planned). The fork server then imports what a worker needs while this
    process loads the world; if the run turns out to need no worker, it ends with the run, unused.
    """
    if variations < 2 or batch or workers == 1 or (workers == 0 and (os.cpu_count() or 1) < 2):
        return
    start_context(backend)


def start_context(backend: str) -> Context:
    """Where the pool's worker processes start from, set going now, as soon as a run knows it will use them.

    On POSIX that is a fork server (`multiprocessing`'s forkserver) that imports what a worker needs
    (`sim.run.worker`: LangGraph and the engine; the provider's SDK; and Faker, which casting imports
    only when it first drafts a person: about a second of CPU offline, 4 s with an SDK) once; each
    worker is then forked from it ready in milliseconds, instead of importing on its own, on the cores
    the run's first scenes need. Started before the parent prepares the run, the two import at once.
    Elsewhere (Windows), workers are spawned and import on their own.

    The fork server is in the terminal's process group, so a Ctrl-C while it imports would print a
    KeyboardInterrupt traceback from it. It is started with SIGINT blocked, which it keeps, and so do
    the workers forked from it: the run's process reports the interrupt and ends them through their
    pipes. The calling thread blocks SIGINT only while it starts the fork server (milliseconds), so
    a Ctrl-C then is held until it is done (or taken at once by another thread): never lost.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    preload = [WORKER, "sim.run.local", "faker", registry.preload(backend)]  # and the SDK
    context.set_forkserver_preload(preload)
    resource_tracker.ensure_running()  # first: starting it unblocks SIGINT when done (bpo-33613)
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        forkserver.ensure_running()  # a no-op when this process has started one already
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    return context
