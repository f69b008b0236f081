"""The `sim` command line: noun groups with verb subcommands, one module per group.

Invariant: a `SimError` (bad input) prints its lines to stderr and exits with its code, never a
traceback; anything else is a bug and keeps its traceback.

Start-up: every command module is imported to list the commands, so a module imports at its top only
click, rich and light parts of `sim` (names, constants, option decorators). What a command needs to do
its work (the world's models, the run loop and LangGraph, Arrow, drawing) it imports when it runs, so
`sim --help` or `sim query` starts in a fraction of a second (tests/test_cli_startup.py, bench/bench_cli.py).
"""

from __future__ import annotations

import gc
from typing import Any

import click

from sim import INTERRUPTED, __version__, exit_interrupted, keep_status
from sim.errors import ConfigError, SimError, Terminated


class SimGroup(click.Group):
    """A click group that turns user errors into one clear message and an exit status."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the subcommand, reporting `SimError` without a traceback."""
        try:
            return super().invoke(ctx)
        except SimError as exc:
            report(exc)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt as exc:
            click.echo(INTERRUPTED, err=True)
            ctx.exit(Terminated.exit_code if isinstance(exc, Terminated) else 130)


def report(exc: SimError) -> None:
    """Print a user error to stderr."""
    lines = exc.lines()
    if isinstance(exc, ConfigError):
        for line in lines:
            click.echo(line, err=True)
        files = len({p.path for p in exc.problems})
        click.echo(f"{_count(len(lines), 'problem')} in {_count(files, 'file')}; nothing was changed", err=True)
    else:
        for line in lines:
            click.echo(f"error: {line}", err=True)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


@click.group(cls=SimGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="sim")
def cli() -> None:
    """raising-sim: raise a learner "I" through scripted social scenes and keep the corpus in DuckDB."""


def _register() -> None:
    from sim.cli import backends, check, corpus, export, learner, personas, query, run, scenarios, schema

    cli.add_command(run.run_command)
    cli.add_command(backends.backends)
    cli.add_command(query.query)
    cli.add_command(corpus.show)
    cli.add_command(corpus.stats)
    cli.add_command(learner.learner)
    cli.add_command(personas.personas)
    cli.add_command(scenarios.scenarios)
    cli.add_command(schema.schema)
    cli.add_command(export.export)
    cli.add_command(check.check)


def main() -> None:
    """Console-script entry point."""
    try:
        _register()  # imports every command module (and DuckDB): a Ctrl-C here is one line too
    except KeyboardInterrupt:
        exit_interrupted()
    try:
        cli.main(prog_name="sim")
    except SystemExit as done:
        if done.code in (130, Terminated.exit_code):
            keep_status()
        raise
    finally:
        # The command is done and has closed what it opened: the interpreter's last collection, walking every
        # object a run leaves (the world, the modules: about 0.1 s), would only find what exiting frees anyway.
        gc.freeze()
