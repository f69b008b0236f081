"""Who speaks and who is spoken of: the learner as `I`, first-person narration, names, and cast pronouns.

Invariant: pure functions of a `SceneText`; quoted speech in the narration (“…” or "…") is what someone
said, so it is left out of what the narration itself says. (Single quotes are not taken out: they cannot
be told from apostrophes.)

The learner's names are the first word of their name and their `address_as` when that is a name
(capitalised, and not "I": the shipped learner's is "I"). Narration is first-person when each part
(opening, reflection) has a first-person pronoun (I, me, my, mine, myself, we, us, our, ours) and no
sentence of it starts with one of the learner's names ("Sam sits by the window." is the learner told in
the third person; "Grandma calls me Sam." is not).

The pronoun check is a heuristic, and its limits are these: it reads the sentences of every line but the
named person's own, and of the narration, in which a cast member with she/her, he/him or they/them is
named (full name, first name or address: "Ms. Quinn", "Rose", "Rose Quinn"), and takes the first
third-person pronoun after the name, in the same clause (up to a comma, colon, semicolon, dash or bracket),
as theirs; if there is none, the next sentence of the same line or paragraph, when its first word is a
subject pronoun ("Leo scored. They ran."). A pronoun after a name may belong to someone else ("Mum told Zoe
she was late"), so a sentence naming two people of different pronoun sets is skipped; a pronoun further on
("Leo came in, and she smiled") is never read, so mismatches are undercounted rather than invented; and a
person called by something that is not in their persona ("the teacher") is not followed at all.
"""

from __future__ import annotations

import re

from sim.corpus.quality.readability import TITLE, sentences
from sim.corpus.quality.scene import Person, SceneText

QUOTED = re.compile(r"“[^”]*”|\"[^\"]*\"")
FIRST_PERSON = re.compile(r"\bI\b|\b(?i:me|my|mine|myself|we|us|our|ours|ourselves)\b")
PRONOUNS = {
    "she/her": {"she", "her", "hers", "herself"},
    "he/him": {"he", "him", "his", "himself"},
    "they/them": {"they", "them", "their", "theirs", "themselves", "themself"},
}
_ALL = {p: s for s, words in PRONOUNS.items() for p in words}
_CLAUSE = re.compile(r"[,;:—–()]")
_SUBJECTS = {"she", "he", "they"}
_WORDS = re.compile(r"[A-Za-z][A-Za-z.'-]*")


def narration(scene: SceneText) -> list[str]:
    """The opening and the reflection with quoted speech taken out."""
    return [QUOTED.sub(" ", text) for text in (scene.opening, scene.reflection) if text]


def i_label_ok(scene: SceneText) -> bool:
    """The learner speaks as `I` in every turn, and no one else does."""
    return all((line.label == "I") == line.learner for line in scene.lines)


def first_person_narration(scene: SceneText) -> bool:
    """Every part of the narration (opening, reflection) is told as `I`, never about the learner by name."""
    starts = _names_pattern(learner_names(scene.learner), anchored=True)
    return all(FIRST_PERSON.search(text) and not _told_of(text, starts) for text in narration(scene))


def _told_of(text: str, starts: re.Pattern[str] | None) -> bool:
    """Whether a sentence of `text` starts with one of the learner's names (`starts`)."""
    return starts is not None and any(starts.match(s.lstrip()) for s in sentences(text))


def name_in_narration(scene: SceneText) -> int:
    """Times one of the learner's names appears in the narration outside quoted speech."""
    pattern = _names_pattern(learner_names(scene.learner))
    return sum(len(pattern.findall(text)) for text in narration(scene)) if pattern else 0


def learner_names(learner: Person) -> set[str]:
    """What the narration could call the learner: their first name, and their address if it is a name."""
    first = learner.name.split()[0] if learner.name.strip() else ""
    address = learner.address_as.strip()
    named = address[:1].isupper() and address.lower() not in {"i", "me", "you"} | _ALL.keys()
    return {n for n in (first, address if named else "") if n}


def _names_pattern(names: set[str], anchored: bool = False) -> re.Pattern[str] | None:
    """One of `names` as a whole word (at the start only, if `anchored`), longest first; None for no names."""
    if not names:
        return None
    either = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    start = "" if anchored else r"\b"
    return re.compile(rf"{start}(?:{either})\b")


def pronoun_mismatches(scene: SceneText) -> int:
    """Times a cast member is followed by a pronoun of another set than their persona's (see the module's limits)."""
    spoken = sum(_mismatches(line.text, tuple(p for p in scene.cast if p.person_id != line.speaker_id))
                 for line in scene.lines)  # fmt: skip
    return spoken + sum(_mismatches(text, scene.cast) for text in narration(scene))


def _mismatches(text: str, cast: tuple[Person, ...]) -> int:
    found = sentences(text)
    mismatches = 0
    for i, sentence in enumerate(found):
        named = [p for p in cast if p.pronouns in PRONOUNS and _names(p, sentence)]
        if len({p.pronouns for p in named}) != 1:
            continue  # nobody named, or people of different pronoun sets: ambiguous
        pronoun = _first_pronoun(sentence, named[0], " ".join(found[i + 1 : i + 2]))
        mismatches += pronoun is not None and _ALL[pronoun] != named[0].pronouns
    return mismatches


def _names(person: Person, sentence: str) -> bool:
    return any(re.search(rf"\b{re.escape(n)}\b", sentence) for n in _called(person))


def _called(person: Person) -> set[str]:
    """What a person may be called: their address ("Ms Quinn", titles without the dot), name and first name."""
    return {TITLE.sub(r"\1", n) for n in (person.address_as, person.name, person.name.split()[0])} - {"", "I"}


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
