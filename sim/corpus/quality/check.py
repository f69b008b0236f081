"""`sim check`'s work: measure what is not measured yet, store it beside the text, and judge it by the gates.

Invariants:
- Incremental: a scene is measured once per measures `VERSION` and stage targets; the corpus measures are
  recomputed only when the corpus's scenes (or the targets, or `VERSION`) changed, so a second check of an
  unchanged corpus reads what is stored and measures nothing.
- It writes only `scene_quality` and `corpus_quality`, under the run lock (one writer at a time), a batch
  of scenes per transaction: a killed check keeps whole batches and the next one goes on from there.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from sim.corpus.quality import diversity, twins
from sim.corpus.quality.gates import Bound, Verdict, verdicts
from sim.corpus.quality.load import BATCH, scene_texts, unmeasured
from sim.corpus.quality.measures import measure
from sim.corpus.quality.scene import VERSION, SceneText, StageTargets
from sim.errors import StoreError, UsageError
from sim.store.db import connect
from sim.store.lock import run_lock
from sim.store.trajectories import arrow_table, insert_table

_STAGE_SQL = """
    SELECT s.stage,
        sum(q.learner_turns - q.over_limit_turns) / nullif(sum(q.learner_turns), 0) AS learner_turns_within_limit,
        sum(q.learner_words_mean * q.learner_turns) / nullif(sum(q.learner_turns), 0) AS learner_words_per_turn,
        avg(q.learner_grade) AS learner_grade, avg(q.others_grade) AS others_grade,
        avg(q.grade_in_band::INT) AS learner_grade_in_band, avg(q.i_label_ok::INT) AS i_label,
        avg(q.first_person_narration::INT) AS first_person_narration,
        avg((q.name_in_narration > 0)::INT) AS name_in_narration, avg((q.empty_lines > 0)::INT) AS empty_lines,
        avg((q.meta_talk > 0)::INT) AS meta_talk, avg((q.self_repeats > 0)::INT) AS self_repeats,
        avg((q.repeated_sentences > 0)::INT) AS repeated_sentences,
        avg((q.pronoun_mismatches > 0)::INT) AS pronoun_mismatches, avg(q.recalls::INT) AS recalls,
        avg(q.recall_related::INT) AS recall_related, avg((q.twins > 0)::INT) AS near_duplicates
    FROM scene_quality q JOIN scenes s USING (scene_key) GROUP BY s.stage
"""


@dataclass(frozen=True, slots=True)
class CheckReport:
    """What a check did and found: scenes measured now, whether the corpus was measured again, the verdicts."""

    scenes: int
    measured: int
    corpus_measured: bool
    stages: list[str]
    verdicts: list[Verdict]

    @property
    def failed(self) -> list[Verdict]:
        """The verdicts whose gate failed."""
        return [v for v in self.verdicts if v.passed is False]


def check(db: Path, targets: Mapping[str, StageTargets], gates: Mapping[str, Bound]) -> CheckReport:
    """Measure what is missing in `db`, store it, and judge every measure by `gates`."""
    if not db.exists():
        raise StoreError(f"no database at {db} (run `sim run scenarios/<pack>` first, or pass --db)")
    with run_lock(db), connect(db) as con:
        stages = [s for s, _ in con.execute("SELECT DISTINCT stage, stage_rank FROM scenes ORDER BY 2, 1").fetchall()]
        _known_stages(stages, targets)
        fingerprint = _fingerprint(con, targets)
        stored = con.execute("SELECT any_value(fingerprint) FROM corpus_quality").fetchone()
        if stored and stored[0] and stored[0].split(":")[:2] != fingerprint.split(":")[:2]:
            con.execute("DELETE FROM scene_quality")  # other stage targets or measures: every scene again
        measured = _measure_missing(con, targets)
        again = not stored or stored[0] != fingerprint
        if again:
            _measure_corpus(con, fingerprint)
        values = con.execute("SELECT measure, stage, value, detail FROM corpus_quality").fetchall()
        (scenes,) = con.execute("SELECT count(*) FROM scenes").fetchone() or (0,)
    return CheckReport(scenes, measured, again, stages, verdicts(_ordered(values, stages), dict(gates)))


def _known_stages(stages: Sequence[str], targets: Mapping[str, StageTargets]) -> None:
    unknown = [s for s in stages if s not in targets]
    if unknown:
        raise UsageError(f"the corpus has scenes of stage(s) {', '.join(unknown)}, which the stages file does not "
                         "define; pass the stages file the corpus was made with (--stages FILE)")  # fmt: skip


def _fingerprint(con: duckdb.DuckDBPyConnection, targets: Mapping[str, StageTargets]) -> str:
    """`VERSION:targets:scenes`: what the stored measures were measured on."""
    (keys,) = con.execute("SELECT md5(coalesce(string_agg(scene_key, ',' ORDER BY scene_key), '')) FROM scenes")\
        .fetchone() or ("",)  # fmt: skip
    wanted = json.dumps({k: [t.max_words_per_turn, list(t.reading_grade)] for k, t in sorted(targets.items())})
    return f"{VERSION}:{hashlib.md5(wanted.encode()).hexdigest()[:12]}:{keys}"


def _measure_missing(con: duckdb.DuckDBPyConnection, targets: Mapping[str, StageTargets]) -> int:
    """Measure every scene without a row of this `VERSION`, a batch per transaction; how many."""
    keys = unmeasured(con)
    for start in range(0, len(keys), BATCH):
        _store(con, list(scene_texts(con, keys[start : start + BATCH], targets)))
    return len(keys)


def _store(con: duckdb.DuckDBPyConnection, scenes: list[SceneText]) -> None:
    """Each scene's measures and signature, replacing any older row, in one transaction."""
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = arrow_table([measure(s) for s in scenes], measured_at=now, version=VERSION,
                       signature=[twins.signature(s.text) for s in scenes])  # fmt: skip
    con.execute("BEGIN")
    con.execute("DELETE FROM scene_quality WHERE scene_key IN (SELECT unnest(?::VARCHAR[]))",
                [[s.scene_key for s in scenes]])  # fmt: skip
    insert_table(con, "scene_quality", rows)
    con.execute("COMMIT")


