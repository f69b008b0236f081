"""The one YAML loader: a file becomes a pydantic model or a `ConfigError` naming file, line and key path.

ruamel.yaml's round-trip loader keeps the line of every key and item, so a pydantic error location
(`('relationships', 1, 'closeness')`) is mapped back to the line a person has to edit. Messages are
rewritten from pydantic's and ruamel's wording into "what is wrong (what was expected)", and every
problem is one line: keys and values that hold control characters are shown escaped. A file too large
or nested too deeply is refused before or while it is read (`sim.world.yaml_limits`), never after.

Invariant: every world file a person writes is read through here, so each is limited the same way and
each problem names file, line and key path.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.reader import ReaderError

from sim.errors import ConfigError, Problem, display_path
from sim.world.messages import describe
from sim.world.yaml_limits import MAX_BYTES, MAX_DEPTH, TooDeep, TooLarge, limited_yaml, read_bytes

M = TypeVar("M", bound=BaseModel)
ROOT = "(top level)"


def escape(text: str) -> str:
    """`text` with every non-printable character (newline, tab, control) written as its backslash escape."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def read_yaml(path: Path) -> Any:
    """Parse a YAML file into ruamel's line-aware tree, or raise a one-problem ConfigError."""
    shown = display_path(path)
    try:
        data = read_bytes(path)
    except TooLarge as exc:
        raise ConfigError.single(shown, 0, ROOT, _too_large(exc.size)) from None
    except OSError as exc:
        raise ConfigError.single(shown, 0, ROOT, f"cannot read file ({exc.strerror})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([_not_utf8(shown, exc)]) from None
    return parse_yaml(text.replace("\r\n", "\n").replace("\r", "\n"), shown)  # newlines as read_text reads them


def _too_large(size: int | None) -> str:
    found = f"{size:,} bytes" if size is not None else f"more than {MAX_BYTES:,} bytes"
    return (
        f"file is too large: {found} (expected at most {MAX_BYTES:,} bytes, 1 MiB; "
        "shorten it, or split a pack into packs that follow each other)"
    )


def _not_utf8(shown: str, exc: UnicodeDecodeError) -> Problem:
    data = bytes(exc.object)
    line_start = data.rfind(b"\n", 0, exc.start) + 1
    line, column = data.count(b"\n", 0, exc.start) + 1, exc.start - line_start + 1
    message = f"not UTF-8 text: unexpected byte 0x{data[exc.start]:02x} in column {column} (save the file as UTF-8)"
    return Problem(shown, line, ROOT, message)


def parse_yaml(text: str, shown: str) -> Any:
    """Parse YAML text; `shown` is the file name used in error messages."""
    try:
        return _load(text, allow_duplicate_keys=False)
    except DuplicateKeyError as exc:
        raise ConfigError([_duplicate_key(exc, text, shown)]) from None
    except MarkedYAMLError as exc:
        raise ConfigError([_syntax_error(exc, shown)]) from None
    except ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        what = f"control character {chr(exc.character)!r} is not allowed"
        raise ConfigError.single(shown, line, ROOT, f"invalid YAML: {what} (remove the control character)") from None
    except TooDeep as exc:
        message = f"invalid YAML: lists and mappings nested more than {MAX_DEPTH} levels deep (use fewer levels)"
        raise ConfigError.single(shown, exc.line, ROOT, message) from None
    except (YAMLError, ValueError, TypeError, AttributeError) as exc:
        raise ConfigError.single(shown, 0, ROOT, f"invalid YAML: {escape(str(exc))} (fix the syntax)") from None


def _load(text: str, *, allow_duplicate_keys: bool) -> Any:
    yaml = limited_yaml()
    yaml.allow_duplicate_keys = allow_duplicate_keys
    with warnings.catch_warnings():
        # ruamel warns about legal-but-odd YAML (a reused anchor) in several lines naming its own files;
        # the loader's only output is a model or a ConfigError.
        warnings.simplefilter("ignore")
        return yaml.load(text)


def _syntax_error(exc: MarkedYAMLError, shown: str) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else 0
    what = escape((exc.problem or exc.context or "invalid YAML").strip())
    if "'\\t'" in what or "tab character" in what:
        return Problem(shown, line, ROOT, "invalid YAML: a tab character (indent with spaces)")
    return Problem(shown, line, ROOT, f"invalid YAML: {what} (fix the syntax at this line)")


def _duplicate_key(exc: DuplicateKeyError, text: str, shown: str) -> Problem:
    """Name the repeated key by its full key path, at the line of its second occurrence."""
    found = re.match(r'found duplicate key "(.*?)" with value', exc.problem or "", re.DOTALL)
    key = found.group(1) if found else "?"
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else 0
    parts = _mapping_path(text, exc.context_mark)
    return Problem(shown, line, format_key_path([*parts, key]), f"key {key!r} appears twice (delete one of them)")


def _mapping_path(text: str, mark: Any) -> list[str]:
    """The key path of the mapping that starts at `mark`, found by reading the file with duplicates allowed."""
    if mark is None:
        return []
    try:
        tree = _load(text, allow_duplicate_keys=True)
    except (YAMLError, ValueError, TypeError, AttributeError, TooDeep):
        return []
    return _find_mapping(tree, (mark.line, mark.column), [], set()) or []


def _find_mapping(node: Any, start: tuple[int, int], parts: list[str], seen: set[int]) -> list[str] | None:
    if id(node) in seen:  # an alias can make the tree a cycle
        return None
    seen.add(id(node))
    if isinstance(node, CommentedMap) and (node.lc.line, node.lc.col) == start:
        return parts
    children: list[tuple[str, Any]] = []
    if isinstance(node, CommentedMap):
        children = [(str(k), v) for k, v in node.items()]
    elif isinstance(node, CommentedSeq):
        children = [(f"[{i}]", v) for i, v in enumerate(node)]
    for part, child in children:
        found = _find_mapping(child, start, [*parts, part], seen)
        if found is not None:
            return found
    return None


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
    """Join key parts as `beats[2].lines[0]`, escaping characters that would break the line."""
    out = ""
    for part in map(escape, parts):
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
        problems.append(Problem(shown, line, key_path, escape(describe(err, model))))
    return problems


def check_id_matches(tree: Any, shown: str, expected: str, source: str) -> None:
    """An `id:` key may restate the id a file gets from its name (`source`), but must not contradict it.

    Raises:
        ConfigError: the file's `id:` differs from `expected`.
    """
    if isinstance(tree, dict) and tree.get("id", expected) != expected:
        line, _ = line_of(tree, ("id",))
        raise ConfigError.single(shown, line, "id", f"id {escape(repr(tree['id']))} does not match the {source} "
                                 f"(expected {expected!r}, or remove the id key)")


@dataclass(frozen=True)
class Document(Generic[M]):
    """A validated model with the file it came from, so later checks can point at its lines."""

    model: M
    shown: str
    tree: Any

    def problem(self, loc: Sequence[int | str], message: str) -> Problem:
        """A problem located at `loc` in this document."""
        line, key_path = line_of(self.tree, loc)
        return Problem(self.shown, line, key_path, escape(message))


def load_document(model: type[M], path: Path, *, context: dict[str, Any] | None = None) -> Document[M]:
    """Read and validate one YAML file, keeping its line-aware tree."""
    shown = display_path(path)
    tree = read_yaml(path)
    return Document(validate(model, tree, shown, context=context), shown, tree)


def load_data_file(
    model: type[M], path: Path | None, shipped: str, check: Callable[[Document[M]], Sequence[Problem]]
) -> M:
    """Load a user-editable data file (stages, values, prices), or the one shipped in `sim/data` when `path` is None.

    Raises:
        ConfigError: the file cannot be read, does not validate, or `check` finds problems.
    """
    if path is None:
        with resources.as_file(resources.files("sim.data") / shipped) as default:
            return load_data_file(model, default, shipped, check)
    doc = load_document(model, path)
    problems = check(doc)
    if problems:
        raise ConfigError(problems)
    return doc.model


def _yaml_kind(value: Any) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return "string" if isinstance(value, str) else type(value).__name__


class Spec(BaseModel):
    """Base for everything a person writes: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)
