"""Writing and reading trajectories: scenes with their turns, people and learner states.

Invariant: a scene is written in one transaction with its turns and the learner's state after it,
so the database holds all of a scene or none of it. Batches of finished scenes go in through Arrow
(DuckDB's executemany manages about a thousand rows a second; Arrow inserts reach hundreds of thousands).
Arrow is imported by the functions that write, so reading stored effects (`sim learner show`) does without it.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import duckdb

from sim.learner.state import LearnerState, SceneEffect
from sim.store.lock import RunEnd
from sim.world.personas import Persona

if TYPE_CHECKING:
    import pyarrow as pa

    from sim.world.schedule import Turn


@dataclass(frozen=True)
class SceneRecord:
    """Everything stored for one finished scene, as plain rows (cheap to send between processes)."""

    scene: dict[str, Any]  # a row of `scenes`, JSON columns already serialised
    turns: list[tuple[Any, ...]]  # rows of `turns` without scene_key, in TURN_COLUMNS[1:] order
    people: list[dict[str, Any]]  # rows of `people` without first_run_id
    state: dict[str, Any]  # a row of `learner_states`
    calls: list[dict[str, Any]] = field(default_factory=list)  # rows of `llm_calls` without run_id

    @classmethod
    def build(
        cls,
        scene: dict[str, Any],
        turns: Sequence[Turn],
        people: Sequence[Persona],
        state: LearnerState,
        calls: Sequence[dict[str, Any]] = (),
    ) -> SceneRecord:
        """Turn a finished scene's values into rows."""
        return cls(
            scene,
            [tuple(getattr(t, col) for col in TURN_COLUMNS[1:]) for t in turns],
            [person_row(p) for p in people],
            {
                "scene_key": scene["scene_key"],
                "learner": state.learner,
                "variation": state.variation,
                "stage": state.stage,
                "age": state.age,
                "state": state.model_dump_json(),
            },
            list(calls),
        )


@dataclass(frozen=True)
class FailedScene:
    """A scene that could not be finished: why, and the calls it made (they were paid for)."""

    failure: dict[str, Any]  # a row of `scene_failures` without run_id
    calls: list[dict[str, Any]]  # rows of `llm_calls` without run_id


def person_row(p: Persona) -> dict[str, Any]:
    """A row of `people` (without the run that first met them)."""
    return {
        "person_id": p.id,
        "name": p.name,
        "known_as": p.known_as,
        "role": p.role,
        "kinship": p.kinship,
        "generated": p.generated,
        "persona": p.model_dump_json(by_alias=True),
    }


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
    import pyarrow as pa

    columns = list(zip(*(row for r in records for row in r.turns), strict=True))
    turns = pa.table(
        {
            "scene_key": [r.scene["scene_key"] for r in records for _ in r.turns],
            **{name: list(values) for name, values in zip(TURN_COLUMNS[1:], columns, strict=True)},
        }
    )
    tables = {
        "scenes": pa.Table.from_pylist([{**r.scene, "run_id": run_id} for r in records]),
        "turns": turns,
        "learner_states": pa.Table.from_pylist([r.state for r in records]),
    }
    calls = _call_rows(((r.scene["scene_key"], r.calls) for r in records), run_id)
    if calls:
        tables["llm_calls"] = pa.Table.from_pylist(calls)
    people = {p["person_id"]: {**p, "first_run_id": run_id} for r in records for p in r.people}
    con.execute("BEGIN")
    try:
        for name, table in tables.items():
            _insert(con, name, table)
        _insert(con, "people", pa.Table.from_pylist(list(people.values())), ignore_existing=True)
        con.execute("UPDATE runs SET scenes_done = scenes_done + ? WHERE run_id = ?", [len(records), run_id])
        con.execute("COMMIT")
    except BaseException:
        _rollback(con)
        raise


def write_failures(con: duckdb.DuckDBPyConnection, failures: Sequence[FailedScene], run_id: str) -> None:
    """Record scenes that failed, with the calls they made, in one transaction."""
    if not failures:
        return
    import pyarrow as pa

    calls = _call_rows(((f.failure["scene_key"], f.calls) for f in failures), run_id)
    con.execute("BEGIN")
    try:
        _insert(con, "scene_failures", pa.Table.from_pylist([{**f.failure, "run_id": run_id} for f in failures]),
                ignore_existing=True)  # fmt: skip
        if calls:
            _insert(con, "llm_calls", pa.Table.from_pylist(calls))
        con.execute("UPDATE runs SET scenes_failed = scenes_failed + ? WHERE run_id = ?", [len(failures), run_id])
        con.execute("COMMIT")
    except BaseException:
        _rollback(con)
        raise


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back, if there is still a transaction: a COMMIT that failed (a full disk) has already ended it."""
    with contextlib.suppress(duckdb.TransactionException):
        con.execute("ROLLBACK")


def _call_rows(scenes: Iterable[tuple[str, list[dict[str, Any]]]], run_id: str) -> list[dict[str, Any]]:
    """`llm_calls` rows with their ids: run, scene and the call's number in the scene."""
    return [
        {**call, "run_id": run_id, "call_id": f"{run_id}:{key}:{i}"}
        for key, calls in scenes
        for i, call in enumerate(calls)
    ]


def _insert(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table, *, ignore_existing: bool = False) -> None:
    con.register("_batch", table)
    try:
        columns = ", ".join(f'"{c}"' for c in table.column_names)
        verb = "INSERT OR IGNORE" if ignore_existing else "INSERT"
        con.execute(f"{verb} INTO {name} ({columns}) SELECT {columns} FROM _batch")
    finally:
        with contextlib.suppress(duckdb.Error):  # after a failed insert the transaction is aborted
            con.unregister("_batch")


def done_keys(con: duckdb.DuckDBPyConnection, keys: Iterable[str]) -> set[str]:
    """Which of these scene keys are already stored."""
    import pyarrow as pa

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


def start_run(con: duckdb.DuckDBPyConnection, row: dict[str, Any], ended: Sequence[RunEnd] = ()) -> None:
    """Record a run as started, after closing the rows of earlier runs left 'running'.

    The caller holds the run lock, so no other run is live: a 'running' row is a run that could not
    record its end. `ended` are ends a run left in the lock file when the database could not be written
    (a full disk); any other such row was killed outright (kill -9, a power cut) and is 'interrupted'.
    """
    for end in ended:
        finish_run(con, end)
    con.execute(
        "UPDATE runs SET status = 'interrupted', error = 'the process was killed before it could record how the "
        "run ended (kill -9, a crash or a power cut)' WHERE status = 'running'"
    )
    columns = ", ".join(row)
    con.execute(
        f"INSERT INTO runs ({columns}) VALUES ({', '.join('?' * len(row))})",
        [json.dumps(v) if isinstance(v, dict) else v for v in row.values()],
    )


def finish_run(con: duckdb.DuckDBPyConnection, end: RunEnd) -> None:
    """Record how a run ended."""
    con.execute(
        "UPDATE runs SET status = ?, finished_at = ?, error = ? WHERE run_id = ?",
        [end.status, end.finished_at, end.error, end.run_id],
    )
