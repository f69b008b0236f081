"""The run's writer: every finished scene stored, in batches that fit the writer's memory however long the life."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path

from conftest import rows

from sim.backends import create
from sim.run.executor import LineTask
from sim.run.local import InProcess
from sim.run.loop import pending
from sim.run.options import RunOptions
from sim.run.writer import BatchWriter
from sim.store.db import connect
from sim.store.rows import FailedScene, SceneRecord
from sim.world.load import WorldPaths, load_world


class Kept:
    """A `Sink` that keeps what it is given."""

    def __init__(self) -> None:
        self.records: list[SceneRecord] = []

    def done(self, record: SceneRecord) -> None:
        self.records.append(record)

    def failed(self, scene: FailedScene) -> None:
        raise AssertionError(scene.failure.reason)


def lived(root: Path) -> list[SceneRecord]:
    """One life line of first-steps, lived offline in this process."""
    world = load_world(WorldPaths(root / "personas", root / "scenarios"), [root / "scenarios" / "first-steps"])
    options = RunOptions(db=root / "unused.duckdb", learner="sam")
    jobs, _ = pending(world, options)
    kept = Kept()
    asyncio.run(InProcess(world, 1).live(create("scripted"), [LineTask(tuple(jobs), ())], kept))
    return kept.records


def renamed(record: SceneRecord, n: int, state: str) -> SceneRecord:
    """`record` as the n-th scene of a long life: its own key, and the learner's state after it `state`."""
    key = f"{record.scene.scene_key}#{n}"
    return replace(
        record,
        scene=replace(record.scene, scene_key=key, variation=n),
        turns=tuple(replace(t, scene_key=key) for t in record.turns),
        state=replace(record.state, scene_key=key, state=state),
    )


def long_life(root: Path, scenes: int) -> tuple[Path, list[SceneRecord], str]:
    """A new database, and `scenes` records of a long life whose states are about 210 kB each."""
    first = lived(root)[0]
    state = json.dumps({"memories": ["I remember the swing." * 10] * 1000})
    db = root / "long.duckdb"
    with connect(db):
        pass
    return db, [renamed(first, n, state) for n in range(scenes)], state


def test_a_long_lifes_scenes_are_all_stored_though_their_states_outgrow_the_writers_memory(
    shipped_world: Path,
) -> None:
    """Late in a long life the learner's state (every memory) is hundreds of kilobytes a scene; 300 of them
    are more than the writer may hold at once, so they are written in batches that fit."""
    db, records, state = long_life(shipped_world, 300)
    writer = BatchWriter(db, "run-1")
    for record in records:
        writer.add(record)
    writer.flush()
    assert rows(db, "SELECT count(*), min(length(state)) FROM learner_states") == [(300, len(state))]
    assert rows(db, "SELECT count(*) FROM scenes") == [(300,)]
    assert rows(db, "SELECT count(*) FROM turns") == [(300 * len(records[0].turns),)]


def test_a_batch_too_large_for_duckdb_is_written_in_halves(shipped_world: Path) -> None:
    """Should the byte bound ever be too generous (80 states of 210 kB at once fail under the limit), each half
    is written on its own: everything is stored, each scene once."""
    db, records, _ = long_life(shipped_world, 80)
    writer = BatchWriter(db, "run-1")
    writer._buffer.extend(records)  # one batch, past the bound
    writer.flush()
    assert rows(db, "SELECT count(*), count(DISTINCT scene_key) FROM learner_states") == [(80, 80)]
    assert rows(db, "SELECT count(*) FROM scenes") == [(80,)]
