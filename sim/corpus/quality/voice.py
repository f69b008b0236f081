"""Who speaks and who is spoken of: the learner as `I`, first-person narration, names, and cast pronouns.

Invariant: pure functions of a `SceneText`; quoted speech in the narration (“…” or "…") is what someone
said, so it is left out of what the narration itself says.

The pronoun check is a heuristic, and its limits are these: it reads the sentence in which a cast member is
named and takes the first third-person pronoun after the name, in the same clause (up to a comma, colon,
semicolon, dash or bracket), as theirs; if there is none, the next sentence's first word when that is a
subject pronoun ("Leo scored. They ran."). A pronoun after
a name may belong to someone else ("Mum told Zoe she was late"), so a sentence naming two people of different
pronoun sets is skipped; and a line's own speaker is never checked against "I" or "you".
"""

from __future__ import annotations

import re

from sim.corpus.quality.scene import Person, SceneText

QUOTED = re.compile(r"“[^”]*”|\"[^\"]*\"")
FIRST_PERSON = re.compile(r"\b(I|me|my|mine|myself|we|us|our)\b")
PRONOUNS = {
    "she/her": {"she", "her", "hers", "herself"},
    "he/him": {"he", "him", "his", "himself"},
    "they/them": {"they", "them", "their", "theirs", "themselves", "themself"},
}
_ALL = {p: s for s, words in PRONOUNS.items() for p in words}
_SENTENCES = re.compile(r"[^.!?]+[.!?]*")
_CLAUSE = re.compile(r"[,;:—–()]")
_SUBJECTS = {"she", "he", "they"}
_TITLE = re.compile(r"\b(Mr|Mrs|Ms|Dr|Prof|St)\.")  # "Ms. Quinn" does not end a sentence
_WORDS = re.compile(r"[A-Za-z][A-Za-z.'-]*")


def narration(scene: SceneText) -> list[str]:
    """The opening and the reflection with quoted speech taken out."""
    return [QUOTED.sub(" ", text) for text in (scene.opening, scene.reflection) if text]


def i_label_ok(scene: SceneText) -> bool:
    """The learner speaks as `I` in every turn, and no one else does."""
    return all((line.label == "I") == line.learner for line in scene.lines)


def first_person_narration(scene: SceneText) -> bool:
    """Every part of the narration (opening, reflection) is told as `I`."""
    return all(FIRST_PERSON.search(text) for text in narration(scene))


def name_in_narration(scene: SceneText) -> int:
    """Times the learner's first name appears in the narration outside quoted speech."""
    first = scene.learner.name.split()[0] if scene.learner.name else ""
    if not first:
        return 0
    pattern = re.compile(rf"\b{re.escape(first)}\b")
    return sum(len(pattern.findall(text)) for text in narration(scene))


def pronoun_mismatches(scene: SceneText) -> int:
    """Times a cast member is followed by a pronoun of another set than their persona's (see the module's limits)."""
    texts = [line.text for line in scene.lines] + narration(scene)
    return sum(_mismatches(text, scene.cast) for text in texts)


def _mismatches(text: str, cast: tuple[Person, ...]) -> int:
    sentences = _SENTENCES.findall(_TITLE.sub(r"\1", text))
    found = 0
    for i, sentence in enumerate(sentences):
        named = [p for p in cast if p.pronouns in PRONOUNS and _names(p, sentence)]
        if len({p.pronouns for p in named}) != 1:
            continue  # nobody named, or people of different pronoun sets: ambiguous
        pronoun = _first_pronoun(sentence, named[0], " ".join(sentences[i + 1 : i + 2]))
        found += pronoun is not None and _ALL[pronoun] != named[0].pronouns
    return found


def _names(person: Person, sentence: str) -> bool:
    return any(re.search(rf"\b{re.escape(n)}\b", sentence) for n in _called(person))


def _called(person: Person) -> set[str]:
    """What a person may be called: their address ("Ms Quinn", titles without the dot), name and first name."""
    return {_TITLE.sub(r"\1", n) for n in (person.address_as, person.name, person.name.split()[0])} - {"", "I"}


def _first_pronoun(sentence: str, person: Person, following: str) -> str | None:
    """The first third-person pronoun after the person's name in `sentence`, or `following`'s first word.

    Only the clause the name is in counts, and the following sentence only when it starts with she, he or they.
    """
    at = min((m.end() for n in _called(person) for m in re.finditer(rf"\b{re.escape(n)}\b", sentence)), default=0)
    clause = _CLAUSE.split(sentence[at:], maxsplit=1)[0]
    for word in _WORDS.findall(clause):
        if word.lower() in _ALL:
            return str(word).lower()
    first = str(next(iter(_WORDS.findall(following)), "")).lower()
    return first if first in _SUBJECTS else None
