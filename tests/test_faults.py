"""When the machine fails a run: killed while creating the database, stopped, a read-only or full disk, a damaged file.

Each fault is one line on stderr and a non-zero exit; what was stored is kept, `runs` says how the run
ended, and the next run finishes the work exactly once. Read-only and full file systems are real tmpfs
mounts (as root, permission bits do not stop a write), unmounted after each test; without root or
`mount` those tests are skipped.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
from conftest import REPO, rows, run_cli

from sim import INTERRUPTED
from sim.store.migrations import MIGRATIONS

PACK = "scenarios/first-steps"
# Runs `sim ARGS...` and SIGKILLs itself at one step of creating the database: when the first file the
# writer opens appears, or before/inside a migration (inside: its statements ran, its COMMIT did not).
KILL_AT = """
import functools, os, signal, sys
import duckdb
from sim.store import migrations

point, sys.argv = sys.argv[1], ["sim", *sys.argv[2:]]

def die():
    os.kill(os.getpid(), signal.SIGKILL)

if point == "file appears":
    real = duckdb.connect
    def connect(database, *args, **kwargs):
        con = real(database, *args, **kwargs)
        if not kwargs.get("read_only"):
            die()
        return con
    duckdb.connect = connect
else:
    when, number = point.split()
    index = int(number) - 1
    step = migrations.MIGRATIONS[index]
    @functools.wraps(step)
    def killing(con):
        if when == "inside":
            step(con)
        die()
    migrations.MIGRATIONS[index] = killing

from sim.__main__ import main
main()
"""


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


@pytest.mark.parametrize("point", ["file appears", "before 1", "inside 1", "inside 3", "before 6", "inside 6"])
def test_a_run_killed_at_any_step_of_creating_the_database_completes_on_the_next(
    shipped_world: Path, point: str
) -> None:
    killed = subprocess.run([sys.executable, "-c", KILL_AT, point, "run", PACK, "--db", "data/c.duckdb"],
                            env=env(), capture_output=True, text=True, timeout=120)  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr  # it died at that step, not before or after
    assert not Path("data/c.duckdb").exists()  # no half-made database where the next run looks

    again = run_cli("run", PACK, "--db", "data/c.duckdb")
    assert again.exit_code == 0, again.stderr
    assert "10 scenes lived, 0 already stored" in again.stdout
    applied = rows("data/c.duckdb", "SELECT name FROM _migrations ORDER BY id")
    assert applied == [(m.__name__,) for m in MIGRATIONS]
    assert rows("data/c.duckdb", "SELECT count(*), count(DISTINCT scene_key) FROM scenes") == [(10, 10)]
    assert sorted(p.name for p in Path("data").iterdir()) == ["c.duckdb", "c.duckdb.lock"]  # the leftovers are gone
    assert run_cli("query", "SELECT count(*) FROM turns", "--db", "data/c.duckdb").exit_code == 0


def test_a_database_an_older_sim_left_half_created_is_finished_by_any_command(shipped_world: Path) -> None:
    """An older sim, killed as it created a database, left only an empty `_migrations` table."""
    Path("data").mkdir()
    with duckdb.connect("data/old.duckdb") as con:
        con.execute("CREATE TABLE _migrations (id INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMP)")
    shown = run_cli("query", "SELECT count(*) AS scenes FROM scenes", "--db", "data/old.duckdb", "--format", "csv")
    assert (shown.exit_code, shown.stdout) == (0, "scenes\n0\n")
    Path("data/new.duckdb").write_bytes(Path("data/old.duckdb").read_bytes())  # the same, met by `sim run` first
    result = run_cli("run", PACK, "--db", "data/new.duckdb")
    assert result.exit_code == 0, result.stderr
    assert "10 scenes lived, 0 already stored" in result.stdout
    assert rows("data/new.duckdb", "SELECT count(*) FROM _migrations") == [(len(MIGRATIONS),)]


def test_reading_another_programs_duckdb_file_leaves_it_as_it_was(shipped_world: Path) -> None:
    with duckdb.connect("notes.duckdb") as con:
        con.execute("CREATE TABLE notes AS SELECT 'hello' AS note")
    read = run_cli("query", "FROM notes", "--db", "notes.duckdb", "--format", "csv")
    assert (read.exit_code, read.stdout) == (0, "note\nhello\n")
    assert rows("notes.duckdb", "SELECT table_name FROM duckdb_tables()") == [("notes",)]


def _stored(db: Path) -> int:
    try:
        return int(rows(db, "SELECT count(*) FROM scenes")[0][0]) if db.exists() else 0
    except duckdb.Error:
        return 0  # the writer holds the file for a moment


@pytest.mark.parametrize(("sent", "code", "how"), [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "Ctrl-C")])
def test_a_run_stopped_by_sigterm_or_ctrl_c_is_recorded_as_interrupted(
    shipped_world: Path, sent: signal.Signals, code: int, how: str
) -> None:
    args = [sys.executable, "-m", "sim", "run", PACK, "--variations", "300", "--workers", "1", "--db", "s.duckdb"]
    proc = subprocess.Popen(args, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while _stored(Path("s.duckdb")) == 0 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(sent)
    _, stderr = proc.communicate(timeout=60)
    assert (proc.returncode, stderr) == (code, INTERRUPTED + "\n")
    ((status, error, finished, done),) = rows("s.duckdb", "SELECT status, error, finished_at, scenes_done FROM runs")
    assert (status, error) == ("interrupted", f"stopped by {how}; run the same command again to finish")
    assert isinstance(finished, datetime)
    assert 0 < done == _stored(Path("s.duckdb")) < 3000


@pytest.fixture
def tmpfs() -> Iterator[Callable[[str, str], Path]]:
    """Mount a tmpfs of a given size at a directory under the test's working directory; always unmounted."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs (as another user a read-only or full disk cannot be made here)")
    mounted: list[Path] = []

    def mount(name: str, size: str) -> Path:
        where = Path(name).resolve()
        where.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                              capture_output=True, text=True)  # fmt: skip
        if done.returncode:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
        mounted.append(where)
        return where

    yield mount
    for where in reversed(mounted):
        subprocess.run(["umount", "-l", str(where)], check=False)


