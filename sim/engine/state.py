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

from sim.backends.base import Backend, Line
from sim.learner.state import LearnerState, Memory, SceneEffect
from sim.store.rows import LlmCallRow, TurnRow
from sim.world.cast import Casting
from sim.world.curriculum import SceneJob
from sim.world.load import World
from sim.world.personas import Persona
from sim.world.schedule import Slot


class SceneState(TypedDict, total=False):
    """The graph state: the scene as lived so far. `turns`, `lines` and `calls` grow by one reducer each."""

    turn: int  # the next scheduled turn
    started_at: datetime
    castings: tuple[Casting, ...]
    memories: tuple[Memory, ...]
    schedule: tuple[Slot, ...]
    opening: str
    turns: Annotated[tuple[TurnRow, ...], operator.add]
    lines: Annotated[tuple[Line, ...], operator.add]  # the scene so far, as backends see it
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
