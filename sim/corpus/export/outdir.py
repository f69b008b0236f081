"""The output directory: whether an export may go there, and which of its files are the export's own.

Invariants: nothing is written outside the output directory (every name is a plain generated name,
checked against the resolved directory); an export replaces or removes only files an earlier export
wrote: the shards its manifest (or an interrupted publish's journal) lists, a `README.md` that carries
`CARD_MARKER` and an `export.json` of kind `MANIFEST_KIND`. A `README.md` or `export.json` without
the mark, or a file of someone else's under a shard name this export will write, stops the export,
with `--overwrite` or not; anything else of someone else's is left alone.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sim.corpus.export.shards import SHARD_NAME
from sim.errors import UsageError, display_path

MANIFEST = "export.json"
CARD = "README.md"
SCRATCH = ".sim-export-tmp"
"""Scratch directory inside the output: the new export is written here, then renamed into place."""
JOURNAL = "publishing.json"
"""In the scratch directory while an export is being published: every shard name the export owns."""

MANIFEST_KIND = "raising-sim export"
CARD_MARKER = "<!-- written by `sim export` (raising-sim): the next export into this directory replaces this file -->"
"""A line of every dataset card: a README.md without it was not written by an export and is never replaced."""
_CARD_HEAD = 4096  # the marker comes right after the Hub front matter


def check(out: Path, parameters: Mapping[str, Any], overwrite: bool) -> tuple[str, ...]:
    """Check that this export may be written to `out`; returns the shard names earlier exports left there.

    Raises:
        UsageError: `out` is or lies below a file; it holds a README.md or export.json that no export
            wrote; or it holds a different export or other files and `overwrite` is off.
    """
    _check_place(out)
    if not out.is_dir():
        return ()
    manifest = read_manifest(out)
    _refuse_foreign(out, _foreign_card_or_manifest(out, manifest))
    owned = sorted({*(manifest["files"] if manifest else ()), *_journal(out)})
    ours = {*owned, SCRATCH, MANIFEST, CARD}
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
    return tuple(owned)


def claim(out: Path, owned: Iterable[str], names: Iterable[str]) -> None:
    """Check that no file of someone else's sits under a name this export will write.

    Raises:
        UsageError: a shard name to be written is taken by a file no earlier export listed.
    """
    mine = set(owned)
    taken = [out / n for n in names if n not in mine and os.path.lexists(out / n)]
    _refuse_foreign(out, [(p, "no manifest of an export lists it") for p in taken])


def _check_place(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {display_path(out)} is a file; choose a directory")
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UsageError(
                    f"--out {display_path(out)}: {display_path(parent)} is a file, not a directory; "
                    "choose another --out"
                )
            return


def _foreign_card_or_manifest(out: Path, manifest: dict[str, Any] | None) -> list[tuple[Path, str]]:
    found = []
    if os.path.lexists(out / CARD) and not is_card(out / CARD):
        found.append((out / CARD, "it lacks the marker line of an export's dataset card"))
    if os.path.lexists(out / MANIFEST) and manifest is None:
        found.append((out / MANIFEST, f'it is not a manifest of "kind": "{MANIFEST_KIND}"'))
    return found


def _refuse_foreign(out: Path, found: list[tuple[Path, str]]) -> None:
    if not found:
        return
    if len(found) == 1:
        what = f"{display_path(found[0][0])} was not written by sim export ({found[0][1]})"
    else:
        what = " and ".join(f"{display_path(p)} ({why})" for p, why in found) + " were not written by sim export"
    raise UsageError(
        f"refusing to export into {display_path(out)}: {what}, and an export never replaces a file it did not "
        f"write, with --overwrite or not; move {'it' if len(found) == 1 else 'them'} elsewhere, "
        "or choose another --out"
    )


def is_card(path: Path) -> bool:
    """Whether `path` is a dataset card an export wrote (it carries `CARD_MARKER` near its top)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(_CARD_HEAD).decode("utf-8", errors="replace")
    except OSError:
        return False
    return CARD_MARKER in head.splitlines()


def read_manifest(out: Path) -> dict[str, Any] | None:
    """The previous export's manifest, with only plain shard names in `files`; None if there is none of ours."""
    data = _read_json(out / MANIFEST)
    if data is None:
        return None
    data["files"] = _shard_names(f.get("name") for f in data["files"] if isinstance(f, dict))
    return data


def _journal(out: Path) -> list[str]:
    """The shard names an interrupted publish had claimed (none when the last export finished)."""
    data = _read_json(out / SCRATCH / JOURNAL)
    return _shard_names(data["files"]) if data else []


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("kind") != MANIFEST_KIND or not isinstance(data.get("files"), list):
        return None
    return data


def _shard_names(names: Iterable[object]) -> list[str]:
    return [n for n in names if isinstance(n, str) and SHARD_NAME.fullmatch(n)]


def _differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    keys = sorted({*old, *new}, key=lambda k: (k not in new, k))
    changed = [k for k in keys if old.get(k) != new.get(k)]
    return "; ".join(f"{k} {json.dumps(old.get(k))}, not {json.dumps(new.get(k))}" for k in changed)


def target(out: Path, name: str) -> Path:
    """`out / name`, after checking that the name is plain and the file lands directly in `out`.

    Raises:
        ValueError: the name would reach outside `out` (a bug: every name written is generated).
    """
    path = out / name
    if name in {"", ".", ".."} or Path(name).name != name or path.parent.resolve() != out.resolve():
        raise ValueError(f"refusing to write {name!r} outside {out}")
    return path
