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
from typing import TYPE_CHECKING, Any

import duckdb

from sim.learner.state import SceneEffect
from sim.store.lock import RunEnd
from sim.store.rows import FailedScene, LlmCallRow, RunRow, SceneRecord, columns

if TYPE_CHECKING:
    import pyarrow as pa


def write_scenes(con: duckdb.DuckDBPyConnection, records: Sequence[SceneRecord], run_id: str) -> None:
    """Write finished scenes atomically (one transaction for the batch; a scene is never split)."""
    if not records:
        return
    tables = {
        "scenes": arrow_table([r.scene for r in records], run_id=run_id),
        "turns": arrow_table([t for r in records for t in r.turns]),
        "learner_states": arrow_table([r.state for r in records]),
    }
    if any(r.calls for r in records):
        tables["llm_calls"] = _calls_table([(r.scene.scene_key, r.calls) for r in records], run_id)
    people = list({p.person_id: p for r in records for p in r.people}.values())
    con.execute("BEGIN")
    try:
        for name, table in tables.items():
            insert_table(con, name, table)
        insert_table(con, "people", arrow_table(people, first_run_id=run_id), ignore_existing=True)
        con.execute("UPDATE runs SET scenes_done = scenes_done + ? WHERE run_id = ?", [len(records), run_id])
        con.execute("COMMIT")
    except BaseException:
        _rollback(con)
        raise


def write_failures(con: duckdb.DuckDBPyConnection, failures: Sequence[FailedScene], run_id: str) -> None:
    """Record scenes that failed, with the calls they made, in one transaction."""
    if not failures:
        return
    con.execute("BEGIN")
    try:
        failed = arrow_table([f.failure for f in failures], run_id=run_id)
        insert_table(con, "scene_failures", failed, ignore_existing=True)
        if any(f.calls for f in failures):
            insert_table(con, "llm_calls", _calls_table([(f.failure.scene_key, f.calls) for f in failures], run_id))
        con.execute("UPDATE runs SET scenes_failed = scenes_failed + ? WHERE run_id = ?", [len(failures), run_id])
        con.execute("COMMIT")
    except BaseException:
        _rollback(con)
        raise


def arrow_table(rows: Sequence[Any], **filled: object) -> pa.Table:
    """Rows of one class as an Arrow table, column by column.

    A `filled` column is given whole (a list) or holds one value for every row (anything else); one the
    row class does not have (a column only the writer knows) comes after the class's own.
    """
    import pyarrow as pa

    def column(name: str) -> list[Any]:
        if name not in filled:
            return [getattr(row, name) for row in rows]
        value = filled[name]
        return value if isinstance(value, list) else [value] * len(rows)

    own = columns(type(rows[0]))
    return pa.table({name: column(name) for name in (*own, *(k for k in filled if k not in own))})


def _calls_table(scenes: Sequence[tuple[str, Sequence[LlmCallRow]]], run_id: str) -> pa.Table:
    """`llm_calls` rows with their ids: run, scene and the call's number in the scene."""
    ids = [f"{run_id}:{key}:{i}" for key, calls in scenes for i in range(len(calls))]
    return arrow_table([c for _, calls in scenes for c in calls], run_id=run_id, call_id=ids)


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back, if there is still a transaction: a COMMIT that failed (a full disk) has already ended it."""
    with contextlib.suppress(duckdb.TransactionException):
        con.execute("ROLLBACK")


def insert_table(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table, *, ignore_existing: bool = False) -> None:
    """Insert an Arrow table's rows into table `name`, by column name (or skip rows whose key is there)."""
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


def start_run(con: duckdb.DuckDBPyConnection, row: RunRow, ended: Sequence[RunEnd] = ()) -> None:
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
    names = columns(RunRow)
    values = [getattr(row, name) for name in names]
    con.execute(
        f"INSERT INTO runs ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
        [json.dumps(v) if isinstance(v, dict) else v for v in values],
    )


def finish_run(con: duckdb.DuckDBPyConnection, end: RunEnd) -> None:
    """Record how a run ended."""
    con.execute(
        "UPDATE runs SET status = ?, finished_at = ?, error = ? WHERE run_id = ?",
        [end.status, end.finished_at, end.error, end.run_id],
    )
