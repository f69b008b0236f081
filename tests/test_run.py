"""`sim run`: the scene graph, determinism, idempotency, resuming after kill -9, locks, the learner's life."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import pytest
from conftest import REPO, run_cli
from rich.console import Console
from rich.progress import Progress, TaskID

from sim.cli import run as run_module
from sim.engine.graph import build_scene_graph
from sim.store.lock import run_lock
from sim.world.scenarios import Beat, Scene, Setting
from sim.world.schedule import schedule

TRANSCRIPT = """
    SELECT s.pack, s.scene, s.variation, s.opening, s.reflection,
           string_agg(t.speaker_label || ': ' || t.text, chr(10) ORDER BY t.turn_index) AS dialogue
    FROM scenes s JOIN turns t USING (scene_key)
    GROUP BY s.pack, s.scene, s.variation, s.opening, s.reflection, s.stage_rank, s.age, s.depth, s.position
    ORDER BY s.stage_rank, s.age, s.depth, s.position, s.pack, s.variation
"""


def transcript(db: Path) -> list[tuple[object, ...]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(TRANSCRIPT).fetchall()


def count(db: Path, sql: str) -> int:
    with duckdb.connect(str(db), read_only=True) as con:
        return int(con.execute(sql).fetchone()[0])


def test_scene_graph_mermaid_snapshot() -> None:
    drawn = build_scene_graph().compile().get_graph().draw_mermaid()
    assert drawn == (REPO / "tests/snapshots/scene_graph.mmd").read_text()
    assert "speak -.-> speak;" in drawn  # one speak node serves every speaker


def test_schedule_pairs_exchanges_with_the_learner_reply() -> None:
    beats = [
        Beat(speaker="teacher", intent="ask", lines=["a", "b"], exchanges=2),
        Beat(speaker="learner", intent="answer", lines=["x", "y"]),
        Beat(speaker="teacher", intent="close", lines=["c"]),
    ]
    scene = Scene(
        id="s",
        title="t",
        stage="toddler",
        values=["kindness"],
        learner_role="student",
        setting=Setting(place="p", time="t", situation="s"),
        objective="o",
        opening="I am {age}.",
        beats=beats,
        cast=[{"slot": "teacher", "role": "teacher"}],
    )
    got = [(s.beat, s.exchange, s.speaker, s.to) for s in schedule(scene)]
    assert got == [
        (0, 0, "teacher", "learner"),
        (1, 0, "learner", "teacher"),
        (0, 1, "teacher", "learner"),
        (1, 1, "learner", "teacher"),
        (2, 0, "teacher", "learner"),
    ]


def test_run_writes_every_scene_and_prints_a_summary(shipped_world: Path) -> None:
    result = run_cli("run", "scenarios/first-steps", "--db", "out.duckdb")
    assert result.exit_code == 0, result.stderr
    assert "10 scenes lived, 0 already stored" in result.stdout
    assert "toddler                 4 scenes" in result.stdout
    assert "database: out.duckdb" in result.stdout
    assert count(Path("out.duckdb"), "SELECT count(*) FROM scenes") == 10
    assert count(Path("out.duckdb"), "SELECT count(*) FROM scenes WHERE turn_count < 4") == 0
    assert count(Path("out.duckdb"), "SELECT count(*) FROM runs WHERE status = 'done'") == 1
    # The paper's example is lived, by Grandpa and "I".
    with duckdb.connect("out.duckdb", read_only=True) as con:
        lines = [
            r[0]
            for r in con.execute(
                "SELECT speaker_label || ': ' || text FROM turns JOIN scenes USING (scene_key) "
                "WHERE scene = 'kind-to-others' ORDER BY turn_index"
            ).fetchall()
        ]
    assert any(line.startswith("Grandpa: ") and "kind to others" in line for line in lines)
    assert any(line.startswith("I: ") and "makes sense" in line for line in lines)


def test_same_command_twice_adds_nothing(shipped_world: Path) -> None:
    assert run_cli("run", "scenarios/first-steps", "--variations", "2", "--db", "a.duckdb").exit_code == 0
    before = count(Path("a.duckdb"), "SELECT count(*) FROM turns")
    again = run_cli("run", "scenarios/first-steps", "--variations", "2", "--db", "a.duckdb")
    assert "0 scenes lived, 20 already stored" in again.stdout
    assert count(Path("a.duckdb"), "SELECT count(*) FROM turns") == before
    assert count(Path("a.duckdb"), "SELECT count(*) FROM scenes") == 20


def test_same_seed_gives_byte_identical_transcripts_and_other_seeds_differ(shipped_world: Path) -> None:
    packs = ["scenarios/first-steps", "scenarios/school-days"]
    for db, seed in (("one.duckdb", "3"), ("two.duckdb", "3"), ("three.duckdb", "4")):
        assert run_cli("run", *packs, "--seed", seed, "--variations", "2", "--db", db).exit_code == 0
    one, two, three = (transcript(Path(db)) for db in ("one.duckdb", "two.duckdb", "three.duckdb"))
    assert one == two
    assert one != three
    # variations of one scene read differently
    by_scene: dict[object, set[object]] = {}
    for row in one:
        by_scene.setdefault(row[1], set()).add(row[5])
    assert sum(len(v) == 2 for v in by_scene.values()) >= len(by_scene) * 0.7


def test_stage_filter_and_pack_order_do_not_change_the_text(shipped_world: Path) -> None:
    packs = ["scenarios/first-steps", "scenarios/school-days"]
    assert run_cli("run", *packs, "--db", "whole.duckdb").exit_code == 0
    # the same life, lived in pieces and in another order of arguments
    for stage in ("toddler", "early_childhood", "middle_childhood", "late_childhood"):
        assert run_cli("run", *reversed(packs), "--stage", stage, "--db", "pieces.duckdb").exit_code == 0
    assert transcript(Path("whole.duckdb")) == transcript(Path("pieces.duckdb"))


def test_memory_follows_the_life_not_the_clock(shipped_world: Path) -> None:
    # Live school-days first, then first-steps: the early scenes must not recall later ones.
    assert run_cli("run", "scenarios/school-days", "--db", "m.duckdb").exit_code == 0
    assert run_cli("run", "scenarios/first-steps", "--db", "m.duckdb").exit_code == 0
    leaks = count(
        Path("m.duckdb"),
        """
        SELECT count(*) FROM scenes s, unnest(s.memories_recalled) AS r(key)
        JOIN scenes m ON m.scene_key = r.key WHERE m.stage_rank > s.stage_rank
           OR (m.stage_rank = s.stage_rank AND m.age > s.age)""",
    )
    assert leaks == 0
    recalled = count(Path("m.duckdb"), "SELECT count(*) FROM scenes WHERE len(memories_recalled) > 0")
    assert recalled > 0


def test_later_scenes_build_on_earlier_ones(shipped_world: Path) -> None:
    assert run_cli("run", "scenarios/first-steps", "scenarios/school-days", "--db", "b.duckdb").exit_code == 0
    with duckdb.connect("b.duckdb", read_only=True) as con:
        openings = [
            r[0] for r in con.execute("SELECT opening FROM scenes WHERE stage_rank > 0 ORDER BY stage_rank").fetchall()
        ]
        reflections = [r[0] for r in con.execute("SELECT reflection FROM scenes").fetchall()]
    assert sum("I remember when" in o for o in openings) >= 5
    assert any("It made me think of the time" in r for r in reflections)


def test_learner_show_prints_the_life(shipped_world: Path) -> None:
    assert run_cli("run", "scenarios/first-steps", "--db", "l.duckdb").exit_code == 0
    result = run_cli("learner", "show", "--db", "l.duckdb", "--memories", "2")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("Sam (sam), life line 0: age 5, stage early_childhood, 10 scenes lived")
    assert "closest people:" in result.stdout and "values:" in result.stdout
    data = json.loads(run_cli("learner", "show", "--db", "l.duckdb", "--json").stdout)
    assert len(data["memories"]) == 10
    assert data["values"]["kindness"]["taught_by"][0] == "first-steps/kind-to-others"


def test_second_writer_gets_a_clear_message_naming_the_lock(shipped_world: Path) -> None:
    with run_lock(Path("busy.duckdb")):
        result = run_cli("run", "scenarios/first-steps", "--db", "busy.duckdb")
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: busy.duckdb is being written by another `sim run` (pid {os.getpid()}; lock file busy.duckdb.lock); "
        "wait for it to finish, or use --db to write to another database\n"
    )


def test_the_one_writer_lock_is_the_real_file_however_its_path_is_spelled(shipped_world: Path) -> None:
    Path("data").mkdir()
    Path("link.duckdb").symlink_to("data/real.duckdb")  # to a database not made yet
    Path("alias").symlink_to("data")
    spellings = ["link.duckdb", "alias/real.duckdb", str(Path.cwd() / "data/real.duckdb"), "data/../data/real.duckdb"]
    for held in ("data/real.duckdb", "link.duckdb"):
        with run_lock(Path(held)):
            for db in spellings:
                result = run_cli("run", "scenarios/first-steps", "--db", db)
                assert (result.exit_code, result.stderr) == (1, (
                    f"error: {db} is being written by another `sim run` (pid {os.getpid()}; lock file "
                    "data/real.duckdb.lock); wait for it to finish, or use --db to write to another database\n"))
    assert not Path("data/real.duckdb").exists()
    assert run_cli("run", "scenarios/first-steps", "--db", "link.duckdb").exit_code == 0
    assert Path("link.duckdb").is_symlink()  # the database was made where the link points
    assert sorted(p.name for p in Path("data").iterdir()) == ["real.duckdb", "real.duckdb.lock"]
    again = run_cli("run", "scenarios/first-steps", "--db", "alias/real.duckdb")
    assert "0 scenes lived, 10 already stored" in again.stdout


def test_corrupt_database_is_reported_and_left_untouched(shipped_world: Path) -> None:
    Path("bad.duckdb").write_bytes(b"this is not a database" * 100)
    result = run_cli("run", "scenarios/first-steps", "--db", "bad.duckdb")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot open bad.duckdb as a DuckDB database (")
    assert "move it aside and run again" in result.stderr
    assert Path("bad.duckdb").read_bytes() == b"this is not a database" * 100


def test_bad_arguments_are_one_line_errors(shipped_world: Path) -> None:
    result = run_cli("run", "scenarios/first-steps", "--stage", "teen")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: unknown stage 'teen' for --stage (expected one of: toddler, ")
    result = run_cli("run", "scenarios/first-steps", "--learner", "zoe")
    assert result.stderr == "error: no learner 'zoe' (learners: sam; a learner is a persona with role: learner)\n"
    result = run_cli("run", "scenarios/nope")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: no pack 'scenarios/nope' (known packs in scenarios: crossroads, first-steps, professions, "
        "school-days; name a pack by its id or its directory)\n"
    )


def test_dry_run_changes_nothing(shipped_world: Path) -> None:
    result = run_cli("run", "scenarios/first-steps", "--dry-run", "--db", "d.duckdb")
    assert result.exit_code == 0
    assert result.stdout.startswith("dry run: 10 scenes to live, 0 already stored in d.duckdb; nothing written")
    assert not Path("d.duckdb").exists()


def _stored_scenes(db: Path) -> int:
    try:
        return count(db, "SELECT count(*) FROM scenes") if db.exists() else 0
    except duckdb.Error:
        return 0  # the writer holds the file for a moment


def test_killed_run_completes_on_the_next_invocation(shipped_world: Path) -> None:
    packs = ["scenarios/first-steps", "scenarios/school-days"]
    args = [sys.executable, "-m", "sim", "run", *packs, "--variations", "24", "--db", "k.duckdb"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while _stored_scenes(Path("k.duckdb")) == 0 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = _stored_scenes(Path("k.duckdb"))
    assert 0 < partial < 480
    finished = subprocess.run(args, env=env, capture_output=True, text=True, check=True)
    assert f"{480 - partial} scenes lived, {partial} already stored" in finished.stdout
    assert run_cli("run", *packs, "--variations", "24", "--db", "clean.duckdb").exit_code == 0
    assert transcript(Path("k.duckdb")) == transcript(Path("clean.duckdb"))
    assert count(Path("k.duckdb"), "SELECT count(*) - count(DISTINCT (scene_key, turn_index)) FROM turns") == 0
    assert count(Path("k.duckdb"), "SELECT count(*) FROM scenes") == 480
    with duckdb.connect("k.duckdb", read_only=True) as con:  # the killed run could not say how it ended
        killed = con.execute("SELECT status, finished_at, error FROM runs ORDER BY started_at LIMIT 1").fetchall()
    assert killed == [("interrupted", None, "the process was killed before it could record how the run ended "
                                            "(kill -9, a crash or a power cut)")]  # fmt: skip
    assert count(Path("k.duckdb"), "SELECT count(*) FROM runs WHERE status = 'done'") == 1


def test_worker_processes_give_the_same_corpus(shipped_world: Path) -> None:
    packs = ["scenarios/first-steps", "scenarios/school-days"]
    assert run_cli("run", *packs, "--variations", "3", "--workers", "1", "--db", "serial.duckdb").exit_code == 0
    parallel = run_cli("run", *packs, "--variations", "3", "--workers", "2", "--db", "parallel.duckdb")
    assert parallel.exit_code == 0, parallel.stderr
    assert "60 scenes lived" in parallel.stdout
    assert transcript(Path("serial.duckdb")) == transcript(Path("parallel.duckdb"))
    assert count(Path("parallel.duckdb"), "SELECT count(DISTINCT scene_key) FROM learner_states") == 60


class RecordingProgress(Progress):
    """The run's progress bar, rendering its line (as a terminal would show it) after every update."""

    lines: ClassVar[list[str]] = []

    def update(self, task_id: TaskID, **fields: Any) -> None:
        super().update(task_id, **fields)
        buffer = io.StringIO()
        Console(file=buffer, width=160).print(self.make_tasks_table(self.tasks))
        self.lines.append(buffer.getvalue().strip())


def test_the_progress_bar_shows_lived_of_planned_and_an_eta(
    shipped_world: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = run_module._progress
    monkeypatch.setattr(run_module, "_progress", lambda: RecordingProgress(*real().columns, disable=True))
    RecordingProgress.lines.clear()
    assert run_cli("run", "scenarios/first-steps", "--db", "p.duckdb").exit_code == 0
    first = RecordingProgress.lines[0]  # planned, before the first scene
    assert first.startswith("living scenes ") and first.endswith(" 0/10 -:--:--")
    assert re.search(r"early_childhood first-steps/\S+ .* 5/10 \d:\d\d:\d\d$", RecordingProgress.lines[5])
    assert RecordingProgress.lines[-1].endswith("10/10 0:00:00")
    # a second run counts only what is left to live: the stored variation is not planned again
    RecordingProgress.lines.clear()
    assert run_cli("run", "scenarios/first-steps", "--variations", "2", "--db", "p.duckdb").exit_code == 0
    assert RecordingProgress.lines[-1].endswith("10/10 0:00:00")
