"""Values: the themes scenes teach, with optional codes in external value constitutions.

Invariant: a value id is stable; scenes and personas refer to values only by id.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field

from sim.errors import Problem
from sim.world.stages import Id
from sim.world.yamlio import Document, Spec, load_data_file

DEFAULT_VALUES = "values.yaml"


class Value(Spec):
    """One value: id, label, a one-line description and codes in external constitutions."""

    id: Id
    label: str = Field(min_length=1)
    description: str = Field(min_length=1)
    feeling: str = Field(default="thoughtful", description="how living this value tends to feel: 'warm inside'")
    codes: dict[str, str] = Field(
        default_factory=dict,
        description="codes in external value constitutions, e.g. {value-constitution: '4.3'}",
    )


class ValueList(Spec):
    """The values file: `values:`."""

    values: list[Value] = Field(min_length=1)

    @cached_property
    def by_id(self) -> dict[str, Value]:
        """Values keyed by id."""
        return {v.id: v for v in self.values}


def load_values(path: Path | None = None) -> ValueList:
    """Load a values file, or the shipped defaults when `path` is None."""
    return load_data_file(ValueList, path, DEFAULT_VALUES, _check_values)


def _check_values(doc: Document[ValueList]) -> list[Problem]:
    seen: set[str] = set()
    problems = []
    for i, value in enumerate(doc.model.values):
        if value.id in seen:
            problems.append(
                doc.problem(("values", i, "id"), f"value {value.id!r} is listed twice (list each value once)")
            )
        seen.add(value.id)
    return problems
