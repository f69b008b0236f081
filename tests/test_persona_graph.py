"""The persona graph derived from persona YAML, its whole-world checks, and casting people into scene slots."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any, get_args

import pytest
from ruamel.yaml import YAML
from world_fixtures import MIA, write, write_world

from sim.errors import ConfigError, Problem
from sim.world.cast import UNRELATED_WEIGHT, CastSlot, cast_slot, draft_person, matches
from sim.world.load import World, WorldPaths, load_world
from sim.world.persona_graph import INVERSE, KIN, build_graph, check_graph, closeness, learners, relations
from sim.world.personas import TRAITS, Persona, RelationKind
from sim.world.yamlio import Document, line_of, parse_yaml


def person(pid: str, role: str, *rels: tuple[str, str, float], **fields: Any) -> Persona:
    """A persona built in code; `rels` are (to, kind, closeness)."""
    data: dict[str, Any] = {"id": pid, "name": f"{pid.title()} Example", "role": role, **fields}
    if role != "learner":
        data.setdefault("address_as", pid.title())
        data.setdefault("age", "learner")
    data["relationships"] = [{"to": to, "kind": kind, "closeness": c} for to, kind, c in rels]
    return Persona.model_validate(data)


def docs(*people: Persona) -> dict[str, Document[Persona]]:
    """Documents as if each person had been loaded from `<id>.yaml` (so problems get key paths)."""
    out = {}
    for p in people:
        buffer = io.StringIO()
        YAML(typ="safe", pure=True).dump(p.model_dump(mode="json", by_alias=True), buffer)
        out[p.id] = Document(p, f"{p.id}.yaml", parse_yaml(buffer.getvalue(), f"{p.id}.yaml"))
    return out


def slot(**fields: Any) -> CastSlot:
    return CastSlot.model_validate({"slot": "part", **fields})


SAM = person("sam", "learner")


@pytest.fixture
def world() -> World:
    write_world()
    return load_world(WorldPaths(), all_packs=True)


# --- deriving the graph ----------------------------------------------------------------------------------------


def test_every_relation_kind_has_an_inverse_and_inverting_twice_is_identity() -> None:
    kinds = set(get_args(RelationKind))
    assert set(INVERSE) == kinds
    assert all(INVERSE[INVERSE[k]] == k for k in kinds)
    assert INVERSE["parent_of"] == "child_of"
    assert INVERSE["sibling_of"] == "sibling_of"
    assert INVERSE["coach_of"] == "coached_by"


def test_declared_edges_and_their_derived_inverses(world: World) -> None:
    g = world.graph
    assert g.edges["mum", "sam", "parent_of"] == {"kind": "parent_of", "weight": 0.9, "declared": True}
    assert g.edges["sam", "mum", "child_of"] == {"kind": "child_of", "weight": 0.9, "declared": False}
    assert g.edges["grandpa", "mum", "parent_of"] == {"kind": "parent_of", "weight": 0.8, "declared": False}
    assert g.edges["sam", "ms-lee", "student_of"]["declared"] is False
    assert relations(g, "sam", "mia") == {"classmate_of", "friend_of"}
    assert g.number_of_edges() == 12
    assert sum(1 for *_, d in g.edges(data=True) if d["declared"]) == 6


def test_an_edge_written_on_both_sides_counts_as_declared_whatever_the_file_order() -> None:
    child = person("mum", "family", ("sam", "parent_of", 0.9), ("grandpa", "child_of", 0.7), kinship="mother")
    parent = person("grandpa", "family", ("mum", "parent_of", 0.6), age="learner+60", kinship="grandfather")
    for order in ([SAM, child, parent], [SAM, parent, child]):
        g = build_graph(order)
        assert g.edges["mum", "grandpa", "child_of"]["declared"] is True
        assert g.edges["grandpa", "mum", "parent_of"]["declared"] is True
        assert g.number_of_edges() == 4


def test_dangling_and_self_references_are_left_out_of_the_graph() -> None:
    g = build_graph([SAM, person("mia", "peer", ("ghost", "friend_of", 0.5), ("mia", "friend_of", 0.5))])
    assert sorted(g.nodes) == ["mia", "sam"]
    assert g.number_of_edges() == 0


def test_closeness_is_the_strongest_tie_and_zero_when_unrelated(world: World) -> None:
    assert closeness(world.graph, "mia", "sam") == 0.9
    assert closeness(world.graph, "sam", "mia") == 0.9
    assert closeness(world.graph, "ms-lee", "mia") == 0.0
    assert learners(world.graph) == ["sam"]


# --- whole-world checks ----------------------------------------------------------------------------------------


def messages(problems: list[Problem]) -> list[str]:
    return [f"{p.path}: {p.key_path}: {p.message}" for p in sorted(problems)]


def test_the_fixture_world_loads_and_names_people(world: World) -> None:
    assert world.personas["sam"].known_as == "I"
    assert world.personas["ms-lee"].known_as == "Ms. Lee"


def test_dangling_and_duplicate_references() -> None:
    mum = person(
        "mum",
        "family",
        ("sam", "parent_of", 0.9),
        ("sam", "parent_of", 0.8),
        ("ghost", "spouse_of", 1),
        kinship="mother",
        age="learner+30",
    )
    assert messages(check_graph(docs(SAM, mum))) == [
        "mum.yaml: relationships[1]: parent_of 'sam' is listed twice (keep one)",
        "mum.yaml: relationships[2].to: 'ghost' is not a known person (expected one of: sam)",
    ]


def test_a_file_that_failed_to_load_is_still_a_known_person() -> None:
    lonely = docs(SAM, person("mia", "peer", ("ghost", "friend_of", 0.5)))
    assert len(check_graph(lonely)) == 2
    assert messages(check_graph(lonely, failed={"ghost": frozenset()})) == [
        "sam.yaml: relationships: learner 'sam' has no family (give a person a relationship such as parent_of or "
        "grandparent_of to 'sam', or list one here)"
    ]


def test_did_you_mean_for_a_misspelt_person() -> None:
    mia = person("mia", "peer", ("samm", "friend_of", 0.5))
    mum = person("mum", "family", ("sam", "parent_of", 0.9), age="learner+30")
    assert messages(check_graph(docs(SAM, mum, mia))) == [
        "mia.yaml: relationships[0].to: 'samm' is not a known person (did you mean 'sam'? expected one of: mum, sam)"
    ]


@pytest.mark.parametrize(
    ("failed", "skipped"),
    [
        ({"ghost": None}, True),  # unreadable: it may name anyone
        ({"ghost": frozenset({"sam"})}, True),  # it names sam: it may be family
        ({"ghost": frozenset({"mia"})}, False),  # it names only mia: it cannot be sam's family
    ],
)
def test_a_broken_file_skips_the_no_family_check_only_when_it_may_hold_the_tie(
    failed: dict[str, frozenset[str] | None], skipped: bool
) -> None:
    friends = docs(SAM, person("mia", "peer", ("sam", "friend_of", 0.5)))
    assert (check_graph(friends, failed=failed) == []) is skipped


@pytest.mark.parametrize(
    ("failed", "skipped"),
    [
        ({"ghost": None}, True),
        ({"ghost": frozenset({"lena"})}, True),
        ({"ghost": frozenset({"sam"})}, False),  # even if ghost is a learner, it has no tie to lena
    ],
)
def test_a_broken_file_skips_the_kinship_word_check_only_when_it_may_hold_the_tie(
    failed: dict[str, frozenset[str] | None], skipped: bool
) -> None:
    aunt = person("lena", "family", ("sam", "aunt_uncle_of", 0.5), kinship="mother", age="learner+28")
    mum = person("mum", "family", ("sam", "parent_of", 0.9), kinship="mother", age="learner+30")
    found = messages(check_graph(docs(SAM, mum, aunt), failed=failed))
    assert (found == []) is skipped


def test_learner_without_family() -> None:
    friends = docs(SAM, person("mia", "peer", ("sam", "friend_of", 0.5)))
    assert messages(check_graph(friends)) == [
        "sam.yaml: relationships: learner 'sam' has no family (give a person a relationship such as parent_of or "
        "grandparent_of to 'sam', or list one here)"
    ]


@pytest.mark.parametrize(
    ("kinds", "expected"),
    [
        (
            ["parent_of", "classmate_of"],
            [
                "sam.yaml: relationships[0].kind: contradictory relationship with 'mum': child_of and classmate_of "
                "(family of that generation is not a classmate)",
            ],
        ),
        (
            ["parent_of", "sibling_of"],
            [
                "sam.yaml: relationships[0].kind: contradictory kinship with 'mum': child_of and sibling_of "
                "(a person has one family tie to another)",
            ],
        ),
    ],
)
def test_contradictions_between_ties_written_in_different_files(kinds: list[str], expected: list[str]) -> None:
    first, second = kinds
    # mum declares one tie; the learner declares the other from their side (its inverse reaches mum).
    # The contradiction is reported once, in the file that comes later (sam.yaml), whatever the load order.
    mum = person("mum", "family", ("sam", first, 0.9), kinship="mother", age="learner+30")
    learner = person("sam", "learner", ("mum", INVERSE[second], 0.5))
    assert messages(check_graph(docs(learner, mum))) == expected
    assert messages(check_graph(docs(mum, learner))) == expected


def test_three_kin_kinds_for_one_pair_report_each_clash_once() -> None:
    rels = [("sam", kind, 0.5) for kind in ("parent_of", "sibling_of", "cousin_of")]
    p = person("p", "family", *rels, age="learner+30")
    assert messages(check_graph(docs(SAM, p))) == [
        "p.yaml: relationships[1].kind: contradictory kinship with 'sam': parent_of and sibling_of "
        "(a person has one family tie to another)",
        "p.yaml: relationships[2].kind: contradictory kinship with 'sam': cousin_of, parent_of and sibling_of "
        "(a person has one family tie to another)",
    ]


def test_a_tie_written_on_both_sides_is_checked_once() -> None:
    young = person("p", "family", ("sam", "parent_of", 0.5), age="learner+10")
    learner = person("sam", "learner", ("p", "child_of", 0.5))
    assert messages(check_graph(docs(learner, young))) == [
        "p.yaml: relationships[0].kind: 'p' parent_of 'sam' but is only 10 years older (expected at least 14 years "
        "older)"
    ]


def test_a_cousin_may_also_be_a_classmate() -> None:
    cousin = person("kai", "family", ("sam", "cousin_of", 0.6), ("sam", "classmate_of", 0.6), kinship="cousin")
    assert check_graph(docs(SAM, cousin)) == []


@pytest.mark.parametrize(
    ("kind", "age", "expected"),
    [
        (
            "parent_of",
            "learner+13",
            "'p' parent_of 'sam' but is only 13 years older (expected at least 14 years older)",
        ),
        (
            "grandparent_of",
            "learner+29",
            "'p' grandparent_of 'sam' but is only 29 years older (expected at least 30 years older)",
        ),
        (
            "aunt_uncle_of",
            "learner-1",
            "'p' aunt_uncle_of 'sam' but is 1 year younger (expected at least 1 year older)",
        ),
        ("aunt_uncle_of", "learner", "'p' aunt_uncle_of 'sam' but is the same age (expected at least 1 year older)"),
    ],
)
def test_implausible_age_gaps(kind: str, age: str, expected: str) -> None:
    p = person("p", "family", ("sam", kind, 0.5), age=age)
    assert messages(check_graph(docs(SAM, p))) == [f"p.yaml: relationships[0].kind: {expected}"]


def test_age_gap_also_checked_when_the_child_declares_the_tie() -> None:
    young = person("p", "family", age="learner+10")
    learner = person("sam", "learner", ("p", "child_of", 0.5))
    assert messages(check_graph(docs(learner, young))) == [
        "sam.yaml: relationships[0].kind: 'p' parent_of 'sam' but is only 10 years older (expected at least 14 "
        "years older)"
    ]


def test_absolute_ages_are_not_compared_with_the_learner() -> None:
    """An absolute age says nothing about the learner's age, so no gap can be checked."""
    p = person("p", "family", ("sam", "parent_of", 0.5), age=15, kinship="mother")
    assert check_graph(docs(SAM, p)) == []