def remount(where: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(where)], check=True)


READ_ONLY = ("error: cannot write {lock} (Read-only file system): the file or its directory is read-only; make "
             "it writable, or use --db to keep the database where you can write\n")  # fmt: skip


def test_a_read_only_file_system_is_one_line_and_reading_still_works(
    shipped_world: Path, tmpfs: Callable[[str, str], Path]
) -> None:
    ro = tmpfs("ro", "16m")
    assert run_cli("run", PACK, "--db", "ro/c.duckdb").exit_code == 0
    with duckdb.connect("ro/old.duckdb") as con:  # a database of an older sim: one migration short
        con.execute("CREATE TABLE _migrations (id INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMP)")
        for number, migration in enumerate(MIGRATIONS[:-1], 1):
            migration(con)
            con.execute("INSERT INTO _migrations VALUES (?, ?, now())", [number, migration.__name__])
    remount(ro, "ro")
    before = sorted(p.name for p in ro.iterdir())

    for db in ("ro/c.duckdb", "ro/new.duckdb"):
        result = run_cli("run", PACK, "--db", db)
        assert (result.exit_code, result.stderr) == (1, READ_ONLY.format(lock=f"{db}.lock"))
    read = run_cli("query", "SELECT count(*) AS scenes FROM scenes", "--db", "ro/c.duckdb", "--format", "csv")
    assert (read.exit_code, read.stdout) == (0, "scenes\n10\n")
    old = run_cli("query", "SELECT 1", "--db", "ro/old.duckdb")
    assert old.exit_code == 1
    assert old.stderr == (
        "error: ro/old.duckdb needs 1 schema migration(s) before it can be read (made by an older sim, or its "
        "creation was cut short), and they could not run: " + READ_ONLY.format(lock="ro/old.duckdb.lock")[7:]
    )
    assert sorted(p.name for p in ro.iterdir()) == before


DISK_FULL = re.compile(
    r"error: disk full: could not write full/c\.duckdb(\.wal)? \(No space left on device\); free some space and "
    r"run the same command again \(scenes already stored are kept\)\n"
)


