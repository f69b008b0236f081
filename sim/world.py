"""The learner's world: stages, values, personas, the persona graph and scenario packs, checked together.

Invariant: `load_world` either returns a fully consistent world or raises one `ConfigError` listing
every problem in every file, sorted by file and line.
"""

from __future__ import annotations

import difflib
import functools
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TypeVar

import networkx as nx

from sim.errors import ConfigError, Problem, display_path
from sim.persona_graph import build_graph, check_graph
from sim.personas import Persona, declared_targets, load_persona, persona_files
from sim.placeholders import BEAT_NAMES, DETAIL_NAMES, SCENE_NAMES, unknown_fields
from sim.scenarios import LEARNER, Pack, Scene, find_packs, load_pack, pack_file
from sim.stages import StageList, load_stages
from sim.values import ValueList, load_values
from sim.yamlio import ROOT, Document

T = TypeVar("T")
SceneKey = tuple[str, str]  # (pack, scene)
Link = tuple[SceneKey, SceneKey]  # (scene, the scene it follows)
LinkSites = dict[Link, tuple[Document[Pack], tuple[str | int, ...]]]  # where a loaded pack writes each link


@dataclass(frozen=True)
class WorldPaths:
    """Where a world's files are; `None` stages/values mean the shipped defaults."""

    personas: Path = Path("personas")
    scenarios: Path = Path("scenarios")
    stages: Path | None = None
    values: Path | None = None

    @classmethod
    def from_env(cls, **overrides: Path | None) -> WorldPaths:
        """Defaults, then SIM_PERSONAS / SIM_SCENARIOS / SIM_STAGES / SIM_VALUES, then explicit overrides."""
        env = {
            k: Path(os.environ[f"SIM_{k.upper()}"])
            for k in ("personas", "scenarios", "stages", "values")
            if os.environ.get(f"SIM_{k.upper()}")
        }
        env.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**env)


@dataclass
class World:
    """Everything the simulator reads, validated."""

    stages: StageList
    values: ValueList
    personas: dict[str, Persona]
    packs: list[Pack] = field(default_factory=list)

    @cached_property
    def graph(self) -> nx.MultiDiGraph:
        """The persona graph derived from the personas."""
        return build_graph(self.personas.values())

    @cached_property
    def scenes(self) -> dict[tuple[str, str], Scene]:
        """Every loaded scene keyed by (pack, scene)."""
        return {(p.id, s.id): s for p in self.packs for s in p.scenes}

    def pack(self, pack_id: str) -> Pack:
        """A loaded pack by id."""
        return next(p for p in self.packs if p.id == pack_id)


def load_world(paths: WorldPaths, packs: list[Path] | None = None, *, all_packs: bool = False) -> World:
    """Load and check a world. `packs` limits which packs are loaded; `all_packs` loads every pack.

    Follow-on links to packs outside `packs` are resolved against the other packs beside them.
    """
    problems: list[Problem] = []
    stages = _load_override(problems, paths.stages, "--stages", load_stages)
    values = _load_override(problems, paths.values, "--values", load_values)
    persona_docs, failed = _load_personas(paths.personas, problems)
    chosen = packs if packs is not None else (find_packs(paths.scenarios) if all_packs else [])
    pack_docs = _load_packs(chosen, problems)
    if stages is None or values is None:
        raise ConfigError(problems)
    problems += check_graph(persona_docs, failed=failed)
    for persona_doc in persona_docs.values():
        problems += _check_persona_refs(persona_doc, stages, values)
    index = _scene_index(chosen, pack_docs)
    for pack_doc in pack_docs:
        problems += check_pack(pack_doc, stages, values, index)
    problems += check_follow_loops(pack_docs, stages, index)
    if problems:
        raise ConfigError(problems)
    return World(stages, values, {k: d.model for k, d in persona_docs.items()}, [d.model for d in pack_docs])


def _collect(problems: list[Problem], load: Callable[[], T]) -> T | None:
    try:
        return load()
    except ConfigError as exc:
        problems.extend(exc.problems)
        return None


def _load_override(
    problems: list[Problem], path: Path | None, option: str, load: Callable[[Path | None], T]
) -> T | None:
    """Load a stages or values file; `None` is the shipped one, and a path that is not a file names its option."""
    if path is not None and not path.is_file():
        problems.append(Problem(display_path(path), 0, ROOT, f"file not found (check the {option} path)"))
        return None
    return _collect(problems, functools.partial(load, path))