def test_kinship_word_needs_the_matching_tie() -> None:
    aunt = person("lena", "family", ("sam", "aunt_uncle_of", 0.5), kinship="mother", age="learner+28")
    assert messages(check_graph(docs(SAM, aunt))) == [
        "lena.yaml: kinship: kinship 'mother' means parent_of 'sam', but the relationship is aunt_uncle_of (change one)"
    ]


def test_every_kin_kind_is_known_to_the_graph() -> None:
    assert set(INVERSE) >= KIN
    assert "classmate_of" not in KIN


def test_a_person_defined_twice_is_one_problem() -> None:
    write_world()
    write("personas/mia.yml", MIA)
    with pytest.raises(ConfigError) as caught:
        load_world(WorldPaths())
    assert [str(p) for p in caught.value.problems] == [
        "personas/mia.yml:1: id: person 'mia' is defined twice (also in personas/mia.yaml; keep one file per person)"
    ]
    assert Path("personas/mia.yml").read_text(encoding="utf-8") == MIA


def test_line_of_points_at_nested_items() -> None:
    tree = parse_yaml("a: 1\nrelationships:\n  - to: x\n    kind: y\n  - {to: z}\n", "f")
    assert line_of(tree, ("relationships", 1, "to")) == (5, "relationships[1].to")
    assert line_of(tree, ("relationships", 0, "kind")) == (4, "relationships[0].kind")
    assert line_of(tree, ("relationships", 0, "closeness")) == (3, "relationships[0].closeness")
    assert line_of(tree, ("nothing", "deeper")) == (1, "nothing")


