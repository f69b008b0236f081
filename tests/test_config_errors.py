"""The exact text a person sees for each kind of mistake in personas, packs and stages files.

Every case starts from the small valid world in `world_fixtures`, breaks exactly one thing, runs
`sim personas validate` or `sim scenarios validate`, and asserts the whole of stderr: one
`path:line: key.path: what is wrong (what was expected)` line per problem and the summary line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import REPO, run_cli
from world_fixtures import (
    GRANDPA,
    MIA,
    MS_LEE,
    MUM,
    PACK,
    PERSONAS,
    SAM,
    replace_once,
    write,
    write_pack,
    write_world,
)

PERSONAS_VALIDATE = ("personas", "validate")
SCENARIOS_VALIDATE = ("scenarios", "validate")
PACK_FILE = "scenarios/first-steps/pack.yaml"
STAGE_IDS = "adolescence, early_adolescence, early_childhood, late_childhood, middle_childhood, toddler, young_adult"
VALUE_IDS = (
    "anti-corruption, courage, empathy, fairness, forgiveness, gratitude, honesty, integrity, journalism-ethics, "
    "kindness, legal-ethics, medical-ethics, ..."
)
PERSONA_KEYS = (
    "id, name, address_as, role, kinship, pronouns, age, stages, traits, values, voice, backstory, relationships, "
    "generated"
)
RELATION_KINDS = (
    "parent_of, child_of, grandparent_of, grandchild_of, sibling_of, cousin_of, aunt_uncle_of, niece_nephew_of, "
    "spouse_of, guardian_of, ward_of, teacher_of, student_of, classmate_of, friend_of, coach_of, coached_by, "
    "mentor_of, mentored_by, neighbor_of or colleague_of"
)
LEARNER_ROLES = (
    "student, peer, child, sibling, grandchild, niece_nephew, cousin, friend, teammate, neighbor, apprentice, "
    "intern, colleague, volunteer, reader, patient or citizen"
)
SCENE_KEYS = (
    "id, title, stage, values, setting, learner_role, cast, objective, opening, beats, reflection, turn_limit, follows"
)
SHIPPED_STAGES = (REPO / "sim" / "data" / "stages.yaml").read_text(encoding="utf-8")


def summary(lines: list[str]) -> str:
    """The closing line the CLI prints after the problems."""
    files = len({line.split(":", 1)[0] for line in lines})
    problems = f"{len(lines)} problem{'' if len(lines) == 1 else 's'}"
    return f"{problems} in {files} file{'' if files == 1 else 's'}; nothing was changed"


@dataclass(frozen=True)
class Case:
    """One mistake: how to make it, which command finds it, and every line it prints."""

    name: str
    setup: Callable[[], object]
    expected: list[str]
    args: tuple[str, ...] = PERSONAS_VALIDATE


def persona(person_id: str, old: str, new: str) -> Callable[[], object]:
    """Write the valid world with one persona edited (`old` must occur exactly once)."""
    return lambda: write_world(personas={person_id: replace_once(PERSONAS[person_id], old, new)})


def pack(old: str, new: str) -> Callable[[], object]:
    """Write the valid world with the pack edited (`old` must occur exactly once)."""
    return lambda: write_world(pack=replace_once(PACK, old, new))


def stages(old: str, new: str) -> Callable[[], object]:
    """Write the valid world and a copy of the shipped stages file with one edit, as stages.yaml."""

    def setup() -> None:
        write_world()
        write("stages.yaml", replace_once(SHIPPED_STAGES, old, new))

    return setup


def world_with(**texts: str | None) -> Callable[[], object]:
    return lambda: write_world(personas=dict(texts))


def extra_file(relpath: str, text: str | bytes, **texts: str | None) -> Callable[[], object]:
    def setup() -> None:
        write_world(personas=dict(texts))
        write(relpath, text)

    return setup


def second_pack(text: str, follows: str) -> Callable[[], object]:
    """The valid world, with scene kind-words following `follows`, and a pack `other` holding `text`."""

    def setup() -> None:
        write_world(pack=replace_once(PACK, "follows: [sharing-toys]", f"follows: [{follows}]"))
        write_pack(text, pack_id="other")

    return setup


OTHER_PACK = """\
title: Other
description: Another pack.
version: '1'
scenes:
  - id: intro
    title: Later on
    stage: adolescence
    values: [sharing]
    setting: {place: a park, time: noon, situation: a picnic}
    learner_role: student
    objective: Something.
    opening: I am {age}.
    beats:
      - {speaker: learner, intent: talk, lines: [Hello.]}
