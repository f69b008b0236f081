"""The persistent learner "I": an explicit, serialisable life with pure updates.

Invariant: a `LearnerState` is never mutated. `apply(state, effect)` returns the next state, so the
state a scene sees is a fold of earlier scenes' effects in curriculum order, and the same effects
always give the same life, whether scenes ran serially, concurrently or on other machines.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from sim.world.persona_graph import closeness
from sim.world.personas import Persona

if TYPE_CHECKING:
    import networkx as nx

BOND_STEP = 0.04  # how much closer a shared scene brings two people
VALUE_STEP = 0.3  # how much one scene strengthens a value (strength -> 1 as scenes accumulate)


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Memory(_Value):
    """Something "I" lived: what happened, with whom, what I felt and learned, and the scene it came from."""

    scene_key: str
    pack: str
    scene: str
    variation: int
    stage: str
    stage_rank: int
    order: tuple[int, int, int, int, str, int, int] = Field(description="the scene's curriculum position")
    age: int
    title: str
    place: str
    people: tuple[str, ...] = Field(description="ids of the people who were there")
    names: tuple[str, ...] = Field(description="how I know them: 'Grandpa'")
    values: tuple[str, ...]
    summary: str = Field(description="first person: 'Grandpa told me, \"...\"'")
    felt: str
    learned: str


class Bond(_Value):
    """My relationship with one person: how close, and how many scenes we shared."""

    closeness: float = Field(ge=0.0, le=1.0)
    scenes: int = 0


class HeldValue(_Value):
    """A value I have come to hold, and the scenes that taught it."""

    strength: float = Field(ge=0.0, le=1.0)
    taught_by: tuple[str, ...] = ()


class SceneEffect(_Value):
    """What one scene changes in a life."""

    memory: Memory
    bonds: dict[str, float] = Field(description="person id -> closeness after the scene")
    values: tuple[str, ...]


class LearnerState(_Value):
    """The learner's life as of some point: age, stage, memories, bonds and values."""

    learner: str
    name: str
    variation: int = 0
    age: int | None = None
    stage: str | None = None
    memories: tuple[Memory, ...] = ()
    bonds: dict[str, Bond] = Field(default_factory=dict)
    values: dict[str, HeldValue] = Field(default_factory=dict)


def initial_state(learner: Persona, graph: nx.MultiDiGraph, variation: int = 0) -> LearnerState:
    """A life before any scene: bonds as the persona graph declares them."""
    bonds = {
        other: Bond(closeness=closeness(graph, other, learner.id))
        for other in sorted(graph.predecessors(learner.id))
        if other != learner.id
    }
    return LearnerState(learner=learner.id, name=learner.first_name, variation=variation, bonds=bonds)


def apply(state: LearnerState, effect: SceneEffect) -> LearnerState:
    """The life after one more scene (pure)."""
    memory = effect.memory
    bonds = dict(state.bonds)
    for person, after in effect.bonds.items():
        before = bonds.get(person, Bond(closeness=0.0))
        bonds[person] = Bond(closeness=after, scenes=before.scenes + 1)
    values = dict(state.values)
    ref = f"{memory.pack}/{memory.scene}"
    for value in effect.values:
        held = values.get(value, HeldValue(strength=0.0))
        strength = round(held.strength + (1.0 - held.strength) * VALUE_STEP, 4)
        values[value] = HeldValue(strength=strength, taught_by=(*held.taught_by, ref))
    return state.model_copy(
        update={
            "age": memory.age,
            "stage": memory.stage,
            "memories": (*state.memories, memory),
            "bonds": dict(sorted(bonds.items())),
            "values": dict(sorted(values.items())),
        }
    )


def fold(state: LearnerState, effects: Iterable[SceneEffect]) -> LearnerState:
    """Apply effects in curriculum order."""
    for effect in sorted(effects, key=lambda e: e.memory.order):
        state = apply(state, effect)
    return state


def bond_after(state: LearnerState, person: str, initial: float, warmth: float = 1.0) -> float:
    """Closeness to `person` after sharing one more scene with them."""
    before = state.bonds[person].closeness if person in state.bonds else initial
    return round(min(1.0, before + BOND_STEP * warmth * (1.0 - before) * 2), 4)


def recall(
    state: LearnerState, people: Iterable[str], values: Iterable[str], follows: Mapping[str, str], limit: int = 2
) -> list[Memory]:
    """The memories that bear most on a scene: those it follows on from, then shared people and values.

    `follows` maps the "pack/scene" refs the scene follows on from. Only memories already in `state`
    are candidates; the caller guarantees `state` holds nothing later in the life than the scene.
    """
    who, what = set(people), set(values)

    def score(m: Memory) -> tuple[int, tuple[int, int, int, int, str, int, int]]:
        linked = 100 if f"{m.pack}/{m.scene}" in follows else 0
        return linked + 3 * len(who & set(m.people)) + 2 * len(what & set(m.values)), m.order

    ranked = sorted(state.memories, key=score, reverse=True)
    return [m for m in ranked if score(m)[0] > 0][:limit]
