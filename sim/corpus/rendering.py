"""How a lived scene reads as training text.

Invariant: a dialogue line is `Label: text`, where the label is how the learner knows the speaker
and the learner is always `I`. The line format is rendered here, once, when a scene is stored; the
styles (`scripted`: opening, dialogue, reflection; `dialogue`: the lines alone) are composed from the
stored parts by the `training_text_styled` macro (migration m003), so reading a corpus never has to
aggregate its turns.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol


class Spoken(Protocol):
    """A spoken line: who (as the learner knows them), their role, and what they said."""

    @property
    def speaker_label(self) -> str:
        """How the learner knows the speaker; `I` for the learner."""

    @property
    def role(self) -> str:
        """The speaker's role."""

    @property
    def text(self) -> str:
        """What was said."""


def dialogue(turns: Iterable[Spoken]) -> str:
    """The dialogue as training text, one `Label: text` line per turn."""
    return "\n".join(f"{t.speaker_label}: {t.text}" for t in turns)


def words(text: str) -> int:
    """Words in a line, counted the way the database counts them (split on spaces)."""
    return len(text.strip().split(" "))


def learner_words(turns: Iterable[Spoken]) -> tuple[int, int]:
    """(words, turns) the learner spoke."""
    mine = [t for t in turns if t.role == "learner"]
    return sum(words(t.text) for t in mine), len(mine)
