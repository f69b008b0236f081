"""The measures `sim check` reports, the gates it holds them to (`sim/data/gates.yaml`), and the verdicts.

Invariant: every measure has a name in `MEASURES` and a value from 0 to 1 per stage (stage "" for the whole
corpus); a gates file may name only those measures, each with exactly one bound, or it is one located error.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import model_validator

from sim.errors import Problem
from sim.world.yamlio import Document, Spec, load_data_file

MEASURES: dict[str, str] = {
    "learner_turns_within_limit": "learner turns no longer than the stage's max_words_per_turn",
    "learner_words_per_turn": "mean words per learner turn (not gated: compare with the stage limit)",
    "learner_grade": "mean reading grade of the learner's lines, calibrated for dialogue",
    "others_grade": "mean reading grade of everyone else's lines",
    "learner_grade_in_band": "scenes whose learner lines read no older than the top of the stage's grade band",
    "i_label": "scenes where the learner speaks as I in every turn and no one else does",
    "first_person_narration": "scenes whose opening and reflection are told in the first person",
    "name_in_narration": "scenes that call the learner by name in their own narration",
    "empty_lines": "scenes with a turn that says nothing",
    "meta_talk": "scenes with a line about being an AI, a model, a prompt or a script",
    "self_repeats": "scenes where someone says the same sentence twice",
    "repeated_sentences": "scenes with any sentence twice in the record",
    "pronoun_mismatches": "scenes that give a cast member pronouns other than their persona's",
    "recalls": "scenes that recall an earlier scene",
    "recall_related": "of the scenes that recall, those whose memory shares a person or a value with the scene",
    "near_duplicates": "scenes with a near twin (MinHash LSH, Jaccard >= 0.8 on word 5-grams)",
    "distinct_1": "distinct words per word in the stage's dialogue",
    "distinct_2": "distinct word pairs per pair",
    "distinct_3": "distinct word 3-grams per 3-gram",
    "repeated_openings": "scenes whose opening uses a sentence frame that most scenes of the stage use",
    "verbatim_lines": "dialogue lines of 4+ words said word for word in another scene",
    "values_covered": "values the stage's scenes are about (a count; scenes per value in --json's detail)",
    "adjacent_twins": "neighbours in curriculum order that are near twins (whole corpus)",
}


class Bound(Spec):
    """A gate: the least (`min`) or the most (`max`) a measure may be."""

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _one_bound(self) -> Bound:
        if (self.min is None) == (self.max is None):
            raise ValueError("a gate has exactly one bound: {min: N} or {max: N}")
        return self

    def passes(self, value: float) -> bool:
        """Whether `value` is within the bound."""
        return value >= self.min if self.min is not None else value <= (self.max or 0.0)

    def __str__(self) -> str:
        return f">= {self.min:g}" if self.min is not None else f"<= {self.max:g}"


class GateFile(Spec):
    """The gates file: `gates:` maps a measure's name to its bound."""

    gates: dict[str, Bound]


@dataclass(frozen=True, slots=True)
class Verdict:
    """One measure in one stage ("" for the corpus), its gate (None: not gated) and whether it passed."""

    measure: str
    stage: str
    value: float | None
    gate: Bound | None
    detail: dict[str, Any] | None = None  # its parts (values_covered: scenes per value)

    @property
    def passed(self) -> bool | None:
        """True or False when gated and measured; None otherwise."""
        return None if self.gate is None or self.value is None else self.gate.passes(self.value)


def load_gates(path: Path | None = None) -> dict[str, Bound]:
    """The gates in `path`, or the shipped defaults; unknown measure names are located errors."""
    return dict(load_data_file(GateFile, path, "gates.yaml", _known).gates)


def _known(doc: Document[GateFile]) -> list[Problem]:
    names = ", ".join(MEASURES)
    return [doc.problem(("gates", name), f"{name!r} is not a measure sim check knows (one of: {names})")
            for name in doc.model.gates if name not in MEASURES]  # fmt: skip


def verdicts(
    values: Iterable[tuple[str, str, float | None, dict[str, Any] | None]], gates: dict[str, Bound]
) -> list[Verdict]:
    """Each (measure, stage, value, detail) with its gate."""
    return [Verdict(measure, stage, value, gates.get(measure), detail) for measure, stage, value, detail in values]