# --- casting ---------------------------------------------------------------------------------------------------

CLOSE = person("close", "peer", ("sam", "classmate_of", 0.95))
FAR = person("far", "peer", ("sam", "classmate_of", 0.05))
CLASSMATE = slot(role="peer", relation="classmate_of")


def cast(graph: Any, part: CastSlot, seed: int, **kw: Any) -> Any:
    return cast_slot(graph, part, stage=kw.pop("stage", "toddler"), learner="sam", seed=seed, **kw)


def test_same_seed_same_pick() -> None:
    g = build_graph([SAM, CLOSE, FAR])
    assert all(cast(g, CLASSMATE, s) == cast(g, CLASSMATE, s) for s in range(20))


def test_different_seeds_eventually_pick_differently() -> None:
    g = build_graph(
        [SAM, person("a", "peer", ("sam", "classmate_of", 0.5)), person("b", "peer", ("sam", "classmate_of", 0.5))]
    )
    picks = [cast(g, CLASSMATE, s).person.id for s in range(30)]
    assert set(picks) == {"a", "b"}
    assert all(not cast(g, CLASSMATE, s).generated for s in range(3))
    assert cast(g, CLASSMATE, 0).reason == "chosen from 2 matching"


def test_casting_is_weighted_by_closeness() -> None:
    g = build_graph([SAM, CLOSE, FAR])
    picks = [cast(g, CLASSMATE, s).person.id for s in range(200)]
    assert 175 <= picks.count("close") <= 199  # expected 190 of 200; "far" is still cast now and then
    assert picks.count("close") + picks.count("far") == 200


