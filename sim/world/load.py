"""The learner's world: stages, values, personas, the persona graph and scenario packs, checked together.

Invariant: `load_world` either returns a fully consistent world or raises one `ConfigError` listing
every problem in every file, sorted by file and line.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from sim.errors import ConfigError, Problem, display_path
from sim.world.checks import check_follow_loops, check_pack, scene_index, unknown
from sim.world.paths import WorldPaths
from sim.world.persona_graph import build_graph, check_graph
from sim.world.personas import Persona, declared_targets, load_persona, persona_files
from sim.world.scenarios import Pack, find_packs, load_pack
from sim.world.stages import StageList, load_stages
from sim.world.values import ValueList, load_values
from sim.world.yamlio import ROOT, Document

if TYPE_CHECKING:
    import networkx as nx

T = TypeVar("T")
SceneKey = tuple[str, str]  # (pack, scene)
Link = tuple[SceneKey, SceneKey]  # (scene, the scene it follows)
LinkSites = dict[Link, tuple[Document[Pack], tuple[str | int, ...]]]  # where a loaded pack writes each link


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
    index = scene_index(chosen, pack_docs)
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


def _check_persona_refs(doc: Document[Persona], stages: StageList, values: ValueList) -> list[Problem]:
    problems = []
    for i, stage in enumerate(doc.model.stages):
        if stage not in stages.by_id:
            problems.append(doc.problem(("stages", i), unknown("stage", stage, stages.by_id)))
    for i, value in enumerate(doc.model.values):
        if value not in values.by_id:
            problems.append(doc.problem(("values", i), unknown("value", value, values.by_id)))
    return problems
