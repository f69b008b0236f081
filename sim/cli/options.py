"""Options shared by several commands, as decorators, and the small helpers that print results.

Invariant: an option two commands share is defined once, here, with one default (a shipped file, an
environment variable, then the command line); importing this module loads no world and opens no database.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

from sim.errors import ConfigError, Problem
from sim.store.path import default_db
from sim.world.paths import WorldPaths

F = TypeVar("F", bound=Callable[..., Any])


def world_options(func: F) -> F:
    """Add --personas/--scenarios/--stages/--values and pass them on as one `paths: WorldPaths`."""

    @click.option(
        "--values",
        "values_file",
        type=click.Path(path_type=Path, dir_okay=False),
        help="Values file (default: shipped; env SIM_VALUES).",
    )
    @click.option(
        "--stages",
        "stages_file",
        type=click.Path(path_type=Path, dir_okay=False),
        help="Stages file (default: shipped; env SIM_STAGES).",
    )
    @click.option(
        "--scenarios",
        "scenarios_dir",
        type=click.Path(path_type=Path, file_okay=False),
        help="Scenario packs directory (default: scenarios; env SIM_SCENARIOS).",
    )
    @click.option(
        "--personas",
        "personas_dir",
        type=click.Path(path_type=Path, file_okay=False),
        help="Persona directory (default: personas; env SIM_PERSONAS).",
    )
    @functools.wraps(func)
    def wrapper(
        *args: Any,
        personas_dir: Path | None,
        scenarios_dir: Path | None,
        stages_file: Path | None,
        values_file: Path | None,
        **kwargs: Any,
    ) -> Any:
        paths = WorldPaths.from_env(
            personas=personas_dir, scenarios=scenarios_dir, stages=stages_file, values=values_file
        )
        return func(*args, paths=paths, **kwargs)

    return wrapper  # type: ignore[return-value]


db_option = click.option(
    "--db",
    type=click.Path(path_type=Path, dir_okay=False),
    default=lambda: str(default_db()),
    show_default="outputs/raising.duckdb or $SIM_DB",
    help="The corpus database.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts instead of a table.")
SEED = click.IntRange(-(2**63), 2**63 - 1)
"""What every --seed takes: the store keeps seeds in BIGINT columns (`runs.seed`, `scenes.seed`)."""
packs_argument = click.argument("packs", nargs=-1, metavar="[PACK]...")


def pack_dirs(names: tuple[str, ...], paths: WorldPaths) -> list[Path]:
    """The pack directories named on the command line (paths or ids), saying on stderr which names hold no pack."""
    from sim.world.scenarios import resolve_packs

    choice = resolve_packs(names, paths.scenarios)
    if choice.skipped:
        what = "not a pack" if len(choice.skipped) == 1 else "not packs"
        click.echo(f"skipped {', '.join(choice.skipped)}: {what} (a pack is a directory holding pack.yaml)", err=True)
    return choice.packs


def console() -> Console:
    """A console on stdout; plain text when not a terminal, so output is stable for scripts and tests."""
    return Console(soft_wrap=True, highlight=False)


def print_json(data: Any) -> None:
    """Print data as indented JSON on stdout."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def print_validation(
    as_json: bool, check: Callable[[], dict[str, int]], summary: Callable[[dict[str, int]], str]
) -> None:
    """Run a validation and report it: `summary(counts)` when ok, or with --json `{ok, counts, problems}`.

    Problems still exit 2: as the usual lines on stderr, or with --json as the report on stdout.
    """
    try:
        counts = check()
    except ConfigError as exc:
        if not as_json:
            raise
        print_json({"ok": False, "counts": None, "problems": [_problem_json(p) for p in exc.problems]})
        click.get_current_context().exit(exc.exit_code)
    if as_json:
        print_json({"ok": True, "counts": counts, "problems": []})
    else:
        click.echo(summary(counts))


def _problem_json(problem: Problem) -> dict[str, Any]:
    return {"file": problem.path, "line": problem.line or None, "key_path": problem.key_path,
            "message": problem.message}  # fmt: skip
