"""One stored scene as the per-scene measures see it (`SceneText`), and the row of figures they give (`SceneMeasures`).

Invariant: a `SceneText` holds only what the database stores for a scene (its text, turns, cast and the
people's personas, the scenes it recalls) and the stage's language targets; the measures are pure
functions of it, so the same scene always measures the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sim.store.rows import SceneMeasures

__all__ = ["VERSION", "Line", "Person", "Recalled", "SceneMeasures", "SceneText", "StageTargets"]

VERSION = 3
"""The measures' version: raise it when a measure changes, and `sim check` measures every scene again."""


@dataclass(frozen=True, slots=True)
class Line:
    """One spoken turn: the label it is written under (`I` for the learner), who spoke, and what was said."""

    label: str
    speaker_id: str
    learner: bool
    text: str


@dataclass(frozen=True, slots=True)
class Person:
    """A cast member as the measures need them: names they go by and their pronouns ("she/her")."""

    person_id: str
    name: str  # full name, "Inês Hale"
    address_as: str  # what the learner calls them, "Grandma"
    pronouns: str  # "she/her", "he/him", "they/them"


@dataclass(frozen=True, slots=True)
class Recalled:
    """An earlier scene this one recalls: who was in it and which values it was about."""

    scene_key: str
    people: frozenset[str]
    values: frozenset[str]


@dataclass(frozen=True, slots=True)
class StageTargets:
    """The stage's language targets (`sim/data/stages.yaml`): the learner's words per turn, the reading grade band."""

    max_words_per_turn: int
    reading_grade: tuple[float, float]


@dataclass(frozen=True, slots=True)
class SceneText:
    """A stored scene, whole: what every per-scene measure reads."""

    scene_key: str
    stage: str
    stage_rank: int
    age: int
    pack: str
    scene: str
    variation: int
    backend: str
    learner: Person
    opening: str
    reflection: str
    lines: tuple[Line, ...]
    cast: tuple[Person, ...]  # everyone else in the scene
    values: tuple[str, ...]
    recalled: tuple[Recalled, ...]
    targets: StageTargets
    people_here: frozenset[str] = field(default_factory=frozenset)  # the learner and the cast, by id
    text: str = ""  # the training text as exported (scripted style): what near twins are found in
