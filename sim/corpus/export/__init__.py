"""`sim export`: the corpus as training shards (Parquet, JSONL or text) with a dataset card and a manifest.

Invariants: the database is only read; every file is written inside the output directory, in full
in a scratch directory first and then renamed into place with the manifest last, so a killed export never
leaves a half-written file under a final name nor a manifest that lists a shard not in place
(`sim.corpus.export.publish`); the same database and the same options give byte-identical files; a directory
holding another export or other files is refused unless `--overwrite`, and files an export did not
write are never replaced (`sim.corpus.export.outdir`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from sim import __version__
from sim.corpus.export import card, outdir, publish, query, shards
from sim.corpus.export.card import Stats
from sim.corpus.export.query import ORDERS, STYLES
from sim.corpus.export.shards import FORMATS, SEPARATOR, Shard
from sim.corpus.quality import selection
from sim.errors import StoreError, UsageError, display_path, first_line
from sim.store.db import connect

__all__ = ["FORMATS", "ORDERS", "STYLES", "ExportOptions", "ExportResult", "export_corpus"]

DEFAULT_SHARD_SIZE = 10_000


@dataclass(frozen=True)
class ExportOptions:
    """What to export, how, and where."""

    db: Path
    out: Path
    fmt: str
    order: str = "curriculum"
    stages: tuple[str, ...] = ()
    shard_size: int = DEFAULT_SHARD_SIZE
    style: str = "scripted"
    seed: int = 0
    tokenizer: Path | None = None
    overwrite: bool = False
    only_passing: bool = False  # only scenes that pass every per-scene gate (`sim.corpus.quality.selection`)
    dedup: bool = False  # one scene per near-twin cluster
    gates: Path | None = None  # the gates file `--only-passing` reads (default: the shipped one)


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote."""

    out: Path
    shards: list[Shard]
    stats: Stats
    token_method: str
    held_back: list[tuple[str, int]] = field(default_factory=list)  # (reason, scenes), with --only-passing/--dedup


def export_corpus(options: ExportOptions, progress: Callable[[Shard], None] | None = None) -> ExportResult:
    """Write the training text of `options.db` as shards, a dataset card and a manifest into `options.out`.

    Raises:
        UsageError: a bad option, an empty corpus, or an output directory that holds something else.
        StoreError: the database is missing, locked or unreadable.
        OutputError: the output directory cannot be written (disk full, read-only, no permission).
    """
    if options.shard_size < 1:
        raise UsageError(f"--shard-size {options.shard_size}: must be at least 1 (records per shard)")
    tokenizer = query.load_tokenizer(options.tokenizer) if options.tokenizer else None
    method = _token_method(options.tokenizer)
    made = publish.missing_dirs(options.out)
    try:
        with publish.reporting(options.out):
            return _export(options, tokenizer, method, progress)
    finally:
        publish.clean(options.out, made)


def _export(
    options: ExportOptions, tokenizer: Any, method: str, progress: Callable[[Shard], None] | None
) -> ExportResult:
    with connect(options.db, read_only=True) as con:
        stages = query.corpus_stages(con, options.db, options.stages)
        held = _selection(con, options, stages)
        parameters = _parameters(options, stages)
        owned = outdir.check(options.out, parameters, options.overwrite)
        work = publish.scratch(options.out)
        try:
            planned, files, stats = _write(con, options, stages, work, owned, tokenizer, progress, held.keep)
        except duckdb.Error as exc:
            raise StoreError(_failed(options, exc)) from None
    info = card.CardInfo(
        display_path(options.out), options.fmt, options.order, options.seed, options.style, stages, method, planned,
        held.reasons, held.quality,
    )  # fmt: skip
    manifest = _manifest(options, parameters, stats, method, files)
    publish.publish(options.out, owned, [s.name for s in planned], manifest, card.render(stats, info))
    return ExportResult(options.out, planned, stats, method, held.reasons)


EXPORT_MEMORY = "128MB"
"""DuckDB's working memory during export; it spills the rest to disk inside --out."""


