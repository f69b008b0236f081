"""`sim learner show`: the learner's life as stored: stage, age, bonds, memories and values.

Invariant: read-only; the life shown is the initial state folded with the stored scene effects, by the
same pure updates a run applies (`sim.learner.state.fold`), so it is what the next scene would see.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import click

from sim.cli.options import console, db_option, json_option, print_json, world_options
from sim.errors import UsageError
from sim.store.db import connect
from sim.world.paths import WorldPaths
from sim.world.persona_graph import learners

if TYPE_CHECKING:
    from sim.learner.state import LearnerState
    from sim.world.personas import Persona


@click.group()
def learner() -> None:
    """The persistent learner "I"."""


@learner.command()
@click.argument("learner_id", required=False)
@click.option("--variation", type=int, default=0, show_default=True, help="Which life line to show.")
@click.option("--memories", "n_memories", type=int, default=10, show_default=True, help="How many recent memories.")
@db_option
@world_options
@json_option
def show(learner_id: str | None, variation: int, n_memories: int, db: Path, paths: WorldPaths, as_json: bool) -> None:
    """Print the learner's current life: stage, age, strongest relationships, memories, values."""
    from sim.learner.state import fold, initial_state
    from sim.store.trajectories import effects_before
    from sim.world.load import load_world

    world = load_world(paths)
    found = learners(world.graph)
    chosen = learner_id or (found[0] if len(found) == 1 else None)
    if chosen is None or chosen not in found:
        raise UsageError(
            f"no learner {learner_id!r} (learners: {', '.join(found) or 'none'})"
            if learner_id
            else f"found {len(found)} learners ({', '.join(found)}); name one"
        )
    with connect(db, read_only=True) as con:
        effects = effects_before(con, chosen, variation, 10**6)
    life = fold(initial_state(world.personas[chosen], world.graph, variation), effects)
    if as_json:
        print_json(life.model_dump(mode="json"))
        return
    _print_life(life, world.personas, n_memories)


def _print_life(life: LearnerState, people: Mapping[str, Persona], n_memories: int) -> None:
    out = console()
    if not life.memories:
        out.print(
            f"{life.name} ({life.learner}) has not lived any scene yet in this database "
            "(run `sim run scenarios/<pack>`)"
        )
        return
    out.print(
        f"[bold]{life.name}[/bold] ({life.learner}), life line {life.variation}: age {life.age}, "
        f"stage {life.stage}, {len(life.memories)} scenes lived"
    )
    out.print("closest people:")
    for pid, bond in sorted(life.bonds.items(), key=lambda kv: (-kv[1].closeness, kv[0]))[:8]:
        name = people[pid].known_as if pid in people else pid
        shared = f"{bond.scenes} scene{'' if bond.scenes == 1 else 's'}"
        out.print(f"  {name:<16} closeness {bond.closeness:.2f} over {shared}")
    out.print("values:")
    for vid, held in sorted(life.values.items(), key=lambda kv: (-kv[1].strength, kv[0])):
        n = len(held.taught_by)
        out.print(
            f"  {vid:<18} {held.strength:.2f} (taught by {n} scene{'' if n == 1 else 's'}, first {held.taught_by[0]})"
        )
    out.print("recent memories:")
    for memory in life.memories[-n_memories:]:
        out.print(f"  age {memory.age}: {memory.title} — {memory.summary}", markup=False)
