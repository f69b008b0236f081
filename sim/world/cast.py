"""Casting: fill a scene's cast slot with a person from the persona graph, or draft one with Faker.

Invariant: casting is a pure function of (graph, slot, stage, learner, seed, already cast). A drafted
person depends only on (seed, slot), so the same slot in later scenes drafts the same person again and
they recur in the learner's life.
"""

from __future__ import annotations

import functools
import hashlib
import random
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import Field, model_validator

from sim.world.persona_graph import KINSHIP_RELATION, closeness, relations
from sim.world.personas import TRAITS, Age, Kinship, Persona, Pronouns, RelationKind, Relationship, Role, Traits, Voice
from sim.world.stages import Id
from sim.world.yamlio import Spec

if TYPE_CHECKING:
    import networkx as nx
    from faker import Faker

UNRELATED_WEIGHT = 0.05  # a person with no tie to the learner can still be cast, rarely


class TraitRange(Spec):
    """An inclusive range a trait must fall in."""

    min: float = Field(default=0.0, ge=0.0, le=1.0)
    max: float = Field(default=1.0, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _ordered(self) -> TraitRange:
        if self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max} (expected min <= max)")
        return self


class CastSlot(Spec):
    """A part in a scene: which kind of person may play it."""

    slot: Id = Field(description="the name lines use for this person: {grandpa}")
    role: Role
    relation: RelationKind | None = Field(default=None, description="this person's relation to the learner")
    kinship: list[Kinship] = Field(default_factory=list, description="accept only these kinships")
    traits: dict[str, TraitRange] = Field(default_factory=dict, description="e.g. {agreeableness: {min: 0.6}}")
    stranger: bool = Field(default=False, description="someone the learner does not know: always drafted with Faker")

    @model_validator(mode="after")
    def _known_traits(self) -> CastSlot:
        for name in self.traits:
            if name not in TRAITS:
                raise ValueError(f"unknown trait {name!r} in traits (expected one of: {', '.join(TRAITS)})")
        if self.role == "learner":
            raise ValueError("a cast slot cannot be the learner (the learner is always in the scene as 'learner')")
        return self


@dataclass(frozen=True)
class Casting:
    """Who plays a slot, and whether they were drafted because nobody in the graph fit."""

    slot: str
    person: Persona
    generated: bool
    reason: str


def matches(graph: nx.MultiDiGraph, person: Persona, slot: CastSlot, stage: str, learner: str) -> bool:
    """Whether `person` may play `slot` in a scene at `stage` with `learner`."""
    if person.role != slot.role or (person.stages and stage not in person.stages):
        return False
    if slot.relation is not None and slot.relation not in relations(graph, person.id, learner):
        return False
    if slot.kinship and person.kinship not in slot.kinship:
        return False
    return all(r.min <= getattr(person.traits, t) <= r.max for t, r in slot.traits.items())


def cast_slot(
    graph: nx.MultiDiGraph,
    slot: CastSlot,
    *,
    stage: str,
    learner: str,
    seed: int,
    taken: frozenset[str] = frozenset(),
    value_ids: tuple[str, ...] = (),
    scene: str = "",
) -> Casting:
    """Pick the person who plays `slot`: seeded, weighted by closeness to the learner.

    When no one in the graph fits (or the slot asks for a stranger), a person is drafted with Faker,
    deterministic in (seed, slot).
    """
    candidates = (
        [] if slot.stranger else [(p, w) for p, w in _candidates(graph, slot, stage, learner) if p.id not in taken]
    )
    if candidates:
        rng = random.Random(f"cast:{seed}:{scene}:{slot.slot}")
        chosen = rng.choices([p for p, _ in candidates], weights=[w for _, w in candidates], k=1)[0]
        return Casting(slot.slot, chosen, False, f"chosen from {len(candidates)} matching")
    person = draft_person(slot, learner=learner, seed=seed, value_ids=value_ids)
    why = "the slot asks for a stranger" if slot.stranger else "nobody in the persona graph matches"
    return Casting(slot.slot, person, True, f"{why}; drafted with Faker")


_CANDIDATES: weakref.WeakKeyDictionary[nx.MultiDiGraph, dict[tuple[str, str, str], list[tuple[Persona, float]]]]
_CANDIDATES = weakref.WeakKeyDictionary()


def _candidates(graph: nx.MultiDiGraph, slot: CastSlot, stage: str, learner: str) -> list[tuple[Persona, float]]:
    """Everyone who may play `slot`, with their casting weight; cached per graph (graphs are never edited)."""
    cache = _CANDIDATES.setdefault(graph, {})
    key = (_slot_key(slot), stage, learner)
    if key not in cache:
        cache[key] = [
            (p, max(closeness(graph, p.id, learner), UNRELATED_WEIGHT))
            for n, p in sorted(graph.nodes(data="persona"))
            if n != learner and matches(graph, p, slot, stage, learner)
        ]
    return cache[key]


