"""Cross-file checks of scenario packs: stages, values, cast slots, placeholders and follow-on links.

Invariant: checks only read; each problem points at the line of the pack file a person has to edit.
Follow-on links are resolved against an index of the loaded packs and the packs lying beside them.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sim.errors import ConfigError, Problem, display_path
from sim.world.placeholders import BEAT_NAMES, DETAIL_NAMES, SCENE_NAMES, unknown_fields
from sim.world.scenarios import LEARNER, Pack, Scene, find_packs, load_pack, pack_file
from sim.world.stages import StageList
from sim.world.values import ValueList
from sim.world.yamlio import Document

SceneKey = tuple[str, str]  # (pack, scene)
Link = tuple[SceneKey, SceneKey]  # (scene, the scene it follows)
LinkSites = dict[Link, tuple[Document[Pack], tuple[str | int, ...]]]  # where a loaded pack writes each link


@dataclass
class SceneIndex:
    """Every scene a follow-on link may name: the loaded packs and the packs lying beside them."""

    stages: dict[str, dict[str, str]] = field(default_factory=dict)  # pack -> scene -> stage, in pack order
    follows: dict[SceneKey, list[str]] = field(default_factory=dict)  # (pack, scene) -> links as written
    broken: dict[str, str] = field(default_factory=dict)  # pack beside the loaded ones that fails -> its path
    reported: set[str] = field(default_factory=set)  # packs that failed in this run: their errors are listed

    def add(self, pack: Pack) -> None:
        """Index one loaded pack."""
        self.stages[pack.id] = {s.id: s.stage for s in pack.scenes}
        for scene in pack.scenes:
            self.follows.setdefault((pack.id, scene.id), list(scene.follows))


def scene_index(chosen: list[Path], docs: list[Document[Pack]]) -> SceneIndex:
    """Index the loaded packs, then every other pack beside them (a broken one is remembered as broken)."""
    index = SceneIndex()
    for doc in docs:
        index.add(doc.model)
    index.reported = {pack_file(p).parent.name for p in chosen} - set(index.stages)
    for root in sorted({pack_file(p).resolve().parent.parent for p in chosen}):
        for pack_dir in find_packs(root):
            if pack_dir.name in index.stages or pack_dir.name in index.reported:
                continue
            try:
                index.add(load_pack(pack_dir).model)
            except ConfigError:
                index.broken[pack_dir.name] = display_path(pack_dir)
    return index


def check_pack(doc: Document[Pack], stages: StageList, values: ValueList, index: SceneIndex) -> list[Problem]:
    """Cross-file checks of one pack: stages, values, slots, placeholders, follow-on links."""
    problems: list[Problem] = []
    seen: set[str] = set()
    for i, scene in enumerate(doc.model.scenes):
        at = ("scenes", i)
        if scene.id in seen:
            problems.append(doc.problem((*at, "id"), f"scene {scene.id!r} appears twice in this pack (rename one)"))
        seen.add(scene.id)
        if scene.stage not in stages.by_id:
            problems.append(doc.problem((*at, "stage"), unknown("stage", scene.stage, stages.by_id)))
        for j, value in enumerate(scene.values):
            if value not in values.by_id:
                problems.append(doc.problem((*at, "values", j), unknown("value", value, values.by_id)))
        problems += _check_slots(doc, at, scene)
        problems += _check_placeholders(doc, at, scene)
        problems += _check_follows(doc, at, scene, stages, index)
    return problems


def _check_slots(doc: Document[Pack], at: tuple[str | int, ...], scene: Scene) -> list[Problem]:
    problems, slots = [], set()
    reserved = {LEARNER, *SCENE_NAMES, *BEAT_NAMES, *DETAIL_NAMES}
    for k, slot in enumerate(scene.cast):
        if slot.slot in slots:
            problems.append(
                doc.problem((*at, "cast", k, "slot"), f"slot {slot.slot!r} appears twice (name slots apart)")
            )
        if slot.slot in reserved:
            problems.append(
                doc.problem(
                    (*at, "cast", k, "slot"),
                    f"slot name {slot.slot!r} is reserved for a "
                    "placeholder (choose another name, e.g. 'teacher' or 'friend')",
                )
            )
        slots.add(slot.slot)
    return problems + _check_speakers(doc, at, scene, slots | {LEARNER})


def _check_speakers(doc: Document[Pack], at: tuple[str | int, ...], scene: Scene, speakers: set[str]) -> list[Problem]:
    problems = []
    for b, beat in enumerate(scene.beats):
        if beat.speaker not in speakers:
            problems.append(doc.problem((*at, "beats", b, "speaker"), unknown("speaker", beat.speaker, speakers)))
        others = ", ".join(sorted(speakers - {beat.speaker}))
        if beat.to is not None and beat.to == beat.speaker:
            message = f"a beat cannot address its own speaker (use one of: {others}, or leave 'to' out)"
            problems.append(doc.problem((*at, "beats", b, "to"), message))
        elif beat.to is not None and beat.to not in speakers:
            problems.append(
                doc.problem((*at, "beats", b, "to"), unknown("addressee", beat.to, speakers - {beat.speaker}))
            )
    return problems


def _check_placeholders(doc: Document[Pack], at: tuple[str | int, ...], scene: Scene) -> list[Problem]:
    """Every placeholder names something; suggestions list the scene's own names (slots, beat names) first."""
    slots = [s.slot for s in scene.cast]
    rest = [*SCENE_NAMES, *DETAIL_NAMES]
    texts: list[tuple[tuple[str | int, ...], str, list[str]]] = [((*at, "opening"), scene.opening, slots + rest)]
    if scene.reflection:
        texts.append(((*at, "reflection"), scene.reflection, slots + rest))
    for b, beat in enumerate(scene.beats):
        allowed = [*slots, *BEAT_NAMES, *rest]
        texts += [((*at, "beats", b, "lines", n), line, allowed) for n, line in enumerate(beat.lines)]
    problems = []
    for loc, text, names in texts:
        strangers, syntax = unknown_fields(text, set(names))
        if syntax:
            problems.append(doc.problem(loc, syntax))
        for name in strangers:
            problems.append(doc.problem(loc, unknown("placeholder", name, names, braces=True)))
    return problems


