"""The per-scene measures: one `SceneMeasures` row for a `SceneText` (stage fit, voice, form, continuity).

Definitions, where a word could mean more than one thing:
- A word is a whitespace-separated token, as the stage limit counts them (`sim run` does the same).
- A sentence is what `readability.sentences` splits a text into (up to `.`, `!`, `?` or `…`; "Ms." does not
  end one), a double quote mark also ending one, so a quotation is compared on its own ("I remember when
  Leo told me, “Sharing is fun.”" holds "Sharing is fun", which the reflection may say again). Sentences
  are compared lower-cased, with spaces collapsed and quotes and punctuation at their edges dropped.
  Sentences of fewer than `MIN_SENTENCE_WORDS` words ("Yes.", "Thank you.", "Okay.") are ordinary to say
  twice and are never counted as repeats.
- A self-repeat is a sentence a speaker already said in this scene (every occurrence after their first);
  a repeated sentence is one occurring more than once anywhere in the record (the opening, every line and
  the reflection; every occurrence after the first). A self-repeat in dialogue counts in both.
- Meta-talk is a line matching one of `META_PATTERNS` (case-insensitive, word-bounded): talk of being an
  AI, a model or an assistant, of a system prompt, of staying in or breaking character, of "this
  role-play", of the scene being scripted or generated or going "according to the script", and assistant
  refusals ("I cannot assist", "I'm sorry, but I can't provide"). Ordinary uses of the words are left
  alone on purpose: "a scripted answer", "my lines in the school play's script", "out of character for
  him", "a writing prompt", "I can't help it", "I can't help keep a document from the court". What is
  still caught wrongly is theatre talk in a scene about a play ("stay in character!").

Invariant: pure and deterministic: the same scene always measures the same.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from sim.corpus.quality import readability, voice
from sim.corpus.quality.scene import SceneMeasures, SceneText

MIN_SENTENCE_WORDS = 3
META_PATTERNS = (
    r"as an? (ai|artificial intelligence|language model|large language model|assistant|chatbot)",
    r"i(['’]m| am) (just |only |an |a )*(ai|artificial intelligence|language model|chatbot|ai assistant)",
    r"(ai|language) model",
    r"(ai|virtual) assistant",
    r"chatgpt|openai|anthropic",
    r"system prompt|my prompt",
    r"(stay|stays|staying|stayed|break|breaks|breaking|broke) (in )?character",
    r"this role-?play",
    r"(this|the) (scene|dialogue|conversation|story) (is|was) (scripted|generated|simulated|fictional)",
    r"(as per|according to) (the|my|this) script|as scripted",
    r"i (cannot|can['’]t|can not|am unable to|['’]m unable to) (assist|comply|fulfil|fulfill)",
    r"i (cannot|can['’]t) help with (that|this|your) request",
    r"i(['’]m| am) (sorry|afraid),? but i (cannot|can['’]t) (provide|generate|write|continue|create|engage)",
)
META = re.compile("|".join(rf"\b(?:{p})\b" for p in META_PATTERNS), re.IGNORECASE)
_QUOTE_MARK = re.compile(r"[“”\"]")
_EDGES = " \t\n\"“”‘’'.!?…,;:-—–()"


def measure(scene: SceneText) -> SceneMeasures:
    """Every per-scene figure of `scene`."""
    mine = [line.text for line in scene.lines if line.learner]
    words = [len(text.split()) for text in mine]
    learner_grade = readability.grade(mine)
    return SceneMeasures(
        scene_key=scene.scene_key,
        learner_turns=len(mine),
        learner_words_max=max(words, default=0),
        learner_words_mean=sum(words) / len(words) if words else 0.0,
        over_limit_turns=sum(n > scene.targets.max_words_per_turn for n in words),
        learner_grade=learner_grade,
        others_grade=readability.grade(line.text for line in scene.lines if not line.learner),
        grade_in_band=None if learner_grade is None else learner_grade <= scene.targets.reading_grade[1],
        turns=len(scene.lines),
        speakers=len({line.speaker_id for line in scene.lines}),
        empty_lines=sum(not line.text.strip() for line in scene.lines),
        i_label_ok=voice.i_label_ok(scene),
        first_person_narration=voice.first_person_narration(scene),
        name_in_narration=voice.name_in_narration(scene),
        self_repeats=self_repeats(scene),
        repeated_sentences=_extra(sentences([scene.opening, *(line.text for line in scene.lines), scene.reflection])),
        meta_talk=sum(bool(META.search(line.text)) for line in scene.lines),
        pronoun_mismatches=voice.pronoun_mismatches(scene),
        recalls=bool(scene.recalled),
        recall_related=_related(scene),
    )


def sentences(texts: Iterable[str]) -> list[str]:
    """The sentences of `texts` worth comparing, normalised (see the module's definitions)."""
    parts = (part for text in texts for part in _QUOTE_MARK.split(text))
    found = (s.strip(_EDGES).lower() for part in parts for s in readability.sentences(part))
    return [" ".join(s.split()) for s in found if len(s.split()) >= MIN_SENTENCE_WORDS]


def self_repeats(scene: SceneText) -> int:
    """Sentences a speaker says again in the scene, each occurrence after their first."""
    said: dict[str, list[str]] = {}
    for line in scene.lines:
        said.setdefault(line.speaker_id, []).extend(sentences([line.text]))
    return sum(_extra(mine) for mine in said.values())


def _extra(items: list[str]) -> int:
    """Occurrences beyond the first of every item."""
    return sum(n - 1 for n in Counter(items).values())


def _related(scene: SceneText) -> bool | None:
    if not scene.recalled:
        return None
    others = scene.people_here - {scene.learner.person_id}
    return any(r.people & others or r.values & set(scene.values) for r in scene.recalled)
