"""`sim scenarios`: list, show and validate scenario packs."""

from __future__ import annotations

import difflib
from collections import Counter
from pathlib import Path
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from sim.cli.options import console, json_option, print_json, world_options
from sim.errors import UsageError
from sim.scenarios import Pack, Scene, find_packs
from sim.world import World, WorldPaths, load_world

packs_argument = click.argument("packs", nargs=-1, type=click.Path(path_type=Path))


def load_packs(paths: WorldPaths, packs: tuple[Path, ...]) -> World:
    """Load the named packs, or every pack under the scenarios directory when none is named."""
    return load_world(paths, list(packs) if packs else None, all_packs=not packs)


@click.group()
def scenarios() -> None:
    """Scenario packs (scenarios/<pack>/pack.yaml) and their scenes."""


@scenarios.command("list")
@packs_argument
@world_options
@json_option
def list_(packs: tuple[Path, ...], paths: WorldPaths, as_json: bool) -> None:
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
    """Show a pack (PACK) or one scene (PACK/SCENE) in full."""
    pack_id, _, scene_id = target.partition("/")
    pack = _load_one(paths, pack_id)
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
def validate(packs: tuple[Path, ...], paths: WorldPaths) -> None:
    """Check packs against the stages, values and personas; exit 2 listing every problem."""
    world = load_packs(paths, packs)
    n_scenes = sum(len(p.scenes) for p in world.packs)
    counts = [_count(len(world.packs), "pack"), _count(n_scenes, "scene"), _count(len(world.personas), "persona")]
    click.echo(f"ok: {', '.join(counts)}, no problems")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _load_one(paths: WorldPaths, pack_id: str) -> Pack:
    """The pack named on the command line, checked with the world; a misspelt name gets a did-you-mean."""
    if (paths.scenarios / pack_id).is_dir():
        return load_world(paths, [paths.scenarios / pack_id]).pack(pack_id)
    names = [p.name for p in find_packs(paths.scenarios)]
    close = difflib.get_close_matches(pack_id, names, 1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise UsageError(f"no pack {pack_id!r} in {paths.scenarios} ({hint}see `sim scenarios list`)")


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
