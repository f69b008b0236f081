"""`sim export`: write the corpus as training shards with a dataset card, for any training stack.

Invariant: the command parses options and shows progress only; what is written, where and how safely is
decided by `sim.corpus.export`, so the same options give the same files from the CLI or from Python.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from sim.cli.options import SEED, console, db_option
from sim.corpus.export import FORMATS, ORDERS, STYLES, ExportOptions, ExportResult, export_corpus
from sim.corpus.export.outdir import CARD, MANIFEST
from sim.corpus.export.shards import Shard


@click.command("export")
@click.option(
    "--out", type=click.Path(path_type=Path), required=True, help="Directory for the shards, card and manifest."
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), required=True, help="Shard format.")
@click.option(
    "--order",
    type=click.Choice(tuple(ORDERS)),
    default="curriculum",
    show_default=True,
    help="Record order: the curriculum, a seeded shuffle, or stages in order shuffled within.",
)
@click.option("--stage", "stages", multiple=True, help="Only records of this stage (repeatable).")
@click.option("--shard-size", type=int, default=10_000, show_default=True, help="Records per shard.")
@click.option(
    "--style", type=click.Choice(tuple(STYLES)), default="scripted", show_default=True, help="Training text style."
)
@click.option(
    "--seed", type=SEED, default=0, show_default=True, help="Seed of the shuffled orders: same seed, same order."
)
@click.option(
    "--tokenizer",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="A Hugging Face tokenizer.json for exact token counts (needs the `tokenizers` extra).",
)
@click.option(
    "--overwrite", is_flag=True, help="Replace an earlier export in --out (only what an export wrote; others are kept)."
)
@click.option("--only-passing", is_flag=True,
              help="Only scenes that pass every per-scene gate of `sim check` (run it first).")  # fmt: skip
@click.option("--dedup", is_flag=True, help="One scene per near-duplicate cluster (run `sim check` first).")
@click.option("--gates", "gates_file", type=click.Path(path_type=Path, dir_okay=False),
              help="Gates file for --only-passing (default: the shipped sim/data/gates.yaml).")  # fmt: skip
@db_option
def export(
    out: Path,
    fmt: str,
    order: str,
    stages: tuple[str, ...],
    shard_size: int,
    style: str,
    seed: int,
    tokenizer: Path | None,
    overwrite: bool,
    only_passing: bool,
    dedup: bool,
    gates_file: Path | None,
    db: Path,
) -> None:
    """Write the corpus as training shards (Parquet, JSONL or text) with a dataset card.

    Shards are named train-00000-of-00012.parquet (.jsonl, .txt) so they sort in the export's order.
    The same database and options always give byte-identical files; one corpus gives every order,
    for ablations. The database is only read.
    """
    options = ExportOptions(
        db=db,
        out=out,
        fmt=fmt,
        order=order,
        stages=stages,
        shard_size=shard_size,
        style=style,
        seed=seed,
        tokenizer=tokenizer,
        overwrite=overwrite,
        only_passing=only_passing,
        dedup=dedup,
        gates=gates_file,
    )
    with _progress() as bar:
        task = bar.add_task("rendering and numbering the records", total=None)

        def advance(shard: Shard) -> None:
            bar.update(task, advance=1, description=shard.name)

        result = export_corpus(options, progress=advance)
    _print_summary(result, fmt)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console(),
        transient=True,
        disable=not sys.stderr.isatty(),
    )


def _print_summary(result: ExportResult, fmt: str) -> None:
    out = console()
    stats, n = result.stats, len(result.shards)
    where = str(result.out).rstrip("/")
    estimate = " (estimated)" if result.token_method.startswith("an estimate") else ""
    out.print(
        f"exported {stats.records:,} records, {stats.tokens:,} tokens{estimate}, in {n:,} shard{'s' if n != 1 else ''}",
        markup=False,
    )
    if result.held_back:
        why = ", ".join(f"{scenes:,} {reason}" for reason, scenes in result.held_back if scenes)
        out.print(f"held back by quality: {why or 'nothing'} (the card lists the reasons)", markup=False)
    last = f" … {result.shards[-1].name}" if n > 1 else ""
    out.print(f"shards: {where}/{result.shards[0].name}{last}", markup=False)
    out.print(f"dataset card: {where}/{CARD}; manifest: {where}/{MANIFEST}", markup=False)
    if fmt == "txt":
        out.print(f"next: read {where}/{CARD} (texts are separated by <|endoftext|>)", markup=False)
    else:
        builder = "parquet" if fmt == "parquet" else "json"
        out.print(
            f'next: datasets.load_dataset("{builder}", data_files=sorted(glob.glob("{where}/train-*.{fmt}")), '
            'split="train")',
            markup=False,
        )
