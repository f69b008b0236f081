"""Corpus measures per stage, counted by DuckDB: distinct n-grams, repeated openings, verbatim lines, coverage.

Invariant: only reads, and leaves the counting to SQL, so a corpus of any size is measured without holding
its text in Python (DuckDB spills what does not fit).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import duckdb

WORDS = r"regexp_extract_all(lower({}), '[a-z0-9'']+')"
FRAME_WORDS = 4
"""An opening sentence's frame: its first four words."""
FRAME_SHARE = 0.25
"""A frame is a formula when the openings of at least this share of a stage's scenes (by pack/scene) use it."""
LINE_WORDS = 4
"""Lines shorter than this ("Yes.", "Thank you, Mum.") are left out of `verbatim_lines`."""


class Clustered(Protocol):
    """A scene's near-duplicate cluster (`sim.corpus.quality.twins.Twin`)."""

    cluster: str


def distinct_n(con: duckdb.DuckDBPyConnection, n: int) -> dict[str, float]:
    """Per stage: distinct word n-grams of the dialogue lines, divided by all of them (n-grams within a line)."""
    words = WORDS.format("t.text")
    grams = f"list_transform(range(1, len(ws) - {n} + 2), lambda i: array_to_string(ws[i:i + {n} - 1], ' '))"
    return _by_stage(con, f"""
        SELECT stage, count(DISTINCT g) / count(*) FROM (
            SELECT s.stage, unnest({grams}) AS g
            FROM (SELECT scene_key, {words} AS ws FROM turns t) JOIN scenes s USING (scene_key))
        GROUP BY stage""")


def repeated_openings(con: duckdb.DuckDBPyConnection) -> dict[str, float]:
    """Per stage: the share of scenes whose opening has a sentence starting with a formula frame.

    A frame is an opening sentence's first `FRAME_WORDS` words (lower-cased); it is a formula when the
    openings of at least `FRAME_SHARE` of the stage's distinct scenes (pack/scene, so a scene's own
    variations count once) use it, and of at least two. "I remember when Mia told me, ..." in every later
    scene is one; so is "I am nine." at the start of every scene of that age.
    """
    frame = f"array_to_string({WORDS.format('sentence')}[1:{FRAME_WORDS}], ' ')"
    return _by_stage(con, f"""
        WITH frames AS (
            SELECT DISTINCT s.stage, s.scene_key, s.pack || '/' || s.scene AS id, {frame} AS frame
            FROM scenes s, unnest(string_split_regex(s.opening, '[.!?]+\\s+')) AS u(sentence)),
        ids AS (SELECT stage, count(DISTINCT pack || '/' || scene) AS n FROM scenes GROUP BY stage),
        formulas AS (
            SELECT stage, frame FROM frames JOIN ids USING (stage) WHERE frame <> ''
            GROUP BY stage, frame, n HAVING count(DISTINCT id) >= greatest(2, {FRAME_SHARE} * n))
        SELECT s.stage, avg((f.scene_key IS NOT NULL)::INT)
        FROM scenes s LEFT JOIN (SELECT DISTINCT scene_key FROM frames JOIN formulas USING (stage, frame)) f
            USING (scene_key)
        GROUP BY s.stage""")


def verbatim_lines(con: duckdb.DuckDBPyConnection) -> dict[str, float]:
    """Per stage: the share of dialogue lines (`LINE_WORDS` words or more) said word for word in another scene."""
    return _by_stage(con, f"""
        WITH lines AS (
            SELECT s.stage, t.scene_key, lower(trim(t.text)) AS line FROM turns t JOIN scenes s USING (scene_key)
            WHERE len({WORDS.format("t.text")}) >= {LINE_WORDS}),
        said AS (SELECT line, count(DISTINCT scene_key) AS scenes FROM lines GROUP BY line)
        SELECT stage, avg((scenes > 1)::INT) FROM lines JOIN said USING (line) GROUP BY stage""")


def coverage(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, int]]:
    """Per stage: how many scenes are about each value."""
    found: dict[str, dict[str, int]] = {}
    rows = con.execute('SELECT stage, v, count(*) FROM scenes, unnest("values") AS u(v) GROUP BY ALL ORDER BY 1, 2')
    for stage, value, count in rows.fetchall():
        found.setdefault(stage, {})[value] = count
    return found


def adjacent_twins(con: duckdb.DuckDBPyConnection, twins: Mapping[str, Clustered]) -> float:
    """The share of neighbouring scenes in curriculum order (per learner) that are in the same near-twin cluster."""
    pairs = con.execute("""
        SELECT scene_key, lead(scene_key) OVER (PARTITION BY learner
            ORDER BY stage_rank, age, depth, position, pack, variation, seed) AS next
        FROM scenes QUALIFY next IS NOT NULL""").fetchall()
    same = sum(1 for a, b in pairs if a in twins and b in twins and twins[a].cluster == twins[b].cluster)
    return same / len(pairs) if pairs else 0.0


def _by_stage(con: duckdb.DuckDBPyConnection, sql: str) -> dict[str, float]:
    return {stage: float(value) for stage, value in con.execute(sql).fetchall() if value is not None}
