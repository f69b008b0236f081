"""What a person is told when a file does not validate: pydantic errors rewritten as one clear line.

Invariant: every message reads "what is wrong (what was expected)", names the offending value, and,
where a near miss is likely, suggests the nearest allowed word.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from typing import Any, get_args

from pydantic import BaseModel
from pydantic_core import ErrorDetails


def model_at(model: type[BaseModel], loc: Sequence[int | str]) -> type[BaseModel] | None:
    """The model class that validates the mapping at `loc` (used to list the keys allowed there)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int) or part not in getattr(current, "model_fields", {}):
            continue
        current = _unwrap(current.model_fields[part].annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    """Find the model inside `list[X]`, `X | None`, `dict[str, X]`."""
    for arg in get_args(annotation) or ():
        found = _unwrap(arg)
        if isinstance(found, type) and issubclass(found, BaseModel):
            return found
    return annotation


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


# pydantic type errors: how the found value is described, and what was expected instead.
_TYPES: dict[str, tuple[str, str]] = {
    "int_type": ("{} is not a whole number", "an integer"),
    "int_parsing": ("{} is not a whole number", "an integer"),
    "int_from_float": ("{} is not a whole number", "an integer"),
    "float_type": ("{} is not a number", "a number such as 0.5"),
    "float_parsing": ("{} is not a number", "a number such as 0.5"),
    "string_type": ("found {}", "text"),
    "list_type": ("found {}", "a list"),
    "tuple_type": ("found {}", "a list"),
    "set_type": ("found {}", "a list"),
    "dict_type": ("found {}", "a mapping of keys to values"),
    "model_type": ("found {}", "a mapping of keys to values"),
    "model_attributes_type": ("found {}", "a mapping of keys to values"),
    "bool_type": ("{} is not a boolean", "true or false"),
    "bool_parsing": ("{} is not a boolean", "true or false"),
}
# What a list is a list of, where the key alone says it (`lines: ` left empty is the common slip).
_LIST_OF = {"lines": "line variants", "beats": "beats", "scenes": "scenes", "relationships": "relationships"}
# What a pattern-checked string should look like, by key; anything else is an id.
_PATTERNS = {"version": ("a valid version", "a version such as 1.0.0")}
_ID_PATTERN = ("a valid id", "lowercase letters, digits, '-' and '_'")
_BOUNDS = {
    "less_than_equal": "at most",
    "less_than": "below",
    "greater_than_equal": "at least",
    "greater_than": "above",
}


def describe(err: ErrorDetails, model: type[BaseModel]) -> str:
    """Rewrite one pydantic error as `what is wrong (what was expected)`."""
    kind, value = err["type"], err.get("input")
    if kind in _TYPES:
        return _type_error(kind, value, err["loc"])
    special = _DESCRIBERS.get(kind)
    if special is not None:
        return special(err, model)
    return f"{err['msg']} (got {_shown(value)})"


def _type_error(kind: str, value: Any, loc: Sequence[int | str]) -> str:
    what, expected = _TYPES[kind]
    key = loc[-1] if loc else ""
    if expected == "a list" and key in _LIST_OF:
        expected = f"a list of {_LIST_OF[str(key)]}"
    head = "is empty" if value is None else what.format(_shown(value))
    hint = ""
    if kind == "string_type" and isinstance(value, (int, float)) and not isinstance(value, bool):
        hint = "; put it in quotes, e.g. '1.0.0'" if key == "version" else "; put it in quotes"
    return f"{head} (expected {expected}{hint})"


def _extra(err: ErrorDetails, model: type[BaseModel]) -> str:
    key = str(err["loc"][-1])
    return f"unknown key {key!r} ({_allowed_hint(model_at(model, err['loc'][:-1]), key)})"


def _out_of_range(err: ErrorDetails, model: type[BaseModel]) -> str:
    bound = next(iter((err.get("ctx") or {}).values()))
    return f"{_shown(err.get('input'))} is out of range (expected a number {_BOUNDS[err['type']]} {bound})"


def _not_allowed(err: ErrorDetails, model: type[BaseModel]) -> str:
    value = err.get("input")
    expected = str((err.get("ctx") or {}).get("expected", "")).replace("'", "")
    choices = [e.strip() for e in expected.replace(" or ", ",").split(",")]
    close = difflib.get_close_matches(str(value), choices, 1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{_shown(value)} is not allowed (expected one of: {expected}{hint})"


def _pattern(err: ErrorDetails, model: type[BaseModel]) -> str:
    key = err["loc"][-1] if err["loc"] else ""
    what, expected = _PATTERNS.get(str(key), _ID_PATTERN)
    return f"{_shown(err.get('input'))} is not {what} (expected {expected})"


def _value_error(err: ErrorDetails, model: type[BaseModel]) -> str:
    return str((err.get("ctx") or {}).get("error", err["msg"]))


def _length(err: ErrorDetails, model: type[BaseModel]) -> str:
    ctx = err.get("ctx") or {}
    if err["type"] == "string_too_short":
        return "is empty (expected some text)"
    if err["type"] == "too_short":
        return f"has too few items (expected at least {ctx.get('min_length')})"
    return f"has too many items (expected at most {ctx.get('max_length')})"


_DESCRIBERS: dict[str, Callable[[ErrorDetails, type[BaseModel]], str]] = {
    "extra_forbidden": _extra,
    "missing": lambda err, model: "missing required key (add it)",
    **dict.fromkeys(_BOUNDS, _out_of_range),
    "literal_error": _not_allowed,
    "enum": _not_allowed,
    "string_pattern_mismatch": _pattern,
    "value_error": _value_error,
    "string_too_short": _length,
    "too_short": _length,
    "too_long": _length,
}


def _allowed_hint(owner: type[BaseModel] | None, key: str) -> str:
    allowed = [f.alias or name for name, f in owner.model_fields.items()] if owner else []
    if not allowed:
        return "remove it or check its spelling"
    close = difflib.get_close_matches(key, allowed, 1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"{hint}allowed here: {', '.join(allowed)}"
