"""Faults of the machine met while using the database, each worded as one line: what, where, what to do.

Invariant: a full disk, a file or directory that cannot be written, or a damaged or truncated database
becomes one `StoreError` naming the file; anything else DuckDB raises is a bug, left with its traceback.
Shared by every module that touches the corpus's files (`sim.store.db`, `sim.store.lock`, `sim.corpus`).
"""

from __future__ import annotations

import errno
import re
from pathlib import Path

import duckdb

from sim.errors import StoreError, display_path, first_line

_FULL = (errno.ENOSPC, errno.EDQUOT)
_NOT_WRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM)
_FULL_TEXT = ("No space left on device", "Disk quota exceeded")
_NOT_WRITABLE_TEXT = ("Read-only file system", "Permission denied", "Operation not permitted")
_DAMAGED_TEXT = ("Could not read enough bytes", "Corrupt", "checksum", "not a valid DuckDB database file")


def machine_fault(text: str) -> tuple[str, str] | None:
    """('full' or 'not writable', the system's words) when DuckDB's message says so, else None."""
    for kind, words in (("full", _FULL_TEXT), ("not writable", _NOT_WRITABLE_TEXT)):
        for said in words:
            if said in text:
                return kind, said
    return None


def environment_fault(path: Path, exc: BaseException) -> StoreError | None:
    """The one-line error for a fault of the machine met while using the database `path`, or None for a bug.

    A full disk, a file or directory that cannot be written, a damaged or truncated database, each
    saying what happened, to which file, and what to do. Shared by every command that opens the corpus.
    """
    if isinstance(exc, StoreError):
        return exc
    if isinstance(exc, OSError):
        text = exc.strerror or str(exc)
        where = display_path(exc.filename) if exc.filename else str(path)
        kind = "full" if exc.errno in _FULL else "not writable" if exc.errno in _NOT_WRITABLE else "other"
    elif isinstance(exc, duckdb.Error):
        text = first_line(exc)
        named = re.search(r'file "([^"]+)"', text)
        where = display_path(named.group(1)) if named else str(path)
        local = isinstance(exc, duckdb.IOException) and not isinstance(exc, duckdb.HTTPException)
        machine = machine_fault(text)
        if machine:
            kind, text = machine  # the system's words; DuckDB's wrapping repeats the file name
        else:
            kind = ("damaged" if local and any(t in text for t in _DAMAGED_TEXT)
                    else "other" if local or isinstance(exc, duckdb.FatalException) else "bug")  # fmt: skip
    else:
        return None
    return None if kind == "bug" else StoreError(_FAULTS[kind].format(where=where, text=text))


_FAULTS = {
    "full": "disk full: could not write {where} ({text}); free some space and run the same command again "
    "(scenes already stored are kept)",
    "not writable": "cannot write {where} ({text}): the file or its directory is read-only; make it writable, "
    "or use --db to keep the database where you can write",
    "damaged": "cannot read {where}: the database file is damaged or truncated ({text}); restore it from a copy, "
    "or move it aside and run again to start a new one (or use --db)",
    "other": "cannot use {where} ({text}); check the file and its directory, or use --db",
}