def _write(
    con: duckdb.DuckDBPyConnection,
    options: ExportOptions,
    stages: tuple[str, ...],
    work: Path,
    owned: tuple[str, ...],
    tokenizer: Any,
    progress: Callable[[Shard], None] | None,
    keep: str | None,
) -> tuple[list[Shard], list[dict[str, Any]], Stats]:
    spill = str(work / "duckdb").replace("'", "''")
    con.execute(f"SET temp_directory = '{spill}'")  # DuckDB's spill files stay inside the output too
    # Cap DuckDB's working memory so it spills to disk instead: memory stays flat as the corpus grows.
    con.execute(f"SET memory_limit = '{EXPORT_MEMORY}'")
    token_sql = query.register_tokenizer(con, tokenizer) if tokenizer is not None else query.estimate_sql()
    records = query.build_rows(
        con, style=options.style, order=options.order, seed=options.seed, stages=stages, token_sql=token_sql, keep=keep
    )
    if not records:
        raise UsageError(f"nothing to export: {display_path(options.db)} holds no training text for these stages")
    planned = shards.plan(records, options.shard_size, options.fmt)
    outdir.claim(options.out, owned, [s.name for s in planned])
    files = []
    for shard in planned:
        path = outdir.target(work, shard.name)
        shards.write(con, shard, options.fmt, options.style, path)
        publish.sync(path)
        files.append({"name": shard.name, "records": shard.records, "first_row": shard.start,
                      "sha256": shards.sha256(path)})  # fmt: skip
        if progress is not None:
            progress(shard)
    return planned, files, card.collect(con)


def _failed(options: ExportOptions, exc: duckdb.Error) -> str:
    hint = (
        "DuckDB spills to disk inside --out: free disk space there, or export fewer --stage at a time"
        if isinstance(exc, duckdb.OutOfMemoryException | duckdb.IOException)
        else "the database may be damaged: `sim query \"SELECT count(*) FROM scenes\"` checks it"
    )
    return (
        f"export failed while reading {display_path(options.db)} ({first_line(exc)}); {hint}. "
        "Nothing in --out was changed"
    )


def _parameters(options: ExportOptions, stages: tuple[str, ...]) -> dict[str, Any]:
    """The options that make an export what it is: another export differs in at least one of them."""
    return {
        "format": options.fmt,
        "order": options.order,
        "shuffle_seed": None if options.order == "curriculum" else options.seed,
        "stages": list(stages),
        "shard_size": options.shard_size,
        "style": options.style,
        "tokenizer": f"sha256:{_sha256(options.tokenizer)}" if options.tokenizer else None,
        # Named only when asked, so an export made before these options existed reads as the same export.
        **({"only_passing": True, "gates": _gates_sha(options.gates)} if options.only_passing else {}),
        **({"dedup": True} if options.dedup else {}),
    }


def _gates_sha(path: Path | None) -> str:
    return f"sha256:{_sha256(path)}" if path else "shipped"


@dataclass(frozen=True)
class Held:
    """What quality holds back: the SELECT of the scenes kept (None: all), (reason, scenes), the corpus measures."""

    keep: str | None = None
    reasons: list[tuple[str, int]] = field(default_factory=list)
    quality: list[tuple[str, str, float | None]] = field(default_factory=list)


def _selection(con: duckdb.DuckDBPyConnection, options: ExportOptions, stages: tuple[str, ...]) -> Held:
    """`--only-passing` and `--dedup`, from what `sim check` stored; nothing asked, nothing read."""
    if not (options.only_passing or options.dedup):
        return Held()
    from sim.corpus.quality.gates import load_gates

    selection.require_measured(con)
    gates = list(load_gates(options.gates))
    how = {"only_passing": options.only_passing, "dedup": options.dedup}
    return Held(selection.kept_sql(gates, **how), selection.held_back(con, gates, stages, **how),
                selection.quality_table(con))  # fmt: skip


def _manifest(
    options: ExportOptions, parameters: dict[str, Any], stats: Stats, method: str, files: list[dict[str, Any]]
) -> str:
    data = {
        "kind": outdir.MANIFEST_KIND,
        "version": 1,
        "parameters": parameters,
        "source": {"db": display_path(options.db), "raising_sim": __version__, "duckdb": duckdb.__version__},
        "records": stats.records,
        "words": stats.words,
        "tokens": stats.tokens,
        "token_count": method,
        "fields": ["text"] if options.fmt == "txt" else list(query.FIELDS),
        "separator": SEPARATOR if options.fmt == "txt" else None,
        "files": files,
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _token_method(tokenizer: Path | None) -> str:
    if tokenizer is None:
        return query.TOKEN_ESTIMATE
    return (
        f"counted by the Hugging Face tokenizer `{tokenizer.name}` (SHA-256 {_sha256(tokenizer)}), "
        "without special tokens"
    )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
