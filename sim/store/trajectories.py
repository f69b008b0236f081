"""Writing and reading trajectories: scenes with their turns, people and learner states.

Invariant: a scene is written in one transaction with its turns and the learner's state after it,
so the database holds all of a scene or none of it. Batches of finished scenes go in through Arrow
(DuckDB's executemany manages about a thousand rows a second; Arrow inserts reach hundreds of thousands).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa

from sim.engine import Turn
from sim.learner import LearnerState, SceneEffect
from sim.personas import Persona


@dataclass(frozen=True)
class SceneRecord:
    """Everything stored for one finished scene."""

    scene: dict[str, Any]  # a row of `scenes`, JSON columns already serialised
    turns: Sequence[Turn]
    people: Sequence[Persona]
    state: LearnerState


TURN_COLUMNS = (
    "scene_key",
    "turn_index",
    "speaker_id",
    "speaker_label",
    "role",
    "addressee_id",
    "text",
    "beat",
    "exchange",
    "intent",
    "repairs",
    "latency_ms",
)


def write_scenes(con: duckdb.DuckDBPyConnection, records: Sequence[SceneRecord], run_id: str) -> None:
    """Write finished scenes atomically (one transaction for the batch; a scene is never split)."""
    if not records:
        return
    scenes = pa.Table.from_pylist([{**r.scene, "run_id": run_id} for r in records])
    turns = pa.table(
        {
            "scene_key": [r.scene["scene_key"] for r in records for _ in r.turns],
            **{col: [getattr(t, col) for r in records for t in r.turns] for col in TURN_COLUMNS[1:]},
        }
    )
    states = pa.Table.from_pylist(
        [
            {
                "scene_key": r.scene["scene_key"],
                "learner": r.state.learner,
                "variation": r.state.variation,
                "stage": r.state.stage,
                "age": r.state.age,
                "state": r.state.model_dump_json(),
            }
            for r in records
        ]
    )
    people = {p.id: p for r in records for p in r.people}
    people_rows = pa.Table.from_pylist(
        [
            {
                "person_id": p.id,
                "name": p.name,
                "known_as": p.known_as,
                "role": p.role,
                "kinship": p.kinship,
                "generated": p.generated,
                "persona": p.model_dump_json(by_alias=True),
                "first_run_id": run_id,
            }
            for p in people.values()
        ]
    )
    con.execute("BEGIN")
    try:
        for name, table in (("scenes", scenes), ("turns", turns), ("learner_states", states)):
            con.register("_batch", table)
            columns = ", ".join(f'"{c}"' for c in table.column_names)
            con.execute(f"INSERT INTO {name} ({columns}) SELECT {columns} FROM _batch")
            con.unregister("_batch")
        con.register("_people", people_rows)
        con.execute("INSERT OR IGNORE INTO people SELECT * FROM _people")
        con.unregister("_people")
        con.execute("UPDATE runs SET scenes_done = scenes_done + ? WHERE run_id = ?", [len(records), run_id])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def done_keys(con: duckdb.DuckDBPyConnection, keys: Iterable[str]) -> set[str]:
    """Which of these scene keys are already stored."""
    wanted = pa.table({"scene_key": list(keys)})
    con.register("_wanted", wanted)
    try:
        rows = con.execute("SELECT s.scene_key FROM scenes s JOIN _wanted USING (scene_key)").fetchall()
    finally:
        con.unregister("_wanted")
    return {r[0] for r in rows}


def effects_before(
    con: duckdb.DuckDBPyConnection, learner: str, variation: int, stage_rank: int, refs: Iterable[str] = ()
) -> list[SceneEffect]:
    """Stored effects a scene may remember: every earlier stage, plus `refs` ("pack/scene") of its own stage."""
    refs = sorted(set(refs))
    rows = con.execute(
        """SELECT effect FROM scenes
           WHERE learner = ? AND variation = ?
             AND (stage_rank < ? OR (stage_rank = ? AND list_contains(?, pack || '/' || scene)))
           ORDER BY stage_rank, age, depth, position, pack, variation, seed""",
        [learner, variation, stage_rank, stage_rank, refs],
    ).fetchall()
    return [SceneEffect.model_validate_json(r[0]) for r in rows]


def stored_effects(con: duckdb.DuckDBPyConnection, learner: str, variations: list[int]) -> dict[int, list[str]]:
    """Stored effects (JSON) of the given life lines, in curriculum order."""
    rows = con.execute(
        "SELECT variation, effect FROM scenes WHERE learner = ? AND list_contains(?, variation) "
        "ORDER BY stage_rank, age, depth, position, pack, variation, seed",
        [learner, variations],
    ).fetchall()
    out: dict[int, list[str]] = {}
    for variation, effect in rows:
        out.setdefault(variation, []).append(effect)
    return out


def start_run(con: duckdb.DuckDBPyConnection, row: dict[str, Any]) -> None:
    """Record a run as started, and mark runs left 'running' by a killed process as interrupted."""
    con.execute(
        "UPDATE runs SET status = 'interrupted', error = 'the process stopped before the run finished' "
        "WHERE status = 'running'"
    )
    columns = ", ".join(row)
    con.execute(
        f"INSERT INTO runs ({columns}) VALUES ({', '.join('?' * len(row))})",
        [json.dumps(v) if isinstance(v, dict) else v for v in row.values()],
    )


def finish_run(con: duckdb.DuckDBPyConnection, run_id: str, status: str, finished: datetime, error: str | None) -> None:
    """Record how a run ended."""
    con.execute(
        "UPDATE runs SET status = ?, finished_at = ?, error = ? WHERE run_id = ?", [status, finished, error, run_id]
    )
