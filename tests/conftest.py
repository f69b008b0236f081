"""Hermetic tests: a temp working directory and home, no API keys, no sockets beyond loopback."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

REPO = Path(__file__).resolve().parent.parent
_real_connect = socket.socket.connect

# A shell without job control starts a background command with SIGINT ignored, and every process it starts
# inherits that: the runs the Ctrl-C tests start would then rightly ignore the Ctrl-C they are sent. Taken
# back here, so those runs start as a terminal starts them.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _loopback_only(self: socket.socket, address: object) -> None:
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and (host.startswith("127.") or host in {"::1", "localhost"} or host.startswith("/")):
        return _real_connect(self, address)  # type: ignore[arg-type]
    raise OSError(f"tests may not open sockets to {host!r} (only 127.0.0.1)")


@pytest.fixture(autouse=True)
def hermetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Run every test in its own empty directory with a private HOME and no provider keys."""
    home = tmp_path / "home"
    home.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(home))
    for name in list(os.environ):
        if name.endswith("_API_KEY") or name.startswith(("SIM_", "ANTHROPIC_", "OPENAI_")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(socket.socket, "connect", _loopback_only)
    with _signal_mask_kept():
        yield work


@contextlib.contextmanager
def _signal_mask_kept() -> Iterator[None]:
    """Restore the signals this process blocks: `sim`'s entry point, run in-process, holds SIGINT as it exits."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


@pytest.fixture
def shipped_world(hermetic: Path) -> Path:
    """A copy of the shipped personas and scenarios in the test's working directory."""
    shutil.copytree(REPO / "personas", hermetic / "personas")
    shutil.copytree(REPO / "scenarios", hermetic / "scenarios")
    return hermetic


def run_cli(*args: str, input: str | None = None) -> Result:
    """Invoke `sim` in-process the way a user would, returning exit code, stdout and stderr."""
    from sim.cli import _register, cli

    _register()
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def sim_export(db: Path, *args: str) -> Result:
    """`sim export --db DB ARGS...`."""
    return run_cli("export", "--db", str(db), *args)


def ok(result: Result) -> Result:
    """The result of a command that must succeed (its stderr shown if it did not)."""
    assert result.exit_code == 0, result.stderr
    return result


def rows(db: Path | str, sql: str) -> list[tuple[Any, ...]]:
    """The rows `sql` reads from database `db` (opened read-only, as `sim query` does)."""
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()
