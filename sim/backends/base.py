"""The backend contract: one call per utterance (an opening, a participant's turn, a reflection).

Invariant: backends are pure in (request, seed) on the offline backend; retries, caching and cost
accounting wrap a backend rather than living inside call sites. Only `sim/backends/` imports a
provider SDK.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:  # types of the request's fields only: `sim.backends` names backends without loading the models
    from sim.learner.state import LearnerState, Memory
    from sim.store.rows import LlmCallRow
    from sim.world.personas import Persona
    from sim.world.scenarios import Beat, Scene
    from sim.world.stages import Stage

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
    """What a backend wrote, how many times it was repaired or regenerated to meet the targets, and its calls."""

    text: str
    repairs: int = 0
    calls: tuple[LlmCallRow, ...] = ()  # rows of `llm_calls` (model backends), without ids


class Backend(Protocol):
    """A source of utterances. `seed` makes the offline backend deterministic.

    Offline backends write in `speak`; model backends (`concurrent = True`) in `aspeak`, so many
    scenes can wait on the network at once.
    """

    @property
    def name(self) -> str:
        """The backend's name, as stored with every scene."""
        ...

    @property
    def model(self) -> str:
        """The model's id, as stored with every scene."""
        ...

    @property
    def concurrent(self) -> bool:
        """Whether the backend writes in `aspeak` (and many scenes may be in flight)."""
        ...

    def speak(self, request: Request, *, seed: int) -> Utterance:
        """Write one utterance for `request`."""
        ...

    async def aspeak(self, request: Request, *, seed: int) -> Utterance:
        """Write one utterance for `request`, waiting on the network without blocking other scenes."""
        ...

    async def aclose(self) -> None:
        """Close network clients (inside the event loop that used them)."""
        ...

    def close(self) -> None:
        """Close files (the reply cache)."""
        ...
