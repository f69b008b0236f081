"""`sim run`: live scenario packs and store every trajectory in DuckDB."""

from __future__ import annotations

import shlex
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from sim.backends import registry
from sim.cli.model_flags import BackendChoice, ModelFlags, model_flags
from sim.cli.options import SEED, console, db_option, pack_dirs, world_options
from sim.errors import UsageError
from sim.store.path import DEFAULT_DB
from sim.world.paths import WorldPaths
from sim.world.persona_graph import learners

if TYPE_CHECKING:
    from sim.run.options import RunOptions, RunSummary
    from sim.world.curriculum import SceneJob
    from sim.world.load import World

EXIT_FAILED_SCENES = 1
"""Exit status when some scenes failed (they are in scene_failures; running again retries them)."""
EXIT_STOPPED = 3
"""Exit status when --max-cost stopped the run."""


@click.command("run")
@click.argument("packs", nargs=-1, required=True, metavar="PACK...")
@db_option
@click.option("--learner", default=None, help="Learner id (default: the only learner in personas/).")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed: same seed, same corpus.")
@click.option(
    "--variations",
    type=click.IntRange(1, 100_000),
    default=1,
    show_default=True,
    help="Variations of each scene; each variation is a life line of its own.",
)
@click.option(
    "--backend",
    type=BackendChoice(),
    default="scripted",
    show_default=True,
    help="Who writes the lines: scripted is offline and deterministic (all of them: sim backends).",
)
@click.option("--model", default=None, help="Model id, for the model backends (e.g. claude-sonnet-5).")
@model_flags
@click.option(
    "--workers",
    type=click.IntRange(0, 64),
    default=0,
    show_default="0 = one per core for big runs; with a model, one per 32 scenes in flight",
    help="Processes living scenes in parallel; the corpus is the same for any number.",
)
@click.option("--stage", "stages", multiple=True, help="Only scenes of this stage (repeatable).")
@click.option("--dry-run", is_flag=True, help="Show what would run, change nothing.")
@world_options
def run_command(
    packs: tuple[str, ...],
    db: Path,
    learner: str | None,
    seed: int,
    variations: int,
    backend: str,
    model: str | None,
    model_options: ModelFlags,
    workers: int,
    stages: tuple[str, ...],
    dry_run: bool,
    paths: WorldPaths,
) -> None:
    """Live the scenes of PACK... in developmental order and store them in DuckDB.

    A PACK is a pack directory, a directory of packs (scenarios/) or a pack id; other files are skipped.

    Running the same command again adds nothing; a run stopped at any point (even killed) completes
    on the next invocation, with nothing lost and nothing duplicated.
    """
    from sim.run.forkserver import warm_up  # first, and alone: the fork server imports while this process does

    _check_model_flags(backend, model, model_options, workers)
    if not dry_run:
        warm_up(backend, workers, variations, batch=model_options.options.batch)
    from sim.run.options import RunOptions
    from sim.world.load import load_world

    world = load_world(paths, pack_dirs(packs, paths))
    options = RunOptions(
        db=db,
        learner=_learner(world, learner),
        seed=seed,
        variations=variations,
        backend=backend,
        stages=_stages(world, stages),
        workers=workers,
        command=_command_line(),
        concurrency=model_options.concurrency,
        model_options=replace(model_options.options, model=model),
    )
    if dry_run:
        _dry_run(world, options)
        return
    summary = _run_with_progress(world, options)
    _print_summary(world, summary)
    if summary.stopped or summary.failed:
        click.get_current_context().exit(EXIT_STOPPED if summary.stopped else EXIT_FAILED_SCENES)


def _check_model_flags(backend: str, model: str | None, flags: ModelFlags, workers: int) -> None:
    """Options that only a model backend reads are an error with an offline one, not silently ignored."""
    if registry.get(backend).concurrent:
        if flags.options.batch and workers > 1:
            raise UsageError(
                f"--batch runs in one process (a batch gathers every scene's next call); leave out --workers {workers}"
            )
        return
    given = flags.options
    named = [name for name, on in (("--model", model), ("--base-url", given.base_url),
                                    ("--mode script", given.mode == "script"), ("--max-cost", given.max_cost),
                                    ("--batch", given.batch)) if on]  # fmt: skip
    if named:
        raise UsageError(
            f"{', '.join(named)} only apply to a model backend; add --backend anthropic or --backend "
            f"openai-compatible, or leave them out for the offline {backend} backend"
        )


def _learner(world: World, chosen: str | None) -> str:
    found = learners(world.graph)
    if chosen is not None:
        if chosen not in found:
            raise UsageError(
                f"no learner {chosen!r} (learners: {', '.join(found) or 'none'}; a learner is a "
                "persona with role: learner)"
            )
        return chosen
    if len(found) != 1:
        raise UsageError(f"found {len(found)} learners ({', '.join(found) or 'none'}); choose one with --learner")
    return found[0]


def _stages(world: World, stages: tuple[str, ...]) -> tuple[str, ...]:
    for stage in stages:
        if stage not in world.stages.by_id:
            raise UsageError(f"unknown stage {stage!r} for --stage (expected one of: {', '.join(world.stages.by_id)})")
    return stages


