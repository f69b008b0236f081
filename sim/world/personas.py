"""Personas: one person per YAML file in `personas/`, the file's stem is the person's id.

Invariant: the YAML files are the only source of truth about people and their relationships; the
persona graph (`sim.world.persona_graph`) is derived from them and never edited.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field, PlainSerializer, WithJsonSchema

from sim.errors import ConfigError, Problem, display_path
from sim.world.stages import Id
from sim.world.yamlio import Document, Spec, check_id_matches, read_yaml, validate

Role = Literal["learner", "teacher", "peer", "family", "community"]
Kinship = Literal[
    "mother",
    "father",
    "parent",
    "grandmother",
    "grandfather",
    "grandparent",
    "sister",
    "brother",
    "sibling",
    "aunt",
    "uncle",
    "cousin",
    "stepmother",
    "stepfather",
    "guardian",
]
RelationKind = Literal[
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
    "teacher_of",
    "student_of",
    "classmate_of",
    "friend_of",
    "coach_of",
    "coached_by",
    "mentor_of",
    "mentored_by",
    "neighbor_of",
    "colleague_of",
]
Pronouns = Literal["she/her", "he/him", "they/them"]
Vocabulary = Literal["simple", "everyday", "rich", "technical"]
TRAITS = ("openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism")
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_AGE = re.compile(r"^learner\s*(?:([+-])\s*(\d{1,3}))?$")


@dataclass(frozen=True)
class Age:
    """An age: absolute years, or years relative to the learner so peers grow up alongside "I"."""

    years: int
    relative: bool

    def at(self, learner_age: int) -> int:
        """This person's age when the learner is `learner_age`."""
        return learner_age + self.years if self.relative else self.years

    def __str__(self) -> str:
        if not self.relative:
            return str(self.years)
        return "learner" if self.years == 0 else f"learner{self.years:+d}"


def _parse_age(value: Any) -> Age:
    if isinstance(value, Age):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value <= 120:
            raise ValueError(f"{value} is out of range (expected an age from 0 to 120)")
        return Age(value, relative=False)
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        raise ValueError(f"{value!r} is text, not a number (write the number without quotes)")
    match = _AGE.match(str(value).strip()) if isinstance(value, str) else None
    if match is None:
        raise ValueError(
            f"{value!r} is not an age (expected years such as 42, or relative to the learner such as "
            "'learner+2', 'learner-1' or 'learner')"
        )
    sign, years = match.groups()
    return Age(int(years or 0) * (-1 if sign == "-" else 1), relative=True)


def _dump_age(age: Age) -> int | str:
    """Write an age the way a person would: 42 as a number, relative ages as 'learner+2'."""
    return str(age) if age.relative else age.years


AgeSpec = Annotated[
    Age,
    BeforeValidator(_parse_age),
    PlainSerializer(_dump_age, return_type=int | str),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 0, "maximum": 120},
                {"type": "string", "pattern": r"^learner\s*([+-]\s*\d{1,3})?$"},
            ]
        }
    ),
]
Unit = Annotated[float, Field(ge=0.0, le=1.0)]


class Traits(Spec):
    """Big Five personality traits, each from 0 to 1."""

    openness: Unit = 0.5
    conscientiousness: Unit = 0.5
    extraversion: Unit = 0.5
    agreeableness: Unit = 0.5
    neuroticism: Unit = 0.5


class Voice(Spec):
    """How a person talks."""

    model_config = ConfigDict(populate_by_name=True)

    tone: str = Field(default="plain", min_length=1, alias="register", description="e.g. warm, formal, playful")
    catchphrases: list[str] = Field(default_factory=list)
    vocabulary: Vocabulary = "everyday"
    calls_learner: list[str] = Field(
        default_factory=list, description="what this person calls the learner ('sweetpea', 'kiddo'); default: the name"
    )