def _check_follows(
    doc: Document[Pack], at: tuple[str | int, ...], scene: Scene, stages: StageList, index: SceneIndex
) -> list[Problem]:
    problems = []
    for f, link in enumerate(scene.follows):
        if _target(doc.model.id, link)[0] in index.reported:
            continue  # that pack's own errors are listed in this run
        message = _link_problem((doc.model.id, scene.id), scene.stage, link, stages, index)
        if message is not None:
            problems.append(doc.problem((*at, "follows", f), message))
    return problems


def _target(pack_id: str, link: str) -> SceneKey:
    """The (pack, scene) a link written in `pack_id` names: 'scene' or 'pack/scene'."""
    target_pack, _, scene_id = link.rpartition("/")
    return target_pack or pack_id, scene_id


def _link_problem(source: SceneKey, stage: str, link: str, stages: StageList, index: SceneIndex) -> str | None:
    """What is wrong with one follow-on link from scene `source` at `stage`, or None."""
    target = _target(source[0], link)
    if target[0] in index.broken:
        return f"pack {target[0]!r} has errors of its own (run `sim scenarios validate {index.broken[target[0]]}`)"
    scenes = index.stages.get(target[0])
    if scenes is None:
        return unknown("pack", target[0], index.stages)
    if target[1] not in scenes:
        return unknown("scene", target[1], scenes, where=f" in pack {target[0]!r}")
    if target == source:
        return f"scene {source[1]!r} cannot follow itself (name an earlier scene)"
    return _order_problem(source, stage, target, link, scenes, stages)


def _order_problem(
    source: SceneKey, stage: str, target: SceneKey, link: str, scenes: dict[str, str], stages: StageList
) -> str | None:
    """A scene follows one from its own or an earlier stage and, within its pack, one above it."""
    target_stage = scenes[target[1]]
    if target_stage in stages.by_id and stage in stages.by_id and stages.rank(target_stage) > stages.rank(stage):
        return (
            f"{link!r} is at stage {target_stage!r}, later than this scene's "
            f"{stage!r} (a scene can only follow one from its own or an earlier stage)"
        )
    order = list(scenes)
    if target[0] == source[0] and order.index(target[1]) > order.index(source[1]):
        return (
            f"{target[1]!r} comes later in this pack (move it above {source[1]!r}: a scene "
            "can only follow one that comes before it)"
        )
    return None


def check_follow_loops(docs: list[Document[Pack]], stages: StageList, index: SceneIndex) -> list[Problem]:
    """Follow-on loops across packs, one line per loop, at a link in a loaded pack.

    Only links that pass every other check are followed, so a loop already explained by one of
    them (a link to a later scene of the same pack) is not reported twice.
    """
    import networkx as nx

    graph = nx.DiGraph()
    for source, links in index.follows.items():
        stage = index.stages[source[0]][source[1]]
        for link in links:
            if _link_problem(source, stage, link, stages, index) is None:
                graph.add_edge(source, _target(source[0], link), link=link)
    where: LinkSites = {
        ((d.model.id, scene.id), _target(d.model.id, link)): (d, ("scenes", i, "follows", f))
        for d in docs
        for i, scene in enumerate(d.model.scenes)
        for f, link in enumerate(scene.follows)
    }
    problems = []
    for component in nx.strongly_connected_components(graph):
        cycle = nx.find_cycle(graph.subgraph(component), source=min(component)) if len(component) > 1 else []
        located = [edge for edge in cycle if edge in where]
        if located:
            problems.append(_loop_problem(cycle, located[0], where))
    return problems


def _loop_problem(cycle: list[Link], first: Link, where: LinkSites) -> Problem:
    start = cycle.index(first)
    names = [f"{pack}/{scene}" for (pack, scene), _ in cycle[start:] + cycle[:start]]
    chain = ", which follows ".join([*names[1:], names[0]])
    doc, loc = where[first]
    return doc.problem(loc, f"follow-on loop: {names[0]} follows {chain} (remove one of these links)")


def unknown(what: str, name: str, known: Iterable[str], *, braces: bool = False, where: str = "") -> str:
    """`unknown <what> <name> (did you mean ...? expected one of: ...)`; a list keeps its order, others are sorted."""
    options = list(known) if isinstance(known, list) else sorted(known)
    shown = f"{{{name}}}" if braces else repr(name)
    close = difflib.get_close_matches(name, options, 1)
    hint = f"did you mean {'{' + close[0] + '}' if braces else repr(close[0])}? " if close else ""
    listing = ", ".join(options[:12]) + (", ..." if len(options) > 12 else "")
    return f"unknown {what} {shown}{where} ({hint}expected one of: {listing})"
