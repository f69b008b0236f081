"""The records of an export, in SQL: which fields, in which order, and how their tokens are counted.

Invariant: everything an export writes is read from one temporary table, `export_rows`, built once
per export from the `scene_records(style)` macro, with the text itself joined in (by the scene's
rowid) only when a shard is written. `export_rows` holds every field but the text, and is built by
two sorts DuckDB can spill to disk and no window over the corpus, so memory stays flat however
large the corpus. Its rowid numbers the records from 0 in the export's order, a pure function of the
database and the options, so a shard is a contiguous rowid range and the same database and options
always give the same records in the same shards.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import duckdb

from sim.errors import UsageError, display_path, first_line

STYLES: dict[str, str] = {
    "scripted": "the first-person opening, a blank line, the dialogue (each person labelled as the learner "
    "knows them, the learner as `I`), a blank line, the first-person reflection",
    "dialogue": "the dialogue lines alone (each person labelled as the learner knows them, the learner as `I`)",
}
"""Training text styles; the `scene_text` macro (migration m004) renders them."""

WORD_RUN = r"[\pL\pM\pN_]+"
SPACE = r"[\s\pZ]+"
"""The token estimate, the one place it is defined: one token per run of letters, marks, digits and
underscores (`WORD_RUN`), and one per other non-space character (punctuation, symbols). These are the
matches of `\\w+|[^\\w\\s]` with Unicode classes, i.e. the pre-tokens of a BPE tokenizer: a lower bound
for its token count. They are counted by shrinking each word run to one character and dropping the
spaces, which needs no list of matches per row (`regexp_extract_all` held every match in memory)."""

TOKEN_ESTIMATE = (
    "an estimate: one token per run of letters, digits and underscores, and one per other non-space character "
    "(the matches of the regex `\\w+|[^\\w\\s]` with Unicode classes, counted in DuckDB as "
    f"`length(regexp_replace(regexp_replace(text, '{WORD_RUN}', 'a', 'g'), '{SPACE}', '', 'g'))`); "
    "a lower bound for what a BPE tokenizer counts"
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
    'id, learner, stage, stage_rank, age, pack, scene, variation, "values", CAST("cast" AS VARCHAR) AS "cast", '
    "turn_count, word_count, title, learner_role, backend, model, seed, pack_version"
)
"""The fields `export_rows` takes from `scene_records`; the text is joined in per shard, and
`curriculum_position` numbered by the export (as `training_text_styled` numbers it)."""
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
    ((found,),) = con.execute(
        "SELECT count(*) FROM duckdb_functions() WHERE function_name = 'scene_records'"
    ).fetchall()
    if not found:
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
    con: duckdb.DuckDBPyConnection,
    *,
    style: str,
    order: str,
    seed: int,
    stages: Sequence[str],
    token_sql: str,
    keep: str | None = None,
) -> int:
    """Create the temporary table `export_rows`, its rowid in export order; returns how many records it holds.

    First every scene, sorted by learner and curriculum key, so that `curriculum_position` is a
    rowid offset (the same number `training_text_styled` gives, counted over all stages); then the
    wanted stages, sorted into the export's order. The text is rendered only to be counted
    (`token_sql` over `text`); `_rid`, the scene's rowid, finds it again for each shard. `keep`, a SELECT of
    scene keys, leaves out the others, as a stage filter does (positions still count every scene).
    """
    wanted = "stage IN (SELECT unnest($stages))" if stages else "true"
    if keep:  # only the scenes quality keeps (`sim.corpus.quality.selection.kept_sql`)
        wanted = f"{wanted} AND id IN ({keep})"
    parameters = {"style": style, **({"stages": list(stages)} if stages else {})}
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE export_numbered AS
        SELECT {COLUMNS}, scene_rowid AS _rid,
               CASE WHEN {wanted} THEN CAST({token_sql} AS BIGINT) END AS token_count
        FROM scene_records($style)
        ORDER BY learner, curriculum_key
        """,
        parameters,
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE export_rows AS
        SELECT n.*, n.rowid - f.first + 1 AS curriculum_position
        FROM export_numbered n JOIN (SELECT learner, min(rowid) AS first FROM export_numbered GROUP BY learner) f
             USING (learner)
        WHERE {wanted}
        ORDER BY {ORDERS[order].format(seed=int(seed))}
        """,
        {"stages": list(stages)} if stages else {},
    )
    con.execute("DROP TABLE export_numbered")
    ((counted,),) = con.execute("SELECT count(*) FROM export_rows").fetchall()
    return int(counted)


_KEPT = frozenset({"word_count", "curriculum_position", "token_count"})
"""Fields a shard reads from `export_rows`; the others come from `scenes` as the shard is written."""
_FROM_SCENES = {"id": "s.scene_key", "cast": 'CAST(s."cast" AS VARCHAR)'}


def records_sql(style: str, start: int, stop: int, fields: Sequence[str] = FIELDS) -> str:
    """A SELECT of `fields` for the records `[start, stop)` of `export_rows`, in order, their text joined in.

    Only four integers per record are read from `export_rows` (so the join's hash table stays
    small however large the shard); the fields are read from the scene's own row, as in `scene_records`.
    """
    literal = style.replace("'", "''")
    scene_fields = {**_FROM_SCENES, "text": f"scene_text('{literal}', s.opening, s.dialogue, s.reflection)"}
    columns = ", ".join(
        f'k."{name}"' if name in _KEPT else f'{scene_fields.get(name, f"s.{chr(34)}{name}{chr(34)}")} AS "{name}"'
        for name in fields
    )
    return (
        f"SELECT {columns} FROM (SELECT rowid AS _row, _rid, {', '.join(sorted(_KEPT))} FROM export_rows "
        f"WHERE rowid >= {int(start)} AND rowid < {int(stop)}) k JOIN scenes s ON s.rowid = k._rid ORDER BY k._row"
    )


def estimate_sql() -> str:
    """The SQL expression of the default token estimate (see `WORD_RUN`)."""
    return f"length(regexp_replace(regexp_replace(text, '{WORD_RUN}', 'a', 'g'), '{SPACE}', '', 'g'))"


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
        raise UsageError(
            f"--tokenizer {display_path(path)}: not a Hugging Face tokenizer.json ({first_line(exc)})"
        ) from None


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
