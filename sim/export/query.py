"""The records of an export, in SQL: which fields, in which order, and how their tokens are counted.

Invariant: everything an export writes is read from one temporary table, `export_rows`, built once
per export from the `training_text_styled(style)` macro. Its `_row` numbers the records from 0 in
the export's order, a pure function of the database and the options, so a shard is a contiguous
`_row` range and the same database and options always give the same records in the same shards.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import duckdb

from sim.errors import UsageError, display_path

STYLES: dict[str, str] = {
    "scripted": "the first-person opening, a blank line, the dialogue (each person labelled as the learner "
    "knows them, the learner as `I`), a blank line, the first-person reflection",
    "dialogue": "the dialogue lines alone (each person labelled as the learner knows them, the learner as `I`)",
}
"""Training text styles; the `training_text_styled` macro (migration m002) renders them."""

TOKEN_PATTERN = r"[\pL\pM\pN_]+|[^\pL\pM\pN_\s\pZ]"
"""The token estimate, the one place it is defined: one token per run of letters, marks, digits and
underscores, and one per other non-space character (punctuation, symbols). It is `\\w+|[^\\w\\s]` with
Unicode classes, i.e. the pre-tokens of a BPE tokenizer: a lower bound for its token count."""

TOKEN_ESTIMATE = (
    "an estimate: one token per run of letters, digits and underscores, and one per other non-space character "
    f"(the regex `\\w+|[^\\w\\s]` with Unicode classes, counted in DuckDB as "
    f"`len(regexp_extract_all(text, '{TOKEN_PATTERN}'))`); a lower bound for what a BPE tokenizer counts"
)

ORDERS: dict[str, str] = {
    "curriculum": "stage_rank, curriculum_position, learner, id",
    "shuffled": "md5(id || ':' || {seed}), id",
    "stage-shuffled": "stage_rank, md5(id || ':' || {seed}), id",
}
"""ORDER BY of each order; md5 (not DuckDB's `hash`) so a seed gives the same order on any DuckDB version."""

ORDER_DESCRIPTIONS: dict[str, str] = {
    "curriculum": "stage by stage from the youngest; within a stage, each learner's `curriculum_position` "
    "(age, follow-on depth, place in pack, pack, variation, seed)",
    "shuffled": "a seeded shuffle across all stages (seed {seed}; records ordered by md5(id || ':' || seed))",
    "stage-shuffled": "stages in curriculum order, records shuffled within each stage (seed {seed}; "
    "ordered by md5(id || ':' || seed))",
}

COLUMNS = (
    'id, text, learner, stage, stage_rank, age, pack, scene, variation, "values", '
    'CAST("cast" AS VARCHAR) AS "cast", turn_count, word_count, curriculum_position, title, learner_role, '
    "backend, model, seed, pack_version"
)
FIELDS = (
    "id", "text", "learner", "stage", "stage_rank", "age", "pack", "scene", "variation", "values", "cast",
    "turn_count", "word_count", "curriculum_position", "title", "learner_role", "backend", "model", "seed",
    "pack_version", "token_count",
)  # fmt: skip
"""The fields of every record, in the order they are written."""

TOKENIZER_UDF = "sim_tokenizer_count"


def corpus_stages(con: duckdb.DuckDBPyConnection, db: Path, wanted: Sequence[str]) -> tuple[str, ...]:
    """Check the database holds training text (of the wanted stages); returns those stages in curriculum order.

    Raises:
        UsageError: the database has no training text, or a wanted stage is not in it.
    """
    found = con.execute(
        "SELECT count(*) FROM duckdb_functions() WHERE function_name = 'training_text_styled'"
    ).fetchone()
    if not found or not found[0]:
        raise UsageError(
            f"{display_path(db)} holds no raising-sim training text (not a corpus, or an old one: "
            f"`sim run scenarios/<pack> --db {display_path(db)}` creates or upgrades it)"
        )
    rows = con.execute("SELECT stage FROM scenes GROUP BY stage ORDER BY min(stage_rank), stage").fetchall()
    stages = [row[0] for row in rows]
    if not stages:
        raise UsageError(
            f"nothing to export: {display_path(db)} holds no scenes yet "
            f"(run `sim run scenarios/<pack> --db {display_path(db)}` first)"
        )
    for stage in wanted:
        if stage not in stages:
            raise UsageError(f"unknown stage {stage!r} for --stage (stages in {display_path(db)}: {', '.join(stages)})")
    return tuple(s for s in stages if s in wanted)


def build_rows(
    con: duckdb.DuckDBPyConnection, *, style: str, order: str, seed: int, stages: Sequence[str], token_sql: str
) -> int:
    """Create the numbered temporary table `export_rows`; returns how many records it holds."""
    where = "WHERE stage IN (SELECT unnest($stages))" if stages else ""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE export_rows AS
        SELECT row_number() OVER (ORDER BY {ORDERS[order].format(seed=int(seed))}) - 1 AS _row, *
        FROM (SELECT {COLUMNS}, CAST({token_sql} AS BIGINT) AS token_count
              FROM training_text_styled($style) {where})
        ORDER BY _row
        """,
        {"style": style, **({"stages": list(stages)} if stages else {})},
    )
    counted = con.execute("SELECT count(*) FROM export_rows").fetchone()
    return int(counted[0]) if counted else 0


def estimate_sql() -> str:
    """The SQL expression of the default token estimate (see `TOKEN_PATTERN`)."""
    return f"len(regexp_extract_all(text, '{TOKEN_PATTERN}'))"


def load_tokenizer(path: Path) -> Any:
    """Load a Hugging Face `tokenizer.json`.

    Raises:
        UsageError: the `tokenizers` package is not installed, or the file is missing or not a tokenizer.
    """
    if not path.is_file():
        raise UsageError(f"--tokenizer {display_path(path)}: no such file (expected a Hugging Face tokenizer.json)")
    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise UsageError(
            "--tokenizer needs the optional `tokenizers` package: pip install 'raising-sim[tokenizers]'"
        ) from None
    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises a bare Exception for every kind of bad file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"--tokenizer {display_path(path)}: not a Hugging Face tokenizer.json ({first})") from None


def register_tokenizer(con: duckdb.DuckDBPyConnection, tokenizer: Any) -> str:
    """Make `tokenizer` countable in SQL, batch by batch; returns the SQL expression counting `text`."""
    import pyarrow as pa

    def count(texts: Any) -> Any:
        encodings = tokenizer.encode_batch(texts.to_pylist(), add_special_tokens=False)
        return pa.array([len(e.ids) for e in encodings], type=pa.int64())

    udf: Callable[[Any], Any] = count
    # Strings, not duckdb.sqltypes/duckdb.func enums: they work on every supported DuckDB (>= 1.2).
    con.create_function(TOKENIZER_UDF, udf, ["VARCHAR"], "BIGINT", type="arrow")  # type: ignore[call-overload]
    return f"{TOKENIZER_UDF}(text)"
