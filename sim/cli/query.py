"""`sim query`: read-only SQL over the corpus, as a table, CSV, JSON or Markdown.

Invariant: this module only formats; what a query may reach is decided by `sim.corpus.query` (a read-only,
sandboxed connection), and `--help` lists the tables without opening a database (`sim.store.docs`).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.table import Table

from sim.cli.options import console, db_option
from sim.corpus.query import Result, run_query, table_cells, to_csv, to_json, to_markdown


class QueryCommand(click.Command):
    """`sim query`, whose help ends with the corpus's tables and views, as generated from the migrations."""

    def format_help_text(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The docstring, then the tables and views (derived, so the list cannot drift from the schema)."""
        from sim.store.docs import schema_names  # only when help is shown; it opens no database

        super().format_help_text(ctx, formatter)
        tables, views = schema_names()
        formatter.write_paragraph()
        with formatter.indentation():
            formatter.write_text(f"Tables: {', '.join(tables)}. Views: {', '.join(views)}. Their columns are in the "
                                 "README (The database) or `sim query \"DESCRIBE turns\"`.")  # fmt: skip


@click.command(cls=QueryCommand)
@click.argument("sql")
@db_option
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json", "markdown"]), default="table",
              show_default=True, help="Output format.")
def query(sql: str, db: Path, fmt: str) -> None:
    """Run read-only SQL against the corpus (SQL '-' reads it from standard input).

    Writes are refused: the corpus changes only through `sim run`. A query reaches the corpus and
    nothing else: other files (read_text, read_csv, COPY), ATTACH, extensions, the network and
    settings are refused; save results with `--format csv > file.csv` or `sim export`.
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