class Relationship(Spec):
    """A typed, weighted edge from this person to another: `this person <kind> <to>`."""

    to: Id
    kind: RelationKind
    closeness: Unit = 0.5


class Persona(Spec):
    """One person in the learner's world."""

    id: Id
    name: str = Field(min_length=1, description="full display name")
    address_as: str | None = Field(default=None, description="how the learner addresses them: 'Grandpa', 'Ms. Rivera'")
    role: Role
    kinship: Kinship | None = None
    pronouns: Pronouns = "they/them"
    age: AgeSpec | None = None
    stages: list[Id] = Field(default_factory=list, description="stages they can appear in; empty means all")
    traits: Traits = Field(default_factory=Traits)
    values: list[Id] = Field(default_factory=list)
    voice: Voice = Field(default_factory=Voice)
    backstory: str = ""
    relationships: list[Relationship] = Field(default_factory=list)
    generated: bool = Field(default=False, description="drafted by Faker for an unfilled cast slot")

    @property
    def known_as(self) -> str:
        """The label the learner uses for this person (and the training text's speaker label)."""
        return "I" if self.role == "learner" else (self.address_as or self.name.split()[0])

    @property
    def first_name(self) -> str:
        """The first word of the name."""
        return self.name.split()[0]


def check_persona(doc: Document[Persona]) -> list[Problem]:
    """Checks on one persona that need more than one field."""
    p, problems = doc.model, []
    if p.role == "learner":
        if p.kinship is not None:
            problems.append(
                doc.problem(("kinship",), "a learner has no kinship (kinship describes family of the learner)")
            )
    else:
        if not p.address_as:
            problems.append(
                doc.problem(
                    ("address_as",),
                    "missing required key (say how the learner addresses this person, e.g. 'Grandpa' or 'Ms. Rivera')",
                )
            )
        if p.age is None:
            problems.append(doc.problem(("age",), "missing required key (an age such as 42, or 'learner+2')"))
    if p.role == "family" and p.kinship is None:
        problems.append(
            doc.problem(
                ("kinship",), "missing required key (family members need a kinship such as grandmother or sibling)"
            )
        )
    if p.kinship is not None and p.role not in {"family", "learner"}:
        problems.append(doc.problem(("kinship",), f"kinship {p.kinship!r} needs role 'family' (role is {p.role!r})"))
    for i, rel in enumerate(p.relationships):
        if rel.to == p.id:
            problems.append(
                doc.problem(("relationships", i, "to"), f"{p.id!r} cannot be related to themself (name another person)")
            )
    return problems


def persona_files(directory: Path) -> list[Path]:
    """The persona files in a directory, sorted by name."""
    return sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])


def declared_targets(path: Path) -> frozenset[str] | None:
    """The ids a persona file's `relationships` name, read without validating; None when that cannot be told.

    Used for a file that fails to load, to know which other people its broken data may concern.
    """
    try:
        tree = read_yaml(path)
    except ConfigError:
        return None
    if tree is None:
        return frozenset()  # an empty file names nobody
    rels = tree.get("relationships", []) if isinstance(tree, dict) else None
    if not isinstance(rels, list) or not all(isinstance(r, dict) and isinstance(r.get("to"), str) for r in rels):
        return None
    return frozenset(r["to"].strip() for r in rels)


def load_persona(path: Path) -> Document[Persona]:
    """Load one persona file; its id is the file's stem (an `id:` key, if given, must match)."""
    shown, tree = display_path(path), read_yaml(path)
    if not _ID.match(path.stem):
        raise ConfigError.single(
            shown,
            1,
            "id",
            f"file name {path.stem!r} is not a valid persona id (rename the "
            "file using lowercase letters, digits, '-' and '_')",
        )
    check_id_matches(tree, shown, path.stem, "file name")
    doc = Document(validate(Persona, tree, shown, defaults={"id": path.stem}), shown, tree)
    problems = check_persona(doc)
    if problems:
        raise ConfigError(problems)
    return doc
