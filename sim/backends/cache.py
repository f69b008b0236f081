"""The durable reply cache: every paid model reply, by request key, in a SQLite file beside the corpus.

A run looks a call's key (`ModelCall.key`) up before paying for it and stores the reply the moment
it arrives, so a run that is killed, crashes or is rerun never pays for the same request twice. The
cache also remembers the Message Batches a run has submitted and not yet collected, so a restarted
run collects them instead of submitting (and paying for) them again.

Invariants:
- `put`, `put_many` and `add_batch` have committed when they return, so a killed process (Ctrl-C,
  `kill -9`) loses nothing: the file is in WAL mode with `synchronous=NORMAL`, which survives a crash
  of the process and may lose only the last commits on a power cut (those replies are paid for again).
  FULL would sync the disk on every reply, about a millisecond that blocks the run's event loop,
  where every other scene is waiting on its reply.
- A key is stored once: a replay's `put` is ignored, so the first reply for a request is the one kept.
- Only a `Completion` is stored (text, usage, stop reason, request id): never an API key or header.
- Every SQLite failure leaves as a one-line `StoreError` that names the file and what to do.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from sim.backends.providers.common import Completion
from sim.errors import StoreError

BUSY_TIMEOUT_S = 10.0
_INSERT_REPLY = "INSERT OR IGNORE INTO replies VALUES (?, ?, ?, ?, ?)"
_FIELDS = tuple(f.name for f in fields(Completion))
T = TypeVar("T")


def cache_path(db: Path) -> Path:
    """The reply cache of the corpus database `db`: `<db>.replies.sqlite` beside it."""
    return db.with_name(db.name + ".replies.sqlite")


def _create_tables(con: sqlite3.Connection) -> None:
    con.execute(
        "CREATE TABLE replies (key TEXT PRIMARY KEY, backend TEXT NOT NULL, model TEXT NOT NULL, "
        "completion TEXT NOT NULL, created_at TEXT NOT NULL)"
    )
    con.execute(
        "CREATE TABLE batches (batch_id TEXT PRIMARY KEY, backend TEXT NOT NULL, model TEXT NOT NULL, "
        "submitted_at TEXT NOT NULL, keys TEXT NOT NULL, "
        "status TEXT NOT NULL CHECK (status IN ('submitted', 'collected')))"
    )


# Schema changes, appended and never edited; `PRAGMA user_version` counts how many have run.
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_create_tables,)
SCHEMA_VERSION = len(MIGRATIONS)


class ReplyCache:
    """Replies by request key, and open Message Batches, in one SQLite file."""

    def __init__(self, path: Path, *, timeout: float = BUSY_TIMEOUT_S) -> None:
        """Open (creating or upgrading) the cache at `path`, waiting up to `timeout` s for another run.

        Raises:
            StoreError: the file is not a usable reply cache, or another run holds it too long.
        """
        self.path = path
        self.timeout = timeout
        # One connection, shared by the threads a run may call from; the lock keeps its use serial.
        self._lock = threading.Lock()
        self._con: sqlite3.Connection | None = None
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._errors():
            self._con = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
        try:
            self._run(self._prepare)
        except StoreError:
            self.close()
            raise

    def _prepare(self, con: sqlite3.Connection) -> None:
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        version = int(con.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} was written by a newer version of sim (reply cache schema {version}; this version "
                f"reads up to {SCHEMA_VERSION}); upgrade sim, or move the file aside to start an empty cache "
                "(replies in it will be paid for again)"
            )
        if version == SCHEMA_VERSION:
            return
        with _transaction(con):
            # Read again under the write lock: another run may have migrated while this one waited.
            version = int(con.execute("PRAGMA user_version").fetchone()[0])
            for migration in MIGRATIONS[version:]:
                migration(con)
            con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def get(self, key: str) -> Completion | None:
        """The stored reply for request `key`, or None when this request was never paid for."""
        row = self._run(lambda con: con.execute("SELECT completion FROM replies WHERE key = ?", (key,)).fetchone())
        return None if row is None else self._decode(key, row[0])

    def put(self, key: str, backend: str, model: str, completion: Completion) -> bool:
        """Store a reply and commit it at once; returns False when `key` was already stored (kept as it was)."""
        row = (key, backend, model, _encode(completion), _now())
        # one statement, committed by itself (the connection is in autocommit mode): no BEGIN/COMMIT round trips
        return bool(self._run(lambda con: con.execute(_INSERT_REPLY, row).rowcount))

    def put_many(self, replies: Iterable[tuple[str, str, str, Completion]]) -> int:
        """Store `(key, backend, model, completion)` replies in one commit; returns how many were new."""
        created = _now()
        rows = [(key, backend, model, _encode(completion), created) for key, backend, model, completion in replies]

        def insert(con: sqlite3.Connection) -> int:
            with _transaction(con):
                before = con.total_changes
                con.executemany(_INSERT_REPLY, rows)
                return con.total_changes - before

        return self._run(insert)

    def __len__(self) -> int:
        """How many replies are stored."""
        return int(self._run(lambda con: con.execute("SELECT count(*) FROM replies").fetchone()[0]))

    def add_batch(self, batch_id: str, backend: str, model: str, keys: Sequence[str]) -> None:
        """Remember a submitted Message Batch whose requests' custom ids are `keys`; commits at once."""
        row = (batch_id, backend, model, _now(), json.dumps(list(keys)), "submitted")
        self._run(lambda con: con.execute("INSERT OR IGNORE INTO batches VALUES (?, ?, ?, ?, ?, ?)", row))

    def open_batches(self, backend: str) -> list[tuple[str, list[str]]]:
        """`(batch_id, keys)` of `backend`'s batches submitted but not yet collected, oldest first."""
        rows = self._run(
            lambda con: con.execute(
                "SELECT batch_id, keys FROM batches WHERE backend = ? AND status = 'submitted' "
                "ORDER BY submitted_at, rowid",
                (backend,),
            ).fetchall()
        )
        return [(batch_id, list(json.loads(keys))) for batch_id, keys in rows]

    def mark_collected(self, batch_id: str) -> None:
        """Record that a batch's results are stored, so no later run collects it again."""
        self._run(lambda con: con.execute("UPDATE batches SET status = 'collected' WHERE batch_id = ?", (batch_id,)))

    def close(self) -> None:
        """Close the file; later calls raise StoreError. Closing twice is harmless."""
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None

    def __enter__(self) -> ReplyCache:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _run(self, action: Callable[[sqlite3.Connection], T]) -> T:
        """Run `action` on the connection, one thread at a time, with SQLite errors made into StoreErrors."""
        with self._lock, self._errors():
            if self._con is None:
                raise StoreError(f"the reply cache {self.path} is closed (this is a bug in sim)")
            return action(self._con)

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.OperationalError as exc:
            if _is_locked(exc):
                raise StoreError(self._locked()) from None
            raise StoreError(self._unreadable(str(exc))) from None
        except sqlite3.DatabaseError as exc:
            raise StoreError(self._unreadable(str(exc))) from None

    def _locked(self) -> str:
        return (
            f"the reply cache {self.path} is locked: another run is using it (waited {self.timeout:g} s); wait "
            "for that run to finish, or use --db to work on another database"
        )

    def _unreadable(self, message: str) -> str:
        first = " ".join(message.split()) or "unknown error"
        return (
            f"cannot open {self.path} as the reply cache ({first}); move it aside to start an empty cache "
            "(replies in it will be paid for again)"
        )

    def _decode(self, key: str, text: str) -> Completion:
        try:
            data = json.loads(text)
            return Completion(**{name: value for name, value in data.items() if name in _FIELDS})
        except (ValueError, TypeError, AttributeError):
            raise StoreError(self._unreadable(f"the reply stored for {key[:12]} is not a valid completion")) from None


def _encode(completion: Completion) -> str:
    data = {name: getattr(completion, name) for name in _FIELDS}  # `asdict` without its deep copy
    return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _is_locked(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


@contextmanager
def _transaction(con: sqlite3.Connection) -> Iterator[None]:
    """A write transaction that takes the write lock at once (so waiting happens up front) and commits."""
    con.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if con.in_transaction:  # SQLite ends the transaction itself after some errors
            con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


__all__ = ["BUSY_TIMEOUT_S", "SCHEMA_VERSION", "ReplyCache", "cache_path"]
