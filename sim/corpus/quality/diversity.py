"""Corpus measures per stage, counted by DuckDB: distinct n-grams, repeated openings, verbatim lines, coverage.

Each measure is one SQL query over a (read-only) connection; Python only receives a figure per stage. The
measures read `turns` and `scenes` rather than `training_text`, since they need what the view joins away
(single lines, the openings, the value lists), but this is the same text: a scene's dialogue in the view is
its turns, labelled. `adjacent_twins` reads the view's curriculum order.

Invariants:
- Only reads, and leaves the counting to SQL, so a corpus of any size is measured without holding its text
  in Python (DuckDB spills what does not fit).
- Words are the same everywhere: a line's text split at white space, punctuation stripped from each word's
  edges (inner apostrophes and hyphens stay: "don't", "twenty-two"), lower-cased, empty words dropped.
- Per-stage results are ordered by stage rank, youngest first.
"""

from __future__ import annotations

from collections.abc import Mapping

import duckdb

from sim.corpus.quality.readability import TITLE
from sim.corpus.quality.twins import Twin

_TOKENS = r"regexp_extract_all({}, '[\pL\pN]+(?:[^\s\pL\pN]+[\pL\pN]+)*')"
"""SQL: a text's words, as written. A match is a run of non-space characters from its first letter or digit
to its last: the words of the module's invariant, found in one pass (twice as fast as split and strip)."""
FRAME_WORDS = 4
"""An opening sentence's frame: its first four words, names masked."""
FRAME_SHARE = 0.25
"""A frame is a formula when the openings of at least this share of a stage's scene ids use it."""
LINE_WORDS = 4
"""Lines shorter than this ("Yes.", "Thank you, Mum.") are left out of `verbatim_lines`."""
_TITLES = TITLE.pattern  # the titles that do not end a sentence, as the per-scene measures read them
_SENTENCE_END = r"""[.!?]+["''”’)]*\s+"""  # quote doubled: this goes inside an SQL string


def words(sql: str) -> str:
    """SQL for the lower-cased words of the text expression `sql`: a list of strings."""
    return _TOKENS.format(f"lower({sql})")


def distinct_n(con: duckdb.DuckDBPyConnection, n: int) -> dict[str, float]:
    """Per stage: distinct word n-grams of its dialogue lines divided by all of them (distinct-n).

    The n-grams of a line are its runs of n consecutive words (see the module's words), within the line only;
    a line of fewer than n words has none. Both counts run over every line (`turns.text`) of the stage's
    scenes, so 1.0 means no n-gram is said twice in the stage. A stage with no n-grams is left out.
    """
    if not 1 <= n <= 3:
        raise ValueError(f"distinct_n counts 1- to 3-grams, not {n}-grams")
    grams = f"list_transform(range(1, len(ws) - {n} + 2), lambda i: array_to_string(ws[i:i + {n} - 1], ' '))"
    return _by_stage(con, f"""
        SELECT stage, count(DISTINCT g) / count(*) FROM (
            SELECT s.stage, unnest({grams}) AS g
            FROM (SELECT scene_key, {words("text")} AS ws FROM turns) JOIN scenes s USING (scene_key))
        GROUP BY stage""")


def repeated_openings(con: duckdb.DuckDBPyConnection) -> dict[str, float]:
    """Per stage: the share of its scenes whose opening has a sentence in a formula frame.

    The opening is cut into sentences after `.`, `!` or `?` (and any closing quote) followed by a space,
    not after a title (Ms., Dr.). A sentence's frame is its first `FRAME_WORDS` words, lower-cased, with
    every capitalised word after the first but `I` masked as `_`, since a name is what a formula varies:
    "I remember when Grandpa told me, ..." and "I remember when Ms. Rivera told me, ..." share the frame
    "i remember when _". A sentence of `FRAME_WORDS` words or fewer has no frame: the authored "I am seven."
    that starts every opening is a fact, not a frame. A frame is a formula of the stage when the openings of
    at least two of its scene ids (pack/scene), and of at least `FRAME_SHARE` of them, use it; a scene's
    own variations count once, so only frames shared with other scenes count.
    """
    return _by_stage(con, f"""
        WITH sentences AS (
            SELECT stage, scene_key, pack || '/' || scene AS id, {_TOKENS.format("sentence")} AS ws
            FROM scenes, unnest(string_split_regex(regexp_replace(opening, '{_TITLES}', '\\1', 'g'),
                                                   '{_SENTENCE_END}')) AS u(sentence)),
        frames AS (
            SELECT DISTINCT stage, scene_key, id, array_to_string({_frame()}, ' ') AS frame
            FROM sentences WHERE len(ws) > {FRAME_WORDS}),
        formulas AS (
            SELECT stage, frame FROM frames
            JOIN (SELECT stage, count(DISTINCT pack || '/' || scene) AS ids FROM scenes GROUP BY stage) USING (stage)
            GROUP BY stage, frame, ids HAVING count(DISTINCT id) >= greatest(2, {FRAME_SHARE} * ids))
        SELECT s.stage, avg((f.scene_key IS NOT NULL)::INT)
        FROM scenes s LEFT JOIN (SELECT DISTINCT scene_key FROM frames JOIN formulas USING (stage, frame)) f
            USING (scene_key)
        GROUP BY s.stage""")