def test_people_with_no_tie_to_the_learner_are_cast_rarely() -> None:
    stranger = person("stranger", "peer")
    g = build_graph([SAM, person("friend", "peer", ("sam", "friend_of", 1.0)), stranger])
    anyone = slot(role="peer")
    picks = [cast(g, anyone, s).person.id for s in range(200)]
    assert 1 <= picks.count("stranger") <= 30  # weight 0.05 against 1.0
    assert UNRELATED_WEIGHT == 0.05


def test_taken_people_and_the_learner_are_never_cast() -> None:
    g = build_graph([SAM, CLOSE, FAR])
    assert {cast(g, CLASSMATE, s, taken=frozenset({"close"})).person.id for s in range(30)} == {"far"}
    drafted = cast(g, CLASSMATE, 1, taken=frozenset({"close", "far"}))
    assert drafted.generated is True


def test_stage_filter(world: World) -> None:
    teacher = slot(role="teacher", relation="teacher_of")
    at_school = cast_slot(world.graph, teacher, stage="early_childhood", learner="sam", seed=1)
    assert (at_school.person.id, at_school.generated) == ("ms-lee", False)
    too_young = cast_slot(world.graph, teacher, stage="toddler", learner="sam", seed=1)
    assert too_young.generated is True
    assert too_young.reason == "nobody in the persona graph matches; drafted with Faker"
    assert too_young.person.id.startswith("gen-part-")


def test_trait_filter() -> None:
    kind = person("nana", "family", ("sam", "grandparent_of", 0.5), traits={"agreeableness": 0.9}, age="learner+60")
    stern = person("opa", "family", ("sam", "grandparent_of", 0.5), traits={"agreeableness": 0.2}, age="learner+60")
    g = build_graph([SAM, kind, stern])
    gentle = slot(role="family", relation="grandparent_of", traits={"agreeableness": {"min": 0.7}})
    strict = slot(role="family", relation="grandparent_of", traits={"agreeableness": {"max": 0.3}})
    anyone = slot(role="family", relation="grandparent_of")
    assert {cast(g, gentle, s).person.id for s in range(20)} == {"nana"}
    assert {cast(g, strict, s).person.id for s in range(20)} == {"opa"}
    assert {cast(g, anyone, s).person.id for s in range(20)} == {"nana", "opa"}


