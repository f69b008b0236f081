"""Stored scenes read back as `SceneText`s, in batches, for the per-scene measures.

Invariant: only reads (a read-only connection is enough); a batch holds `BATCH` scenes at most, so measuring
a corpus of any size holds one batch of text at a time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import duckdb

from sim.corpus.quality.scene import VERSION, Line, Person, Recalled, SceneText, StageTargets

BATCH = 2_000
_SCENES = """
    SELECT scene_key, stage, stage_rank, age, pack, scene, variation, backend, learner, opening, reflection,
           "cast", "values", memories_recalled, scene_text('scripted', opening, dialogue, reflection)
    FROM scenes JOIN _keys USING (scene_key) ORDER BY scene_key
"""
_TURNS = """
    SELECT scene_key, speaker_label, speaker_id, role = 'learner', text
    FROM turns JOIN _keys USING (scene_key) ORDER BY scene_key, turn_index
"""
_RECALLED = """
    SELECT DISTINCT r.scene_key, r."cast", r."values"
    FROM scenes s JOIN _keys USING (scene_key), unnest(s.memories_recalled) AS m(key)
        JOIN scenes r ON r.scene_key = m.key
"""


def unmeasured(con: duckdb.DuckDBPyConnection, *, clustered: bool = False) -> list[str]:
    """Scenes without a `scene_quality` row of this `VERSION` (or, `clustered`, without their near-twin cluster)."""
    cluster = " OR q.cluster IS NULL" if clustered else ""
    rows = con.execute(
        "SELECT scene_key FROM scenes LEFT JOIN scene_quality q USING (scene_key) "
        f"WHERE q.scene_key IS NULL OR q.version < ?{cluster} ORDER BY scene_key", [VERSION])  # fmt: skip
    return [key for (key,) in rows.fetchall()]


def people(con: duckdb.DuckDBPyConnection) -> dict[str, Person]:
    """Everyone the corpus has cast, by id."""
    rows = con.execute("SELECT person_id, name, known_as, persona->>'$.pronouns' FROM people").fetchall()
    return {pid: Person(pid, name, known_as, pronouns or "") for pid, name, known_as, pronouns in rows}


def scene_texts(
    con: duckdb.DuckDBPyConnection, keys: Sequence[str], targets: Mapping[str, StageTargets]
) -> Iterator[SceneText]:
    """The scenes `keys` as the measures read them, batch by batch, each with its stage's `targets`."""
    everyone = people(con)
    for start in range(0, len(keys), BATCH):
        yield from _batch(con, keys[start : start + BATCH], targets, everyone)


def _batch(
    con: duckdb.DuckDBPyConnection,
    keys: Sequence[str],
    targets: Mapping[str, StageTargets],
    everyone: dict[str, Person],
) -> Iterator[SceneText]:
    con.execute("CREATE OR REPLACE TEMP TABLE _keys AS SELECT unnest(?::VARCHAR[]) AS scene_key", [list(keys)])
    lines: dict[str, list[Line]] = {}
    for key, label, speaker, learner, text in con.execute(_TURNS).fetchall():
        lines.setdefault(key, []).append(Line(label, speaker, bool(learner), text))
    recalled = {key: Recalled(key, frozenset(_cast(cast).values()), frozenset(values or ()))
                for key, cast, values in con.execute(_RECALLED).fetchall()}  # fmt: skip
    for row in con.execute(_SCENES).fetchall():
        yield _scene(row, lines.get(row[0], []), recalled, targets, everyone)
    con.execute("DROP TABLE _keys")


def _scene(
    row: tuple[Any, ...],
    lines: list[Line],
    recalled: Mapping[str, Recalled],
    targets: Mapping[str, StageTargets],
    everyone: dict[str, Person],
) -> SceneText:
    key, stage, rank, age, pack, scene, variation, backend, learner, opening, reflection, cast, values, *rest = row
    recalls, text = rest
    cast_ids = _cast(cast)
    me = everyone.get(learner, Person(learner, learner, learner, ""))
    return SceneText(
        scene_key=key, stage=stage, stage_rank=rank, age=age, pack=pack, scene=scene, variation=variation,
        backend=backend, learner=me, opening=opening, reflection=reflection, lines=tuple(lines),
        cast=tuple(everyone[p] for p in dict.fromkeys(cast_ids.values()) if p in everyone and p != learner),
        values=tuple(values or ()), recalled=tuple(recalled[m] for m in recalls or () if m in recalled),
        targets=targets[stage], people_here=frozenset({learner, *cast_ids.values()}), text=text,
    )  # fmt: skip


def _cast(cast: str | dict[str, str] | None) -> dict[str, str]:
    """A scene's cast (slot -> person id) from its JSON column."""
    if not cast:
        return {}
    return dict(json.loads(cast)) if isinstance(cast, str) else dict(cast)
