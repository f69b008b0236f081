"""The reading grade of spoken lines (Flesch-Kincaid, syllables from Pyphen), and how lines split into sentences.

Why not textstat: textstat 0.7.13 counts English syllables with NLTK's CMU dictionary and, when that is not
installed, calls `nltk.download("cmudict")` at run time (refused offline, and a network call in a measure);
it also pulls in NLTK. Pyphen, which textstat itself falls back on, ships its hyphenation dictionaries in the
package (read with `importlib.resources`), so a grade never touches the network.

Calibration for dialogue: the lines are read together, each line's sentences as sentences (a line without
end punctuation is one sentence; "Ms." and the like do not end one), so a scene's grade is the grade of its
turns as one text. Flesch-Kincaid was fitted on prose and spoken turns are short, so a child's line
("Teddy spill it.") reads below grade 0 and an adult's everyday talk around grade 2-6, two to four grades
below prose a reader of that age reads. The stage bands in `sim/data/stages.yaml` (`reading_grade`) were
set for prose, so in dialogue a learner's lines read at or below the band: reading low is what speech
does, and only the band's top edge means something for dialogue. `sim check` holds the learner to it
(`grade_in_band`: no older than the top of the band), which catches the known failure of generated
dialogue for children: a child who talks older than their age. A grade needs `MIN_WORDS` words: below
that a single long word moves it by whole grades, and it is None.

Invariant: pure and deterministic; nothing is imported or loaded until a grade is first asked for, and
Pyphen's dictionary is loaded once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from typing import Any

MIN_WORDS = 20
TITLE = re.compile(r"\b(Mr|Mrs|Ms|Mx|Dr|Prof|St)\.")
"""A title's dot, which does not end a sentence ("Ms. Quinn" is read as "Ms Quinn")."""
_SENTENCE = re.compile(r"[^.!?…]+[.!?…]*")
_WORD = re.compile(r"[A-Za-z][A-Za-z']*")


def sentences(text: str) -> list[str]:
    """The sentences of `text`: up to `.`, `!`, `?` or `…` (a run of them ends one), titles' dots dropped."""
    return [s for s in _SENTENCE.findall(TITLE.sub(r"\1", text)) if s.strip()]


def grade(lines: Iterable[str]) -> float | None:
    """The Flesch-Kincaid grade of `lines` read together (each line's sentences as sentences), or None."""
    found = [s for line in lines for s in sentences(line) if _WORD.search(s)]
    words = [w for s in found for w in _WORD.findall(s)]
    if len(words) < MIN_WORDS:
        return None
    syllables = sum(_syllables(w.lower()) for w in words)
    return round(0.39 * len(words) / len(found) + 11.8 * syllables / len(words) - 15.59, 2)


@cache
def _syllables(word: str) -> int:
    """Syllables of a word: Pyphen's hyphenation points plus one.

    Hyphenation leaves short word ends unbroken (Pyphen splits "library" once, "li-brary"), so for words
    of 7 letters or more the count is at least the word's vowel groups (3 for "library").
    """
    found = len(_dictionary().positions(word)) + 1
    return max(found, len(re.findall(r"[aeiouy]+", word)) if len(word) > 6 else found)


@cache
def _dictionary() -> Any:
    import pyphen

    return pyphen.Pyphen(lang="en_US")
