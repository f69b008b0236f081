"""Which scenes an export keeps by quality: those that pass every per-scene gate, one per near-twin cluster.

A gate holds a stage's share (`sim check`); a scene passes it in its own form, listed in `SCENE_FORMS`:
`self_repeats <= 0.05` for a stage becomes "this scene repeats nothing". Gates on the corpus as a whole
(distinct-n, repeated openings, verbatim lines, near twins, adjacent twins) have no per-scene form and
hold back nothing; `--dedup` is how near twins are held back.

Invariant: only reads `scene_quality`, and only when every scene has been measured by this version of
the measures (`sim check`); otherwise it is one error saying to run `sim check` first.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import duckdb

from sim.corpus.quality.load import unmeasured
from sim.errors import UsageError

SCENE_FORMS: dict[str, str] = {
    "learner_turns_within_limit": "over_limit_turns = 0",
    "learner_grade_in_band": "grade_in_band IS NOT false",
    "i_label": "i_label_ok",
    "first_person_narration": "first_person_narration",
    "name_in_narration": "name_in_narration = 0",
    "empty_lines": "empty_lines = 0",
    "meta_talk": "meta_talk = 0",
    "self_repeats": "self_repeats = 0",
    "repeated_sentences": "repeated_sentences = 0",
    "pronoun_mismatches": "pronoun_mismatches = 0",
    "recall_related": "recall_related IS NOT false",
}
DEDUP = "near twin of a kept scene"


def kept_sql(gates: Iterable[str], *, only_passing: bool, dedup: bool) -> str:
    """A SELECT of the keys of the scenes kept: passing `gates` (per-scene forms), then one per cluster."""
    forms = [f"({SCENE_FORMS[g]})" for g in gates if g in SCENE_FORMS] if only_passing else []
    where = " AND ".join(forms) or "true"
    first = " QUALIFY row_number() OVER (PARTITION BY cluster ORDER BY scene_key) = 1" if dedup else ""
    return f"SELECT scene_key FROM scene_quality WHERE {where}{first}"


def require_measured(con: duckdb.DuckDBPyConnection) -> None:
    """Every scene has a current `scene_quality` row with its cluster, or one error."""
    missing = len(unmeasured(con, clustered=True))
    if missing:
        raise UsageError(f"{missing} scene(s) have not been measured: run `sim check` first "
                         "(--only-passing and --dedup read what it stores)")  # fmt: skip


def held_back(
    con: duckdb.DuckDBPyConnection, gates: Iterable[str], stages: Sequence[str], *, only_passing: bool, dedup: bool
) -> list[tuple[str, int]]:
    """(reason, scenes) of the wanted `stages` held back: each failed gate (a scene may fail several), near twins."""
    wanted = "stage IN (SELECT unnest(?::VARCHAR[]))" if stages else "true"
    scope = f"SELECT scene_key FROM scenes WHERE {wanted}"
    parameters = [list(stages)] if stages else []
    reasons = []
    for gate in [g for g in gates if g in SCENE_FORMS] if only_passing else []:
        (failed,) = con.execute(f"SELECT count(*) FROM scene_quality WHERE scene_key IN ({scope}) "
                                f"AND NOT ({SCENE_FORMS[gate]})", parameters).fetchone() or (0,)  # fmt: skip
        reasons.append((f"fails {gate}", int(failed)))
    if dedup:
        passing = kept_sql(gates, only_passing=only_passing, dedup=False)
        (twins,) = con.execute(f"SELECT count(*) - count(DISTINCT cluster) FROM scene_quality WHERE scene_key IN "
                               f"({passing}) AND scene_key IN ({scope})", parameters).fetchone() or (0,)  # fmt: skip
        reasons.append((DEDUP, int(twins)))
    return reasons


def quality_table(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, float | None]]:
    """What the last `sim check` measured: (measure, stage, value), in `MEASURES` order, then curriculum order."""
    from sim.corpus.quality.gates import MEASURES

    rank = {name: i for i, name in enumerate(MEASURES)}
    rows = con.execute("""
        SELECT q.measure, coalesce(nullif(q.stage, ''), 'corpus'), round(q.value, 3)
        FROM corpus_quality q LEFT JOIN (SELECT DISTINCT stage, stage_rank FROM scenes) s USING (stage)
        ORDER BY q.measure, coalesce(s.stage_rank, 999)""").fetchall()
    return sorted(rows, key=lambda row: rank.get(row[0], len(rank)))
