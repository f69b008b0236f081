"""Opening the corpus database: migrations on open, one clear message for locked or corrupt files.

Invariants: only one `sim run` writes a database at a time (an advisory lock file beside it says
who); the DuckDB file itself is opened only for the moment of a read or a batched write, so queries
from other processes can get in between a run's writes.
"""

from __future__ import annotations

import fcntl
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from sim.errors import SimError
from sim.store.migrations import MIGRATIONS

DEFAULT_DB = Path("outputs/raising.duckdb")
LOCK_WAIT_S = 30.0
# A writer holds only one batch at a time; without a limit DuckDB keeps every block it touched cached
# (up to 80% of RAM), so a run's memory would grow with the database instead of staying flat.
WRITER_MEMORY = "32MB"


class StoreError(SimError):
    """The database cannot be used as asked."""


def default_db() -> Path:
    """The database path: $SIM_DB, else outputs/raising.duckdb."""
    return Path(os.environ.get("SIM_DB") or DEFAULT_DB)


def migrate(con: duckdb.DuckDBPyConnection) -> int:
    """Apply pending migrations in order; returns how many ran."""
    con.execute("CREATE TABLE IF NOT EXISTS _migrations (id INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMP)")
    done = {row[0] for row in con.execute("SELECT id FROM _migrations").fetchall()}
    ran = 0
    for number, migration in enumerate(MIGRATIONS, 1):
        if number in done:
            continue
        con.execute("BEGIN")
        migration(con)
        con.execute("INSERT INTO _migrations VALUES (?, ?, ?)", [number, migration.__name__, _now()])
        con.execute("COMMIT")
        ran += 1
    return ran


@contextmanager
def connect(path: Path, *, read_only: bool = False, wait: float = LOCK_WAIT_S) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the database (migrating it when writable), waiting up to `wait` seconds for another process."""
    if read_only and not path.exists():
        raise StoreError(f"no database at {path} (run `sim run scenarios/<pack>` first, or pass --db)")
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    con = _open(path, read_only, wait)
    try:
        if not read_only:
            migrate(con)
        yield con
    finally:
        con.close()


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


@contextmanager
def run_lock(path: Path) -> Iterator[None]:
    """Hold the advisory lock that lets one `sim run` at a time write to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = path.with_name(path.name + ".lock")
    handle = lock_path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise StoreError(
            f"{path} is being written by another `sim run` ({holder}; lock file {lock_path}); wait for it to "
            "finish, or use --db to write to another database"
        ) from None
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
