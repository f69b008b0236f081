"""Limits on what the YAML loader reads, enforced before and while reading, so a pathological file fails fast.

Invariant: no YAML file larger than `MAX_BYTES` is read into memory, and no list or mapping nested deeper
than `MAX_DEPTH` is scanned or built. The checks raise `TooLarge` and `TooDeep`; `sim.world.yamlio` words them.
Both limits are constants, not settings: no format needs more than 7 levels or takes free-form nested data,
so a valid file never comes near 32; the largest shipped file is a 67 KB pack, and a bigger pack can be
split into packs that follow each other (`follows: [pack/scene]`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.composer import Composer
from ruamel.yaml.scanner import RoundTripScanner

MAX_BYTES = 1024 * 1024
"""Largest YAML file read (1 MiB): 15 times the largest shipped pack; ruamel parses it in about 0.3 s."""
MAX_DEPTH = 32
"""Deepest nesting of lists and mappings: 4 times the deepest a format allows, far from the recursion limit."""


class TooLarge(Exception):
    """The file holds more than MAX_BYTES; `size` is its size, or None when it has none to stat (a pipe)."""

    def __init__(self, size: int | None) -> None:
        super().__init__(size)
        self.size = size


class TooDeep(Exception):
    """A list or mapping opens more than MAX_DEPTH levels deep, on 1-based `line`."""

    def __init__(self, mark: Any) -> None:
        super().__init__(mark)
        self.line = int(mark.line) + 1


def read_bytes(path: Path) -> bytes:
    """The bytes of `path`, refused by its size before anything is read.

    stat() answers for a regular file; the bounded read also stops a file that grows meanwhile or
    has no size to stat (a pipe, /dev/zero).

    Raises:
        TooLarge: the file holds more than MAX_BYTES.
        OSError: the file cannot be read.
    """
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise TooLarge(size)
    with path.open("rb") as file:
        data = file.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise TooLarge(None)
    return data


def limited_yaml() -> YAML:
    """The round-trip loader of ruamel.yaml, raising `TooDeep` as soon as the nesting passes MAX_DEPTH."""
    yaml = YAML(typ="rt", pure=True)
    yaml.Scanner = _Scanner
    yaml.Composer = _Composer
    return yaml


class _Scanner(RoundTripScanner):
    """Stops at the first `[` or `{` past MAX_DEPTH, before the scanner's look-ahead turns quadratic.

    The scanner keeps a possible `key:` for every open bracket and re-checks all of them on every token,
    looking up to 1,024 characters ahead: `[[[…` 2,000 deep took 40 s to reject, 20,000 deep never ended.
    Open brackets are always nested collections, so this refuses nothing the composer would accept.
    """

    def fetch_flow_collection_start(self, TokenClass: Any, to_push: str) -> None:
        if self.flow_level >= MAX_DEPTH:
            raise TooDeep(self.reader.get_mark())
        super().fetch_flow_collection_start(TokenClass, to_push)


class _Composer(Composer):
    """Counts the lists and mappings open while the tree is built: the exact depth, block style included."""

    open_collections = 0

    def compose_sequence_node(self, anchor: Any) -> Any:
        self._enter()
        try:
            return super().compose_sequence_node(anchor)
        finally:
            self.open_collections -= 1

    def compose_mapping_node(self, anchor: Any) -> Any:
        self._enter()
        try:
            return super().compose_mapping_node(anchor)
        finally:
            self.open_collections -= 1

    def _enter(self) -> None:
        if self.open_collections >= MAX_DEPTH:
            raise TooDeep(self.parser.peek_event().start_mark)
        self.open_collections += 1