def test_relation_and_kinship_filters(world: World) -> None:
    g = world.graph
    assert (
        cast_slot(g, slot(role="peer", relation="friend_of"), stage="toddler", learner="sam", seed=0).person.id == "mia"
    )
    mother = slot(role="family", kinship=["mother"])
    assert {cast_slot(g, mother, stage="toddler", learner="sam", seed=s).person.id for s in range(10)} == {"mum"}
    assert matches(g, world.personas["mum"], mother, "toddler", "sam")
    assert not matches(g, world.personas["grandpa"], mother, "toddler", "sam")


def test_fixture_scenes_cast_the_intended_people(world: World) -> None:
    cast_of = {
        (scene.id, part.slot): cast_slot(world.graph, part, stage=scene.stage, learner="sam", seed=7, scene=scene.id)
        for pack in world.packs
        for scene in pack.scenes
        for part in scene.cast
    }
    assert {k: (c.person.id, c.generated) for k, c in cast_of.items()} == {
        ("sharing-toys", "grandpa"): ("grandpa", False),
        ("kind-words", "teacher"): ("ms-lee", False),
        ("kind-words", "friend"): ("mia", False),
    }


# --- Faker drafts ----------------------------------------------------------------------------------------------

SHOPKEEPER = CastSlot(slot="shopkeeper", role="community")


def test_draft_is_deterministic_in_seed_and_slot() -> None:
    g = build_graph([SAM])
    first = cast(g, SHOPKEEPER, 5)
    again = cast(g, SHOPKEEPER, 5)
    assert first.generated and first.person.generated
    assert first.person == again.person
    assert first.person.model_dump() == again.person.model_dump()
    assert re.fullmatch(r"gen-shopkeeper-[0-9a-f]{6}", first.person.id)
    others = {cast(g, SHOPKEEPER, s).person.id for s in range(6, 12)}
    assert first.person.id not in others and len(others) == 6
    renamed = cast(g, CastSlot(slot="baker", role="community"), 5).person
    assert renamed.id.startswith("gen-baker-")
    assert renamed.id[-6:] != first.person.id[-6:]


def test_drafted_person_recurs_across_scenes_and_stages_with_the_same_slot() -> None:
    g = build_graph([SAM])
    in_spring = cast_slot(g, SHOPKEEPER, stage="toddler", learner="sam", seed=3, scene="market-day")
    years_later = cast_slot(g, SHOPKEEPER, stage="adolescence", learner="sam", seed=3, scene="first-job")
    assert in_spring.generated and years_later.generated
    assert in_spring.person == years_later.person


def test_draft_fits_the_slot_it_was_drafted_for() -> None:
    part = CastSlot.model_validate(
        {"slot": "nan", "role": "family", "kinship": ["grandmother"], "traits": {"openness": {"min": 0.9}}}
    )
    for seed in range(10):
        drafted = draft_person(part, learner="sam", seed=seed, value_ids=("kindness", "honesty", "sharing"))
        assert (drafted.role, drafted.kinship, drafted.address_as) == ("family", "grandmother", "Grandma")
        assert drafted.relationships[0].to == "sam" and drafted.relationships[0].kind == "grandparent_of"
        assert 0.9 <= drafted.traits.openness <= 1.0
        assert all(0.0 <= getattr(drafted.traits, t) <= 1.0 for t in TRAITS)
        assert drafted.age is not None and drafted.age.relative and 50 <= drafted.age.years <= 68
        assert len(drafted.values) == 2 and set(drafted.values) <= {"kindness", "honesty", "sharing"}
        g = build_graph([SAM, drafted])
        assert matches(g, drafted, part, "toddler", "sam")
        assert check_graph(docs(SAM, drafted)) == []


def test_drafted_teacher_is_addressed_formally() -> None:
    teacher = draft_person(CastSlot(slot="teacher", role="teacher"), learner="sam", seed=2)
    assert re.fullmatch(r"(Ms\.|Mr\.) \S+", teacher.address_as or "")
    assert teacher.relationships[0].kind == "teacher_of"
    assert teacher.age is not None and not teacher.age.relative
