"""The placeholder vocabulary of scene lines, and the one function that fills them.

Invariant: `SCENE_NAMES`, `BEAT_NAMES` and `DETAIL_NAMES` are the whole vocabulary; validation
(`unknown_fields`) and rendering (`fill`) both read them, so a line that validates always renders.
"""

from __future__ import annotations

import string
from collections.abc import Mapping

# Names every text of a scene may use; cast slot ids are added per scene.
SCENE_NAMES: dict[str, str] = {
    "learner_name": "the learner's first name",
    "age": "the learner's age in words ('six')",
    "place": "the setting's place",
    "time": "the setting's time",
    "situation": "the setting's situation",
    "memory": "something the learner remembers that bears on this scene",
}
# Names only a beat's lines may use: they depend on who is speaking.
BEAT_NAMES: dict[str, str] = {
    "speaker": "the speaker, as the learner knows them ('Grandpa')",
    "learner": "the learner, as the speaker addresses them ('sweetpea', or the name)",
}
# Everyday details the offline backend draws with Faker, so variations of a scene read differently.
DETAIL_NAMES: dict[str, str] = {
    "food": "a food",
    "city": "a city",
    "street": "a street name",
    "weekday": "a day of the week",
    "month": "a month",
    "color": "a colour",
    "animal": "an animal",
    "name": "someone's first name",
    "number": "a small number in words",
    "job": "a job",
}


class MissingPlaceholder(KeyError):
    """A template named a placeholder that was not supplied: a bug, since validation checks names."""


def fields(text: str) -> list[str]:
    """The placeholder names in a template, in order; `{{` and `}}` are literal braces.

    Raises:
        ValueError: the template's braces do not balance, or a field uses a format spec or conversion.
    """
    names = []
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise ValueError(_brace_message(str(exc))) from None
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if spec or conversion:
            raise ValueError(f"placeholder {{{name}}} has a format spec or conversion (write it as {{{name}}})")
        if not name:
            raise ValueError("empty placeholder {} (write a name inside the braces, or {{ }} for literal braces)")
        names.append(name)
    return names


def _brace_message(python_message: str) -> str:
    """Python's wording of an unbalanced brace, in the words of someone writing a scene."""
    if python_message.startswith("Single '}'"):
        return "unbalanced brace: '}' is never opened (open it, or write '}}' for a literal brace)"
    if python_message.startswith(("Single '{'", "expected '}'")):
        return "unbalanced brace: '{' is never closed (close it, or write '{{' for a literal brace)"
    return python_message


def unknown_fields(text: str, allowed: set[str]) -> tuple[list[str], str | None]:
    """Placeholder names in `text` that are not in `allowed`, and a syntax error message if any."""
    try:
        names = fields(text)
    except ValueError as exc:
        return [], f"{exc}"
    return [n for n in names if n not in allowed], None


def fill(text: str, values: Mapping[str, str]) -> str:
    """Fill every placeholder in `text`; a missing name raises `MissingPlaceholder`."""
    try:
        return text.format_map(_Strict(values))
    except KeyError as exc:
        raise MissingPlaceholder(f"no value for placeholder {exc.args[0]!r} in {text!r}") from None


class _Strict(dict[str, str]):
    def __missing__(self, key: str) -> str:
        raise KeyError(key)


_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def in_words(n: int) -> str:
    """A whole number from 0 to 999 in words: 6 -> 'six', 42 -> 'forty-two'."""
    if n < 0 or n > 999:
        return str(n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + (f"-{_ONES[ones]}" if ones else "")
    hundreds, rest = divmod(n, 100)
    return f"{_ONES[hundreds]} hundred" + (f" and {in_words(rest)}" if rest else "")
