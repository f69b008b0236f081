"""A life line: one variation of the learner's life, started once, and the life each of its scenes may see.

Invariants:
- A line is started only by `LifeLine.start`: the learner's initial state from the persona graph, and
  the effects stored by earlier runs.
- A scene sees only the life it may remember: every scene of the earlier stages, plus its own
  follow-on chain in its stage (`LifeLine.view`). That view does not depend on what else runs, in
  which order, or how many at once, which is what keeps the corpus deterministic under any schedule.
"""

from __future__ import annotations

from collections.abc import Sequence

from sim.learner.state import LearnerState, SceneEffect, apply, initial_state
from sim.world.curriculum import SceneJob
from sim.world.load import World


class LifeLine:
    """One life line: the stored effects it may draw on, and the views scenes see."""

    def __init__(self, start: LearnerState, stored: list[SceneEffect]) -> None:
        self._start = start
        self._effects = sorted(stored, key=lambda e: e.memory.order)
        self._base = start
        self._base_rank = -1
        self._folded = 0

    @classmethod
    def start(cls, world: World, jobs: Sequence[SceneJob], stored: Sequence[str]) -> LifeLine:
        """The life line `jobs` belong to (one learner, one variation), with the effects stored for it (JSON)."""
        learner = world.personas[jobs[0].learner]
        effects = [SceneEffect.model_validate_json(raw) for raw in stored]
        return cls(initial_state(learner, world.graph, jobs[0].variation), effects)

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