def _measure_corpus(con: duckdb.DuckDBPyConnection, fingerprint: str) -> None:
    """Near-twin clusters for every scene, then every per-stage and corpus measure, replacing the last ones."""
    import pyarrow as pa

    found = twins.clusters(con.execute("SELECT scene_key, signature FROM scene_quality").fetchall())
    table = pa.table({"scene_key": list(found), "cluster": [t.cluster for t in found.values()],
                      "twins": [t.twins for t in found.values()]})  # fmt: skip
    now = datetime.now(UTC).replace(tzinfo=None)
    con.execute("BEGIN")
    con.register("_twins", table)
    con.execute("UPDATE scene_quality SET cluster = t.cluster, twins = t.twins FROM _twins t "
                "WHERE scene_quality.scene_key = t.scene_key")  # fmt: skip
    con.unregister("_twins")
    rows = [(m, s, v, d, fingerprint, now) for m, s, v, d in _corpus_rows(con, found)]
    con.execute("DELETE FROM corpus_quality")
    con.executemany("INSERT INTO corpus_quality VALUES (?, ?, ?, ?, ?, ?)", rows)
    con.execute("COMMIT")


def _corpus_rows(con: duckdb.DuckDBPyConnection, found: Mapping[str, Any]) -> Iterator[tuple[str, str, Any, Any]]:
    """(measure, stage, value, detail) for every measure."""
    cursor = con.execute(_STAGE_SQL)
    names = [d[0] for d in cursor.description or ()][1:]
    for stage, *values in cursor.fetchall():
        yield from ((name, stage, value, None) for name, value in zip(names, values, strict=True))
    for n in (1, 2, 3):
        yield from ((f"distinct_{n}", stage, value, None) for stage, value in diversity.distinct_n(con, n).items())
    yield from (("repeated_openings", s, v, None) for s, v in diversity.repeated_openings(con).items())
    yield from (("verbatim_lines", s, v, None) for s, v in diversity.verbatim_lines(con).items())
    for stage, counts in diversity.coverage(con).items():
        yield "values_covered", stage, len(counts), json.dumps(counts)
    yield "adjacent_twins", "", diversity.adjacent_twins(con, found), None


def _ordered(
    values: Sequence[tuple[str, str, Any, Any]], stages: Sequence[str]
) -> list[tuple[str, str, float | None, dict[str, Any] | None]]:
    """Values in the order of `MEASURES`, then stage order (the corpus, "", last), with their details parsed."""
    from sim.corpus.quality.gates import MEASURES

    rank = {name: i for i, name in enumerate(MEASURES)}
    where = {stage: i for i, stage in enumerate(stages)}
    ordered = sorted(values, key=lambda v: (rank.get(v[0], len(rank)), where.get(v[1], len(where))))
    return [(m, s, None if v is None else float(v), json.loads(d) if d else None) for m, s, v, d in ordered]
