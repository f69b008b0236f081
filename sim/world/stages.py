"""Developmental stages: the ordered childhood a corpus walks through, with the learner's language targets.

Invariant: stage order is the list order in the stages file; `rank` is the index, and every later
ordering (curriculum, memory visibility) is derived from it.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Annotated

from pydantic import Field, model_validator

from sim.errors import Problem
from sim.world.yamlio import Document, Spec, load_data_file

Id = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", min_length=1, max_length=64)]
DEFAULT_STAGES = "stages.yaml"


class LanguageTargets(Spec):
    """What the learner's own lines should look like at a stage."""

    max_words_per_turn: int = Field(ge=1, le=200)
    reading_grade: tuple[float, float] = Field(description="Flesch-Kincaid grade band [low, high]")

    @model_validator(mode="after")
    def _band_ordered(self) -> LanguageTargets:
        lo, hi = self.reading_grade
        if lo > hi:
            raise ValueError(f"reading_grade [{lo}, {hi}] is reversed (expected [low, high])")
        return self


class Stage(Spec):
    """One developmental stage."""

    id: Id
    label: str = Field(min_length=1)
    ages: tuple[int, int] = Field(description="age band in years [from, to], inclusive")
    language: LanguageTargets
    description: str = ""

    @model_validator(mode="after")
    def _ages_ordered(self) -> Stage:
        lo, hi = self.ages
        if not 0 <= lo <= hi <= 120:
            raise ValueError(f"ages [{lo}, {hi}] is not a valid band (expected [from, to] with 0 <= from <= to)")
        return self

    @property
    def typical_age(self) -> int:
        """The age at which the learner lives this stage's scenes: the band's lower end."""
        return self.ages[0]


class StageList(Spec):
    """The stages file: `stages:` in developmental order."""

    stages: list[Stage] = Field(min_length=1)

    @cached_property
    def by_id(self) -> dict[str, Stage]:
        """Stages keyed by id."""
        return {s.id: s for s in self.stages}

    def rank(self, stage_id: str) -> int:
        """The stage's position in developmental order (0 = youngest)."""
        return [s.id for s in self.stages].index(stage_id)


def check_stages(doc: Document[StageList]) -> list[Problem]:
    """Cross-item checks: unique ids, listed from youngest to oldest."""
    problems, seen = [], set()
    stages = doc.model.stages
    for i, stage in enumerate(stages):
        if stage.id in seen:
            problems.append(
                doc.problem(("stages", i, "id"), f"stage {stage.id!r} is listed twice (list each stage once)")
            )
        seen.add(stage.id)
        if i and stage.ages[0] < stages[i - 1].ages[0]:
            problems.append(
                doc.problem(
                    ("stages", i, "ages"),
                    f"stage {stage.id!r} starts at age {stage.ages[0]}, younger than {stages[i - 1].id!r} above it "
                    "(list stages from youngest to oldest)",
                )
            )
    return problems


def load_stages(path: Path | None = None) -> StageList:
    """Load a stages file, or the shipped defaults when `path` is None."""
    return load_data_file(StageList, path, DEFAULT_STAGES, check_stages)
