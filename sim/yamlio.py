"""The one YAML loader: a file becomes a pydantic model or a `ConfigError` naming file, line and key path.

ruamel.yaml's round-trip loader keeps the line of every key and item, so a pydantic error location
(`('relationships', 1, 'closeness')`) is mapped back to the line a person has to edit. Messages are
rewritten from pydantic's wording into "what is wrong (what was expected)".
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import ErrorDetails
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from sim.errors import ConfigError, Problem, display_path

M = TypeVar("M", bound=BaseModel)
ROOT = "(top level)"


def read_yaml(path: Path) -> Any:
    """Parse a YAML file into ruamel's line-aware tree, or raise a one-problem ConfigError."""
    shown = display_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError.single(shown, 0, ROOT, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError.single(shown, 0, ROOT, f"cannot read file ({exc.strerror})") from None
    return parse_yaml(text, shown)


def parse_yaml(text: str, shown: str) -> Any:
    """Parse YAML text; `shown` is the file name used in error messages."""
    yaml = YAML(typ="rt", pure=True)
    yaml.allow_duplicate_keys = False
    try:
        return yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        what = (exc.problem or exc.context or "invalid YAML").strip()
        if "duplicate key" in what or "found duplicate key" in str(exc):
            what = _duplicate_key_message(exc)
        raise ConfigError.single(shown, line, ROOT, f"invalid YAML: {what} (fix the syntax at this line)") from None
    except (YAMLError, ValueError, TypeError, RecursionError, AttributeError) as exc:
        raise ConfigError.single(shown, 0, ROOT, f"invalid YAML: {exc} (fix the syntax)") from None


def _duplicate_key_message(exc: MarkedYAMLError) -> str:
    text = str(exc.problem or "")
    key = text.split('"')[1] if '"' in text else text
    return f"key {key!r} appears twice (keep one)"


def line_of(tree: Any, loc: Sequence[int | str]) -> tuple[int, str]:
    """The 1-based line of the deepest node reachable along `loc`, and the key path walked to it.

    Location parts that are not keys of the tree (pydantic's union branch names, validator tags) are
    skipped, so the path shown is always one a person can find in their file.
    """
    node, line, parts = tree, _own_line(tree), []
    for part in loc:
        if isinstance(node, CommentedMap) and part in node:
            line = _key_line(node, part, line)
            parts.append(str(part))
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            line = node.lc.item(part)[0] + 1
            parts.append(f"[{part}]")
            node = node[part]
        elif isinstance(part, str) and part.isidentifier() and not _is_internal(part):
            parts.append(part)  # a missing key: shown, but the line stays the parent's
            break
    return line, format_key_path(parts)


def _key_line(node: CommentedMap, key: Any, fallback: int) -> int:
    try:
        return int(node.lc.key(key)[0]) + 1
    except (KeyError, TypeError, AttributeError):
        return fallback


def _own_line(node: Any) -> int:
    lc = getattr(node, "lc", None)
    return (lc.line + 1) if lc is not None and lc.line is not None else 1


def _is_internal(part: str) -> bool:
    return part in {"int", "float", "str", "bool", "list", "dict", "none"} or "[" in part


def format_key_path(parts: Sequence[str]) -> str:
    """Join key parts as `beats[2].lines[0]`."""
    out = ""
    for part in parts:
        out += part if part.startswith("[") or not out else f".{part}"
    return out or ROOT


def validate(
    model: type[M],
    tree: Any,
    shown: str,
    *,
    context: dict[str, Any] | None = None,
    defaults: dict[str, Any] | None = None,
) -> M:
    """Validate a parsed tree into `model`, or raise a ConfigError listing every problem.

    `defaults` fills keys the file may leave out (a persona's id from its file name) without
    touching the tree that error lines are read from.
    """
    if not isinstance(tree, dict):
        kind = "an empty file" if tree is None else f"a {_yaml_kind(tree)}"
        raise ConfigError.single(
            shown,
            _own_line(tree) if tree is not None else 1,
            ROOT,
            f"found {kind} (expected a mapping of keys to values)",
        )
    try:
        return model.model_validate({**(defaults or {}), **tree}, context=context)
    except ValidationError as exc:
        raise ConfigError(problems_from(exc, tree, shown, model)) from None


def problems_from(exc: ValidationError, tree: Any, shown: str, model: type[BaseModel]) -> list[Problem]:
    """Turn a pydantic ValidationError into located problems."""
    problems = []
    for err in exc.errors(include_url=False):
        line, key_path = line_of(tree, err["loc"])
        problems.append(Problem(shown, line, key_path, describe(err, model)))
    return problems


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


def load_model(model: type[M], path: Path, *, context: dict[str, Any] | None = None) -> M:
    """Read and validate one YAML file into `model`."""
    return load_document(model, path, context=context).model


@dataclass(frozen=True)
class Document(Generic[M]):
    """A validated model with the file it came from, so later checks can point at its lines."""

    model: M
    shown: str
    tree: Any

    def problem(self, loc: Sequence[int | str], message: str) -> Problem:
        """A problem located at `loc` in this document."""
        line, key_path = line_of(self.tree, loc)
        return Problem(self.shown, line, key_path, message)


def load_document(model: type[M], path: Path, *, context: dict[str, Any] | None = None) -> Document[M]:
    """Read and validate one YAML file, keeping its line-aware tree."""
    shown = display_path(path)
    tree = read_yaml(path)
    return Document(validate(model, tree, shown, context=context), shown, tree)


def _yaml_kind(value: Any) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return "string" if isinstance(value, str) else type(value).__name__


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def describe(err: ErrorDetails, model: type[BaseModel]) -> str:
    """Rewrite one pydantic error as `what is wrong (what was expected)`."""
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    if kind == "extra_forbidden":
        key = str(err["loc"][-1])
        owner = model_at(model, err["loc"][:-1])
        return f"unknown key {key!r} ({_allowed_hint(owner, key)})"
    if kind == "missing":
        return "missing required key (add it)"
    if kind in {"less_than_equal", "less_than", "greater_than_equal", "greater_than"}:
        bound = next(iter(ctx.values()))
        op = {
            "less_than_equal": "at most",
            "less_than": "below",
            "greater_than_equal": "at least",
            "greater_than": "above",
        }[kind]
        return f"{_shown(value)} is out of range (expected a number {op} {bound})"
    if kind in {"literal_error", "enum"}:
        expected = str(ctx.get("expected", "")).replace("'", "")
        close = difflib.get_close_matches(str(value), [e.strip() for e in expected.replace(" or ", ",").split(",")], 1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"{_shown(value)} is not allowed (expected one of: {expected}{hint})"
    if kind in {"int_type", "int_parsing", "int_from_float"}:
        return f"{_shown(value)} is not a whole number (expected an integer)"
    if kind in {"float_type", "float_parsing"}:
        return f"{_shown(value)} is not a number (expected a number such as 0.5)"
    if kind in {"string_type"}:
        return f"found {_shown(value)} (expected text)"
    if kind in {"list_type", "tuple_type", "set_type"}:
        return f"found {_shown(value)} (expected a list)"
    if kind in {"dict_type", "model_type", "model_attributes_type"}:
        return f"found {_shown(value)} (expected a mapping of keys to values)"
    if kind in {"bool_type", "bool_parsing"}:
        return f"{_shown(value)} is not a boolean (expected true or false)"
    if kind == "string_too_short":
        return "is empty (expected some text)"
    if kind == "too_short":
        return f"has too few items (expected at least {ctx.get('min_length')})"
    if kind == "too_long":
        return f"has too many items (expected at most {ctx.get('max_length')})"
    if kind == "string_pattern_mismatch":
        return f"{_shown(value)} is not a valid id (expected lowercase letters, digits, '-' and '_')"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    return f"{err['msg']} (got {_shown(value)})"


def _allowed_hint(owner: type[BaseModel] | None, key: str) -> str:
    allowed = [f.alias or name for name, f in owner.model_fields.items()] if owner else []
    if not allowed:
        return "remove it or check its spelling"
    close = difflib.get_close_matches(key, allowed, 1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"{hint}allowed here: {', '.join(allowed)}"


class Spec(BaseModel):
    """Base for everything a person writes: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)
