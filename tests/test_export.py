"""`sim export` as a user runs it: shards and their names, records and fields, orders, the dataset card,
the manifest, refusals and --overwrite, byte-identical re-exports, nothing written outside --out, errors."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest
from conftest import REPO, ok, run_cli, sim_export

from sim.store.db import connect

FIELDS = [
    "id", "text", "learner", "stage", "stage_rank", "age", "pack", "scene", "variation", "values", "cast",
    "turn_count", "word_count", "curriculum_position", "title", "learner_role", "backend", "model", "seed",
    "pack_version", "token_count",
]  # fmt: skip
SEP = "\n<|endoftext|>\n"
ESTIMATE = re.compile(r"\w+|[^\w\s]")  # the documented token estimate, in Python's Unicode regex


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The shipped packs, two variations, lived once for the whole module (read-only from here on)."""
    root = tmp_path_factory.mktemp("corpus")
    db = root / "corpus.duckdb"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        for name in [n for n in os.environ if n.startswith("SIM_")]:
            mp.delenv(name)
        packs = sorted(str(p.parent) for p in (REPO / "scenarios").glob("*/pack.yaml"))
        result = run_cli(
            "run", *packs, "--db", str(db), "--variations", "2",
            "--personas", str(REPO / "personas"), "--scenarios", str(REPO / "scenarios"),
        )  # fmt: skip
        assert result.exit_code == 0, result.stderr
    yield db


def query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def view(db: Path, style: str = "scripted") -> dict[str, dict[str, Any]]:
    """The training_text records by id, with the fields an export writes (cast as parsed JSON)."""
    with duckdb.connect(str(db), read_only=True) as con:
        cursor = con.execute(f"SELECT * FROM training_text_styled('{style}')")
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    return {r["id"]: {**r, "cast": json.loads(r["cast"])} for r in rows}


def records(out: Path, fmt: str = "parquet") -> list[dict[str, Any]]:
    files = sorted(out.glob(f"train-*.{fmt}"))
    if fmt == "parquet":
        return pq.read_table([str(f) for f in files]).to_pylist()
    return [json.loads(line) for f in files for line in f.read_text(encoding="utf-8").splitlines()]


def digests(out: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir())}


def shard_names(n: int, size: int, ext: str) -> list[str]:
    k = math.ceil(n / size)
    return [f"train-{i:05d}-of-{k:05d}.{ext}" for i in range(k)]


# --- files, records, fields --------------------------------------------------------------------------------------


def test_parquet_export_writes_sorted_shards_a_card_a_manifest_and_a_summary(corpus: Path) -> None:
    n = query(corpus, "SELECT count(*) FROM training_text")[0][0]
    result = ok(sim_export(corpus, "--out", "out", "--format", "parquet", "--shard-size", "30"))
    names = shard_names(n, 30, "parquet")
    assert sorted(p.name for p in Path("out").iterdir()) == sorted([*names, "README.md", "export.json"])
    sizes = [pq.read_metadata(f"out/{name}").num_rows for name in names]
    assert sizes == [30] * (len(names) - 1) + [n - 30 * (len(names) - 1)]
    tokens = sum(r["token_count"] for r in records(Path("out")))
    assert result.stdout.splitlines() == [
        f"exported {n:,} records, {tokens:,} tokens (estimated), in {len(names)} shards",
        f"shards: out/{names[0]} … {names[-1]}",
        "dataset card: out/README.md; manifest: out/export.json",
        'next: datasets.load_dataset("parquet", data_files=sorted(glob.glob("out/train-*.parquet")), split="train")',
    ]


def test_parquet_records_carry_the_view_fields_read_with_pyarrow_and_duckdb(corpus: Path) -> None:
    ok(sim_export(corpus, "--out", "out", "--format", "parquet", "--shard-size", "25"))
    table = pq.read_table(sorted(str(f) for f in Path("out").glob("train-*.parquet")))
    assert table.column_names == FIELDS
    rows = table.to_pylist()
    expected = view(corpus)
    assert len(rows) == len(expected) == len({r["id"] for r in rows})
    for row in rows:
        want = expected[row["id"]]
        assert {k: row[k] for k in FIELDS if k not in {"cast", "token_count"}} == {
            k: want[k] for k in FIELDS if k not in {"cast", "token_count"}
        }
        assert json.loads(row["cast"]) == want["cast"]
        assert row["token_count"] == len(ESTIMATE.findall(row["text"]))
    read = duckdb.sql("SELECT id, token_count FROM read_parquet('out/train-*.parquet')").fetchall()
    assert read == [(r["id"], r["token_count"]) for r in rows]


