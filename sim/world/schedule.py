"""A scene's turns: the schedule its beats expand into (a spoken turn is stored as `sim.store.rows.TurnRow`).

Invariant: the schedule is a pure function of the scene, so the engine, the cost estimate and script
mode all ask for the same turns. Nothing here needs the scene graph (`sim.engine`) that speaks them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.world.scenarios import LEARNER, Scene


@dataclass(frozen=True)
class Slot:
    """One scheduled turn: which beat, which exchange of it, who speaks and to whom."""

    beat: int
    exchange: int
    speaker: str  # a cast slot or "learner"
    to: str


def schedule(scene: Scene) -> list[Slot]:
    """Expand beats into turns. A beat with `exchanges: N` followed by a learner beat repeats the pair N times."""
    slots: list[Slot] = []
    i = 0
    beats = scene.beats
    while i < len(beats):
        beat = beats[i]
        paired = beat.speaker != LEARNER and i + 1 < len(beats) and beats[i + 1].speaker == LEARNER
        for k in range(beat.exchanges):
            slots.append(Slot(i, k, beat.speaker, beat.to or _default_to(beat.speaker, slots, scene)))
            if paired and beat.exchanges > 1:
                reply = beats[i + 1]
                slots.append(Slot(i + 1, k, LEARNER, reply.to or beat.speaker))
        i += 2 if paired and beat.exchanges > 1 else 1
    return slots[: scene.turn_limit]


def _default_to(speaker: str, so_far: list[Slot], scene: Scene) -> str:
    if speaker != LEARNER:
        return LEARNER
    previous = next((s.speaker for s in reversed(so_far) if s.speaker != LEARNER), None)
    return previous or (scene.cast[0].slot if scene.cast else LEARNER)
