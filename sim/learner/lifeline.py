"""A life line (one variation of the learner's life) and the rows a finished scene is stored as.

Invariant: a scene sees only the life it may remember: every scene of the earlier stages, plus its
own follow-on chain in its stage (`LifeLine.view`). That view does not depend on what else runs, in
which order, or how many at once, which is what keeps the corpus deterministic under any schedule.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sim.corpus.rendering import dialogue, learner_words
from sim.engine.graph import SceneRun
from sim.learner.state import LearnerState, SceneEffect, apply
from sim.store.trajectories import SceneRecord
from sim.world.curriculum import SceneJob


class LifeLine:
    """One life line: the stored effects it may draw on, and the views scenes see."""

    def __init__(self, start: LearnerState, stored: list[SceneEffect]) -> None:
        self._start = start
        self._effects = sorted(stored, key=lambda e: e.memory.order)
        self._base = start
        self._base_rank = -1
        self._folded = 0

    def view(self, job: SceneJob) -> LearnerState:
        """The life as `job` may see it: all earlier stages, plus its own follow-on chain in its stage."""
        if job.stage_rank < self._base_rank:
            self._base, self._base_rank, self._folded = self._start, -1, 0
        while self._folded < len(self._effects) and self._effects[self._folded].memory.stage_rank < job.stage_rank:
            self._base = apply(self._base, self._effects[self._folded])
            self._folded += 1
        self._base_rank = job.stage_rank
        life = self._base
        for effect in self._effects[self._folded :]:
            memory = effect.memory
            if memory.stage_rank == job.stage_rank and f"{memory.pack}/{memory.scene}" in job.ancestors:
                life = apply(life, effect)
        stage = job.scene.stage
        return life.model_copy(update={"age": job.age, "stage": stage})

    def add(self, effect: SceneEffect | None) -> None:
        """A scene of this line finished: later scenes may remember it."""
        if effect is None:
            return
        index = next((i for i, e in enumerate(self._effects) if e.memory.order > effect.memory.order), None)
        if index is None:
            self._effects.append(effect)
        else:
            self._effects.insert(index, effect)
            if index < self._folded:
                self._base, self._base_rank, self._folded = self._start, -1, 0


def record(scene: SceneRun) -> SceneRecord:
    """The rows stored for a finished scene."""
    job, effect = scene.job, scene.effect
    if effect is None:
        raise ValueError(f"scene {job.ref} finished without updating the learner")
    spoken = learner_words(scene.turns)
    row: dict[str, Any] = {
        "scene_key": job.key,
        "learner": job.learner,
        "pack": job.pack,
        "pack_version": job.pack_version,
        "scene": job.scene.id,
        "variation": job.variation,
        "seed": job.seed,
        "stage": job.scene.stage,
        "stage_rank": job.stage_rank,
        "depth": job.depth,
        "position": job.position,
        "age": job.age,
        "title": job.scene.title,
        "values": list(job.scene.values),
        "learner_role": job.scene.learner_role,
        "setting": job.scene.setting.model_dump_json(),
        "cast": json.dumps(scene_cast(scene)),
        "opening": scene.opening,
        "reflection": scene.reflection,
        "memories_recalled": [m.scene_key for m in scene.memories],
        "dialogue": dialogue(scene.turns),
        "learner_words": spoken[0],
        "learner_turns": spoken[1],
        "turn_count": len(scene.turns),
        "repairs": sum(t.repairs for t in scene.turns),
        "status": "done",
        "backend": scene.backend.name,
        "model": scene.backend.model,
        "started_at": scene.started_at,
        "finished_at": datetime.now(UTC).replace(tzinfo=None),
        "effect": effect.model_dump_json(),
    }
    people = [c.person for c in scene.castings] + [scene.learner]
    return SceneRecord.build(row, scene.turns, people, apply(scene.life, effect), scene.calls)


def scene_cast(scene: SceneRun) -> dict[str, str]:
    """Slot -> person id."""
    return {c.slot: c.person.id for c in scene.castings}
