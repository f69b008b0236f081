"""Shards: their names, their row ranges, and writing one from `export_rows`.

Invariant: shard names are generated from the shard's index and count alone (never from record
content), zero-padded so that sorting the names gives curriculum (export) order; a shard is the
contiguous `_row` range `[start, stop)` and is written by DuckDB's own COPY (Parquet, JSONL), or
streamed in batches (text), so memory does not grow with the corpus.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb

from sim.export.query import FIELDS

FORMATS = ("parquet", "jsonl", "txt")
SEPARATOR = "\n<|endoftext|>\n"
"""Text shards: every record's text is followed by this separator (so `split(SEPARATOR)[:-1]` gives the texts)."""

SHARD_NAME = re.compile(r"train-\d{5,}-of-\d{5,}\.(parquet|jsonl|txt)")
TEXT_BATCH = 1000
_COPY_OPTIONS = {"parquet": "FORMAT parquet, COMPRESSION zstd", "jsonl": "FORMAT json"}


@dataclass(frozen=True)
class Shard:
    """One shard to write: its file name and the `_row` range it holds."""

    name: str
    start: int
    stop: int

    @property
    def records(self) -> int:
        """How many records the shard holds."""
        return self.stop - self.start


def plan(records: int, shard_size: int, fmt: str) -> list[Shard]:
    """Split `records` into shards of `shard_size` (the last one may be smaller)."""
    count = -(-records // shard_size)
    width = max(5, len(str(count)))
    return [
        Shard(f"train-{i:0{width}d}-of-{count:0{width}d}.{fmt}", i * shard_size, min((i + 1) * shard_size, records))
        for i in range(count)
    ]


def write(con: duckdb.DuckDBPyConnection, shard: Shard, fmt: str, path: Path) -> None:
    """Write `shard` to `path` in `fmt`."""
    if fmt == "txt":
        _write_text(con, shard, path)
        return
    columns = ", ".join(f'"{name}"' for name in FIELDS)
    literal = str(path).replace("'", "''")
    con.execute(
        f"COPY (SELECT {columns} FROM export_rows WHERE _row >= {shard.start} AND _row < {shard.stop} "
        f"ORDER BY _row) TO '{literal}' ({_COPY_OPTIONS[fmt]})"
    )


def _write_text(con: duckdb.DuckDBPyConnection, shard: Shard, path: Path) -> None:
    cursor = con.execute(
        "SELECT text FROM export_rows WHERE _row >= ? AND _row < ? ORDER BY _row", [shard.start, shard.stop]
    )
    with path.open("w", encoding="utf-8", newline="") as handle:
        while batch := cursor.fetchmany(TEXT_BATCH):
            handle.writelines(text + SEPARATOR for (text,) in batch)


def sha256(path: Path) -> str:
    """The SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
