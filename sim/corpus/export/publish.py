"""Publishing an export: write every file in a scratch directory, then rename them into place in order.

Invariants: every file of a new export is written and fsynced in the scratch directory inside the
output (`outdir.SCRATCH`, so the renames stay within one file system) before any final name changes, so
a failure or a kill while writing leaves the previous export, or nothing, as it was. Publishing then
withdraws the previous manifest and card, removes the previous shards this export does not replace,
renames the new shards into place, then the card, and the manifest last: a manifest or card under its
final name only ever lists shards that are in place with the bytes it records. Until the manifest is
in place a journal in the scratch directory names every shard the export owns, so the next export
finishes an interrupted one. A file-system fault (disk full, read-only, no permission) is one
`OutputError` that says where, what to do, and what state the output was left in.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from sim.corpus.export.outdir import CARD, JOURNAL, MANIFEST, MANIFEST_KIND, SCRATCH, target
from sim.errors import SimError, display_path
from sim.store.db import fsync_file


class OutputError(SimError):
    """The output directory could not be written (disk full, read-only, no permission); exit status 1."""


_SPACE = "free some space there, or choose another --out"
_ACCESS = "choose another --out, or get write permission there"
_FAULTS = {
    errno.ENOSPC: ("no space left on the device", _SPACE),
    errno.EDQUOT: ("disk quota exceeded", _SPACE),
    errno.EROFS: ("read-only file system", "choose another --out, or mount it read-write"),
    errno.EACCES: ("permission denied", _ACCESS),
    errno.EPERM: ("operation not permitted", _ACCESS),
}


@contextmanager
def reporting(out: Path) -> Iterator[None]:
    """Turn a file-system error while exporting to `out` into one `OutputError` line."""
    try:
        yield
    except OSError as exc:
        raise OutputError(_describe(exc, out)) from None


def _describe(exc: OSError, out: Path) -> str:
    where = display_path(out)
    fault = _FAULTS.get(exc.errno or 0)
    what, fix = fault or (
        os.strerror(exc.errno).lower() if exc.errno else str(exc),
        "check the disk and the path, or choose another --out",
    )
    at = f" at {display_path(exc.filename)}" if exc.filename else ""
    state = (
        f"{where} holds an unfinished export (no export.json): run the same command again once this is fixed"
        if (out / SCRATCH / JOURNAL).exists()
        else "Nothing in --out was changed"
    )
    return f"cannot export to {where}: {what}{at}; {fix}. {state}"


def missing_dirs(out: Path) -> list[Path]:
    """The directories an export into `out` will create, deepest first (removed again if left empty)."""
    return [p for p in (out, *out.parents) if not p.exists()]


def scratch(out: Path) -> Path:
    """Create `out` and an empty scratch directory inside it (what a killed export left there is removed)."""
    out.mkdir(parents=True, exist_ok=True)
    work = target(out, SCRATCH)
    if work.is_symlink() or work.is_file():
        work.unlink()
    _empty(work)
    work.mkdir(exist_ok=True)
    return work


def clean(out: Path, made: Iterable[Path] = ()) -> None:
    """Remove the scratch directory, but not the journal of an unfinished publish; then the empty `made` dirs."""
    work = out / SCRATCH
    _empty(work)
    for path in (work, *made):
        with suppress(OSError):  # a cleanup that fails must not hide why the export stopped
            if path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
                path.rmdir()


def _empty(work: Path) -> None:
    entries: list[Path] = []
    with suppress(OSError):
        if work.is_dir() and not work.is_symlink():
            entries = list(work.iterdir())
    for entry in entries:
        if entry.name == JOURNAL:
            continue  # the record of which files are ours stays until an export is in place again
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with suppress(OSError):
                entry.unlink()


sync = fsync_file
"""Flush a written file to disk, so that a rename cannot publish it before its bytes."""


def _sync_dir(path: Path) -> None:
    """Flush a directory's entries, so that the renames reach the disk in the order they were made."""
    try:
        sync(path)
    except OSError as exc:
        if exc.errno != errno.EINVAL:  # a file system that cannot fsync a directory
            raise


def publish(out: Path, owned: Iterable[str], shards: Iterable[str], manifest: str, card: str) -> None:
    """Move the finished shards into place, then the card, then the manifest that lists them.

    `owned` are the shards earlier exports left in `out`: those this export does not replace are removed.
    """
    work, names = out / SCRATCH, list(shards)
    _stage(work, CARD, card)
    _stage(work, MANIFEST, manifest)
    _stage(work, JOURNAL, json.dumps({"kind": MANIFEST_KIND, "files": sorted({*owned, *names})}) + "\n")
    _sync_dir(work)
    for name in (MANIFEST, CARD, *sorted(set(owned) - set(names))):  # from here the directory claims no export
        _remove(target(out, name))
    _sync_dir(out)
    for name in names:
        _rename(target(work, name), target(out, name))
    _sync_dir(out)
    _rename(target(work, CARD), target(out, CARD))
    _rename(target(work, MANIFEST), target(out, MANIFEST))
    _sync_dir(out)
    _remove(target(work, JOURNAL))


def _stage(work: Path, name: str, text: str) -> None:
    staged = target(work, f"{name}.part")
    staged.write_text(text, encoding="utf-8", newline="\n")
    sync(staged)
    os.replace(staged, target(work, name))


def _rename(source: Path, destination: Path) -> None:
    os.replace(source, destination)


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
