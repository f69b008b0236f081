"""What a scene's graph holds: the state that grows as the scene is lived, and the context that does not.

Invariant: everything a scene produces is in `SceneState` (the tuples grow through `operator.add`
reducers, so every emitted state is a snapshot no later step changes); `SceneContext` holds only what
the scene is lived from and is never changed.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, TypedDict

from sim.backends.base import Backend
from sim.learner.state import LearnerState, Memory, SceneEffect
from sim.store.rows import LlmCallRow, TurnRow
from sim.world.cast import Casting
from sim.world.curriculum import SceneJob
from sim.world.load import World
from sim.world.personas import Persona
from sim.world.schedule import Slot


@dataclass(frozen=True, slots=True)
class SetUp:
    """What the scene's setup decided: who plays each slot, what the learner recalls, the turns, the opening."""

    started_at: datetime
    castings: tuple[Casting, ...]
    memories: tuple[Memory, ...]
    schedule: tuple[Slot, ...]
    opening: str = ""

    @property
    def cast(self) -> dict[str, Persona]:
        """Slot -> person."""
        return {c.slot: c.person for c in self.castings}


class SceneState(TypedDict, total=False):
    """The graph state: the scene as lived so far. `turns` and `calls` grow through a reducer each.

    Few channels on purpose: LangGraph's cost per step grows with them, and a scene takes one step per turn.
    """

    turn: int  # the next scheduled turn
    setup: SetUp
    turns: Annotated[tuple[TurnRow, ...], operator.add]
    calls: Annotated[tuple[LlmCallRow, ...], operator.add]  # model calls made
    reflection: str
    effect: SceneEffect


@dataclass(frozen=True, slots=True)
class SceneContext:
    """The runtime context of one scene: what it is lived from, unchanged while it is lived."""

    job: SceneJob
    world: World
    life: LearnerState  # the life the scene may remember
    backend: Backend
    learner: Persona


START_STATE: SceneState = {"turn": 0}
"""What every scene's graph is invoked with."""