def _command_line() -> str:
    return " ".join(["sim", *(shlex.quote(a) for a in sys.argv[1:])])[:2000]


def _run_with_progress(world: World, options: RunOptions) -> RunSummary:
    """Run, with a bar that shows scenes lived out of those planned (known once stored scenes are skipped)."""
    from sim.run.loop import run

    with _progress() as bar:
        task = bar.add_task("planning", total=None)

        def planned(total: int) -> None:
            bar.update(task, total=total, description="living scenes")

        def advance(stage: str, ref: str) -> None:
            bar.update(task, advance=1, description=f"{stage} {ref}")

        return run(world, options, progress=advance, planned=planned)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console(),
        transient=True,
        disable=not sys.stderr.isatty(),
    )


def _dry_run(world: World, options: RunOptions) -> None:
    from sim.run.loop import pending
    from sim.world.schedule import schedule

    todo, stored = pending(world, options)
    out = console()
    out.print(f"dry run: {len(todo)} scenes to live, {stored} already stored in {options.db}; nothing written",
              markup=False)  # fmt: skip
    if registry.get(options.backend).concurrent:
        _estimate(world, options, todo)
        return
    for stage in world.stages.stages:
        jobs = [j for j in todo if j.scene.stage == stage.id]
        if jobs:
            turns = sum(len(schedule(j.scene)) for j in jobs)
            out.print(f"  {stage.id:<18} {len(jobs):>6} scenes  {turns:>8} turns", markup=False)


def _estimate(world: World, options: RunOptions, todo: list[SceneJob]) -> None:
    from sim.backends.estimate import estimate
    from sim.backends.prices import load_prices

    model = options.model_options
    if not model.model:
        raise UsageError(f"--backend {options.backend} needs --model (the model id, e.g. claude-sonnet-5)")
    rows = estimate(todo, world.stages, model.model, load_prices(model.prices), mode=model.mode, batch=model.batch)
    out = console()
    for stage in world.stages.stages:
        if stage.id in rows:
            row = rows[stage.id]
            cost = "price unknown" if row.cost is None else f"~${row.cost:,.2f}"
            out.print(f"  {stage.id:<18} {row.scenes:>6} scenes {row.calls:>8} calls {row.input_tokens:>12,} in "
                      f"{row.output_tokens:>10,} out  {cost}", markup=False)  # fmt: skip
    costs = [r.cost for r in rows.values()]
    total = "unknown (no price for this model: add it to the price table, --prices)" if None in costs else (
        f"~${sum(c or 0.0 for c in costs):,.2f}")  # fmt: skip
    out.print(f"estimated cost of {model.model} ({model.mode} mode{', batch' if model.batch else ''}): {total}; "
              "an upper bound before prompt caching and cache replays", markup=False)  # fmt: skip


def _print_summary(world: World, summary: RunSummary) -> None:
    out = console()
    rate = sum(summary.turns.values()) / summary.seconds if summary.seconds else 0.0
    out.print(
        f"run {summary.run_id}: {summary.done} scenes lived, {summary.skipped} already stored "
        f"({summary.seconds:.1f}s, {rate:,.0f} turns/s)",
        markup=False,
    )
    paid = bool(summary.calls)
    for stage in world.stages.stages:
        if summary.scenes.get(stage.id) or summary.cost.get(stage.id):
            cost = f" {summary.tokens[stage.id]:>10,} tokens ${summary.cost[stage.id]:,.4f}" if paid else ""
            out.print(
                f"  {stage.id:<18} {summary.scenes[stage.id]:>6} scenes {summary.turns[stage.id]:>8} turns{cost}",
                markup=False,
            )
    if paid:
        out.print(
            f"  model calls: {summary.calls['api'] + summary.calls['batch']:,} paid, {summary.calls['cache']:,} "
            f"replayed from the reply cache; cost ${sum(summary.cost.values()):,.4f}",
            markup=False,
        )
    if summary.repairs:
        out.print(f"  lines repaired or regenerated to meet the stage's targets: {summary.repairs}", markup=False)
    _print_failures(summary)
    out.print(f"database: {summary.db}", markup=False)
    db = "" if summary.db == DEFAULT_DB else f" --db {summary.db}"
    out.print(f"next: sim show first-steps/kind-to-others{db}    (one scene, as training text reads it)", markup=False)
    out.print(f"      sim query \"SELECT stage, count(*) AS scenes, sum(word_count) AS words FROM training_text "
              f"GROUP BY stage, stage_rank ORDER BY stage_rank\"{db}", markup=False)
    out.print(f"      sim learner show{db}    (the learner's life so far)", markup=False)


def _print_failures(summary: RunSummary) -> None:
    out = console()
    if summary.stopped:
        out.print(f"stopped: {summary.stopped}; finished scenes are kept, run again to go on", markup=False)
    if summary.failed:
        out.print(f"{len(summary.failed)} scenes failed (kept in scene_failures; the next run tries them again):",
                  markup=False)  # fmt: skip
        for ref, reason in sorted(summary.failed.items())[:10]:
            out.print(f"  {ref}: {reason}", markup=False)
        if len(summary.failed) > 10:
            out.print(f"  ... and {len(summary.failed) - 10} more: sim query \"FROM scene_failures\"", markup=False)
