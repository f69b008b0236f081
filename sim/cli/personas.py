"""`sim personas`: list, show, validate, draft and draw the people of the learner's world.

Invariant: the YAML files are read, never written: `new` prints a draft for a person to save, and only
`graph` writes a file, the picture named by `--out`.
"""

from __future__ import annotations

import difflib
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table
from rich.text import Text

from sim.cli.options import SEED, console, json_option, print_json, print_validation, world_options
from sim.errors import UsageError
from sim.world.paths import WorldPaths
from sim.world.persona_graph import learners

if TYPE_CHECKING:
    from sim.world.load import World
    from sim.world.personas import Persona, Role


@click.group()
def personas() -> None:
    """The people in the learner's world (personas/*.yaml)."""


@personas.command("list")
@world_options
@json_option
def list_(paths: WorldPaths, as_json: bool) -> None:
    """List every person: id, how the learner knows them, role, kinship and age."""
    from sim.world.load import load_world

    world = load_world(paths)
    if as_json:
        print_json([_summary(p) for p in world.personas.values()])
        return
    table = Table("id", "known as", "name", "role", "kinship", "age", "stages")
    for p in world.personas.values():
        table.add_row(p.id, p.known_as, p.name, p.role, p.kinship or "", str(p.age or ""), ", ".join(p.stages) or "all")
    console().print(table)


@personas.command()
@click.argument("person_id")
@world_options
@json_option
def show(person_id: str, paths: WorldPaths, as_json: bool) -> None:
    """Show one person in full, with the relationships others declared towards them."""
    from sim.world.load import load_world

    world = load_world(paths)
    person = _get(world, person_id)
    ties = _ties(world, person_id)
    if as_json:
        print_json({**person.model_dump(mode="json", by_alias=True), "ties": ties})
        return
    out = console()
    out.print(Text.assemble((person.name, "bold"), f" ({person.id}) — known to the learner as {person.known_as!r}"))
    out.print(
        f"role {person.role}{f', {person.kinship}' if person.kinship else ''}; age {person.age or 'the learner'}; "
        f"stages {', '.join(person.stages) or 'all'}; pronouns {person.pronouns}"
    )
    traits = ", ".join(f"{k} {v:.2f}" for k, v in person.traits.model_dump().items())
    out.print(f"traits: {traits}")
    out.print(f"values: {', '.join(person.values) or '-'}")
    out.print(
        f"voice: {person.voice.tone}, {person.voice.vocabulary} vocabulary; "
        f"catchphrases: {'; '.join(person.voice.catchphrases) or '-'}",
        markup=False,
    )
    if person.backstory:
        out.print(f"backstory: {person.backstory}", markup=False)
    for tie in ties:
        out.print(
            f"  {tie['kind']} {tie['to']} (closeness {tie['closeness']:.2f}{'' if tie['declared'] else ', derived'})"
        )


@personas.command()
@world_options
@json_option
def validate(paths: WorldPaths, as_json: bool) -> None:
    """Check every persona file and the persona graph; exit 2 listing every problem."""
    from sim.world.load import load_world

    def check() -> dict[str, int]:
        world = load_world(paths)
        return {"personas": len(world.personas), "learners": len(learners(world.graph)),
                "relationship_edges": world.graph.number_of_edges()}  # fmt: skip

    def summary(counts: dict[str, int]) -> str:
        return (
            f"ok: {_count(counts['personas'], 'persona')} ({_count(counts['learners'], 'learner')}), "
            f"{_count(counts['relationship_edges'], 'relationship edge')}, no problems"
        )

    print_validation(as_json, check, summary)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


@personas.command()
@click.option(
    "--role",
    type=click.Choice(["teacher", "peer", "family", "community"]),
    required=True,
    help="The role of the person to draft.",
)
@click.option("--seed", type=SEED, default=0, show_default=True, help="Same seed, same person.")
@click.option("--slot", default=None, help="Slot name to draft for (default: the role).")
@click.option("--learner", default=None, help="Learner to relate them to (default: the only learner).")
@world_options
def new(role: Role, seed: int, slot: str | None, learner: str | None, paths: WorldPaths) -> None:
    """Print a valid persona drafted with Faker; save it as personas/<id>.yaml and edit to taste."""
    from sim.world.cast import CastSlot, draft_person
    from sim.world.load import load_world

    world = load_world(paths) if paths.personas.is_dir() else None
    learner_id = learner or _default_learner(world)
    value_ids = tuple(world.values.by_id) if world else ("kindness", "honesty", "fairness", "respect")
    person = draft_person(CastSlot(slot=slot or role, role=role), learner=learner_id, seed=seed, value_ids=value_ids)
    click.echo(f"# save as {paths.personas / (person.id + '.yaml')}", nl=True)
    click.echo(to_yaml(person), nl=False)


@personas.command()
@click.option(
    "--out", type=click.Path(path_type=Path, dir_okay=False), required=True, help="Output file: .png, .svg or .dot."
)
@world_options
def graph(out: Path, paths: WorldPaths) -> None:
    """Draw the persona graph to PNG, SVG or DOT, chosen by the file's extension."""
    from sim.world.graph_render import draw
    from sim.world.load import load_world

    world = load_world(paths)
    draw(world.graph, out)
    click.echo(
        f"wrote {out} ({world.graph.number_of_nodes()} people, "
        f"{sum(1 for *_, d in world.graph.edges(data=True) if d['declared'])} relationships)"
    )


def to_yaml(person: Persona) -> str:
    """A persona as the YAML a person would write (no id, no defaults that say nothing)."""
    from ruamel.yaml import YAML

    data = person.model_dump(mode="json", by_alias=True, exclude={"id", "generated"}, exclude_none=True)
    buffer = io.StringIO()
    yaml = YAML()
    yaml.default_flow_style = None
    yaml.width = 100
    yaml.dump(data, buffer)
    return buffer.getvalue()


def _summary(p: Persona) -> dict[str, Any]:
    return {
        "id": p.id,
        "known_as": p.known_as,
        "name": p.name,
        "role": p.role,
        "kinship": p.kinship,
        "age": str(p.age) if p.age else None,
        "stages": p.stages,
    }


def _get(world: World, person_id: str) -> Persona:
    if person_id not in world.personas:
        close = difflib.get_close_matches(person_id, list(world.personas), 1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UsageError(f"no person {person_id!r} ({hint}see `sim personas list`)")
    return world.personas[person_id]


def _ties(world: World, person_id: str) -> list[dict[str, Any]]:
    return [
        {"kind": k, "to": v, "closeness": d["weight"], "declared": d["declared"]}
        for _, v, k, d in sorted(world.graph.out_edges(person_id, keys=True, data=True))
    ]


def _default_learner(world: World | None) -> str:
    found = learners(world.graph) if world else []
    if len(found) == 1:
        return found[0]
    if not found:
        return "learner"
    raise UsageError(f"there are {len(found)} learners ({', '.join(found)}); choose one with --learner")