def test_jsonl_holds_the_same_records_as_parquet_one_json_object_per_line(corpus: Path) -> None:
    ok(sim_export(corpus, "--out", "pq", "--format", "parquet", "--shard-size", "40"))
    ok(sim_export(corpus, "--out", "js", "--format", "jsonl", "--shard-size", "40"))
    names = shard_names(len(view(corpus)), 40, "jsonl")
    assert sorted(p.name for p in Path("js").glob("train-*")) == names
    lines = Path("js", names[0]).read_text(encoding="utf-8").splitlines()
    assert len(lines) == 40
    assert list(json.loads(lines[0])) == FIELDS
    assert records(Path("js"), "jsonl") == records(Path("pq"))


def test_txt_holds_the_texts_each_followed_by_the_separator(corpus: Path) -> None:
    ok(sim_export(corpus, "--out", "pq", "--format", "parquet"))
    ok(sim_export(corpus, "--out", "tx", "--format", "txt", "--shard-size", "25"))
    files = sorted(Path("tx").glob("train-*.txt"))
    assert [f.name for f in files] == shard_names(len(view(corpus)), 25, "txt")
    chunks = [f.read_text(encoding="utf-8") for f in files]
    assert all(c.endswith(SEP) for c in chunks)
    assert [len(c.split(SEP)) - 1 for c in chunks][0] == 25
    assert [t for c in chunks for t in c.split(SEP)[:-1]] == [r["text"] for r in records(Path("pq"))]


def test_stage_filter_and_dialogue_style(corpus: Path) -> None:
    ok(sim_export(corpus, "--out", "out", "--format", "jsonl", "--style", "dialogue",
                  "--stage", "early_childhood", "--stage", "toddler"))  # fmt: skip
    rows = records(Path("out"), "jsonl")
    dialogue = {k: v for k, v in view(corpus, "dialogue").items() if v["stage"] in {"toddler", "early_childhood"}}
    assert sorted(r["id"] for r in rows) == sorted(dialogue)
    assert all(r["text"] == dialogue[r["id"]]["text"] for r in rows)
    # numbered over the whole life, as in the view, not over the exported stages only
    assert all(r["curriculum_position"] == dialogue[r["id"]]["curriculum_position"] for r in rows)
    assert not any(r["text"].startswith("I am ") for r in rows)  # no first-person opening in this style
    scripted = view(corpus)
    assert all(r["text"] != scripted[r["id"]]["text"] for r in rows)
    manifest = json.loads(Path("out/export.json").read_text())
    assert manifest["parameters"]["stages"] == ["toddler", "early_childhood"]
    assert manifest["parameters"]["style"] == "dialogue"


# --- orders -------------------------------------------------------------------------------------------------------


def ids(out: str) -> list[str]:
    return [r["id"] for r in records(Path(out))]


def test_curriculum_order_follows_stage_rank_and_curriculum_position(corpus: Path) -> None:
    ok(sim_export(corpus, "--out", "out", "--format", "parquet", "--shard-size", "20"))
    rows = records(Path("out"))
    ranks = [r["stage_rank"] for r in rows]
    positions = [r["curriculum_position"] for r in rows]
    assert ranks == sorted(ranks) and len(set(ranks)) > 1
    assert all(a < b for a, b in zip(positions, positions[1:], strict=False))
    assert [r["id"] for r in rows] == [
        row[0] for row in query(corpus, "SELECT id FROM training_text ORDER BY curriculum_position")
    ]


def test_shuffled_order_is_seeded(corpus: Path) -> None:
    for out, seed in [("a", "1"), ("b", "1"), ("c", "2")]:
        ok(sim_export(corpus, "--out", out, "--format", "parquet", "--order", "shuffled", "--seed", seed))
    curriculum = [row[0] for row in query(corpus, "SELECT id FROM training_text ORDER BY curriculum_position")]
    assert ids("a") == ids("b")
    assert ids("a") != ids("c")
    assert Counter(ids("a")) == Counter(ids("c")) == Counter(curriculum)
    assert ids("a") != curriculum
    ranks = [r["stage_rank"] for r in records(Path("a"))]
    assert ranks != sorted(ranks)  # across stages, not within them


