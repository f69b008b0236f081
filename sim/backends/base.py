"""The backend contract: one call per utterance (an opening, a participant's turn, a reflection).

Invariant: backends are pure in (request, seed) on the offline backend; retries, caching and cost
accounting wrap a backend rather than living inside call sites. Only `sim/backends/` imports a
provider SDK.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from sim.learner import LearnerState, Memory
from sim.personas import Persona
from sim.scenarios import Beat, Scene
from sim.stages import Stage

UtteranceKind = Literal["opening", "turn", "reflection"]


@dataclass(frozen=True)
class Line:
    """A line already spoken in this scene, as the backend may show it to a model."""

    speaker: str  # label: "Grandpa", or "I" for the learner
    text: str


@dataclass(frozen=True)
class Request:
    """Everything a backend may use to write one utterance."""

    kind: UtteranceKind
    scene_key: str
    scene: Scene
    stage: Stage
    stage_rank: int
    learner: Persona
    life: LearnerState
    cast: Mapping[str, Persona]  # slot -> person
    memories: Sequence[Memory]
    variation: int
    turn: int = 0
    speaker: Persona | None = None
    addressee: Persona | None = None
    beat: Beat | None = None
    beat_index: int = -1
    exchange: int = 0
    transcript: Sequence[Line] = field(default_factory=tuple)


@dataclass(frozen=True)
class Utterance:
    """What a backend wrote, and how many times the text had to be repaired to meet the targets."""

    text: str
    repairs: int = 0


class Backend(Protocol):
    """A source of utterances. `seed` makes the offline backend deterministic."""

    name: str
    model: str

    def speak(self, request: Request, *, seed: int) -> Utterance:
        """Write one utterance for `request`."""
        ...
