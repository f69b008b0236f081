"""The dataset card (README.md of an export): what is in it, in which order, made how, and how to load it.

Invariant: the card carries `CARD_MARKER` (right after the Hub front matter), which lets the next export
replace it and nothing else; it is a pure function of the exported records (`export_rows`) and the export's
parameters, sorted everywhere, so the same export always writes the same bytes; field meanings come
from the `training_text` view's column comments (the migrations), not from a second copy here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb

from sim.corpus.export.outdir import CARD_MARKER, MANIFEST
from sim.corpus.export.query import FIELDS, ORDER_DESCRIPTIONS, STYLES
from sim.corpus.export.shards import SEPARATOR, Shard

Row = tuple[object, ...]
_FIELD_NOTES = {
    "cast": "Cast slot -> person id, as JSON text (`json.loads` it).",
    "token_count": "Tokens in `text` (see Token count).",
}


@dataclass(frozen=True)
class Stats:
    """Counts over the exported records, for the card and the summary."""

    records: int
    words: int
    tokens: int
    stages: list[Row]  # stage, stage_rank, records, words, tokens
    values: list[Row]  # value, records
    generators: list[Row]  # backend, model, seed, records
    packs: list[Row]  # pack, pack_version, records
    learners: list[Row]  # learner, records
    fields: list[Row]  # name, type, meaning


@dataclass(frozen=True)
class CardInfo:
    """What the card says about how the export was made."""

    out: str
    fmt: str
    order: str
    seed: int
    style: str
    stages: Sequence[str]
    token_method: str
    shards: Sequence[Shard]
    held_back: Sequence[tuple[str, int]] = ()
    quality: Sequence[tuple[str, str, float | None]] = ()


def collect(con: duckdb.DuckDBPyConnection) -> Stats:
    """Count the records of `export_rows` by stage, value, generator, pack and learner."""

    def rows(sql: str) -> list[Row]:
        return [tuple(r) for r in con.execute(sql).fetchall()]

    total = rows("SELECT count(*), coalesce(sum(word_count), 0), coalesce(sum(token_count), 0) FROM export_rows")[0]
    return Stats(
        records=int(str(total[0])),
        words=int(str(total[1])),
        tokens=int(str(total[2])),
        stages=rows(
            "SELECT stage, stage_rank, count(*), sum(word_count), sum(token_count) FROM export_rows "
            "GROUP BY stage, stage_rank ORDER BY stage_rank, stage"
        ),
        values=rows(
            'SELECT v, count(*) AS n FROM (SELECT unnest("values") AS v FROM export_rows) GROUP BY v ORDER BY n DESC, v'
        ),
        generators=rows("SELECT backend, model, seed, count(*) FROM export_rows GROUP BY ALL ORDER BY ALL"),
        packs=rows("SELECT pack, pack_version, count(*) FROM export_rows GROUP BY ALL ORDER BY ALL"),
        learners=rows("SELECT learner, count(*) FROM export_rows GROUP BY ALL ORDER BY ALL"),
        fields=_fields(con),
    )


def _fields(con: duckdb.DuckDBPyConnection) -> list[Row]:
    types = dict(
        con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = 'temp' "
            "AND table_name = 'export_rows'"
        ).fetchall()
    )
    view = {
        name: (data_type, comment)
        for name, data_type, comment in con.execute(
            "SELECT column_name, data_type, comment FROM duckdb_columns() WHERE table_name = 'training_text' "
            "AND schema_name = 'main'"
        ).fetchall()
    }
    types.setdefault("text", view["text"][0])  # the text is joined in per shard, not kept in export_rows
    return [(name, types[name], _FIELD_NOTES.get(name) or view.get(name, ("", ""))[1] or "") for name in FIELDS]


def render(stats: Stats, info: CardInfo) -> str:
    """The whole card, as Markdown."""
    parts = [
        _front_matter(info) + CARD_MARKER + "\n",
        _summary(stats, info),
        _table("Records per stage", ("stage", "rank", "records", "words", "tokens"), stats.stages),
        _table("Records per value", ("value", "records"), stats.values)
        + "\nA record about several values counts under each of them.\n",
        _generators(stats),
        _held_back(info),
        _fields_section(stats, info),
        _token_section(info),
        _files(info),
        _loading(info),
    ]
    return "\n".join(p for p in parts if p)


def _held_back(info: CardInfo) -> str:
    """What quality held back and why, and what `sim check` measured, when `--only-passing` or `--dedup` asked."""
    if not info.held_back:
        return ""
    reasons = _table("Held back by quality", ("reason", "scenes"), info.held_back)
    note = ("\nA scene failing several gates counts under each. Gates are `sim check`'s, in their per-scene form "
            "(a stage's share of scenes that repeat becomes: this scene repeats nothing).\n")  # fmt: skip
    seen = dict.fromkeys(stage for _, stage, _ in info.quality)
    stages = [s for s in seen if s != "corpus"] + ["corpus"] * ("corpus" in seen)
    values = {(measure, stage): value for measure, stage, value in info.quality}
    measures = dict.fromkeys(m for m, _, _ in info.quality)
    table = [(m, *(_measured(values.get((m, s))) for s in stages)) for m in measures]
    measured = _table("Quality (`sim check`, the whole corpus)", ("measure", *stages), table)
    return reasons + note + "\n" + measured


def _measured(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def _front_matter(info: CardInfo) -> str:
    if info.fmt == "txt":
        return ""
    # Hugging Face Hub metadata: the shards are the train split of the default config.
    return (
        f"---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n    path: train-*.{info.fmt}\n---\n"
    )


def _summary(stats: Stats, info: CardInfo) -> str:
    stages = ", ".join(info.stages) if info.stages else "all stages in the database"
    order = ORDER_DESCRIPTIONS[info.order].format(seed=info.seed)
    return (
        "# raising-sim training corpus\n\n"
        'Training text written by raising-sim: a persistent learner "I" growing up through social scenes, '
        "told in the first person.\n\n"
        f"- **Records:** {stats.records:,} ({stats.words:,} words, {stats.tokens:,} tokens) in "
        f"{len(info.shards):,} {info.fmt} shard{'s' if len(info.shards) != 1 else ''}\n"
        f"- **Order:** `{info.order}`: {order}. The shard names sort in this order.\n"
        f"- **Style:** `{info.style}`: {STYLES[info.style]}.\n"
        f"- **Stages:** {stages}.\n"
    )


def _table(title: str, header: Sequence[str], rows: Sequence[Row]) -> str:
    lines = [f"## {title}\n", "| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _cell(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _generators(stats: Stats) -> str:
    return "\n".join(
        [
            _table("Generators", ("backend", "model", "seed", "records"), stats.generators),
            _table("Scenario packs", ("pack", "version", "records"), stats.packs),
            _table("Learners", ("learner", "records"), stats.learners),
        ]
    )


def _fields_section(stats: Stats, info: CardInfo) -> str:
    if info.fmt == "txt":
        return "## Fields\n\nText shards hold the texts alone; export as parquet or jsonl for the metadata.\n"
    rows = [(f"`{name}`", dtype, doc) for name, dtype, doc in stats.fields]
    return _table("Fields", ("field", "type (DuckDB)", "meaning"), rows)


def _token_section(info: CardInfo) -> str:
    return f"## Token count\n\n`token_count` is {info.token_method}.\n"


def _files(info: CardInfo) -> str:
    lines = ["## Files\n", "| file | records |", "| --- | --- |"]
    lines += [f"| `{s.name}` | {s.records:,} |" for s in info.shards]
    lines.append(
        f"\n`{MANIFEST}` records the export's parameters and every file with its SHA-256. It is written last, "
        "after every shard is in place: a directory without it holds no complete export."
    )
    if info.fmt == "txt":
        lines.append(f"\nEach record's text is followed by the separator `{json.dumps(SEPARATOR)}`.")
    return "\n".join(lines) + "\n"


def _loading(info: CardInfo) -> str:
    return (
        "## Loading\n\nRecords come in the export's order when the shards are read in name order "
        "(do not shuffle them if you want the curriculum).\n\n"
        f"```python\n{_loading_code(info)}```\n"
    )


def _loading_code(info: CardInfo) -> str:
    files = f"{info.out.rstrip('/')}/train-*.{info.fmt}"
    py, sql = json.dumps(files), files.replace("'", "''")
    if info.fmt == "txt":
        return (
            "import glob\n\n"
            f"texts = [t for f in sorted(glob.glob({py}))\n"
            f'         for t in open(f, encoding="utf-8").read().split({json.dumps(SEPARATOR)})[:-1]]\n'
        )
    if info.fmt == "parquet":
        imports, arrow = "import pyarrow.parquet as pq", f"pq.read_table(sorted(glob.glob({py})))"
        reader, builder = "read_parquet", "parquet"
    else:
        imports = "import pyarrow as pa\nimport pyarrow.json as pj"
        arrow = f"pa.concat_tables([pj.read_json(f) for f in sorted(glob.glob({py}))])"
        reader, builder = "read_json", "json"
    return (
        f"import glob\n\nimport datasets\nimport duckdb\n{imports}\n\n"
        f"table = {arrow}\n"
        f"rows = duckdb.sql(\"SELECT * FROM {reader}('{sql}')\")\n"
        f'ds = datasets.load_dataset({json.dumps(builder)}, data_files=sorted(glob.glob({py})), split="train")\n'
    )