def test_stage_shuffled_keeps_stages_in_order_and_shuffles_within_each(corpus: Path) -> None:
    ok(sim_export(corpus, "--out", "a", "--format", "parquet", "--order", "stage-shuffled", "--seed", "7"))
    ok(sim_export(corpus, "--out", "b", "--format", "parquet", "--order", "stage-shuffled", "--seed", "8"))
    rows = records(Path("a"))
    ranks = [r["stage_rank"] for r in rows]
    assert ranks == sorted(ranks)
    by_stage: dict[int, list[int]] = {}
    for r in rows:
        by_stage.setdefault(r["stage_rank"], []).append(r["curriculum_position"])
    assert any(positions != sorted(positions) for positions in by_stage.values())
    assert Counter(ids("a")) == Counter(list(view(corpus)))
    assert ids("a") != ids("b")


# --- the dataset card and the manifest ------------------------------------------------------------------------------


def test_dataset_card_counts_stages_values_generators_and_says_how_to_load(corpus: Path) -> None:
    ok(sim_export(corpus, "--out", "out", "--format", "parquet", "--order", "stage-shuffled", "--seed", "3"))
    card = Path("out/README.md").read_text(encoding="utf-8")
    n = len(view(corpus))
    assert card.startswith("---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n"
                           "    path: train-*.parquet\n---\n")  # fmt: skip
    assert f"- **Records:** {n:,} (" in card and "in 1 parquet shard\n" in card
    assert (
        "- **Order:** `stage-shuffled`: stages in curriculum order, records shuffled within each stage (seed 3;" in card
    )
    assert "- **Style:** `scripted`: the first-person opening," in card
    for stage, rank, count in query(corpus, "SELECT stage, stage_rank, count(*) FROM training_text GROUP BY ALL"):
        assert f"| {stage} | {rank} | {count:,} |" in card
    for value, count in query(
        corpus, 'SELECT v, count(*) FROM (SELECT unnest("values") AS v FROM training_text) GROUP BY v'
    ):
        assert f"| {value} | {count:,} |" in card
    for backend, model, seed, count in query(corpus, "SELECT backend, model, seed, count(*) FROM scenes GROUP BY ALL"):
        assert f"| {backend} | {model} | {seed} | {count:,} |" in card
    for pack, version, count in query(corpus, "SELECT pack, pack_version, count(*) FROM scenes GROUP BY ALL"):
        assert f"| {pack} | {version} | {count:,} |" in card
    assert r"`token_count` is an estimate: one token per run of letters, digits and underscores" in card
    assert r"`\w+|[^\w\s]`" in card
    assert "| `cast` | VARCHAR | Cast slot -> person id, as JSON text (`json.loads` it). |" in card
    loading = 'datasets.load_dataset("parquet", data_files=sorted(glob.glob("out/train-*.parquet")), split="train")'
    assert loading in card


def test_the_cards_loading_code_runs(corpus: Path) -> None:
    ok(sim_export(corpus, "--out", "out", "--format", "jsonl", "--shard-size", "50"))
    card = Path("out/README.md").read_text(encoding="utf-8")
    code = card.split("```python\n")[1].split("```")[0]
    runnable = "\n".join(line for line in code.splitlines() if "datasets" not in line)  # not installed here
    scope: dict[str, Any] = {}
    exec(runnable, scope)
    assert scope["table"].num_rows == len(view(corpus))
    assert len(scope["rows"].fetchall()) == len(view(corpus))


def test_manifest_records_parameters_and_every_file(corpus: Path) -> None:
    ok(sim_export(corpus, "--out", "out", "--format", "parquet", "--order", "shuffled", "--seed", "9",
                  "--shard-size", "50"))  # fmt: skip
    manifest = json.loads(Path("out/export.json").read_text(encoding="utf-8"))
    assert manifest["parameters"] == {
        "format": "parquet", "order": "shuffled", "shuffle_seed": 9, "stages": [], "shard_size": 50,
        "style": "scripted", "tokenizer": None,
    }  # fmt: skip
    assert manifest["records"] == len(view(corpus))
    assert manifest["fields"] == FIELDS
    files = {f["name"]: f for f in manifest["files"]}
    assert sorted(files) == sorted(p.name for p in Path("out").glob("train-*"))
    for name, entry in files.items():
        assert entry["sha256"] == hashlib.sha256(Path("out", name).read_bytes()).hexdigest()
        assert entry["records"] == pq.read_metadata(f"out/{name}").num_rows


