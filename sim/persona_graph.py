"""The persona graph: a networkx MultiDiGraph derived from the persona YAML, and its consistency checks.

Invariant: built only from `Persona` values. Every declared relationship becomes an edge with
`declared=True`; its inverse (child_of for parent_of, ...) is added with `declared=False`, so a query
from either side sees it, and nobody has to write both.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import networkx as nx

from sim.errors import Problem
from sim.personas import Persona, RelationKind
from sim.yamlio import Document

INVERSE: dict[str, str] = {
    "parent_of": "child_of",
    "grandparent_of": "grandchild_of",
    "aunt_uncle_of": "niece_nephew_of",
    "guardian_of": "ward_of",
    "teacher_of": "student_of",
    "coach_of": "coached_by",
    "mentor_of": "mentored_by",
}
INVERSE.update({v: k for k, v in list(INVERSE.items())})
for _kind in ("sibling_of", "cousin_of", "spouse_of", "classmate_of", "friend_of", "neighbor_of", "colleague_of"):
    INVERSE[_kind] = _kind

KIN = frozenset(
    {
        "parent_of",
        "child_of",
        "grandparent_of",
        "grandchild_of",
        "sibling_of",
        "cousin_of",
        "aunt_uncle_of",
        "niece_nephew_of",
        "spouse_of",
        "guardian_of",
        "ward_of",
    }
)
# Kin that cannot also be a classmate: a mother, grandparent or aunt is not in the learner's class.
NOT_CLASSMATES = KIN - {"sibling_of", "cousin_of"}
# What a kinship word implies about the relation from that person to the learner.
KINSHIP_RELATION: dict[str, RelationKind] = {
    "mother": "parent_of",
    "father": "parent_of",
    "parent": "parent_of",
    "stepmother": "parent_of",
    "stepfather": "parent_of",
    "guardian": "guardian_of",
    "grandmother": "grandparent_of",
    "grandfather": "grandparent_of",
    "grandparent": "grandparent_of",
    "sister": "sibling_of",
    "brother": "sibling_of",
    "sibling": "sibling_of",
    "aunt": "aunt_uncle_of",
    "uncle": "aunt_uncle_of",
    "cousin": "cousin_of",
}
# Youngest plausible age gap (years) for a relation from the older person's side.
MIN_AGE_GAP = {"parent_of": 14, "grandparent_of": 30, "aunt_uncle_of": 1}


def build_graph(personas: Iterable[Persona]) -> nx.MultiDiGraph:
    """Derive the typed, weighted persona graph. References to unknown people are left out (see `check_graph`)."""
    graph = nx.MultiDiGraph()
    people = {p.id: p for p in personas}
    for person in people.values():
        graph.add_node(person.id, persona=person, role=person.role)
    for person in people.values():
        for rel in person.relationships:
            if rel.to not in people or rel.to == person.id:
                continue
            graph.add_edge(person.id, rel.to, key=rel.kind, kind=rel.kind, weight=rel.closeness, declared=True)
            inverse = INVERSE[rel.kind]
            if not graph.has_edge(rel.to, person.id, key=inverse):
                graph.add_edge(rel.to, person.id, key=inverse, kind=inverse, weight=rel.closeness, declared=False)
    return graph


def relations(graph: nx.MultiDiGraph, source: str, target: str) -> set[str]:
    """The relation kinds from `source` to `target` (`source` is <kind> of `target`)."""
    data = graph.get_edge_data(source, target) or {}
    return set(data)


def closeness(graph: nx.MultiDiGraph, source: str, target: str) -> float:
    """The strongest closeness on any edge between two people, 0 when unrelated."""
    data = graph.get_edge_data(source, target) or {}
    return max((float(e["weight"]) for e in data.values()), default=0.0)


def learners(graph: nx.MultiDiGraph) -> list[str]:
    """The ids of every learner, sorted."""
    return sorted(n for n, role in graph.nodes(data="role") if role == "learner")


def check_graph(docs: Mapping[str, Document[Persona]], *, complete: bool = True) -> list[Problem]:
    """Whole-world checks: dangling and repeated relationships, contradictory kinship, family-less learners.

    With `complete=False` (some persona files failed to load) checks that need the whole family are
    skipped, so one broken file does not cascade into misleading errors about others.
    """
    graph = build_graph(d.model for d in docs.values())
    problems: list[Problem] = []
    for pid, doc in docs.items():
        problems += _check_references(doc, docs) if complete else []
        problems += _check_contradictions(graph, pid, doc, complete)
    for learner in learners(graph) if complete else []:
        if not any(kind in KIN for _, _, kind in graph.out_edges(learner, keys=True)):
            problems.append(
                docs[learner].problem(
                    ("relationships",),
                    f"learner {learner!r} has no family (give a person a relationship such as parent_of or "
                    f"grandparent_of to {learner!r}, or list one here)",
                )
            )
    return problems


def _check_references(doc: Document[Persona], docs: Mapping[str, Document[Persona]]) -> list[Problem]:
    problems, seen = [], set()
    for i, rel in enumerate(doc.model.relationships):
        if rel.to not in docs and rel.to != doc.model.id:
            problems.append(
                doc.problem(
                    ("relationships", i, "to"), f"{rel.to!r} is not a known person (expected one of: {_some(docs)})"
                )
            )
        if (rel.to, rel.kind) in seen:
            problems.append(doc.problem(("relationships", i), f"{rel.kind} {rel.to!r} is listed twice (keep one)"))
        seen.add((rel.to, rel.kind))
    return problems


def _check_contradictions(graph: nx.MultiDiGraph, pid: str, doc: Document[Persona], complete: bool) -> list[Problem]:
    problems, person = [], doc.model
    for i, rel in enumerate(person.relationships):
        if rel.to not in graph or rel.to == pid:
            continue
        kinds = relations(graph, pid, rel.to)
        kin = sorted(kinds & KIN)
        if len(kin) > 1:
            problems.append(
                doc.problem(
                    ("relationships", i, "kind"),
                    f"contradictory kinship with {rel.to!r}: "
                    f"{' and '.join(kin)} (a person has one family tie to another)",
                )
            )
        elif kin and kin[0] in NOT_CLASSMATES and "classmate_of" in kinds:
            problems.append(
                doc.problem(
                    ("relationships", i, "kind"),
                    f"contradictory relationship with "
                    f"{rel.to!r}: {kin[0]} and classmate_of (family of that generation "
                    "is not a classmate)",
                )
            )
        problems += _check_age_gap(graph, doc, i, rel.to, rel.kind)
    return problems + (_check_kinship_word(graph, doc) if complete else [])


def _check_age_gap(graph: nx.MultiDiGraph, doc: Document[Persona], i: int, other: str, kind: str) -> list[Problem]:
    me, them = doc.model, graph.nodes[other]["persona"]
    older, younger, gap_kind = (me, them, kind) if kind in MIN_AGE_GAP else (them, me, INVERSE[kind])
    gap = MIN_AGE_GAP.get(gap_kind)
    if (
        gap is None
        or older.age is None
        and older.role != "learner"
        or younger.age is None
        and younger.role != "learner"
    ):
        return []
    older_offset, younger_offset = _offset(older), _offset(younger)
    if older_offset is None or younger_offset is None or older_offset - younger_offset >= gap:
        return []
    return [
        doc.problem(
            ("relationships", i, "kind"),
            f"{older.id!r} {gap_kind} {younger.id!r} but is only "
            f"{older_offset - younger_offset} years older (expected at least {gap})",
        )
    ]


def _offset(person: Persona) -> int | None:
    """Age relative to the learner, when it is defined relative to the learner."""
    if person.role == "learner":
        return 0
    return person.age.years if person.age is not None and person.age.relative else None


def _check_kinship_word(graph: nx.MultiDiGraph, doc: Document[Persona]) -> list[Problem]:
    person = doc.model
    if person.kinship is None or person.role == "learner":
        return []
    expected = KINSHIP_RELATION[person.kinship]
    for learner in learners(graph):
        kinds = relations(graph, person.id, learner)
        if expected in kinds:
            return []
        wrong = sorted(kinds & KIN)
        if wrong:
            return [
                doc.problem(
                    ("kinship",),
                    f"kinship {person.kinship!r} contradicts {wrong[0]} {learner!r} "
                    f"(a {person.kinship} is {expected} the learner)",
                )
            ]
    return [
        doc.problem(
            ("kinship",),
            f"kinship {person.kinship!r} but no {expected} relationship to a learner "
            f"(add `- {{to: <learner>, kind: {expected}}}` to relationships)",
        )
    ]


def _some(docs: Mapping[str, object], limit: int = 8) -> str:
    names = sorted(docs)
    return ", ".join(names[:limit]) + (", ..." if len(names) > limit else "")


RELATION_KINDS: tuple[RelationKind, ...] = tuple(sorted(INVERSE))  # type: ignore[arg-type]
