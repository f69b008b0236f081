"""`sim scenarios`: list, show and validate scenario packs.

Invariant: packs are read, never written; a pack is shown or listed only after the whole world it
belongs to has loaded and checked (`sim.world.load`), so what is shown is what a run would live.
"""

from __future__ import annotations

import difflib
from collections import Counter
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table
from rich.text import Text

from sim.cli.options import (
    console,
    json_option,
    pack_dirs,
    packs_argument,
    print_json,
    print_validation,
    world_options,
)
from sim.errors import UsageError
from sim.world.paths import WorldPaths

if TYPE_CHECKING:
    from sim.world.load import World
    from sim.world.scenarios import Pack, Scene


def load_packs(paths: WorldPaths, packs: tuple[str, ...]) -> World:
    """Load the named packs (paths or ids), or every pack under the scenarios directory when none is named."""
    from sim.world.load import load_world

    return load_world(paths, pack_dirs(packs, paths) if packs else None, all_packs=not packs)


@click.group()
def scenarios() -> None:
    """Scenario packs (scenarios/<pack>/pack.yaml) and their scenes."""


@scenarios.command("list")
@packs_argument
@world_options
@json_option
def list_(packs: tuple[str, ...], paths: WorldPaths, as_json: bool) -> None:
    """List the scenes of every pack (or of the packs named), in curriculum order within each pack."""
    world = load_packs(paths, packs)
    rows = [_scene_summary(world, pack, i, scene) for pack in world.packs for i, scene in enumerate(pack.scenes)]
    if as_json:
        print_json(rows)
        return
    table = Table("pack", "#", "scene", "stage", "values", "cast", "beats", "title")
    for r in rows:
        table.add_row(
            r["pack"],
            str(r["position"]),
            r["scene"],
            r["stage"],
            ", ".join(r["values"]),
            ", ".join(r["cast"]),
            str(r["beats"]),
            r["title"],
        )
    console().print(table)
    by_stage = Counter(r["stage"] for r in rows)
    click.echo(
        f"{_count(len(rows), 'scene')} in {_count(len(world.packs), 'pack')}; by stage: "
        + ", ".join(f"{s.id} {by_stage[s.id]}" for s in world.stages.stages)
    )


@scenarios.command()
@click.argument("target")
@world_options
@json_option
def show(target: str, paths: WorldPaths, as_json: bool) -> None:
    """Show a pack (PACK) or one scene (PACK/SCENE) in full; PACK is an id or a directory."""
    from sim.world.scenarios import split_scene_target

    pack_name, scene_id = split_scene_target(target, paths.scenarios)
    pack = _load_one(paths, pack_name)
    pack_id = pack.id
    if not scene_id:
        _show_pack(pack, as_json)
        return
    scene = next((s for s in pack.scenes if s.id == scene_id), None)
    if scene is None:
        close = difflib.get_close_matches(scene_id, [s.id for s in pack.scenes], 1)
        hint = f"did you mean {pack_id}/{close[0]}? " if close else ""
        raise UsageError(f"no scene {scene_id!r} in pack {pack_id!r} ({hint}see `sim scenarios list {pack_id}`)")
    _show_scene(scene, as_json)


@scenarios.command()
@packs_argument
@world_options
@json_option
def validate(packs: tuple[str, ...], paths: WorldPaths, as_json: bool) -> None:
    """Check packs against the stages, values and personas; exit 2 listing every problem."""

    def check() -> dict[str, int]:
        world = load_packs(paths, packs)
        return {"packs": len(world.packs), "scenes": sum(len(p.scenes) for p in world.packs),
                "personas": len(world.personas)}  # fmt: skip

    def summary(counts: dict[str, int]) -> str:
        nouns = [_count(counts["packs"], "pack"), _count(counts["scenes"], "scene"),
                 _count(counts["personas"], "persona")]  # fmt: skip
        return f"ok: {', '.join(nouns)}, no problems"

    print_validation(as_json, check, summary)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _load_one(paths: WorldPaths, name: str) -> Pack:
    """The one pack named on the command line (an id or a directory), checked with the world."""
    from sim.world.load import load_world

    found = pack_dirs((name,), paths)
    if len(found) > 1:
        ids = [p.name for p in found]
        raise UsageError(f"{name} holds {len(ids)} packs ({', '.join(ids)}); name one, e.g. {ids[0]}")
    return load_world(paths, found).packs[0]


def _scene_summary(world: World, pack: Pack, index: int, scene: Scene) -> dict[str, Any]:
    return {
        "pack": pack.id,
        "position": index + 1,
        "scene": scene.id,
        "title": scene.title,
        "stage": scene.stage,
        "stage_rank": world.stages.rank(scene.stage),
        "values": scene.values,
        "cast": [c.slot for c in scene.cast],
        "beats": len(scene.beats),
        "follows": scene.follows,
    }


def _show_pack(pack: Pack, as_json: bool) -> None:
    if as_json:
        print_json(pack.model_dump(mode="json", by_alias=True))
        return
    out = console()
    out.print(Text.assemble((pack.title, "bold"), f" ({pack.id} {pack.version})"))
    out.print(pack.description, markup=False)
    for i, scene in enumerate(pack.scenes, 1):
        out.print(f"  {i:2d}. {scene.id} [{scene.stage}] {scene.title} — {', '.join(scene.values)}", markup=False)


def _show_scene(scene: Scene, as_json: bool) -> None:
    if as_json:
        print_json(scene.model_dump(mode="json", by_alias=True))
        return
    out = console()
    about = (
        f" ({scene.id}) — stage {scene.stage}; values {', '.join(scene.values)}; the learner as {scene.learner_role}"
    )
    out.print(Text.assemble((scene.title, "bold"), about))
    out.print(f"setting: {scene.setting.place}, {scene.setting.time}: {scene.setting.situation}", markup=False)
    out.print(f"objective: {scene.objective}", markup=False)
    for slot in scene.cast:
        out.print(
            f"cast {slot.slot}: {slot.role}"
            + (f", {slot.relation} the learner" if slot.relation else "")
            + (f", kinship {'/'.join(slot.kinship)}" if slot.kinship else "")
        )
    out.print(f"opening: {scene.opening}", markup=False)
    for i, beat in enumerate(scene.beats, 1):
        times = f" x{beat.exchanges}" if beat.exchanges > 1 else ""
        out.print(f"{i:2d}. {beat.speaker}{times} — {beat.intent}", markup=False)
        for line in beat.lines:
            out.print(f"      | {line}", markup=False)
    if scene.reflection:
        out.print(f"reflection: {scene.reflection}", markup=False)
    if scene.follows:
        out.print(f"follows: {', '.join(scene.follows)}")
