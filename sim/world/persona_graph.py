"""The persona graph: a networkx MultiDiGraph derived from the persona YAML, and its consistency checks.

Invariant: built only from `Persona` values. Every declared relationship becomes an edge with
`declared=True`; its inverse (child_of for parent_of, ...) is added with `declared=False`, so a query
from either side sees it, and nobody has to write both. Importing this module loads neither networkx
(`build_graph` does) nor the persona models, so the CLI can name `learners` at start-up for free.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from sim.errors import Problem

if TYPE_CHECKING:
    import networkx as nx

    from sim.world.personas import Persona, RelationKind
    from sim.world.yamlio import Document

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
    import networkx as nx

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


def check_graph(
    docs: Mapping[str, Document[Persona]], *, failed: Mapping[str, frozenset[str] | None] | None = None
) -> list[Problem]:
    """Whole-world checks: dangling and repeated relationships, contradictory kinship, family-less learners.

    `failed` names the persona files that are present but failed to load, each with the ids its
    relationships name (None when that cannot be told). References are checked against every file
    present; the kinship-word and no-family checks, which need the failed person's data, are skipped
    only for people a failed file may be tied to, so one broken file does not cascade into misleading
    errors about others.
    """
    failed = failed or {}
    graph = build_graph(d.model for d in docs.values())
    known = set(docs) | set(failed)
    problems: list[Problem] = []
    for doc in docs.values():
        problems += _check_references(doc, known)
    problems += _check_contradictions(graph, docs)
    for doc in docs.values():
        if not _tied_to_failed(doc.model, failed):
            problems += _check_kinship_word(graph, doc)
    for learner in learners(graph):
        if not _tied_to_failed(docs[learner].model, failed):
            problems += _check_family(graph, docs[learner])
    return problems


def _tied_to_failed(person: Persona, failed: Mapping[str, frozenset[str] | None]) -> bool:
    """Whether a file that failed to load may hold a tie between `person` and someone."""
    if any(rel.to in failed for rel in person.relationships):
        return True
    return any(targets is None or person.id in targets for targets in failed.values())


def _check_family(graph: nx.MultiDiGraph, doc: Document[Persona]) -> list[Problem]:
    learner = doc.model.id
    if any(kind in KIN for _, _, kind in graph.out_edges(learner, keys=True)):
        return []
    return [
        doc.problem(
            ("relationships",),
            f"learner {learner!r} has no family (give a person a relationship such as parent_of or "
            f"grandparent_of to {learner!r}, or list one here)",
        )
    ]


def _check_references(doc: Document[Persona], known: set[str]) -> list[Problem]:
    problems, seen, me = [], set(), doc.model.id
    for i, rel in enumerate(doc.model.relationships):
        if rel.to not in known and rel.to != me:
            problems.append(doc.problem(("relationships", i, "to"), _not_a_person(rel.to, known - {me})))
        if (rel.to, rel.kind) in seen:
            problems.append(doc.problem(("relationships", i), f"{rel.kind} {rel.to!r} is listed twice (keep one)"))
        seen.add((rel.to, rel.kind))
    return problems


def _not_a_person(name: str, known: set[str], limit: int = 8) -> str:
    names = sorted(known)
    close = difflib.get_close_matches(name, names, 1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    listing = ", ".join(names[:limit]) + (", ..." if len(names) > limit else "")
    return f"{name!r} is not a known person ({hint}expected one of: {listing})"


def _check_contradictions(graph: nx.MultiDiGraph, docs: Mapping[str, Document[Persona]]) -> list[Problem]:
    """Each contradiction once, at the tie declared later (by file name, then position in the file).

    A tie written on both sides, or twice, is one tie: it is checked (and its age gap) only once.
    """
    ties: dict[tuple[str, str], set[str]] = {}  # (a, b) -> kinds a has towards b, as declared so far
    problems: list[Problem] = []
    for doc in sorted(docs.values(), key=lambda d: d.shown):
        pid = doc.model.id
        for i, rel in enumerate(doc.model.relationships):
            earlier = ties.setdefault((pid, rel.to), set())
            if rel.to not in graph or rel.to == pid or rel.kind in earlier:
                continue
            clash = _contradiction(rel.to, rel.kind, earlier)
            if clash:
                problems.append(doc.problem(("relationships", i, "kind"), clash))
            problems += _check_age_gap(graph, doc, i, rel.to, rel.kind)
            earlier.add(rel.kind)
            ties.setdefault((rel.to, pid), set()).add(INVERSE[rel.kind])
    return problems


def _contradiction(other: str, kind: str, earlier: set[str]) -> str | None:
    kin = sorted(earlier & KIN)
    if kind in KIN and kin:
        return (
            f"contradictory kinship with {other!r}: {_and(sorted([*kin, kind]))} "
            "(a person has one family tie to another)"
        )
    if kind == "classmate_of" and earlier & NOT_CLASSMATES:
        generation = sorted(earlier & NOT_CLASSMATES)[0]
    elif kind in NOT_CLASSMATES and "classmate_of" in earlier:
        generation = kind
    else:
        return None
    return (
        f"contradictory relationship with {other!r}: {generation} and classmate_of "
        "(family of that generation is not a classmate)"
    )


def _and(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def _check_age_gap(graph: nx.MultiDiGraph, doc: Document[Persona], i: int, other: str, kind: str) -> list[Problem]:
    me, them = doc.model, graph.nodes[other]["persona"]
    older, younger, gap_kind = (me, them, kind) if kind in MIN_AGE_GAP else (them, me, INVERSE[kind])
    gap = MIN_AGE_GAP.get(gap_kind)
    older_offset, younger_offset = _offset(older), _offset(younger)
    if gap is None or older_offset is None or younger_offset is None or older_offset - younger_offset >= gap:
        return []
    return [
        doc.problem(
            ("relationships", i, "kind"),
            f"{older.id!r} {gap_kind} {younger.id!r} but {_age_difference(older_offset - younger_offset)} "
            f"(expected at least {_years(gap)} older)",
        )
    ]


def _age_difference(years: int) -> str:
    if years > 0:
        return f"is only {_years(years)} older"
    return "is the same age" if years == 0 else f"is {_years(-years)} younger"


def _years(n: int) -> str:
    return f"{n} year{'' if n == 1 else 's'}"


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
                    f"kinship {person.kinship!r} means {expected} {learner!r}, but the relationship is "
                    f"{wrong[0]} (change one)",
                )
            ]
    return [
        doc.problem(
            ("kinship",),
            f"kinship {person.kinship!r} but no {expected} relationship to a learner "
            f"(add `- {{to: <learner>, kind: {expected}}}` to relationships)",
        )
    ]