# --- determinism, refusals, --overwrite -----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "txt"])
def test_the_same_export_again_gives_identical_bytes(corpus: Path, fmt: str) -> None:
    args = ("--format", fmt, "--order", "stage-shuffled", "--seed", "4", "--shard-size", "30")
    ok(sim_export(corpus, "--out", "out", *args))
    first = digests(Path("out"))
    ok(sim_export(corpus, "--out", "out", *args))  # into the same directory: allowed
    assert digests(Path("out")) == first
    ok(sim_export(corpus, "--out", "again", *args))
    again = digests(Path("again"))
    assert {k: v for k, v in again.items() if k != "README.md"} == {k: v for k, v in first.items() if k != "README.md"}
    assert len(first) == 2 + math.ceil(len(view(corpus)) / 30)


def test_a_different_export_into_the_same_directory_is_refused(corpus: Path) -> None:
    ok(sim_export(corpus, "--out", "out", "--format", "parquet"))
    before = digests(Path("out"))
    result = sim_export(corpus, "--out", "out", "--format", "jsonl", "--order", "shuffled")
    assert result.exit_code == 2
    assert result.stderr == (
        'error: refusing to export into out: it already holds a different export (format "parquet", not "jsonl"; '
        'order "curriculum", not "shuffled"; shuffle_seed null, not 0); use --overwrite to replace the export, '
        "or choose another --out\n"
    )
    assert digests(Path("out")) == before


def test_a_directory_with_other_files_is_refused(corpus: Path) -> None:
    Path("out").mkdir()
    Path("out/notes.txt").write_text("mine")
    result = sim_export(corpus, "--out", "out", "--format", "parquet")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: refusing to export into out: it already holds files that are not from this export (notes.txt); "
        "use --overwrite to replace the export, or choose another --out\n"
    )
    assert [p.name for p in Path("out").iterdir()] == ["notes.txt"]


def test_overwrite_replaces_the_previous_export_and_keeps_other_files(corpus: Path) -> None:
    ok(sim_export(corpus, "--out", "out", "--format", "parquet", "--shard-size", "10"))
    Path("out/notes.txt").write_text("mine")
    ok(sim_export(corpus, "--out", "out", "--format", "jsonl", "--shard-size", "1000", "--overwrite"))
    assert sorted(p.name for p in Path("out").iterdir()) == [
        "README.md", "export.json", "notes.txt", "train-00000-of-00001.jsonl",
    ]  # fmt: skip
    assert Path("out/notes.txt").read_text() == "mine"
    assert "path: train-*.jsonl" in Path("out/README.md").read_text()


def test_overwrite_removes_only_plain_shard_names_the_manifest_lists(corpus: Path) -> None:
    ok(sim_export(corpus, "--out", "out", "--format", "parquet"))
    manifest = json.loads(Path("out/export.json").read_text())
    manifest["files"] += [{"name": "../victim.txt"}, {"name": "notes.txt"}, {"name": "/tmp"}]
    Path("out/export.json").write_text(json.dumps(manifest))
    Path("victim.txt").write_text("keep")
    Path("out/notes.txt").write_text("keep")
    ok(sim_export(corpus, "--out", "out", "--format", "txt", "--overwrite"))
    assert Path("victim.txt").read_text() == "keep"
    assert Path("out/notes.txt").read_text() == "keep"
    assert not list(Path("out").glob("*.parquet"))


def snapshot(root: Path, skip: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file() and skip not in p.parents
    }


def test_nothing_is_written_outside_out_whatever_the_ids_contain(corpus: Path, tmp_path: Path) -> None:
    hostile = Path("hostile.duckdb").resolve()
    with connect(hostile) as con:
        con.execute(f"ATTACH '{corpus}' AS src (READ_ONLY)")
        con.execute("INSERT INTO scenes SELECT * REPLACE ('../../escape/' || scene_key || '/x' AS scene_key) "
                    "FROM src.scenes")  # fmt: skip
        con.execute("INSERT INTO turns SELECT * REPLACE ('../../escape/' || scene_key || '/x' AS scene_key) "
                    "FROM src.turns")  # fmt: skip
    out = Path("deep/out").resolve()
    before = snapshot(tmp_path, out)
    for fmt in ("parquet", "jsonl", "txt"):
        ok(sim_export(hostile, "--out", str(out), "--format", fmt, "--overwrite", "--shard-size", "7"))
        assert all(p.parent == out for p in out.rglob("*"))
    assert snapshot(tmp_path, out) == before
    assert not list(tmp_path.rglob("escape"))
    ok(sim_export(hostile, "--out", "p", "--format", "parquet"))
    assert ids("p")[0].startswith("../../escape/")