def _load_personas(
    directory: Path, problems: list[Problem]
) -> tuple[dict[str, Document[Persona]], dict[str, frozenset[str] | None]]:
    """The personas that load, and for each file that does not, the ids its relationships name."""
    if not directory.is_dir():
        message = "persona directory not found (create it, or point --personas at one)"
        problems.append(Problem(display_path(directory), 0, ROOT, message))
        return {}, {}
    docs: dict[str, Document[Persona]] = {}
    failed: dict[str, frozenset[str] | None] = {}
    for path in persona_files(directory):
        doc = _collect(problems, functools.partial(load_persona, path))
        if doc is None:
            failed[path.stem] = declared_targets(path)
        elif doc.model.id in docs:
            problems.append(
                doc.problem(
                    ("id",),
                    f"person {doc.model.id!r} is defined twice (also in "
                    f"{docs[doc.model.id].shown}; keep one file per person)",
                )
            )
        else:
            docs[doc.model.id] = doc
    return docs, failed


def _load_packs(paths: list[Path], problems: list[Problem]) -> list[Document[Pack]]:
    docs: list[Document[Pack]] = []
    for path in paths:
        doc = _collect(problems, functools.partial(load_pack, path))
        if doc is None:
            continue
        if any(d.model.id == doc.model.id for d in docs):
            problems.append(doc.problem(("id",), f"pack {doc.model.id!r} is loaded twice (name each pack once)"))
            continue
        docs.append(doc)
    return docs


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


def _scene_index(chosen: list[Path], docs: list[Document[Pack]]) -> SceneIndex:
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


def _check_persona_refs(doc: Document[Persona], stages: StageList, values: ValueList) -> list[Problem]:
    problems = []
    for i, stage in enumerate(doc.model.stages):
        if stage not in stages.by_id:
            problems.append(doc.problem(("stages", i), _unknown("stage", stage, stages.by_id)))
    for i, value in enumerate(doc.model.values):
        if value not in values.by_id:
            problems.append(doc.problem(("values", i), _unknown("value", value, values.by_id)))
    return problems


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
            problems.append(doc.problem((*at, "stage"), _unknown("stage", scene.stage, stages.by_id)))
        for j, value in enumerate(scene.values):
            if value not in values.by_id:
                problems.append(doc.problem((*at, "values", j), _unknown("value", value, values.by_id)))
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
            problems.append(doc.problem((*at, "beats", b, "speaker"), _unknown("speaker", beat.speaker, speakers)))
        others = ", ".join(sorted(speakers - {beat.speaker}))
        if beat.to is not None and beat.to == beat.speaker:
            message = f"a beat cannot address its own speaker (use one of: {others}, or leave 'to' out)"
            problems.append(doc.problem((*at, "beats", b, "to"), message))
        elif beat.to is not None and beat.to not in speakers:
            problems.append(
                doc.problem((*at, "beats", b, "to"), _unknown("addressee", beat.to, speakers - {beat.speaker}))
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
        unknown, syntax = unknown_fields(text, set(names))
        if syntax:
            problems.append(doc.problem(loc, syntax))
        for name in unknown:
            problems.append(doc.problem(loc, _unknown("placeholder", name, names, braces=True)))
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
        return _unknown("pack", target[0], index.stages)
    if target[1] not in scenes:
        return _unknown("scene", target[1], scenes, where=f" in pack {target[0]!r}")
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


def _unknown(what: str, name: str, known: Iterable[str], *, braces: bool = False, where: str = "") -> str:
    """`unknown <what> <name> (did you mean ...? expected one of: ...)`; a list keeps its order, others are sorted."""
    options = list(known) if isinstance(known, list) else sorted(known)
    shown = f"{{{name}}}" if braces else repr(name)
    close = difflib.get_close_matches(name, options, 1)
    hint = f"did you mean {'{' + close[0] + '}' if braces else repr(close[0])}? " if close else ""
    listing = ", ".join(options[:12]) + (", ..." if len(options) > 12 else "")
    return f"unknown {what} {shown}{where} ({hint}expected one of: {listing})"
