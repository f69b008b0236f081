"""Shards: their names, their row ranges, and writing one from `export_rows`.

Invariant: shard names are generated from the shard's index and count alone (never from record
content), zero-padded so that sorting the names gives curriculum (export) order; a shard is the
contiguous range `[start, stop)` of `export_rows` rowids. It is written batch by batch, each batch
a DuckDB query that joins the text in and orders at most `BATCH` records, so memory depends on
neither the corpus nor the shard size. (DuckDB's COPY would need one ORDER BY over the whole
shard's text, and DuckDB cannot spill a sort of long strings under a memory cap.) Arrow is imported only
to write, so the names and formats here cost `sim --help` nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from sim.corpus.export.query import FIELDS, records_sql

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq

FORMATS = ("parquet", "jsonl", "txt")
SEPARATOR = "\n<|endoftext|>\n"
"""Text shards: every record's text is followed by this separator (so `split(SEPARATOR)[:-1]` gives the texts)."""

SHARD_NAME = re.compile(r"train-\d{5,}-of-\d{5,}\.(parquet|jsonl|txt)")
BATCH = 10_000
"""Records per query while writing a shard, and per Parquet row group."""


@dataclass(frozen=True)
class Shard:
    """One shard to write: its file name and the range of `export_rows` rowids it holds."""

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


def write(con: duckdb.DuckDBPyConnection, shard: Shard, fmt: str, style: str, path: Path) -> None:
    """Write `shard` to `path` in `fmt`, its text in `style`."""
    if fmt == "parquet":
        _write_parquet(con, shard, style, path)
        return
    with path.open("w", encoding="utf-8", newline="") as handle:
        if fmt == "txt":
            for batch in _batches(con, shard, style, ("text",)):
                handle.writelines(text + SEPARATOR for text in batch.column("text").to_pylist())
        else:
            for batch in _batches(con, shard, style):
                handle.writelines(
                    json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n" for record in batch.to_pylist()
                )


def _write_parquet(con: duckdb.DuckDBPyConnection, shard: Shard, style: str, path: Path) -> None:
    import pyarrow.parquet as pq

    writer: pq.ParquetWriter | None = None
    try:
        for batch in _batches(con, shard, style):
            if writer is None:
                writer = pq.ParquetWriter(path, batch.schema, compression="zstd")
            writer.write_table(batch, row_group_size=BATCH)
    finally:
        if writer is not None:
            writer.close()


def _batches(
    con: duckdb.DuckDBPyConnection, shard: Shard, style: str, fields: Sequence[str] = FIELDS
) -> Iterator[pa.Table]:
    import pyarrow as pa

    for start in range(shard.start, shard.stop, BATCH):
        yield pa.table(con.sql(records_sql(style, start, min(start + BATCH, shard.stop), fields)))


def sha256(path: Path) -> str:
    """The SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