"""

PERSONA_CASES = [
    Case(
        "misspelt key has a did-you-mean",
        persona("mum", "address_as:", "adress_as:"),
        [
            "personas/mum.yaml:2: adress_as: unknown key 'adress_as' (did you mean 'address_as'? "
            f"allowed here: {PERSONA_KEYS})"
        ],
    ),
    Case(
        "closeness above 1",
        persona("mum", "closeness: 0.9", "closeness: 1.5"),
        ["personas/mum.yaml:9: relationships[0].closeness: 1.5 is out of range (expected a number at most 1.0)"],
    ),
    Case(
        "closeness that is not a number",
        persona("grandpa", "closeness: 0.85", "closeness: high"),
        [
            "personas/grandpa.yaml:12: relationships[0].closeness: 'high' is not a number "
            "(expected a number such as 0.5)"
        ],
    ),
    Case(
        "trait out of range",
        persona("grandpa", "agreeableness: 0.8", "agreeableness: 1.2"),
        ["personas/grandpa.yaml:8: traits.agreeableness: 1.2 is out of range (expected a number at most 1.0)"],
    ),
    Case(
        "misspelt trait",
        persona("grandpa", "agreeableness: 0.8", "agreeablenes: 0.8"),
        [
            "personas/grandpa.yaml:8: traits.agreeablenes: unknown key 'agreeablenes' (did you mean "
            "'agreeableness'? allowed here: openness, conscientiousness, extraversion, agreeableness, neuroticism)"
        ],
    ),
    Case(
        "bad role has a did-you-mean",
        persona("ms-lee", "role: teacher", "role: techer"),
        [
            "personas/ms-lee.yaml:3: role: 'techer' is not allowed (expected one of: learner, teacher, peer, "
            "family or community; did you mean 'teacher'?)"
        ],
    ),
    Case(
        "bad pronouns",
        persona("mia", "pronouns: she/her", "pronouns: she"),
        [
            "personas/mia.yaml:4: pronouns: 'she' is not allowed (expected one of: she/her, he/him or they/them; "
            "did you mean 'she/her'?)"
        ],
    ),
    Case(
        "bad age string",
        persona("mia", "age: learner", "age: learner+two"),
        [
            "personas/mia.yaml:5: age: 'learner+two' is not an age (expected years such as 42, or relative to the "
            "learner such as 'learner+2', 'learner-1' or 'learner')"
        ],
    ),
    Case(
        "age beyond 120",
        persona("mia", "age: learner", "age: 130"),
        ["personas/mia.yaml:5: age: 130 is out of range (expected an age from 0 to 120)"],
    ),
    Case(
        "YAML syntax error names the line",
        persona("mia", "role: peer", "role: peer: x"),
        [
            "personas/mia.yaml:3: (top level): invalid YAML: mapping values are not allowed here "
            "(fix the syntax at this line)"
        ],
    ),
    Case(
        "unclosed flow list is reported where the parser noticed",
        persona("mia", "role: peer", "role: [peer"),
        [
            "personas/mia.yaml:4: (top level): invalid YAML: expected ',' or ']', but got ':' "
            "(fix the syntax at this line)"
        ],
    ),
    Case(
        "tab indentation",
        persona("mia", "role: peer", "role:\tpeer\n\tx: 1"),
        ["personas/mia.yaml:3: (top level): invalid YAML: a tab character (indent with spaces)"],
    ),
    Case(
        "duplicate key",
        persona("mia", "role: peer", "role: peer\nrole: peer"),
        ["personas/mia.yaml:4: role: key 'role' appears twice (delete one of them)"],
    ),
    Case(
        "empty file",
        world_with(mia=""),
        ["personas/mia.yaml:1: (top level): found an empty file (expected a mapping of keys to values)"],
    ),
    Case(
        "a list at top level",
        world_with(mia="- name: Mia\n- role: peer\n"),
        ["personas/mia.yaml:1: (top level): found a list (expected a mapping of keys to values)"],
    ),
    Case(
        "not UTF-8",
        extra_file("personas/mia.yaml", MIA.encode() + b"backstory: caf\xe9\n"),
        [
            "personas/mia.yaml:9: (top level): not UTF-8 text: unexpected byte 0xe9 in column 15 "
            "(save the file as UTF-8)"
        ],
    ),
    Case(
        "id does not match the file name",
        world_with(mia="id: maya\n" + MIA),
        ["personas/mia.yaml:1: id: id 'maya' does not match the file name (expected 'mia', or remove the id key)"],
    ),
    Case(
        "file name is not a valid id",
        extra_file("personas/Mia.yaml", MIA, mia=None),
        [
            "personas/Mia.yaml:1: id: file name 'Mia' is not a valid persona id (rename the file using lowercase "
            "letters, digits, '-' and '_')"
        ],
    ),
    Case(
        "person defined in two files",
        extra_file("personas/mia.yml", MIA),
        ["personas/mia.yml:1: id: person 'mia' is defined twice (also in personas/mia.yaml; keep one file per person)"],
    ),
    Case(
        "missing name",
        persona("mia", "name: Mia Torres\n", ""),
        ["personas/mia.yaml:1: name: missing required key (add it)"],
    ),
    Case(
        "empty name",
        persona("mia", "name: Mia Torres", "name: ''"),
        ["personas/mia.yaml:1: name: is empty (expected some text)"],
    ),
    Case(
        "missing address_as",
        persona("ms-lee", "address_as: Ms. Lee\n", ""),
        [
            "personas/ms-lee.yaml:1: address_as: missing required key (say how the learner addresses this person, "
            "e.g. 'Grandpa' or 'Ms. Rivera')"
        ],
    ),
    Case(
        "missing age",
        persona("ms-lee", "age: 41\n", ""),
        ["personas/ms-lee.yaml:1: age: missing required key (an age such as 42, or 'learner+2')"],
    ),
    Case(
        "relationships is not a list",
        persona(
            "grandpa",
            "relationships:\n  - to: sam\n    kind: grandparent_of\n    closeness: 0.85\n",
            "relationships: sam\n",
        ),
        ["personas/grandpa.yaml:9: relationships: found 'sam' (expected a list of relationships)"],
    ),
    Case(
        "misspelt relationship key",
        persona("grandpa", "closeness: 0.85", "closness: 0.85"),
        [
            "personas/grandpa.yaml:12: relationships[0].closness: unknown key 'closness' (did you mean 'closeness'? "
            "allowed here: to, kind, closeness)"
        ],
    ),
    Case(
        "bad relation kind",
        persona("grandpa", "kind: grandparent_of", "kind: grandparent"),
        [
            "personas/grandpa.yaml:11: relationships[0].kind: 'grandparent' is not allowed (expected one of: "
            f"{RELATION_KINDS}; did you mean 'grandparent_of'?)"
        ],
    ),
    Case(
        "dangling relationship target",
        persona("mia", "{to: sam, kind: friend_of", "{to: samm, kind: friend_of"),
        [
            "personas/mia.yaml:8: relationships[1].to: 'samm' is not a known person "
            "(did you mean 'sam'? expected one of: grandpa, ms-lee, mum, sam)"
        ],
    ),
    Case(
        "self-relation",
        persona("mia", "{to: sam, kind: friend_of", "{to: mia, kind: friend_of"),
        ["personas/mia.yaml:8: relationships[1].to: 'mia' cannot be related to themself (name another person)"],
    ),
    Case(
        "duplicate relationship",
        persona("mia", "kind: friend_of", "kind: classmate_of"),
        ["personas/mia.yaml:8: relationships[1]: classmate_of 'sam' is listed twice (keep one)"],
    ),
    Case(
        "mother who is also a classmate",
        persona("mum", "  - {to: grandpa,", "  - {to: sam, kind: classmate_of, closeness: 0.5}\n  - {to: grandpa,"),
        [
            "personas/mum.yaml:10: relationships[1].kind: contradictory relationship with 'sam': parent_of "
            "and classmate_of (family of that generation is not a classmate)"
        ],
    ),
    Case(
        "two kin kinds for one pair",
        persona("mum", "  - {to: grandpa,", "  - {to: sam, kind: aunt_uncle_of, closeness: 0.5}\n  - {to: grandpa,"),
        [
            "personas/mum.yaml:10: relationships[1].kind: contradictory kinship with 'sam': aunt_uncle_of "
            "and parent_of (a person has one family tie to another)"
        ],
    ),
    Case(
        "kinship word contradicts the relation",
        persona("grandpa", "kinship: grandfather", "kinship: uncle"),
        [
            "personas/grandpa.yaml:4: kinship: kinship 'uncle' means aunt_uncle_of 'sam', but the relationship "
            "is grandparent_of (change one)"
        ],
    ),
    Case(
        "kinship word without the matching relation",
        persona("mia", "role: peer", "role: family\nkinship: sister"),
        [
            "personas/mia.yaml:4: kinship: kinship 'sister' but no sibling_of relationship to a learner "
            "(add `- {to: <learner>, kind: sibling_of}` to relationships)"
        ],
    ),
    Case(
        "kinship on a non-family role",
        persona("mia", "role: peer", "role: peer\nkinship: sister"),
        ["personas/mia.yaml:4: kinship: kinship 'sister' needs role 'family' (role is 'peer')"],
    ),
    Case(
        "learner with a kinship",
        persona("sam", "role: learner", "role: learner\nkinship: sibling"),
        ["personas/sam.yaml:3: kinship: a learner has no kinship (kinship describes family of the learner)"],
    ),
    Case(
        "learner without family",
        world_with(mum=None, grandpa=None),
        [
            "personas/sam.yaml:1: relationships: learner 'sam' has no family (give a person a relationship such as "
            "parent_of or grandparent_of to 'sam', or list one here)"
        ],
    ),
    Case(
        "parent less than 14 years older",
        persona("mum", "age: learner+31", "age: learner+12"),
        [
            "personas/mum.yaml:9: relationships[0].kind: 'mum' parent_of 'sam' but is only 12 years older "
            "(expected at least 14 years older)"
        ],
    ),
    Case(
        "unknown value has a did-you-mean",
        persona("mum", "[honesty, kindness]", "[honsety, kindness]"),
        [
            "personas/mum.yaml:7: values[0]: unknown value 'honsety' (did you mean 'honesty'? expected one of: "
            f"{VALUE_IDS})"
        ],
    ),
    Case(
        "unknown stage in a persona",
        persona("ms-lee", "[early_childhood]", "[early_childhod]"),
        [
            "personas/ms-lee.yaml:6: stages[0]: unknown stage 'early_childhod' (did you mean 'early_childhood'? "
            f"expected one of: {STAGE_IDS})"
        ],
    ),
    Case(
        "age in quotes",
        persona("ms-lee", "age: 41", "age: '41'"),
        ["personas/ms-lee.yaml:5: age: '41' is text, not a number (write the number without quotes)"],
    ),
    Case(
        "key left empty",
        persona("mia", "name: Mia Torres", "name:"),
        ["personas/mia.yaml:1: name: is empty (expected text)"],
    ),
    Case(
        "duplicate nested key names its key path",
        persona("grandpa", "  agreeableness: 0.8", "  agreeableness: 0.8\n  agreeableness: 0.7"),
        ["personas/grandpa.yaml:9: traits.agreeableness: key 'agreeableness' appears twice (delete one of them)"],
    ),
    Case(
        "control character",
        world_with(mia=MIA.replace("Mia Torres", "Mia\x1f Torres")),
        [
            "personas/mia.yaml:1: (top level): invalid YAML: control character '\\x1f' is not allowed "
            "(remove the control character)"
        ],
    ),
    Case(
        "nested too deeply",
        world_with(mia=MIA + "backstory: " + "[" * 400 + "]" * 400 + "\n"),
        [
            "personas/mia.yaml:9: (top level): invalid YAML: lists and mappings nested more than 32 levels deep "
            "(use fewer levels)"
        ],
    ),
    Case(
        "unknown key holding a newline is escaped",
        world_with(mia=MIA + '"a\\nb": 1\n'),
        [f"personas/mia.yaml:9: a\\nb: unknown key 'a\\nb' (allowed here: {PERSONA_KEYS})"],
    ),
    Case(
        "aunt younger than the learner",
        world_with(
            lena="name: Lena Brook\naddress_as: Aunt Lena\nrole: family\nkinship: aunt\nage: learner-1\n"
            "relationships:\n  - {to: sam, kind: aunt_uncle_of}\n"
        ),
        [
            "personas/lena.yaml:7: relationships[0].kind: 'lena' aunt_uncle_of 'sam' but is 1 year younger "
            "(expected at least 1 year older)"
        ],
    ),
    Case(
        "no persona directory",
        lambda: None,
        ["personas: (top level): persona directory not found (create it, or point --personas at one)"],
    ),
]

SCENARIO_CASES = [
    Case(
        "unknown stage in a scene",
        pack("stage: toddler", "stage: todler"),
        [
            f"{PACK_FILE}:7: scenes[0].stage: unknown stage 'todler' (did you mean 'toddler'? expected one of: "
            f"{STAGE_IDS})"
        ],
    ),
    Case(
        "unknown value in a scene",
        pack("[kindness, respect]", "[kindnes, respect]"),
        [
            f"{PACK_FILE}:30: scenes[1].values[0]: unknown value 'kindnes' (did you mean 'kindness'? "
            f"expected one of: {VALUE_IDS})"
        ],
    ),
    Case(
        "placeholder typo",
        pack('"Can you share, {learner}?"', '"Can you share, {learnr}?"'),
        [
            f"{PACK_FILE}:19: scenes[0].beats[0].lines[0]: unknown placeholder {{learnr}} (did you mean {{learner}}? "
            "expected one of: grandpa, speaker, learner, learner_name, age, place, time, situation, memory, food, "
            "city, street, ...)"
        ],
    ),
    Case(
        "beat-only placeholder in the opening",
        pack("opening: I am {age}. Today", "opening: I am {age}. {speaker}"),
        [
            f"{PACK_FILE}:14: scenes[0].opening: unknown placeholder {{speaker}} (expected one of: grandpa, "
            "learner_name, age, place, time, situation, memory, food, city, street, weekday, month, ...)"
        ],
    ),
    Case(
        "unclosed brace",
        pack('"Can you share, {learner}?"', '"Can you share, {learner?"'),
        [
            f"{PACK_FILE}:19: scenes[0].beats[0].lines[0]: unbalanced brace: '{{' is never closed (close it, or "
            "write '{{' for a literal brace)"
        ],
    ),
    Case(
        "stray closing brace",
        pack('"Can you share, {learner}?"', '"Can you share, learner}?"'),
        [
            f"{PACK_FILE}:19: scenes[0].beats[0].lines[0]: unbalanced brace: '}}' is never opened (open it, or "
            "write '}}' for a literal brace)"
        ],
    ),
    Case(
        "empty placeholder",
        pack('"Can you share, {learner}?"', '"Can you share, {}?"'),
        [
            f"{PACK_FILE}:19: scenes[0].beats[0].lines[0]: empty placeholder {{}} (write a name inside the braces, "
            "or {{ }} for literal braces)"
        ],
    ),
    Case(
        "placeholder with a conversion",
        pack('"Can you share, {learner}?"', '"Can you share, {learner!r}?"'),
        [
            f"{PACK_FILE}:19: scenes[0].beats[0].lines[0]: placeholder {{learner}} has a format spec or conversion "
            "(write it as {learner})"
        ],
    ),
    Case(
        "unknown beat speaker",
        pack("- speaker: teacher", "- speaker: teachr"),
        [
            f"{PACK_FILE}:39: scenes[1].beats[0].speaker: unknown speaker 'teachr' (did you mean 'teacher'? "
            "expected one of: friend, learner, teacher)"
        ],
    ),
    Case(
        "beat addressed to its own speaker",
        pack("        to: friend", "        to: learner"),
        [
            f"{PACK_FILE}:46: scenes[1].beats[1].to: a beat cannot address its own speaker (use one of: friend, "
            "teacher, or leave 'to' out)"
        ],
    ),
    Case(
        "duplicate slot",
        pack(
            "      - {slot: friend, role: peer, relation: classmate_of}\n",
            "      - {slot: friend, role: peer, relation: classmate_of}\n"
            "      - {slot: friend, role: peer, relation: friend_of}\n",
        ),
        [f"{PACK_FILE}:36: scenes[1].cast[2].slot: slot 'friend' appears twice (name slots apart)"],
    ),
    Case(
        "reserved slot name",
        pack(
            "      - {slot: friend, role: peer, relation: classmate_of}\n",
            "      - {slot: friend, role: peer, relation: classmate_of}\n      - {slot: time, role: community}\n",
        ),
        [
            f"{PACK_FILE}:36: scenes[1].cast[2].slot: slot name 'time' is reserved for a placeholder "
            "(choose another name, e.g. 'teacher' or 'friend')"
        ],
    ),
    Case(
        "slot with an unknown trait",
        pack(
            "relation: grandparent_of}",
            "relation: grandparent_of, traits: {kindness: {min: 0.5}}}",
        ),
        [
            f"{PACK_FILE}:12: scenes[0].cast[0]: unknown trait 'kindness' in traits (expected one of: openness, "
            "conscientiousness, extraversion, agreeableness, neuroticism)"
        ],
    ),
    Case(
        "slot trait range upside down",
        pack(
            "relation: grandparent_of}",
            "relation: grandparent_of, traits: {openness: {min: 0.8, max: 0.2}}}",
        ),
        [f"{PACK_FILE}:12: scenes[0].cast[0].traits.openness: min 0.8 is above max 0.2 (expected min <= max)"],
    ),
    Case(
        "slot cast as the learner",
        pack("- {slot: grandpa, role: family, relation: grandparent_of}", "- {slot: grandpa, role: learner}"),
        [
            f"{PACK_FILE}:12: scenes[0].cast[0]: a cast slot cannot be the learner (the learner is always in the "
            "scene as 'learner')"
        ],
    ),
    Case(
        "follows an unknown scene",
        pack("follows: [sharing-toys]", "follows: [sharing-toy]"),
        [
            f"{PACK_FILE}:50: scenes[1].follows[0]: unknown scene 'sharing-toy' in pack 'first-steps' "
            "(did you mean 'sharing-toys'? expected one of: kind-words, sharing-toys)"
        ],
    ),
    Case(
        "follows an unknown pack",
        pack("follows: [sharing-toys]", "follows: [other/sharing-toys]"),
        [f"{PACK_FILE}:50: scenes[1].follows[0]: unknown pack 'other' (expected one of: first-steps)"],
    ),
    Case(
        "follows a later-stage scene",
        lambda: write_world(pack=replace_once(PACK, "stage: toddler", "stage: adolescence")),
        [
            f"{PACK_FILE}:50: scenes[1].follows[0]: 'sharing-toys' is at stage 'adolescence', later than this "
            "scene's 'early_childhood' (a scene can only follow one from its own or an earlier stage)"
        ],
    ),
    Case(
        "follows a later-stage scene in another pack",
        second_pack(OTHER_PACK, "other/intro"),
        [
            f"{PACK_FILE}:50: scenes[1].follows[0]: 'other/intro' is at stage 'adolescence', later than this "
            "scene's 'early_childhood' (a scene can only follow one from its own or an earlier stage)"
        ],
        (*SCENARIOS_VALIDATE, "scenarios/first-steps"),
    ),
    Case(
        "follow-on loop inside a pack",
        lambda: write_world(
            pack=replace_once(
                PACK.replace("stage: toddler", "stage: early_childhood"),
                "    reflection: That",
                "    follows: [kind-words]\n    reflection: That",
            )
        ),
        [
            f"{PACK_FILE}:26: scenes[0].follows[0]: 'kind-words' comes later in this pack (move it above "
            "'sharing-toys': a scene can only follow one that comes before it)"
        ],
    ),
    Case(
        "scene follows itself",
        pack("follows: [sharing-toys]", "follows: [kind-words]"),
        [f"{PACK_FILE}:50: scenes[1].follows[0]: scene 'kind-words' cannot follow itself (name an earlier scene)"],
    ),
    Case(
        "duplicate scene id",
        pack("- id: kind-words", "- id: sharing-toys"),
        [
            f"{PACK_FILE}:27: scenes[1].id: scene 'sharing-toys' appears twice in this pack (rename one)",
            f"{PACK_FILE}:50: scenes[1].follows[0]: scene 'sharing-toys' cannot follow itself (name an earlier scene)",
        ],
    ),
    Case(
        "pack id does not match its directory",
        lambda: write_world(pack="id: first-step\n" + PACK),
        [
            f"{PACK_FILE}:1: id: id 'first-step' does not match the directory name (expected 'first-steps', "
            "or remove the id key)"
        ],
    ),
    Case(
        "bad version",
        pack("version: 1.0.0", "version: v1"),
        [
            f"{PACK_FILE}:3: version: 'v1' is not a valid version (expected a version such as 1.0.0)",
        ],
    ),
    Case(
        "version written as a number",
        pack("version: 1.0.0", "version: 1.0"),
        [f"{PACK_FILE}:3: version: found 1.0 (expected text; put it in quotes, e.g. '1.0.0')"],
    ),
    Case(
        "follows a scene in a broken pack beside it",
        second_pack(OTHER_PACK.replace("learner_role: student", "learner_rol: student"), "other/intro"),
        [
            f"{PACK_FILE}:50: scenes[1].follows[0]: pack 'other' has errors of its own (run `sim scenarios "
            "validate scenarios/other`)"
        ],
        (*SCENARIOS_VALIDATE, "scenarios/first-steps"),
    ),
    Case(
        "follow-on loop across packs",
        second_pack(
            replace_once(OTHER_PACK, "stage: adolescence", "stage: early_childhood")
            + "    follows: [first-steps/kind-words]\n",
            "other/intro",
        ),
        [
            f"{PACK_FILE}:50: scenes[1].follows[0]: follow-on loop: first-steps/kind-words follows other/intro, "
            "which follows first-steps/kind-words (remove one of these links)"
        ],
    ),
    Case(
        "unknown key at pack level (no close match)",
        lambda: write_world(pack=PACK + "author: me\n"),
        [f"{PACK_FILE}:51: author: unknown key 'author' (allowed here: id, title, description, version, scenes)"],
    ),
    Case(
        "misspelt scene key",
        pack("    objective: I learn to share", "    objectve: I learn to share"),
        [
            f"{PACK_FILE}:5: scenes[0].objective: missing required key (add it)",
            f"{PACK_FILE}:13: scenes[0].objectve: unknown key 'objectve' (did you mean 'objective'? "
            f"allowed here: {SCENE_KEYS})",
        ],
    ),
    Case(
        "misspelt setting key inside a flow mapping",
        pack("setting: {place: the cottage,", "setting: {plase: the cottage,"),
        [
            f"{PACK_FILE}:9: scenes[0].setting.place: missing required key (add it)",
            f"{PACK_FILE}:9: scenes[0].setting.plase: unknown key 'plase' (did you mean 'place'? "
            "allowed here: place, time, situation)",
        ],
    ),
    Case(
        "bad learner_role",
        pack("learner_role: grandchild", "learner_role: grandkid"),
        [
            f"{PACK_FILE}:10: scenes[0].learner_role: 'grandkid' is not allowed (expected one of: {LEARNER_ROLES}; "
            "did you mean 'grandchild'?)"
        ],
    ),
    Case(
        "exchanges below 1",
        pack("        to: friend", "        exchanges: 0"),
        [f"{PACK_FILE}:46: scenes[1].beats[1].exchanges: 0 is out of range (expected a number at least 1)"],
    ),
    Case(
        "beat with no lines",
        pack('          - "Share, {speaker}!"\n          - "Here, {speaker}."\n', ""),
        [f"{PACK_FILE}:23: scenes[0].beats[1].lines: is empty (expected a list of line variants)"],
    ),
    Case(
        "pack with no scenes",
        lambda: write_world(pack=PACK.split("scenes:")[0] + "scenes: []\n"),
        [f"{PACK_FILE}:4: scenes: has too few items (expected at least 1)"],
    ),
    Case(
        "a persona mistake also fails scenarios validate",
        persona("mia", "role: peer", "role: pear"),
        [
            "personas/mia.yaml:3: role: 'pear' is not allowed (expected one of: learner, teacher, peer, family or "
            "community; did you mean 'peer'?)"
        ],
    ),
]
SCENARIO_CASES = [
    Case(c.name, c.setup, c.expected, c.args if c.args != PERSONAS_VALIDATE else SCENARIOS_VALIDATE)
    for c in SCENARIO_CASES
]

WITH_STAGES = (*SCENARIOS_VALIDATE, "--stages", "stages.yaml")
STAGES_CASES = [
    Case(
        "reading grade band reversed",
        stages("reading_grade: [0, 4]", "reading_grade: [4, 0]"),
        ["stages.yaml:23: stages[2].language: reading_grade [4.0, 0.0] is reversed (expected [low, high])"],
        WITH_STAGES,
    ),
    Case(
        "stages out of order",
        stages("ages: [6, 8]", "ages: [1, 8]"),
        [
            "stages.yaml:21: stages[2].ages: stage 'middle_childhood' starts at age 1, younger than "
            "'early_childhood' above it (list stages from youngest to oldest)"
        ],
        WITH_STAGES,
    ),
    Case(
        "age band reversed",
        stages("ages: [6, 8]", "ages: [8, 6]"),
        ["stages.yaml:19: stages[2]: ages [8, 6] is not a valid band (expected [from, to] with 0 <= from <= to)"],
        WITH_STAGES,
    ),
    Case(
        "stage listed twice",
        stages("id: middle_childhood", "id: early_childhood"),
        ["stages.yaml:19: stages[2].id: stage 'early_childhood' is listed twice (list each stage once)"],
        WITH_STAGES,
    ),
    Case(
        "misspelt language key",
        stages("max_words_per_turn: 12", "max_word_per_turn: 12"),
        [
            "stages.yaml:23: stages[2].language.max_word_per_turn: unknown key 'max_word_per_turn' (did you mean "
            "'max_words_per_turn'? allowed here: max_words_per_turn, reading_grade)",
            "stages.yaml:23: stages[2].language.max_words_per_turn: missing required key (add it)",
        ],
        WITH_STAGES,
    ),
    Case(
        "stages file that does not exist",
        lambda: write_world(),
        ["nope.yaml: (top level): file not found (check the --stages path)"],
        (*SCENARIOS_VALIDATE, "--stages", "nope.yaml"),
    ),
    Case(
        "values file that does not exist",
        lambda: write_world(),
        ["nope.yaml: (top level): file not found (check the --values path)"],
        (*SCENARIOS_VALIDATE, "--values", "nope.yaml"),
    ),
    Case(
        "value listed twice in a values override",
        extra_file(
            "values.yaml",
            "values:\n"
            + "".join(
                f"  - {{id: {v}, label: {v.title()}, description: A value.}}\n"
                for v in ("sharing", "sharing", "kindness", "respect", "honesty")
            ),
        ),
        ["values.yaml:3: values[1].id: value 'sharing' is listed twice (list each value once)"],
        (*SCENARIOS_VALIDATE, "--values", "values.yaml"),
    ),
]

ALL_CASES = PERSONA_CASES + SCENARIO_CASES + STAGES_CASES


def test_the_fixture_world_is_valid() -> None:
    write_world()
    personas = run_cli(*PERSONAS_VALIDATE)
    scenarios = run_cli(*SCENARIOS_VALIDATE)
    assert (personas.exit_code, personas.stderr) == (0, "")
    assert personas.stdout == "ok: 5 personas (1 learner), 12 relationship edges, no problems\n"
    assert (scenarios.exit_code, scenarios.stderr) == (0, "")
    assert scenarios.stdout == "ok: 1 pack, 2 scenes, 5 personas, no problems\n"


def test_there_are_enough_distinct_mistakes() -> None:
    messages = {line for case in ALL_CASES for line in case.expected}
    assert len({c.name for c in ALL_CASES}) == len(ALL_CASES)
    assert len(messages) >= 60


@pytest.mark.parametrize("case", ALL_CASES, ids=[c.name for c in ALL_CASES])
def test_exact_error_text(case: Case) -> None:
    case.setup()
    result = run_cli(*case.args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == "\n".join([*case.expected, summary(case.expected)]) + "\n"
    assert "Traceback" not in result.output


def test_every_problem_in_every_file_is_reported_sorted() -> None:
    bad_mia = replace_once(MIA, "closeness: 0.9", "closeness: 1.5").replace("pronouns: she/her", "pronouns: she")
    write_world(
        personas={"mia": bad_mia, "ms-lee": replace_once(MS_LEE, "role: teacher", "role: techer")},
        pack=replace_once(PACK, "stage: toddler", "stage: todler"),
    )
    before = {p: p.read_bytes() for p in Path().rglob("*.yaml")}
    result = run_cli(*SCENARIOS_VALIDATE)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "personas/mia.yaml:4: pronouns: 'she' is not allowed (expected one of: she/her, he/him or they/them; "
        "did you mean 'she/her'?)",
        "personas/mia.yaml:8: relationships[1].closeness: 1.5 is out of range (expected a number at most 1.0)",
        "personas/ms-lee.yaml:3: role: 'techer' is not allowed (expected one of: learner, teacher, peer, family or "
        "community; did you mean 'teacher'?)",
        f"{PACK_FILE}:7: scenes[0].stage: unknown stage 'todler' (did you mean 'toddler'? expected one of: "
        f"{STAGE_IDS})",
        "4 problems in 3 files; nothing was changed",
    ]
    assert {p: p.read_bytes() for p in Path().rglob("*.yaml")} == before


def test_graph_problems_in_different_files_are_all_reported() -> None:
    write_world(
        personas={
            "mia": replace_once(MIA, "kind: friend_of", "kind: classmate_of"),
            "mum": replace_once(MUM, "age: learner+31", "age: learner+12"),
            "grandpa": replace_once(GRANDPA, "kinship: grandfather", "kinship: uncle"),
        }
    )
    result = run_cli(*PERSONAS_VALIDATE)
    assert result.exit_code == 2
    assert [line.split(": ", 1)[0] for line in result.stderr.splitlines()] == [
        "personas/grandpa.yaml:4",
        "personas/mia.yaml:8",
        "personas/mum.yaml:9",
        "3 problems in 3 files; nothing was changed",
    ]


def test_the_learner_file_itself_can_declare_the_family_tie() -> None:
    """The no-family check accepts a tie written on the learner's side too."""
    learner = SAM + "relationships:\n  - {to: mum, kind: child_of}\n"
    write_world(personas={"sam": learner, "grandpa": None, "mum": MUM.split("relationships:")[0]})
    result = run_cli(*PERSONAS_VALIDATE)
    assert (result.exit_code, result.stderr) == (0, "")


