"""The `sim` command's entry point: `python -m sim`, and the console script.

The CLI is imported inside `main`, so a Ctrl-C while Python loads it (click, then every command)
is one line and status 130, as at any later moment, instead of a KeyboardInterrupt traceback.
"""

from sim import exit_interrupted


def main() -> None:
    """Run the CLI."""
    try:
        from sim.cli import main as cli
    except KeyboardInterrupt:
        exit_interrupted()
    cli()


if __name__ == "__main__":
    main()
