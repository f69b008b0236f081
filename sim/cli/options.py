"""Options shared by several commands, as decorators, and the small helpers that print results."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

from sim.store.db import default_db
from sim.world import WorldPaths

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


def console() -> Console:
    """A console on stdout; plain text when not a terminal, so output is stable for scripts and tests."""
    return Console(soft_wrap=True, highlight=False)


def print_json(data: Any) -> None:
    """Print data as indented JSON on stdout."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))