def test_a_full_disk_fails_the_run_in_one_line_keeps_what_was_stored_and_the_next_run_completes(
    shipped_world: Path, tmpfs: Callable[[str, str], Path]
) -> None:
    full = tmpfs("full", "6m")  # the first batches fit, the rest of 1000 scenes do not
    args = ("run", PACK, "--variations", "100", "--workers", "1", "--db", "full/c.duckdb")
    result = run_cli(*args)
    assert result.exit_code == 1
    assert DISK_FULL.fullmatch(result.stderr), result.stderr
    remount(full, "size=64m")  # space freed

    kept = rows("full/c.duckdb", "SELECT count(*), sum(turn_count) FROM scenes")[0]
    assert 0 < kept[0] < 1000 and rows("full/c.duckdb", "SELECT count(*) FROM turns") == [(kept[1],)]
    again = run_cli(*args)
    assert again.exit_code == 0, again.stderr
    assert f"{1000 - kept[0]} scenes lived, {kept[0]} already stored" in again.stdout
    assert rows("full/c.duckdb", "SELECT count(*), count(DISTINCT scene_key) FROM scenes") == [(1000, 1000)]
    assert rows("full/c.duckdb", "SELECT count(*) - count(DISTINCT (scene_key, turn_index)) FROM turns") == [(0,)]
    runs = rows("full/c.duckdb", "SELECT status, error, finished_at IS NOT NULL, scenes_done FROM runs "
                "ORDER BY started_at")  # fmt: skip
    assert runs == [("failed", result.stderr.removeprefix("error: ").strip(), True, kept[0]),
                    ("done", None, True, 1000 - kept[0])]  # fmt: skip


def test_a_damaged_database_is_one_line_for_every_command_and_is_left_as_it_was(shipped_world: Path) -> None:
    assert run_cli("run", PACK, "--variations", "20", "--db", "c.duckdb").exit_code == 0
    whole = Path("c.duckdb").read_bytes()
    Path("c.duckdb").write_bytes(whole[: len(whole) * 2 // 5])  # truncated, as by a failed copy
    damaged = Path("c.duckdb").read_bytes()
    commands = [("run", PACK), ("stats",), ("show", "first-steps/kind-to-others"), ("learner", "show"),
                ("query", "SELECT count(*) FROM turns WHERE text LIKE '%a%'"),
                ("export", "--format", "jsonl", "--out", "shards")]  # fmt: skip
    for command in commands:
        result = run_cli(*command, "--db", "c.duckdb")
        assert result.exit_code == 1, command
        assert re.fullmatch(
            r"error: cannot read c\.duckdb: the database file is damaged or truncated \(IO Error: [^\n]+\); restore "
            r"it from a copy, or move it aside and run again to start a new one \(or use --db\)\n", result.stderr
        ), (command, result.stderr)
    assert Path("c.duckdb").read_bytes() == damaged
    assert not Path("c.duckdb.wal").exists()


def _fill(directory: Path) -> None:
    """Take every free byte of the file system holding `directory`."""
    with (directory / "filler").open("wb", buffering=0) as filler:
        for chunk in (1 << 20, 1 << 16, 1 << 12):
            try:
                while True:
                    filler.write(b"\0" * chunk)
            except OSError:
                continue


def test_a_run_whose_end_cannot_be_written_leaves_it_in_the_lock_file_for_the_next_run(
    shipped_world: Path, tmpfs: Callable[[str, str], Path]
) -> None:
    from sim.errors import StoreError
    from sim.run.loop import run
    from sim.run.options import RunOptions
    from sim.world.load import load_world
    from sim.world.paths import WorldPaths

    full = tmpfs("full", "16m")
    options = RunOptions(db=Path("full/c.duckdb"), learner="sam", variations=40, workers=1)
    lived = []

    def fill_the_disk_at_the_300th_scene(stage: str, ref: str) -> None:  # after the first batch was written
        lived.append(ref)
        if len(lived) == 300:
            _fill(full)

    with pytest.raises(StoreError) as raised:
        run(load_world(WorldPaths.from_env(), [Path(PACK)]), options, progress=fill_the_disk_at_the_300th_scene)
    assert DISK_FULL.fullmatch(f"error: {raised.value}\n"), raised.value
    ((run_id, status, finished),) = rows("full/c.duckdb", "SELECT run_id, status, finished_at FROM runs")
    assert (status, finished) == ("running", None)  # the database could not take the end...
    pid, ended = Path("full/c.duckdb.lock").read_text().splitlines()
    assert pid == f"pid {os.getpid()}"
    assert re.fullmatch(rf"ended\t{run_id}\t[\d\-T:.]+\tfailed\t{re.escape(str(raised.value))}", ended)  # ...this did

    (full / "filler").unlink()
    again = run_cli("run", PACK, "--variations", "40", "--workers", "1", "--db", "full/c.duckdb")
    assert again.exit_code == 0, again.stderr
    runs = rows("full/c.duckdb", "SELECT status, error, finished_at IS NOT NULL FROM runs ORDER BY started_at")
    assert runs == [("failed", str(raised.value), True), ("done", None, True)]
    assert Path("full/c.duckdb.lock").read_text() == f"pid {os.getpid()}\n"
    assert rows("full/c.duckdb", "SELECT count(*), count(DISTINCT scene_key) FROM scenes") == [(400, 400)]
