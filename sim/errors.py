"""User-facing errors: each one prints as a single line that says what, where and how to fix it.

Invariant: anything a person can cause (a bad file, a bad argument, a locked database) is raised as a
`SimError`; the CLI prints it without a traceback and exits with its `exit_code`. Every other exception
is a bug and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


class SimError(Exception):
    """An error caused by input the user can fix; printed as one line, exit status `exit_code`."""

    exit_code = 1

    def lines(self) -> list[str]:
        """The lines to print, one per problem."""
        return [str(self)]


@dataclass(frozen=True, order=True)
class Problem:
    """One problem in one file: `path:line: key.path: message`."""

    path: str
    line: int
    key_path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.key_path}: {self.message}"


class ConfigError(SimError):
    """One or more problems in the YAML a person wrote; exit status 2."""

    exit_code = 2

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = sorted(set(problems))
        super().__init__("\n".join(str(p) for p in self.problems))

    def lines(self) -> list[str]:
        """One line per problem, sorted by file and line."""
        return [str(p) for p in self.problems]

    @classmethod
    def single(cls, path: Path | str, line: int, key_path: str, message: str) -> ConfigError:
        """A ConfigError holding exactly one problem."""
        return cls([Problem(display_path(path), line, key_path, message)])


class StoreError(SimError):
    """The database cannot be used as asked."""


class UsageError(SimError):
    """A bad command-line argument or combination; exit status 2."""

    exit_code = 2


class Terminated(KeyboardInterrupt):
    """SIGTERM during a run, raised by the run's signal handler: handled as Ctrl-C is, exit status 143.

    A KeyboardInterrupt, so everything that cleans up after Ctrl-C (transactions, worker processes,
    the run's recorded end) does so after SIGTERM too.
    """

    exit_code = 143


def first_line(exc: BaseException) -> str:
    """An exception's first line of text (its class name when it has none): what one-line errors quote."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def display_path(path: Path | str) -> str:
    """Show a path relative to the working directory when it lies below it, else as given."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)