def _slot_key(slot: CastSlot) -> str:
    traits = sorted((k, v.min, v.max) for k, v in slot.traits.items())
    return f"{slot.slot}|{slot.role}|{slot.relation}|{sorted(slot.kinship)}|{traits}"


def draft_person(slot: CastSlot, *, learner: str, seed: int, value_ids: tuple[str, ...] = ()) -> Persona:
    """A plausible person for `slot`, the same for the same (seed, slot)."""
    digest = hashlib.sha256(f"draft:{seed}:{_slot_key(slot)}".encode()).digest()
    rng = random.Random(digest)
    fake = _faker()
    fake.seed_instance(int.from_bytes(digest[:8], "big"))
    pronouns: Pronouns = "she/her" if rng.random() < 0.5 else "he/him"
    first = fake.first_name_female() if pronouns == "she/her" else fake.first_name_male()
    last = fake.last_name()
    kinship = slot.kinship[0] if slot.kinship else None
    relation = slot.relation or (KINSHIP_RELATION.get(kinship) if kinship else None) or _DEFAULT_RELATION[slot.role]
    kinship = kinship or _kinship_for(slot.role, relation, pronouns)
    traits = {t: round(rng.uniform(r.min, r.max), 2) for t, r in slot.traits.items()}
    traits.update({t: round(rng.uniform(0.3, 0.8), 2) for t in TRAITS if t not in traits})
    return Persona(
        id=f"gen-{slot.slot}-{digest.hex()[:6]}",
        name=f"{first} {last}",
        address_as=_address(slot.role, kinship, pronouns, first, last),
        role=slot.role,
        kinship=kinship,
        pronouns=pronouns,
        age=_draft_age(slot.role, relation, rng),
        traits=Traits(**traits),
        values=sorted(rng.sample(list(value_ids), k=min(2, len(value_ids)))),
        voice=Voice.model_validate({"register": rng.choice(_TONES[slot.role])}),
        backstory=f"{first} works as {_article(fake.job().lower())} and lives on {fake.street_name()}.",
        relationships=[Relationship(to=learner, kind=relation, closeness=0.4)],
        generated=True,
    )


@functools.cache
def _faker() -> Faker:
    """One Faker per process (building one is slow); callers reseed it before every use.

    Faker is imported here, when a person is first drafted, so loading scenes (which name cast slots) does not.
    """
    from faker import Faker

    return Faker("en_US")


def _article(noun: str) -> str:
    return f"{'an' if noun[:1] in 'aeiou' else 'a'} {noun}"


_DEFAULT_RELATION: dict[str, RelationKind] = {
    "teacher": "teacher_of",
    "peer": "classmate_of",
    "family": "cousin_of",
    "community": "neighbor_of",
    "learner": "friend_of",
}
_TONES = {
    "teacher": ["patient", "brisk", "encouraging"],
    "peer": ["playful", "shy", "chatty"],
    "family": ["warm", "gentle", "teasing"],
    "community": ["friendly", "matter-of-fact", "kind"],
    "learner": ["curious"],
}


# The kinship word a drafted family member gets for their relation to the learner: (she/her, he/him).
_KINSHIP_FOR: dict[str, tuple[Kinship, Kinship]] = {
    "parent_of": ("mother", "father"),
    "grandparent_of": ("grandmother", "grandfather"),
    "sibling_of": ("sister", "brother"),
    "aunt_uncle_of": ("aunt", "uncle"),
    "cousin_of": ("cousin", "cousin"),
    "guardian_of": ("guardian", "guardian"),
}


def _kinship_for(role: str, relation: str, pronouns: Pronouns) -> Kinship | None:
    """Family need a kinship that agrees with their relation (a cousin for cousin_of); others have none."""
    words = _KINSHIP_FOR.get(relation) if role == "family" else None
    return None if words is None else words[pronouns == "he/him"]


def _address(role: str, kinship: str | None, pronouns: str, first: str, last: str) -> str:
    if role in {"teacher", "community"}:
        return f"{'Ms.' if pronouns == 'she/her' else 'Mr.'} {last}"
    if kinship in {"aunt", "uncle", "cousin"}:
        return f"{kinship.capitalize()} {first}"
    if kinship in {"grandmother", "grandfather", "grandparent"}:
        return {"grandmother": "Grandma", "grandfather": "Grandpa"}.get(kinship, "Grandparent")
    return first


def _draft_age(role: str, relation: str, rng: random.Random) -> Age:
    if role == "peer" or relation in {"classmate_of", "friend_of"}:
        return Age(rng.choice([-1, 0, 0, 1]), relative=True)
    if relation in {"sibling_of", "cousin_of"}:
        return Age(rng.choice([-3, -2, 2, 3, 4]), relative=True)
    if relation == "parent_of":
        return Age(rng.randint(24, 38), relative=True)
    if relation == "grandparent_of":
        return Age(rng.randint(50, 68), relative=True)
    return Age(rng.randint(26, 64), relative=False)
