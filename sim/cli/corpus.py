"""`sim show` and `sim stats`: read the corpus as a person would.

Invariant: both only read, on a read-only connection; the queries are `sim.corpus.reading`'s, this module
only lays out what they return (as a table, or the same data as `--json`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from sim.cli.options import SEED, console, db_option, json_option, print_json, world_options
from sim.corpus.reading import find_scene, learner_words, model_costs, stage_value_counts, top_people, transcript
from sim.store.db import connect
from sim.world.paths import WorldPaths

SPEAKER_STYLES = {"learner": "bold green", "family": "bold magenta", "teacher": "bold blue", "peer": "bold cyan",
                  "community": "bold yellow"}


@click.command()
@click.argument("scene")
@click.option("--variation", type=int, default=0, show_default=True, help="Which variation (life line).")
@click.option("--seed", type=SEED, default=None, help="Which seed (default: the lowest stored).")
@db_option
@json_option
def show(scene: str, variation: int, seed: int | None, db: Path, as_json: bool) -> None:
    """Print one lived scene (PACK/SCENE, SCENE or a scene_key) as a transcript."""
    with connect(db, read_only=True, wait=10.0) as con:
        got = transcript(con, find_scene(con, scene, variation, seed))
    if as_json:
        print_json({**got.meta, "turns": [{"speaker": a, "role": b, "text": c} for a, b, c in got.lines]})
        return
    meta, out = got.meta, console()
    where = f"  {meta['pack']}/{meta['scene']} · variation {meta['variation']} · seed {meta['seed']}"
    out.print(Text.assemble((str(meta["title"]), "bold"), where))
    cast = ", ".join(f"{slot}={pid}" for slot, pid in meta["cast"].items())
    out.print(f"{meta['stage']}, age {meta['age']} · I am the {meta['learner_role']} · values "
              f"{', '.join(meta['values'])} · cast {cast or '-'} · {meta['backend']}/{meta['model']}")
    out.print()
    out.print(Text(meta["opening"], style="italic"))
    out.print()
    for label, role, text in got.lines:
        out.print(Text.assemble((f"{label}: ", SPEAKER_STYLES.get(role, "bold")), text))
    if meta["reflection"]:
        out.print()
        out.print(Text(meta["reflection"], style="italic"))


def _short(stage: str) -> str:
    """A narrow column header: early_childhood -> early childhood (wraps in the table)."""
    return stage.replace("_", " ")


COST_KEYS = ("stage", "calls_paid", "calls_replayed", "calls_failed", "input_tokens", "output_tokens",
             "cache_read_tokens", "cache_write_tokens", "cost_usd")  # fmt: skip


@click.command()
@db_option
@world_options
@json_option
def stats(db: Path, paths: WorldPaths, as_json: bool) -> None:
    """Counts by stage x value, the people who appear most, and learner words per turn against stage targets."""
    from sim.world.stages import load_stages

    stage_list = load_stages(paths.stages)
    with connect(db, read_only=True, wait=10.0) as con:
        pairs, people, words = stage_value_counts(con), top_people(con), learner_words(con)
        costs = model_costs(con)
    targets = {st.id: st.language.max_words_per_turn for st in stage_list.stages}
    if as_json:
        print_json(_stats_json(pairs, people, words, costs, targets))
        return
    _print_stats(pairs, people, words, targets)
    if costs:
        _print_costs(costs)


def _print_stats(pairs: list[tuple[str, int, str, int]], people: list[tuple[str, str, str, int, int]],
                 words: list[tuple[str, int, float, int, int]], targets: dict[str, int]) -> None:  # fmt: skip
    out = console()
    counts = {(st, v): n for st, _, v, n in pairs}
    stages = [st for st in targets if any(st == s for s, _ in counts)]
    grid = Table("value", *(_short(st) for st in stages), title="scenes by value x stage")
    for value in sorted({v for _, v in counts}):
        grid.add_row(value, *(str(counts.get((st, value), "")) for st in stages))
    out.print(grid)
    who = Table("person", "role", "id", "scenes", "lines", title="people who appear most")
    for row in people:
        who.add_row(*(str(x) for x in row))
    out.print(who)
    lang = Table("stage", "words/turn", "longest", "target (max)", "learner turns",
                 title="the learner's words per turn")
    for stage, _, mean, longest, turns in words:
        target = targets.get(stage)
        over = " over!" if target is not None and longest > target else ""
        lang.add_row(stage, f"{mean:.1f}", f"{longest}{over}", str(target or "?"), str(turns))
    out.print(lang)


def _stats_json(pairs: list[tuple[str, int, str, int]], people: list[tuple[str, str, str, int, int]],
                words: list[tuple[str, int, float, int, int]], costs: list[tuple[Any, ...]],
                targets: dict[str, int]) -> dict[str, Any]:  # fmt: skip
    """What `sim stats` shows, as one JSON object (its shape is in the README)."""
    return {
        "scenes_by_stage_value": [{"stage": s, "stage_rank": r, "value": v, "scenes": n} for s, r, v, n in pairs],
        "people": [{"known_as": a, "role": r, "person_id": i, "scenes": s, "lines": n} for a, r, i, s, n in people],
        "learner_words": [{"stage": s, "stage_rank": r, "mean_words": m, "longest": x,
                           "target_max_words": targets.get(s), "learner_turns": n} for s, r, m, x, n in words],
        "model_costs": [dict(zip(COST_KEYS, row[: len(COST_KEYS)], strict=True)) for row in costs],
    }


def _print_costs(costs: list[tuple[Any, ...]]) -> None:
    table = Table("stage", "calls paid", "replayed", "failed", "input", "output", "cache read", "cache write",
                  "cost (USD)", title="model calls, tokens and cost by stage")  # fmt: skip
    for stage, *counts, cost, _ in costs:
        table.add_row(stage, *(f"{n:,}" for n in counts), f"{cost:,.4f}")
    total = sum(row[8] for row in costs)
    table.add_row("all", *(f"{sum(row[i] for row in costs):,}" for i in range(1, 8)), f"{total:,.4f}")
    console().print(table)