def _frame() -> str:
    """SQL: the frame of a sentence's words `ws` (see `repeated_openings`)."""
    name = r"i > 1 AND regexp_matches(w, '^\p{Lu}') AND NOT regexp_matches(w, '^I($|[''’])')"
    return f"list_transform(ws[1:{FRAME_WORDS}], lambda w, i: CASE WHEN {name} THEN '_' ELSE lower(w) END)"


def verbatim_lines(con: duckdb.DuckDBPyConnection) -> dict[str, float]:
    """Per stage: the share of its dialogue lines said word for word in another scene.

    A line is a turn's text as its words (see the module's invariant) joined by single spaces, so case and
    punctuation do not tell lines apart; lines of fewer than `LINE_WORDS` words are left out, of both counts.
    A line counts when the same words are a line of some other scene (another scene_key, of any stage); a
    line said twice in one scene does not count for that.
    """
    return _by_stage(con, f"""
        WITH lines AS (
            SELECT s.stage, t.scene_key, array_to_string(t.ws, ' ') AS line
            FROM (SELECT scene_key, {words("text")} AS ws FROM turns) t JOIN scenes s USING (scene_key)
            WHERE len(t.ws) >= {LINE_WORDS}),
        said AS (SELECT line, min(scene_key) <> max(scene_key) AS elsewhere FROM lines GROUP BY line)
        SELECT stage, avg(elsewhere::INT) FROM lines JOIN said USING (line) GROUP BY stage""")


def coverage(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, int]]:
    """Per stage: how many of its scenes are about each value (`scenes."values"`), values in name order."""
    found: dict[str, dict[str, int]] = {}
    rows = con.execute("""
        SELECT stage, v, count(DISTINCT scene_key) FROM scenes, unnest("values") AS u(v)
        GROUP BY stage, v ORDER BY min(stage_rank), stage, v""")
    for stage, value, count in rows.fetchall():
        found.setdefault(stage, {})[value] = count
    return found


def adjacent_twins(con: duckdb.DuckDBPyConnection, twins: Mapping[str, Twin]) -> float:
    """The share of neighbouring scenes in curriculum order that are near twins (the same cluster in `twins`).

    Neighbours are consecutive `training_text.curriculum_position`s of one learner; a learner's n scenes give
    n - 1 pairs. A scene missing from `twins` is nobody's twin. 0.0 when there are no pairs.
    """
    pairs = con.execute("""
        SELECT id, lead(id) OVER (PARTITION BY learner ORDER BY curriculum_position) AS next
        FROM training_text QUALIFY next IS NOT NULL""").fetchall()
    same = sum(1 for a, b in pairs if a in twins and b in twins and twins[a].cluster == twins[b].cluster)
    return same / len(pairs) if pairs else 0.0


def _by_stage(con: duckdb.DuckDBPyConnection, sql: str) -> dict[str, float]:
    """The (stage, figure) rows of `sql` as a dict in stage-rank order, stages without a figure left out."""
    rows = con.execute(f"""
        SELECT f.* FROM ({sql}) AS f(stage, value)
        JOIN (SELECT stage, min(stage_rank) AS rank FROM scenes GROUP BY stage) USING (stage)
        WHERE value IS NOT NULL ORDER BY rank, stage""").fetchall()
    return {stage: float(value) for stage, value in rows}
