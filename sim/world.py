"""The learner's world: stages, values, personas, the persona graph and scenario packs, checked together.

Invariant: `load_world` either returns a fully consistent world or raises one `ConfigError` listing
every problem in every file, sorted by file and line.
"""

from __future__ import annotations

import difflib
import functools
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TypeVar

import networkx as nx

from sim.errors import ConfigError, Problem, display_path
from sim.persona_graph import build_graph, check_graph
from sim.personas import Persona, load_persona, persona_files
from sim.placeholders import BEAT_NAMES, DETAIL_NAMES, SCENE_NAMES, unknown_fields
from sim.scenarios import LEARNER, Pack, Scene, find_packs, load_pack
from sim.stages import StageList, load_stages
from sim.values import ValueList, load_values
from sim.yamlio import Document

T = TypeVar("T")


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
    stages = _collect(problems, lambda: load_stages(paths.stages))
    values = _collect(problems, lambda: load_values(paths.values))
    persona_docs = _load_personas(paths.personas, problems)
    chosen = packs if packs is not None else (find_packs(paths.scenarios) if all_packs else [])
    pack_docs = _load_packs(chosen, problems)
    if stages is None or values is None:
        raise ConfigError(problems)
    problems += check_graph(persona_docs, complete=not problems)
    for persona_doc in persona_docs.values():
        problems += _check_persona_refs(persona_doc, stages, values)
    neighbours = _neighbour_scene_ids(chosen, pack_docs)
    for pack_doc in pack_docs:
        problems += check_pack(pack_doc, stages, values, neighbours)
    if problems:
        raise ConfigError(problems)
    return World(stages, values, {k: d.model for k, d in persona_docs.items()}, [d.model for d in pack_docs])


def _collect(problems: list[Problem], load: Callable[[], T]) -> T | None:
    try:
        return load()
    except ConfigError as exc:
        problems.extend(exc.problems)
        return None


def _load_personas(directory: Path, problems: list[Problem]) -> dict[str, Document[Persona]]:
    if not directory.is_dir():
        problems.append(
            Problem(
                display_path(directory),
                0,
                "(top level)",
                "persona directory not found (create it, or point --personas at one)",
            )
        )
        return {}
    docs: dict[str, Document[Persona]] = {}
    for path in persona_files(directory):
        doc = _collect(problems, functools.partial(load_persona, path))
        if doc is None:
            continue
        if doc.model.id in docs:
            problems.append(
                doc.problem(
                    ("id",),
                    f"person {doc.model.id!r} is defined twice (also in "
                    f"{docs[doc.model.id].shown}; keep one file per person)",
                )
            )
            continue
        docs[doc.model.id] = doc
    return docs


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


def _neighbour_scene_ids(chosen: list[Path], docs: list[Document[Pack]]) -> dict[str, dict[str, str]]:
    """Scene id -> stage for every pack loaded or lying beside one, for checking cross-pack links."""
    known = {d.model.id: {s.id: s.stage for s in d.model.scenes} for d in docs}
    for root in sorted({p.resolve().parent if p.is_dir() else p.resolve().parent.parent for p in chosen}):
        for pack_dir in find_packs(root):
            if pack_dir.name not in known:
                try:
                    known[pack_dir.name] = {s.id: s.stage for s in load_pack(pack_dir).model.scenes}
                except ConfigError:
                    continue  # reported when that pack itself is validated
    return known


def _check_persona_refs(doc: Document[Persona], stages: StageList, values: ValueList) -> list[Problem]:
    problems = []
    for i, stage in enumerate(doc.model.stages):
        if stage not in stages.by_id:
            problems.append(doc.problem(("stages", i), _unknown("stage", stage, stages.by_id)))
    for i, value in enumerate(doc.model.values):
        if value not in values.by_id:
            problems.append(doc.problem(("values", i), _unknown("value", value, values.by_id)))
    return problems


