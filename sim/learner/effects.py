"""What a finished scene changes in the learner's life: a memory, closer bonds, strengthened values.

Invariant: `scene_effect` is a pure function of plain values (the job, the life the scene saw, who was
cast, what was said), so the same scene gives the same effect wherever and whenever it was lived.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

from sim.learner.state import LearnerState, Memory, SceneEffect, bond_after
from sim.world.curriculum import SceneJob
from sim.world.personas import Persona

FIRST_MEETING = 0.3
"""How close the learner starts out to someone met for the first time who declares no tie."""


class Said(Protocol):
    """A spoken line, as the effect reads it (a `turns` row is one)."""

    @property
    def turn_index(self) -> int:
        """Order in the scene."""

    @property
    def speaker_id(self) -> str:
        """Who spoke."""

    @property
    def speaker_label(self) -> str:
        """How the learner knows the speaker."""

    @property
    def text(self) -> str:
        """What was said."""


def scene_effect(
    job: SceneJob, life: LearnerState, cast: Sequence[Persona], turns: Sequence[Said], feeling: str
) -> SceneEffect:
    """What the scene of `job` changes in `life`: `cast` were there, `turns` were said, `feeling` is how it felt."""
    scene = job.scene
    spoke = {t.speaker_id for t in turns}
    bonds = {
        p.id: bond_after(life, p.id, initial_closeness(p, job.learner), 1.0 if p.id in spoke else 0.5) for p in cast
    }
    memory = Memory(
        scene_key=job.key,
        pack=job.pack,
        scene=scene.id,
        variation=job.variation,
        stage=scene.stage,
        stage_rank=job.stage_rank,
        order=job.order,
        age=life.age or 0,
        title=scene.title,
        place=scene.setting.place,
        people=tuple(p.id for p in cast),
        names=tuple(p.known_as for p in cast),
        values=tuple(scene.values),
        summary=summary(job, turns),
        felt=feeling,
        learned=scene.objective,
    )
    return SceneEffect(memory=memory, bonds=bonds, values=tuple(scene.values))


def initial_closeness(person: Persona, learner: str) -> float:
    """How close the learner starts out to someone met for the first time: their declared tie, if any."""
    ties = [r.closeness for r in person.relationships if r.to == learner]
    return max(ties, default=FIRST_MEETING)


def summary(job: SceneJob, turns: Sequence[Said]) -> str:
    """What "I" remembers: the weightiest sentence someone else said, quoted."""
    said = [t for t in turns if t.speaker_id != job.learner]
    if not said:
        return f"{job.scene.title.lower()} at {job.scene.setting.place}"
    best = max(said, key=lambda t: (len(t.text), -t.turn_index))
    return f"{best.speaker_label} told me, \u201c{key_sentence(best.text)}\u201d"


def key_sentence(text: str) -> str:
    """The longest sentence of a line (the one that carries its point)."""
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()]
    return max(sentences, key=len) if sentences else text
