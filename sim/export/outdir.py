"""The output directory: whether an export may go there, scratch space, and publishing the files.

Invariants: nothing is written outside the output directory (every name is a plain generated name,
checked against the resolved directory); a shard is written under a scratch name and renamed to its
final name only when complete; a directory holding a different export or other files is refused
unless `--overwrite`, and then only the files the previous manifest lists (plus `README.md` and
`export.json`) are replaced or removed, never anything else.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sim.errors import UsageError, display_path
from sim.export.shards import SHARD_NAME

MANIFEST = "export.json"
CARD = "README.md"
SCRATCH = ".sim-export-tmp"
"""Scratch directory inside the output: shards being written and DuckDB's spill files; removed at the end."""

MANIFEST_KIND = "raising-sim export"


def check(out: Path, parameters: Mapping[str, Any], overwrite: bool) -> tuple[str, ...]:
    """Check that this export may be written to `out`; returns the previous export's shard names.

    Raises:
        UsageError: `out` is a file, or holds a different export or other files and `overwrite` is off.
    """
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {display_path(out)} is a file; choose a directory")
    if not out.is_dir():
        return ()
    manifest = read_manifest(out)
    listed = tuple(manifest["files"]) if manifest else ()
    ours = {*listed, SCRATCH, *((MANIFEST, CARD) if manifest else ())}
    others = sorted(entry.name for entry in out.iterdir() if entry.name not in ours)
    reason = ""
    if manifest and manifest["parameters"] != dict(parameters):
        reason = f"a different export ({_differences(manifest['parameters'], parameters)})"
    elif others:
        more = f" and {len(others) - 3} more" if len(others) > 3 else ""
        reason = f"files that are not from this export ({', '.join(others[:3])}{more})"
    if reason and not overwrite:
        raise UsageError(
            f"refusing to export into {display_path(out)}: it already holds {reason}; "
            "use --overwrite to replace the export, or choose another --out"
        )
    return listed


def read_manifest(out: Path) -> dict[str, Any] | None:
    """The previous export's manifest, with only plain shard names in `files`; None if there is none of ours."""
    try:
        data = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("kind") != MANIFEST_KIND or not isinstance(data.get("files"), list):
        return None
    names = [f.get("name") for f in data["files"] if isinstance(f, dict)]
    data["files"] = [n for n in names if isinstance(n, str) and SHARD_NAME.fullmatch(n)]
    return data


def _differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    keys = sorted({*old, *new}, key=lambda k: (k not in new, k))
    changed = [k for k in keys if old.get(k) != new.get(k)]
    return "; ".join(f"{k} {json.dumps(old.get(k))}, not {json.dumps(new.get(k))}" for k in changed)


def scratch(out: Path) -> Path:
    """Create `out` and an empty scratch directory inside it (a killed export's leftovers are removed)."""
    out.mkdir(parents=True, exist_ok=True)
    path = target(out, SCRATCH)
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)
    path.mkdir()
    return path


def clean(out: Path) -> None:
    """Remove the scratch directory (after success, or after a failure)."""
    path = out / SCRATCH
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)


def target(out: Path, name: str) -> Path:
    """`out / name`, after checking that the name is plain and the file lands directly in `out`.

    Raises:
        ValueError: the name would reach outside `out` (a bug: every name written is generated).
    """
    path = out / name
    if name in {"", ".", ".."} or Path(name).name != name or path.parent.resolve() != out.resolve():
        raise ValueError(f"refusing to write {name!r} outside {out}")
    return path


def publish(out: Path, previous: Iterable[str], shards: Iterable[str], manifest: str, card: str) -> None:
    """Move the finished shards into place, after the manifest that lists them, then write the card.

    Files of the previous export that this one does not replace are removed first, so the directory
    never lists a file it does not hold for long; the manifest goes in before the shards are renamed,
    so a kill at any moment leaves a directory that the same export may be written to again.
    """
    names = list(shards)
    for name in sorted(set(previous) - set(names)):
        target(out, name).unlink(missing_ok=True)
    _replace(out, MANIFEST, manifest)
    for name in names:
        os.replace(target(out / SCRATCH, name), target(out, name))
    _replace(out, CARD, card)


def _replace(out: Path, name: str, text: str) -> None:
    staged = target(out / SCRATCH, name)
    staged.write_text(text, encoding="utf-8", newline="\n")
    os.replace(staged, target(out, name))
