"""The reading grade of spoken lines: Flesch-Kincaid, with syllables counted by Pyphen's hyphenation dictionary.

Pyphen ships its dictionaries, so nothing is downloaded at run time (textstat 0.7.5 and later count syllables
with NLTK's CMU dictionary, which it downloads on first use: refused offline).

What the number means for dialogue: Flesch-Kincaid was fitted on prose, and spoken turns are short, so a
child's line ("Teddy spill it.") reads below grade 0 and an adult's everyday talk around grade 2-6, two to
four grades below prose a reader of that age reads. The stage bands in `sim/data/stages.yaml`
(`reading_grade`) were set for prose, so in dialogue a learner's lines read at or below the band (on the
shipped corpus: -0.8 at 3-5 against [-2, 2], 3.5 at 18+ against its band's lower end): reading low is what
speech does, and only the band's top edge means something for dialogue. `sim check` holds the learner to
it (`learner_grade_in_band`: no older than the top of the band), which catches the known failure of
generated dialogue for children: a child who talks older than their age. A grade needs `MIN_WORDS`
words: below that a single long word moves it by whole grades, and it is None.

Invariant: pure and deterministic; Pyphen is loaded once, when a grade is first asked for.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from typing import Any

MIN_WORDS = 20
_SENTENCE = re.compile(r"[^.!?…]+[.!?…]*")
_WORD = re.compile(r"[A-Za-z][A-Za-z']*")


def grade(lines: Iterable[str]) -> float | None:
    """The Flesch-Kincaid grade of `lines` read together (each line's sentences as sentences), or None."""
    sentences = [s for line in lines for s in _SENTENCE.findall(line) if _WORD.search(s)]
    words = [w for s in sentences for w in _WORD.findall(s)]
    if len(words) < MIN_WORDS:
        return None
    syllables = sum(_syllables(w.lower()) for w in words)
    return round(0.39 * len(words) / len(sentences) + 11.8 * syllables / len(words) - 15.59, 2)


@cache
def _syllables(word: str) -> int:
    """Syllables of a word: the hyphenation points Pyphen finds, plus one (at least one per vowel group of 3+)."""
    found = len(_dictionary().positions(word)) + 1
    return max(found, len(re.findall(r"[aeiouy]+", word)) if len(word) > 6 else found)


@cache
def _dictionary() -> Any:
    import pyphen

    return pyphen.Pyphen(lang="en_US")
