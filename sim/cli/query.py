"""`sim query`: read-only SQL over the corpus, as a table, CSV, JSON or Markdown."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.table import Table

from sim.cli.options import console, db_option
from sim.query import Result, run_query, table_cells, to_csv, to_json, to_markdown


@click.command()
@click.argument("sql")
@db_option
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json", "markdown"]), default="table",
              show_default=True, help="Output format.")
def query(sql: str, db: Path, fmt: str) -> None:
    """Run read-only SQL against the corpus (SQL '-' reads it from standard input).

    Writes are refused: the corpus changes only through `sim run`. Tables: runs, people, scenes,
    turns, learner_states; the view training_text (see the README).
    """
    text = sys.stdin.read() if sql == "-" else sql
    for result in run_query(db, text):
        _print(result, fmt)


def _print(result: Result, fmt: str) -> None:
    if fmt == "csv":
        click.echo(to_csv(result), nl=False)
    elif fmt == "json":
        click.echo(to_json(result))
    elif fmt == "markdown":
        click.echo(to_markdown(result), nl=False)
    else:
        table = Table(*result.columns, show_lines=False)
        for row in result.rows:
            table.add_row(*table_cells(row))
        console().print(table)
        click.echo(f"{len(result.rows)} row{'' if len(result.rows) == 1 else 's'}")