def check_pack(
    doc: Document[Pack], stages: StageList, values: ValueList, packs: dict[str, dict[str, str]]
) -> list[Problem]:
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
        problems += _check_follows(doc, at, scene, stages, packs)
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
    speakers = slots | {LEARNER}
    for b, beat in enumerate(scene.beats):
        if beat.speaker not in speakers:
            problems.append(doc.problem((*at, "beats", b, "speaker"), _unknown("speaker", beat.speaker, speakers)))
        if beat.to is not None and (beat.to not in speakers or beat.to == beat.speaker):
            problems.append(
                doc.problem((*at, "beats", b, "to"), _unknown("addressee", beat.to, speakers - {beat.speaker}))
            )
    return problems


def _check_placeholders(doc: Document[Pack], at: tuple[str | int, ...], scene: Scene) -> list[Problem]:
    scene_names = {*SCENE_NAMES, *DETAIL_NAMES, *(s.slot for s in scene.cast)}
    texts: list[tuple[tuple[str | int, ...], str, set[str]]] = [((*at, "opening"), scene.opening, scene_names)]
    if scene.reflection:
        texts.append(((*at, "reflection"), scene.reflection, scene_names))
    for b, beat in enumerate(scene.beats):
        texts += [
            ((*at, "beats", b, "lines", n), line, scene_names | set(BEAT_NAMES)) for n, line in enumerate(beat.lines)
        ]
    problems = []
    for loc, text, allowed in texts:
        unknown, syntax = unknown_fields(text, allowed)
        if syntax:
            problems.append(doc.problem(loc, syntax))
        for name in unknown:
            problems.append(doc.problem(loc, _unknown("placeholder", name, allowed, braces=True)))
    return problems


def _check_follows(
    doc: Document[Pack], at: tuple[str | int, ...], scene: Scene, stages: StageList, packs: dict[str, dict[str, str]]
) -> list[Problem]:
    problems = []
    for f, link in enumerate(scene.follows):
        pack_id, _, scene_id = link.rpartition("/")
        pack_id = pack_id or doc.model.id
        scenes = packs.get(pack_id)
        loc = (*at, "follows", f)
        if scenes is None:
            problems.append(doc.problem(loc, _unknown("pack", pack_id, packs)))
        elif scene_id not in scenes:
            problems.append(doc.problem(loc, _unknown("scene", scene_id, scenes, where=f" in pack {pack_id!r}")))
        elif (pack_id, scene_id) == (doc.model.id, scene.id):
            problems.append(doc.problem(loc, f"scene {scene.id!r} cannot follow itself (name an earlier scene)"))
        elif (
            scenes[scene_id] in stages.by_id
            and scene.stage in stages.by_id
            and stages.rank(scenes[scene_id]) > stages.rank(scene.stage)
        ):
            problems.append(
                doc.problem(
                    loc,
                    f"{link!r} is at stage {scenes[scene_id]!r}, later than this scene's "
                    f"{scene.stage!r} (a scene can only follow one from its own or an earlier stage)",
                )
            )
        elif pack_id == doc.model.id and list(scenes).index(scene_id) > list(scenes).index(scene.id):
            problems.append(
                doc.problem(
                    loc,
                    f"{scene_id!r} comes later in this pack (move it above {scene.id!r}: a scene "
                    "can only follow one that comes before it)",
                )
            )
    return problems


def _unknown(what: str, name: str, known: object, *, braces: bool = False, where: str = "") -> str:
    options = sorted(str(k) for k in known)  # type: ignore[attr-defined]
    shown = f"{{{name}}}" if braces else repr(name)
    close = difflib.get_close_matches(name, options, 1)
    hint = f"did you mean {'{' + close[0] + '}' if braces else repr(close[0])}? " if close else ""
    listing = ", ".join(options[:12]) + (", ..." if len(options) > 12 else "")
    return f"unknown {what} {shown}{where} ({hint}expected one of: {listing})"
