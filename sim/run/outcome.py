"""How a run ends: the status and error `runs` records for it, and SIGTERM handled as Ctrl-C is.

Invariant: a run that gets as far as its `runs` row ends as exactly one of done, partial, stopped,
failed or interrupted, with a one-line error for every status but done; only a process killed outright
cannot say so (its row stays 'running' until the next run marks it interrupted).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sim.backends.providers.common import SceneStopped
from sim.errors import SimError, Terminated
from sim.run.executor import WorkerDied
from sim.run.options import RunSummary


def outcome(summary: RunSummary) -> tuple[str, str | None]:
    """Status and error of a run that lived all it could."""
    if summary.stopped:
        return "stopped", summary.stopped
    if not summary.failed:
        return "done", None
    if not summary.done:
        first = min(summary.failed.items())
        return "failed", f"every scene failed ({len(summary.failed)}; see scene_failures), e.g. {first[0]}: {first[1]}"
    return "partial", (f"{len(summary.failed)} of {summary.planned} scenes failed (see scene_failures; the next run "
                       "tries them again)")  # fmt: skip


def failure(exc: BaseException) -> tuple[str, str]:
    """Status and error of a run ended by `exc`."""
    if isinstance(exc, KeyboardInterrupt):
        how = "SIGTERM" if isinstance(exc, Terminated) else "Ctrl-C"
        return "interrupted", f"stopped by {how}; run the same command again to finish"
    if isinstance(exc, WorkerDied):  # killed from outside (kill -9, out of memory), as a whole run can be
        return "interrupted", str(exc)
    if isinstance(exc, SceneStopped):
        return "failed", exc.reason
    if isinstance(exc, SimError):
        return "failed", str(exc)
    text = str(exc).strip()
    return "failed", f"{type(exc).__name__}: {text.splitlines()[0] if text else 'no message'} (a bug in sim)"


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Make SIGTERM end the run as Ctrl-C does (recorded as interrupted), where a handler can be set."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminated(signum: int, frame: object) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
