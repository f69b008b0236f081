"""Opening the corpus database: created whole, migrated on open, one line for every fault of the machine.

Invariants:
- Only one `sim run` writes a database at a time (`sim.store.lock`); a writable `connect` is made under it.
- A database is created complete or not at all: it is built and migrated as `<db>.creating` beside
  the real path and renamed into place; a `.creating` left by a killed run is removed by the next.
- Every open brings the schema up to date first (`sim.store.schema`; a read-only command takes the run
  lock to do it), so no command plans or reads against a half-migrated database, and none opens one made
  by a newer raising-sim.
- The DuckDB file itself is opened only for the moment of a read or a batched write, so queries from
  other processes can get in between a run's writes.
- A full disk, a read-only directory or a damaged file is a one-line `StoreError` (`sim.store.faults`),
  never a traceback; other DuckDB errors are bugs and keep theirs.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import duckdb

from sim.errors import StoreError, first_line
from sim.store.faults import environment_fault, machine_fault
from sim.store.lock import run_lock
from sim.store.schema import migrate, pending_migrations

LOCK_WAIT_S = 30.0
# A writer holds only one batch at a time; without a limit DuckDB keeps every block it touched cached
# (up to 80% of RAM), so a run's memory would grow with the database instead of staying flat.
WRITER_MEMORY = "64MB"


@contextmanager
def connect(path: Path, *, read_only: bool = False, wait: float = LOCK_WAIT_S) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the database at its latest schema, waiting up to `wait` seconds for another process.

    A writable open creates a missing database whole (the caller holds `run_lock`). A read-only open of
    a sim database whose schema is behind (an older sim, or a creation killed by an older sim) migrates
    it first under the run lock. A fault of the machine met while it is open leaves as a one-line StoreError.

    Raises:
        StoreError: no database (read-only), locked too long, damaged, made by a newer raising-sim, or a full
            or read-only file system.
    """
    if read_only and not path.exists():
        raise StoreError(f"no database at {path} (run `sim run scenarios/<pack>` first, or pass --db)")
    if not read_only:
        _create(path)
    con = _open(path, read_only, wait)
    try:
        if not read_only:
            migrate(con, path)
        elif behind := pending_migrations(con, path):
            con.close()
            _upgrade(path, behind)
            con = _open(path, read_only, wait)
        yield con
    except duckdb.Error as exc:  # an OSError in the caller's body is about its own files, not the database
        fault = environment_fault(path, exc)
        if fault is None:
            raise
        raise fault from None
    finally:
        con.close()


def creating_path(path: Path) -> Path:
    """Where a new database is built before it is renamed to `path`: `<real path>.creating`."""
    real = path.resolve()
    return real.with_name(real.name + ".creating")


def _create(path: Path) -> None:
    """Create the database at `path`'s real path, migrated, by an atomic rename; nothing if it exists."""
    real = path.resolve()
    if real.exists():
        return
    temp = creating_path(real)
    try:
        real.parent.mkdir(parents=True, exist_ok=True)
        for stale in (temp, temp.with_name(temp.name + ".wal")):  # left by a run killed while creating
            stale.unlink(missing_ok=True)
        con = _open(temp, False, 0.0)
        try:
            migrate(con)
            con.execute("CHECKPOINT")  # everything in the file itself, no WAL left to lose in the rename
        finally:
            con.close()
        fsync_file(temp)
        temp.rename(real)
        with suppress(OSError):  # not every file system syncs a directory
            fsync_file(real.parent)
    except (duckdb.Error, OSError) as exc:
        raise environment_fault(path, exc) or StoreError(f"cannot create {path}: {first_line(exc)}") from None


def fsync_file(path: Path) -> None:
    """Flush a file (or a directory's entries) to disk, so that a rename cannot publish it before its bytes."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _upgrade(path: Path, behind: int) -> None:
    """Bring an existing database's schema up to date for a reader, under the run lock."""
    try:
        with run_lock(path), connect(path):
            pass
    except StoreError as exc:
        raise StoreError(
            f"{path} needs {behind} schema migration(s) before it can be read (made by an older sim, or its "
            f"creation was cut short), and they could not run: {exc}"
        ) from None


def _open(path: Path, read_only: bool, wait: float) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + wait
    delay = 0.01
    while True:
        try:
            config: dict[str, str | bool | int | float | list[str]] = (
                {} if read_only else {"memory_limit": WRITER_MEMORY}
            )
            return duckdb.connect(str(path), read_only=read_only, config=config)
        except duckdb.IOException as exc:
            message = str(exc)
            if machine_fault(message) is not None:  # a full disk or a read-only directory, not a bad file
                raise environment_fault(path, exc) or StoreError(_unreadable(path, message)) from None
            if "lock" not in message.lower():
                raise StoreError(_unreadable(path, message)) from None
            if time.monotonic() >= deadline:
                raise StoreError(_locked(path, message)) from None
            time.sleep(delay)
            delay = min(delay * 2, 0.25)
        except (duckdb.Error, OSError) as exc:
            raise StoreError(_unreadable(path, str(exc))) from None


def _locked(path: Path, message: str) -> str:
    pid = re.search(r"PID (\d+)", message)
    holder = f"process {pid.group(1)}" if pid else "another process"
    return (
        f"{path} is locked by {holder} (a running `sim run` or another DuckDB client); wait for it to finish "
        "and try again, or use --db to work on another database"
    )


def _unreadable(path: Path, message: str) -> str:
    first = message.strip().splitlines()[0] if message.strip() else "unknown error"
    return (
        f"cannot open {path} as a DuckDB database ({first}); if the file is damaged, move it aside "
        "and run again (finished work in it is not touched), or use --db"
    )