def test_graph_checks_of_healthy_files_survive_a_broken_file() -> None:
    """A broken file hides only what needs its data: here sam's family check (mia may have been family)."""
    write_world(
        personas={
            "mia": replace_once(MIA, "role: peer", "role: pear"),
            "mum": replace_once(MUM, "{to: grandpa,", "{to: nobody,"),
            "grandpa": replace_once(GRANDPA, "kinship: grandfather", "kinship: uncle"),
        }
    )
    result = run_cli(*PERSONAS_VALIDATE)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "personas/grandpa.yaml:4: kinship: kinship 'uncle' means aunt_uncle_of 'sam', but the relationship is "
        "grandparent_of (change one)",
        "personas/mia.yaml:3: role: 'pear' is not allowed (expected one of: learner, teacher, peer, family or "
        "community; did you mean 'peer'?)",
        "personas/mum.yaml:10: relationships[1].to: 'nobody' is not a known person (expected one of: grandpa, mia, "
        "ms-lee, sam)",
        "3 problems in 3 files; nothing was changed",
    ]


def test_a_reference_to_a_broken_file_is_not_dangling() -> None:
    write_world(personas={"grandpa": replace_once(GRANDPA, "role: family", "role: famly")})
    result = run_cli(*PERSONAS_VALIDATE)
    assert result.exit_code == 2
    assert [line.split(": ", 1)[0] for line in result.stderr.splitlines()] == [
        "personas/grandpa.yaml:3",
        "1 problem in 1 file; nothing was changed",
    ]


def test_link_into_a_broken_pack_is_not_called_unknown() -> None:
    second_pack(OTHER_PACK.replace("learner_role: student", "learner_rol: student"), "other/intro")()
    result = run_cli(*SCENARIOS_VALIDATE)
    assert result.exit_code == 2
    assert "scenarios/other/pack.yaml:10: scenes[0].learner_rol: unknown key 'learner_rol'" in result.stderr
    assert "unknown pack 'other'" not in result.stderr
    assert PACK_FILE not in result.stderr  # the broken pack's own errors are listed; the link adds nothing


def test_bad_version_message_talks_about_versions() -> None:
    pack("version: 1.0.0", "version: v1")()
    result = run_cli(*SCENARIOS_VALIDATE)
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"{PACK_FILE}:3: version: 'v1' ")
    assert "not a valid id" not in first
    assert "1.0.0" in first


def test_follow_on_loop_across_packs_is_an_error() -> None:
    other = replace_once(OTHER_PACK, "stage: adolescence", "stage: early_childhood") + (
        "    follows: [first-steps/kind-words]\n"
    )
    second_pack(other, "other/intro")()
    result = run_cli(*SCENARIOS_VALIDATE)
    assert result.exit_code == 2
    assert "loop" in result.stderr
