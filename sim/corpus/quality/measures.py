"""The per-scene measures: one `SceneMeasures` row for a `SceneText` (stage fit, voice, form, continuity).

Definitions, where a word could mean more than one thing:
- A word is a whitespace-separated token, as the stage limit counts them (`sim run` does the same).
- A sentence is text up to `.`, `!`, `?` or `…`, compared lower-cased with its edge punctuation and spaces
  dropped; sentences of fewer than `MIN_SENTENCE_WORDS` words ("Yes.", "Thank you.") are ordinary to
  repeat and are not counted as repeats.
- Meta-talk is a line matching `META` (an AI, a language model, a prompt, "as an assistant", "I cannot
  help with"), word-bounded, so a scene about a school play's script is not caught.

Invariant: pure and deterministic: the same scene always measures the same.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from sim.corpus.quality import readability, voice
from sim.corpus.quality.scene import SceneMeasures, SceneText

MIN_SENTENCE_WORDS = 3
META = re.compile(
    r"\b(as an ai|an ai (language )?model|language model|large language model|as an assistant|"
    r"i'?m an ai|i am an ai|(my|the|this) (system )?prompt|i cannot (help|assist) with|openai|anthropic)\b",
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"[^.!?…]+[.!?…]*")


def measure(scene: SceneText) -> SceneMeasures:
    """Every per-scene figure of `scene`."""
    mine = [line.text for line in scene.lines if line.learner]
    words = [len(text.split()) for text in mine]
    learner_grade = readability.grade(mine)
    high = scene.targets.reading_grade[1]
    return SceneMeasures(
        scene_key=scene.scene_key,
        learner_turns=len(mine),
        learner_words_max=max(words, default=0),
        learner_words_mean=sum(words) / len(words) if words else 0.0,
        over_limit_turns=sum(n > scene.targets.max_words_per_turn for n in words),
        learner_grade=learner_grade,
        others_grade=readability.grade(line.text for line in scene.lines if not line.learner),
        grade_in_band=None if learner_grade is None else learner_grade <= high,
        turns=len(scene.lines),
        speakers=len({line.speaker_id for line in scene.lines}),
        empty_lines=sum(not line.text.strip() for line in scene.lines),
        i_label_ok=voice.i_label_ok(scene),
        first_person_narration=voice.first_person_narration(scene),
        name_in_narration=voice.name_in_narration(scene),
        self_repeats=sum(_extra(sentences(line.text for line in scene.lines if line.speaker_id == who))
                         for who in {line.speaker_id for line in scene.lines}),  # fmt: skip
        repeated_sentences=_extra(sentences([scene.opening, *(line.text for line in scene.lines), scene.reflection])),
        meta_talk=sum(bool(META.search(line.text)) for line in scene.lines),
        pronoun_mismatches=voice.pronoun_mismatches(scene),
        recalls=bool(scene.recalled),
        recall_related=_related(scene),
    )


def sentences(texts: Iterable[str]) -> list[str]:
    """The sentences of `texts` worth comparing, normalised (see the module's definitions)."""
    found = (s.strip(" \t\n\"“”'.!?…,;:-—").lower() for text in texts for s in _SENTENCE.findall(text))
    return [" ".join(s.split()) for s in found if len(s.split()) >= MIN_SENTENCE_WORDS]


def _extra(items: list[str]) -> int:
    """Occurrences beyond the first of every item."""
    return sum(n - 1 for n in Counter(items).values())


def _related(scene: SceneText) -> bool | None:
    if not scene.recalled:
        return None
    return any(r.people & scene.people_here - {scene.learner.person_id} or r.values & set(scene.values)
               for r in scene.recalled)  # fmt: skip
