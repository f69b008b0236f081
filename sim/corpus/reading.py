"""Reading the corpus for people: one scene's transcript, and the corpus at a glance.

Invariant: read-only; everything here is a query over the tables and the `training_text` view.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import duckdb

from sim.errors import UsageError


@dataclass(frozen=True)
class Transcript:
    """One lived scene as a person reads it."""

    meta: dict[str, Any]
    lines: list[tuple[str, str, str]]  # (speaker label, role, text)


def find_scene(con: duckdb.DuckDBPyConnection, target: str, variation: int, seed: int | None) -> str:
    """The scene_key of `pack/scene` (or a scene_key itself) at a variation and seed.

    The pack may be named by id or by its directory (`scenarios/first-steps/kind-to-others`): a pack's id
    is its directory's name.
    """
    if con.execute("SELECT 1 FROM scenes WHERE scene_key = ?", [target]).fetchone():
        return target
    pack, _, scene = target.rstrip("/").rpartition("/")
    pack = pack.rstrip("/").rpartition("/")[2]
    rows = con.execute(
        "SELECT scene_key, seed FROM scenes WHERE scene = ? AND (? = '' OR pack = ?) AND variation = ? "
        "AND (? IS NULL OR seed = ?) ORDER BY seed, pack",
        [scene, pack, pack, variation, seed, seed],
    ).fetchall()
    if not rows:
        known = con.execute("SELECT DISTINCT pack || '/' || scene FROM scenes ORDER BY 1 LIMIT 5").fetchall()
        hint = ", ".join(r[0] for r in known) or "none yet: run `sim run scenarios/<pack>`"
        raise UsageError(f"no scene {target!r} with variation {variation}"
                         f"{'' if seed is None else f' and seed {seed}'} in the database (stored scenes: {hint})")
    return str(rows[0][0])


def transcript(con: duckdb.DuckDBPyConnection, key: str) -> Transcript:
    """Everything shown by `sim show` for one scene."""
    cursor = con.execute(
        "SELECT pack, scene, title, stage, age, variation, seed, \"values\", \"cast\", opening, reflection, "
        "learner_role, backend, model FROM scenes WHERE scene_key = ?", [key])
    row = cursor.fetchone()
    meta = dict(zip([d[0] for d in cursor.description or []], row or (), strict=True))
    meta["cast"] = json.loads(meta["cast"]) if meta.get("cast") else {}
    lines = con.execute("SELECT speaker_label, role, text FROM turns WHERE scene_key = ? ORDER BY turn_index",
                        [key]).fetchall()
    return Transcript(meta, [(str(a), str(b), str(c)) for a, b, c in lines])


def stage_value_counts(con: duckdb.DuckDBPyConnection) -> list[tuple[str, int, str, int]]:
    """(stage, stage_rank, value, scenes) for every stage x value pair."""
    return con.execute(
        "SELECT stage, stage_rank, v.value, count(*) FROM scenes, unnest(\"values\") AS v(value) "
        "GROUP BY ALL ORDER BY stage_rank, v.value").fetchall()


def top_people(con: duckdb.DuckDBPyConnection, limit: int = 10) -> list[tuple[str, str, str, int, int]]:
    """(known as, role, person id, scenes, lines) for the people who appear most."""
    return con.execute(
        "SELECT p.known_as, p.role, p.person_id, count(DISTINCT t.scene_key) AS scenes, count(*) AS lines "
        "FROM turns t JOIN people p ON p.person_id = t.speaker_id WHERE p.role <> 'learner' "
        "GROUP BY ALL ORDER BY scenes DESC, lines DESC, p.person_id LIMIT ?", [limit]).fetchall()


def learner_words(con: duckdb.DuckDBPyConnection) -> list[tuple[str, int, float, int, int]]:
    """(stage, stage_rank, mean words per learner turn, longest learner turn, learner turns) by stage."""
    return con.execute(
        "SELECT s.stage, s.stage_rank, avg(len(string_split(trim(t.text), ' '))), "
        "max(len(string_split(trim(t.text), ' '))), count(*) "
        "FROM turns t JOIN scenes s USING (scene_key) WHERE t.role = 'learner' "
        "GROUP BY ALL ORDER BY s.stage_rank").fetchall()


def model_costs(con: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
    """(stage, paid calls, replayed calls, failed calls, input, output, cache read, cache write tokens, USD) by stage.

    Paid tokens and cost only (a replay from the reply cache costs nothing); empty for a corpus written
    offline or by a version before model calls were recorded.
    """
    known = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'llm_calls'").fetchall()
    if not known[0][0]:
        return []
    return con.execute(
        "SELECT stage, count(*) FILTER (WHERE source <> 'cache'), count(*) FILTER (WHERE source = 'cache'), "
        "count(*) FILTER (WHERE status = 'failed'), "
        "coalesce(sum(input_tokens) FILTER (WHERE source <> 'cache'), 0), "
        "coalesce(sum(output_tokens) FILTER (WHERE source <> 'cache'), 0), "
        "coalesce(sum(cache_read_tokens) FILTER (WHERE source <> 'cache'), 0), "
        "coalesce(sum(cache_write_tokens) FILTER (WHERE source <> 'cache'), 0), "
        "coalesce(sum(cost_usd), 0), min(s.stage_rank) "
        "FROM llm_calls LEFT JOIN (SELECT DISTINCT stage, stage_rank FROM scenes) s USING (stage) "
        "GROUP BY stage ORDER BY min(s.stage_rank) NULLS LAST, stage").fetchall()
