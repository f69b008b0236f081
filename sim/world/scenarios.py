"""Scenario packs: `scenarios/<pack>/pack.yaml` holds a pack's metadata and its scenes, in order.

Invariant: a scene's place in its pack is its index in `scenes:`; the curriculum reads that order.
Cross-file checks (stages, values, slots, placeholders, follow-on links) live in `sim.world.checks`,
run by `sim.world.load`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field

from sim.errors import ConfigError, UsageError, display_path
from sim.world.cast import CastSlot
from sim.world.stages import Id
from sim.world.yamlio import Document, Spec, check_id_matches, read_yaml, validate

PACK_FILE = "pack.yaml"
LEARNER = "learner"
LearnerRole = Literal[
    "student",
    "peer",
    "child",
    "sibling",
    "grandchild",
    "niece_nephew",
    "cousin",
    "friend",
    "teammate",
    "neighbor",
    "apprentice",
    "intern",
    "colleague",
    "volunteer",
    "reader",
    "patient",
    "citizen",
]
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


class Setting(Spec):
    """Where and when a scene happens."""

    place: str = Field(min_length=1)
    time: str = Field(min_length=1)
    situation: str = Field(min_length=1)


class Beat(Spec):
    """One step of a scene: who speaks, why, and the ways they may say it."""

    speaker: str = Field(min_length=1, description="a cast slot, or 'learner'")
    intent: str = Field(min_length=1, description="what this beat is for")
    lines: list[str] = Field(min_length=1, description="line variants; placeholders in {braces}")
    to: str | None = Field(default=None, description="who is addressed: a slot or 'learner' (default: learner)")
    exchanges: int = Field(default=1, ge=1, le=20, description="how many exchanges this beat spans")


class Scene(Spec):
    """A scripted social scene the learner lives through."""

    id: Id
    title: str = Field(min_length=1)
    stage: Id
    values: list[Id] = Field(min_length=1)
    setting: Setting
    learner_role: LearnerRole
    cast: list[CastSlot] = Field(default_factory=list)
    objective: str = Field(min_length=1)
    opening: str = Field(min_length=1, description="first-person narration: 'I am {age}. Today ...'")
    beats: list[Beat] = Field(min_length=1)
    reflection: str | None = Field(default=None, description="how 'I' looks back on it, first person")
    turn_limit: int = Field(default=40, ge=2, le=1000)
    follows: list[str] = Field(default_factory=list, description="earlier scenes: 'scene' or 'pack/scene'")


class Pack(Spec):
    """A scenario pack: metadata and its scenes in curriculum order."""

    id: Id
    title: str = Field(min_length=1)
    description: str = Field(min_length=1)
    version: str = Field(pattern=r"^\d+(\.\d+){0,2}$", description="e.g. 1.0.0")
    scenes: list[Scene] = Field(min_length=1)


def pack_file(path: Path) -> Path:
    """The pack.yaml of a pack directory (or the file itself)."""
    return path if path.is_file() else path / PACK_FILE


def find_packs(root: Path) -> list[Path]:
    """Every pack directory below `root`, sorted."""
    return sorted(p.parent for p in root.glob(f"*/{PACK_FILE}"))


@dataclass(frozen=True)
class PackChoice:
    """The pack directories a command line names, in the order named, and the arguments that name none."""

    packs: list[Path]
    skipped: list[str]


def resolve_packs(names: Sequence[str], root: Path) -> PackChoice:
    """Turn pack names from a command line into pack directories; every command that names packs uses this.

    A name is a pack directory (`scenarios/first-steps`, with or without a trailing slash, or its pack.yaml),
    a directory of packs (`scenarios/`: every pack under it, sorted), or a pack id under `root` (`first-steps`).
    An existing file or a directory with no pack in it is skipped, since a shell glob such as `scenarios/*`
    picks up READMEs; a directory named twice is loaded once.

    Raises:
        UsageError: a name that is neither an existing path nor a pack id, or no name that holds a pack.
    """
    packs: list[Path] = []
    skipped: list[str] = []
    seen: set[Path] = set()
    for name in names:
        found = _resolve(name, root)
        if found is None:
            skipped.append(name)
        for pack in found or []:
            if pack.resolve() not in seen:
                seen.add(pack.resolve())
                packs.append(pack)
    if names and not packs:
        raise UsageError(f"no pack in {', '.join(skipped)} (a pack is a directory holding {PACK_FILE}; {_known(root)})")
    return PackChoice(packs, skipped)


def _resolve(name: str, root: Path) -> list[Path] | None:
    """The packs one name stands for; `None` when it is a path that holds no pack."""
    path = Path(name)
    if path.name == PACK_FILE and path.is_file():
        return [path.parent]
    if path.is_dir():
        return [path] if (path / PACK_FILE).is_file() else find_packs(path) or None
    if path.exists():
        return None
    stem = name.rstrip("/")
    if stem and "/" not in stem and (root / stem / PACK_FILE).is_file():
        return [root / stem]
    close = difflib.get_close_matches(path.name, [p.name for p in find_packs(root)], 1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise UsageError(f"no pack {name!r} ({hint}{_known(root)}; name a pack by its id or its directory)")


def split_scene_target(target: str, root: Path) -> tuple[str, str]:
    """`PACK` or `PACK/SCENE`, PACK a path or an id, as (the pack's name, the scene id or '')."""
    if Path(target).exists():
        return target, ""
    pack, _, scene = target.rstrip("/").rpartition("/")
    named = (Path(pack) / PACK_FILE).is_file() or ("/" not in pack and (root / pack / PACK_FILE).is_file())
    return (pack, scene) if pack and named else (target, "")


def _known(root: Path) -> str:
    ids = [p.name for p in find_packs(root)]
    return f"known packs in {root}: {', '.join(ids)}" if ids else f"no packs in {root}"


def load_pack(path: Path) -> Document[Pack]:
    """Load a pack directory's pack.yaml; its id defaults to (and must match) the directory name."""
    file = pack_file(path)
    if not file.exists():
        where = display_path(path)
        raise ConfigError.single(
            where,
            0,
            "(top level)",
            f"no {PACK_FILE} here (a pack is a directory holding {PACK_FILE}; see scenarios/README.md)",
        )
    stem = file.parent.name
    shown, tree = display_path(file), read_yaml(file)
    check_id_matches(tree, shown, stem, "directory name")
    defaults = {"id": stem} if _ID.match(stem) else {}
    return Document(validate(Pack, tree, shown, defaults=defaults), shown, tree)