def test_an_interrupted_export_leaves_no_shard_under_a_final_name(
    corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sim.corpus.export import shards

    real = shards.write
    calls: list[str] = []

    def write_then_stop(con: Any, shard: Any, fmt: str, style: str, path: Path) -> None:
        calls.append(shard.name)
        real(con, shard, fmt, style, path)
        if len(calls) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(shards, "write", write_then_stop)
    result = sim_export(corpus, "--out", "out", "--format", "parquet", "--shard-size", "10")
    assert result.exit_code == 130
    assert not Path("out").exists()  # created by the export, left empty, removed
    monkeypatch.setattr(shards, "write", real)
    Path("out/.sim-export-tmp").mkdir(parents=True)  # as a kill -9 would leave it
    Path("out/.sim-export-tmp/train-00000-of-00001.parquet").write_bytes(b"half")
    ok(sim_export(corpus, "--out", "out", "--format", "parquet", "--shard-size", "1000"))
    assert sorted(p.name for p in Path("out").iterdir()) == ["README.md", "export.json", "train-00000-of-00001.parquet"]
    assert pq.read_metadata("out/train-00000-of-00001.parquet").num_rows == len(view(corpus))


# --- tokens ---------------------------------------------------------------------------------------------------------


def test_a_real_tokenizer_counts_tokens(corpus: Path) -> None:
    tokenizers = pytest.importorskip("tokenizers", reason="the optional `tokenizers` extra is not installed")
    from tokenizers import models, pre_tokenizers

    tok = tokenizers.Tokenizer(models.WordLevel({"[UNK]": 0, "I": 1, "Grandma:": 2}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.save("tok.json")
    result = ok(sim_export(corpus, "--out", "out", "--format", "parquet", "--tokenizer", "tok.json"))
    rows = records(Path("out"))
    assert all(r["token_count"] == len(tok.encode(r["text"], add_special_tokens=False).ids) for r in rows)
    assert any(r["token_count"] != len(ESTIMATE.findall(r["text"])) for r in rows)
    assert f"{sum(r['token_count'] for r in rows):,} tokens, in 1 shard" in result.stdout
    digest = hashlib.sha256(Path("tok.json").read_bytes()).hexdigest()
    assert (
        f"`token_count` is counted by the Hugging Face tokenizer `tok.json` (SHA-256 {digest})"
        in Path("out/README.md").read_text()
    )
    assert json.loads(Path("out/export.json").read_text())["parameters"]["tokenizer"] == f"sha256:{digest}"


def test_a_bad_tokenizer_file_is_one_line(corpus: Path) -> None:
    pytest.importorskip("tokenizers", reason="the optional `tokenizers` extra is not installed")
    Path("bad.json").write_text("{}")
    result = sim_export(corpus, "--out", "out", "--format", "parquet", "--tokenizer", "bad.json")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --tokenizer bad.json: not a Hugging Face tokenizer.json (")
    assert len(result.stderr.splitlines()) == 1
    assert not Path("out").exists()


def test_tokenizer_without_the_extra_says_how_to_install_it(corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tokenizers", None)  # import fails as if not installed
    Path("tok.json").write_text("{}")
    result = sim_export(corpus, "--out", "out", "--format", "parquet", "--tokenizer", "tok.json")
    assert (result.exit_code, result.stderr) == (
        2,
        "error: --tokenizer needs the optional `tokenizers` package: pip install 'raising-sim[tokenizers]'\n",
    )


# --- errors ---------------------------------------------------------------------------------------------------------


def test_errors_are_one_clear_line_and_write_nothing(corpus: Path) -> None:
    with connect(Path("empty.duckdb")):
        pass
    with duckdb.connect("plain.duckdb") as con:
        con.execute("CREATE TABLE t (x INTEGER)")
    Path("afile").write_text("")
    stages = ", ".join(r[0] for r in query(corpus, "SELECT stage FROM scenes GROUP BY ALL ORDER BY min(stage_rank)"))
    cases = [
        (("--db", "empty.duckdb"), 2,
         "nothing to export: empty.duckdb holds no scenes yet "
         "(run `sim run scenarios/<pack> --db empty.duckdb` first)"),
        (("--db", "plain.duckdb"), 2,
         "plain.duckdb holds no raising-sim training text (not a corpus, or an old one: "
         "`sim run scenarios/<pack> --db plain.duckdb` creates or upgrades it)"),
        (("--db", "missing.duckdb"), 1,
         "no database at missing.duckdb (run `sim run scenarios/<pack>` first, or pass --db)"),
        (("--db", str(corpus), "--stage", "teens"), 2,
         f"unknown stage 'teens' for --stage (stages in {corpus}: {stages})"),
        (("--db", str(corpus), "--shard-size", "0"), 2, "--shard-size 0: must be at least 1 (records per shard)"),
        (("--db", str(corpus), "--tokenizer", "nope.json"), 2,
         "--tokenizer nope.json: no such file (expected a Hugging Face tokenizer.json)"),
    ]  # fmt: skip
    for args, code, message in cases:
        result = run_cli("export", "--out", "out", "--format", "parquet", *args)
        assert (result.exit_code, result.stderr) == (code, f"error: {message}\n"), args
        assert not Path("out").exists(), args
    result = run_cli("export", "--db", str(corpus), "--out", "afile", "--format", "parquet")
    assert (result.exit_code, result.stderr) == (2, "error: --out afile is a file; choose a directory\n")


def test_a_damaged_database_is_reported_by_connect(corpus: Path) -> None:
    Path("bad.duckdb").write_bytes(b"not a database" * 100)
    result = run_cli("export", "--db", "bad.duckdb", "--out", "out", "--format", "parquet")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot open bad.duckdb as a DuckDB database (")
    assert not Path("out").exists()


def test_running_out_of_memory_is_one_line_and_keeps_the_previous_export(
    corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sim.corpus.export

    ok(sim_export(corpus, "--out", "out", "--format", "parquet"))
    before = digests(Path("out"))
    monkeypatch.setattr(sim.corpus.export, "EXPORT_MEMORY", "1MB")  # DuckDB cannot even start a query in this
    result = sim_export(corpus, "--out", "out", "--format", "parquet", "--shard-size", "7", "--overwrite")
    assert result.exit_code == 1
    assert re.fullmatch(
        r"error: export failed while reading corpus\.duckdb \(Out of Memory Error: [^\n]*\); DuckDB spills to disk "
        r"inside --out: free disk space there, or export fewer --stage at a time\. Nothing in --out was changed\n",
        result.stderr.replace(str(corpus), "corpus.duckdb"),
    ), result.stderr
    assert "Traceback" not in result.output
    assert digests(Path("out")) == before


def test_shards_larger_than_a_batch_are_written_batch_by_batch_in_order(
    corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sim.corpus.export import shards

    ok(sim_export(corpus, "--out", "whole", "--format", "jsonl", "--shard-size", "30"))
    monkeypatch.setattr(shards, "BATCH", 7)
    for fmt in ("parquet", "jsonl", "txt"):
        ok(sim_export(corpus, "--out", f"batched-{fmt}", "--format", fmt, "--shard-size", "30"))
    expected = records(Path("whole"), "jsonl")
    assert records(Path("batched-parquet")) == records(Path("batched-jsonl"), "jsonl") == expected
    texts = "".join(p.read_text(encoding="utf-8") for p in sorted(Path("batched-txt").glob("train-*.txt")))
    assert texts.split(shards.SEPARATOR)[:-1] == [r["text"] for r in expected]
    first = pq.ParquetFile("batched-parquet/train-00000-of-" + f"{math.ceil(len(expected) / 30):05d}.parquet")
    assert [first.metadata.row_group(i).num_rows for i in range(first.num_row_groups)] == [7, 7, 7, 7, 2]


@pytest.mark.parametrize(
    "text",
    ["héllo  wörld!! 3.14 — ok", "", "   ", "日本語 テスト", "a\u00a0b", "x\u200by", "e\u0301t\u00e9",
     "😀👍🏽 x\t\n\r\u3000y", "\u2028a\u2029b", "snake_case_9 can't", "I: Be kind, sprout.\n\nGrandpa: Ok!"],
)  # fmt: skip
def test_the_token_estimate_counts_the_matches_of_its_regex(text: str) -> None:
    from sim.corpus.export.query import estimate_sql

    con = duckdb.connect()
    pattern = r"[\pL\pM\pN_]+|[^\pL\pM\pN_\s\pZ]"  # the documented regex
    expected = con.execute(f"SELECT len(regexp_extract_all($t, '{pattern}'))", {"t": text}).fetchall()
    counted = con.execute(f"SELECT {estimate_sql()} FROM (SELECT $t AS text)", {"t": text}).fetchall()
    assert counted == expected
    if "\u0301" not in text:  # Python's \w has no combining marks; elsewhere it is the same regex
        assert counted == [(len(ESTIMATE.findall(text)),)]
