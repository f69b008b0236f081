"""Stage language targets, enforced on what a model writes: repair what can be repaired, else ask again.

A line is repaired when the fix cannot change its meaning: a speaker label in front, quotation marks
around it, a second speaker's line after it, special tokens, or a reply cut off at max_tokens (cut
back to its last whole sentence). It must be regenerated when there is nothing usable: an empty
line, a line in the wrong voice ("As an AI ..."), or a learner line over its stage's word limit
(the last is cut to the limit if the second answer is still too long).

Invariant: `check` is pure; what it returns is either usable text with the count of repairs made,
or the reason to ask again.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

OUT_OF_VOICE = re.compile(
    r"\b(as an ai\b|as a language model|i am an ai\b|i'm an ai\b|i am a language model|i'm a language model|"
    r"i cannot (?:role-?play|pretend)|i can't (?:role-?play|pretend)|ai assistant|large language model)",
    re.IGNORECASE,
)
SPECIAL_TOKENS = re.compile(r"<\|[a-z_]+\|>|\[/?INST\]|</?s>", re.IGNORECASE)
SENTENCE_END = re.compile(r"[.!?][\"'\u201d)]*(?=\s|$)")


@dataclass(frozen=True)
class Verdict:
    """The outcome of a check: usable `text` (with `repairs` made), or `retry` with the reason."""

    text: str
    repairs: int = 0
    retry: str | None = None


def check(text: str, *, labels: Sequence[str], own_label: str, max_words: int | None, cut: bool) -> Verdict:
    """Check one line against the targets.

    Args:
        text: the model's reply.
        labels: every label a line may start with in this scene ("Grandpa", "I", ...).
        own_label: the speaker's own label.
        max_words: the word limit (learner lines), or None.
        cut: the reply stopped at max_tokens.
    """
    repairs = 0
    cleaned, fixes = _clean(text, labels, own_label)
    repairs += fixes
    if cut and cleaned:
        whole = _whole_sentences(cleaned)
        if whole != cleaned:
            cleaned, repairs = whole, repairs + 1
    if not cleaned:
        return Verdict("", repairs, "the line was empty" + (" (cut off at max_tokens)" if cut else ""))
    if OUT_OF_VOICE.search(cleaned):
        return Verdict(cleaned, repairs, "the line stepped out of the scene to talk about being an AI; stay in role")
    if max_words is not None and len(cleaned.split()) > max_words:
        return Verdict(cleaned, repairs, f"the line has {len(cleaned.split())} words; the limit is {max_words}")
    return Verdict(cleaned, repairs)


def shorten(text: str, max_words: int) -> str:
    """Cut a line to `max_words` words, at a sentence end if one is near, and close it with a full stop."""
    words = text.split()[:max_words]
    clipped = " ".join(words)
    whole = _whole_sentences(clipped)
    if whole and len(whole.split()) >= max_words // 2:
        return whole
    return clipped.rstrip(",;:-\u2014 ") + ("" if clipped[-1:] in ".!?" else ".")


def _clean(text: str, labels: Sequence[str], own_label: str) -> tuple[str, int]:
    repairs = 0
    stripped = SPECIAL_TOKENS.sub("", text)
    if stripped != text:
        repairs += 1
    lines = [line.strip() for line in stripped.strip().splitlines() if line.strip()]
    if not lines:
        return "", repairs
    label = re.compile(r"^\**(" + "|".join(re.escape(x) for x in {*labels, own_label}) + r")\**\s*:\s*", re.I)
    first = lines[0]
    if label.match(first):
        first, repairs = label.sub("", first, count=1), repairs + 1
    kept = [first]
    for line in lines[1:]:
        if label.match(line):  # the model went on to write someone else's turn
            repairs += 1
            break
        kept.append(line)
    joined = " ".join(kept)
    unquoted = _unquote(joined)
    if unquoted != joined:
        repairs += 1
    return unquoted.strip(), repairs


def _unquote(text: str) -> str:
    pairs = (('"', '"'), ("\u201c", "\u201d"), ("'", "'"))
    for left, right in pairs:
        if len(text) >= 2 and text.startswith(left) and text.endswith(right) and text.count(left) <= 2:
            return text[1:-1].strip()
    return text


def _whole_sentences(text: str) -> str:
    ends = [m.end() for m in SENTENCE_END.finditer(text)]
    return text[: ends[-1]].strip() if ends else ""
