"""The one-writer lock: one `sim run` at a time writes a database, whatever path names it.

Invariants: the lock is an advisory `flock` on `<real db>.lock`, beside the database's real file, so a
symlink, a relative or an absolute path all meet the same lock. The lock file's first line names its
holder (`pid N`); the lines after it are ends of runs that could not write them to the database (a
full disk), kept until the next run records them.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO

from sim.errors import StoreError, display_path
from sim.store.faults import environment_fault


@dataclass(frozen=True)
class RunEnd:
    """How a run ended, when it could not write that to the database (left in the lock file for the next run)."""

    run_id: str
    finished_at: datetime
    status: str
    error: str | None


@dataclass
class RunLock:
    """The held lock file; it names its holder and keeps the ends of runs that could not record them."""

    file: Path
    handle: IO[str]
    unrecorded: list[RunEnd] = field(default_factory=list)

    def note(self, end: RunEnd) -> None:
        """Keep `end` in the lock file (best effort: the disk may be full), for the next run to record."""
        self.unrecorded.append(end)
        with suppress(OSError):
            self._write()

    def recorded(self) -> None:
        """The notes' ends are now in the database: drop them from the lock file."""
        if self.unrecorded:
            self.unrecorded.clear()
            with suppress(OSError):
                self._write()

    def _write(self) -> None:
        lines = [f"pid {os.getpid()}"] + [
            "\t".join(("ended", e.run_id, e.finished_at.isoformat(), e.status, e.error or "")) for e in self.unrecorded
        ]
        # Written over the old text, then cut: a lock file's first block is reused, so this needs no new space.
        self.handle.seek(0)
        self.handle.write("\n".join(lines) + "\n")
        self.handle.truncate()
        self.handle.flush()


def lock_path(path: Path) -> Path:
    """The run lock of the database `path`: `<real path>.lock`, the same for every spelling of the path."""
    real = path.resolve()
    return real.with_name(real.name + ".lock")


@contextmanager
def run_lock(path: Path) -> Iterator[RunLock]:
    """Hold the advisory lock that lets one `sim run` at a time write to `path` (its real file).

    Raises:
        StoreError: another process holds it, or the lock file cannot be written.
    """
    file = lock_path(path)
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        handle = os.fdopen(os.open(file, os.O_RDWR | os.O_CREAT, 0o644), "r+")  # not append: rewritten in place
    except OSError as exc:
        raise environment_fault(path, exc) or StoreError(str(exc)) from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.readline().strip() or "another process"
        handle.close()
        raise StoreError(
            f"{path} is being written by another `sim run` ({holder}; lock file {display_path(file)}); wait for "
            "it to finish, or use --db to write to another database"
        ) from None
    try:
        try:
            handle.seek(0)
            lock = RunLock(file, handle, _unrecorded(handle.read()))
            lock._write()
        except OSError as exc:
            raise environment_fault(path, exc) or StoreError(str(exc)) from None
        yield lock
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def _unrecorded(text: str) -> list[RunEnd]:
    ends = []
    for line in text.splitlines():
        parts = line.split("\t", 4)
        if len(parts) == 5 and parts[0] == "ended":
            with suppress(ValueError):
                ends.append(RunEnd(parts[1], datetime.fromisoformat(parts[2]), parts[3], parts[4] or None))
    return ends
