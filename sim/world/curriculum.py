"""Curriculum order: which scenes a run lives, in which order, and which earlier scenes each may remember.

Invariant: a scene's order key is `(stage rank, age, follow-on depth, place in pack, pack, variation, seed)`,
a pure function of the scene and the world, so the order is the same whatever else is in a run.
An epoch is one stage: scenes of an epoch see the life as of the epoch's start plus their own
follow-on chain, so they can run at the same time and still give the same result.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from sim.world.load import World
from sim.world.scenarios import Pack, Scene

OrderKey = tuple[int, int, int, int, str, int, int]
ScenesByRef = dict[str, tuple[Pack, int, Scene]]


@dataclass(frozen=True)
class SceneJob:
    """One scene to live: (learner, pack, scene, variation, seed) identifies it."""

    learner: str
    pack: str
    pack_version: str
    scene: Scene
    position: int
    variation: int
    seed: int
    stage_rank: int
    age: int
    depth: int
    ancestors: frozenset[str]  # "pack/scene" refs this scene follows on from, directly or not, in its stage

    @cached_property
    def key(self) -> str:
        """A stable id for this scene of this life: the idempotency key."""
        raw = f"{self.learner}|{self.pack}|{self.scene.id}|{self.variation}|{self.seed}"
        return hashlib.sha256(raw.encode()).hexdigest()[:20]

    @property
    def ref(self) -> str:
        """`pack/scene`."""
        return f"{self.pack}/{self.scene.id}"

    @property
    def order(self) -> OrderKey:
        """The curriculum order key."""
        return (self.stage_rank, self.age, self.depth, self.position, self.pack, self.variation, self.seed)


def age_in_scene(world: World, scenes: Sequence[Scene], position: int) -> int:
    """The learner's age: the stage's age band spread over the pack's scenes of that stage, in order."""
    stage = scenes[position].stage
    same = [i for i, s in enumerate(scenes) if s.stage == stage]
    low, high = world.stages.by_id[stage].ages
    return low + (same.index(position) * (high - low + 1)) // len(same)


def _age(world: World, scenes: ScenesByRef, ref: str) -> int:
    pack, position, _ = scenes[ref]
    return age_in_scene(world, pack.scenes, position)


def resolve(pack: str, link: str) -> str:
    """A follows link as `pack/scene`."""
    return link if "/" in link else f"{pack}/{link}"


def plan(
    world: World, learner: str, *, variations: int = 1, seed: int = 0, stages: Sequence[str] = ()
) -> list[SceneJob]:
    """Every scene of the loaded packs x variations, in curriculum order."""
    scenes = {f"{p.id}/{s.id}": (p, i, s) for p in world.packs for i, s in enumerate(p.scenes)}
    jobs = []
    for ref, (pack, position, scene) in scenes.items():
        if stages and scene.stage not in stages:
            continue
        ancestors = _same_stage_ancestors(ref, scenes)
        depth = _depth(ref, scenes)
        own = age_in_scene(world, pack.scenes, position)
        age = max([own] + [_age(world, scenes, a) for a in ancestors if a in scenes])
        for variation in range(variations):
            jobs.append(
                SceneJob(
                    learner,
                    pack.id,
                    pack.version,
                    scene,
                    position,
                    variation,
                    seed,
                    world.stages.rank(scene.stage),
                    age,
                    depth,
                    ancestors,
                )
            )
    return sorted(jobs, key=lambda j: j.order)


def _parents(ref: str, scenes: ScenesByRef) -> list[str]:
    pack, _, _ = ref.partition("/")
    return [resolve(pack, link) for link in scenes[ref][2].follows]


def _same_stage_ancestors(ref: str, scenes: ScenesByRef) -> frozenset[str]:
    stage, found, todo = scenes[ref][2].stage, set(), _parents(ref, scenes)
    while todo:
        parent = todo.pop()
        if parent in found:
            continue
        found.add(parent)
        if parent in scenes and scenes[parent][2].stage == stage:
            todo += _parents(parent, scenes)
    return frozenset(found)


def _depth(ref: str, scenes: ScenesByRef, seen: frozenset[str] = frozenset()) -> int:
    """Length of the longest follow-on chain into `ref` within its stage (validation forbids loops)."""
    stage = scenes[ref][2].stage
    parents = [p for p in _parents(ref, scenes) if p in scenes and scenes[p][2].stage == stage and p not in seen]
    return max((1 + _depth(p, scenes, seen | {ref}) for p in parents), default=0)
