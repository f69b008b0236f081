"""Scenario packs: `scenarios/<pack>/pack.yaml` holds a pack's metadata and its scenes, in order.

Invariant: a scene's place in its pack is its index in `scenes:`; the curriculum reads that order.
Cross-file checks (stages, values, slots, placeholders, follow-on links) live in `sim.world`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field

from sim.cast import CastSlot
from sim.errors import ConfigError, display_path
from sim.stages import Id
from sim.yamlio import Document, Spec, check_id_matches, read_yaml, validate

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
