"""The quality tables (m007): the figures `sim check` measures, per scene and per stage, kept beside the text.

Invariant: like every migration, these are appended and never edited; `sim check` alone writes these tables
(under the run lock), and deleting their rows only makes the next check measure again.
"""

from __future__ import annotations

import duckdb

from sim.store.migrating import comment, migration

SCENE_QUALITY: dict[str, str] = {
    "scene_key": "The scene (scenes.scene_key).",
    "learner_turns": "Turns the learner (I) speaks.",
    "learner_words_max": "Words in the learner's longest turn.",
    "learner_words_mean": "Mean words per learner turn.",
    "over_limit_turns": "Learner turns longer than the stage's max_words_per_turn.",
    "learner_grade": "Reading grade of the learner's lines, calibrated for dialogue (NULL: too few words).",
    "others_grade": "Reading grade of everyone else's lines, calibrated for dialogue (NULL: too few words).",
    "grade_in_band": "learner_grade at most the top of the stage's reading_grade band (NULL when learner_grade is).",
    "turns": "Spoken turns.",
    "speakers": "Distinct speakers, the learner included.",
    "empty_lines": "Turns with no text.",
    "i_label_ok": "The learner speaks as I in every turn, and no one else does.",
    "first_person_narration": "Opening and reflection are told in the first person.",
    "name_in_narration": "Times the learner's own name is used as a third person outside quoted speech.",
    "self_repeats": "Sentences a speaker says again in the same scene.",
    "repeated_sentences": "Extra occurrences of a sentence repeated anywhere in the record.",
    "meta_talk": "Lines that talk about being an AI, a model, a prompt or a script.",
    "pronoun_mismatches": "A cast member referred to with pronouns other than their persona's (a heuristic).",
    "recalls": "The scene recalls an earlier one.",
    "recall_related": "A recalled scene shares a person or a value with this one (NULL: no recall).",
    "measured_at": "When sim check measured the scene.",
    "version": "The measures' version; a scene measured by an older one is measured again.",
    "signature": "MinHash of the text's word 5-grams (near-duplicate search).",
    "cluster": "Its near-duplicate cluster: the smallest scene_key in it (Jaccard >= 0.8 on word 5-grams).",
    "twins": "Other scenes in its near-duplicate cluster.",
}
CORPUS_QUALITY: dict[str, str] = {
    "measure": "The measure's name, as sim check prints it.",
    "stage": "The stage it is about ('' for the whole corpus).",
    "value": "Its value.",
    "detail": "Its parts, as JSON (for coverage: scenes per value).",
    "fingerprint": "The corpus it was measured on (its scenes and the measures' version); a change measures again.",
    "measured_at": "When sim check measured it.",
}


@migration
def m007_quality(con: duckdb.DuckDBPyConnection) -> None:
    """Per-scene measures with each scene's near-duplicate cluster, and per-stage corpus measures."""
    con.execute("""
        CREATE TABLE scene_quality (
            scene_key VARCHAR PRIMARY KEY, learner_turns INTEGER NOT NULL, learner_words_max INTEGER NOT NULL,
            learner_words_mean DOUBLE NOT NULL, over_limit_turns INTEGER NOT NULL, learner_grade DOUBLE,
            others_grade DOUBLE, grade_in_band BOOLEAN, turns INTEGER NOT NULL, speakers INTEGER NOT NULL,
            empty_lines INTEGER NOT NULL, i_label_ok BOOLEAN NOT NULL, first_person_narration BOOLEAN NOT NULL,
            name_in_narration INTEGER NOT NULL, self_repeats INTEGER NOT NULL, repeated_sentences INTEGER NOT NULL,
            meta_talk INTEGER NOT NULL, pronoun_mismatches INTEGER NOT NULL, recalls BOOLEAN NOT NULL,
            recall_related BOOLEAN, measured_at TIMESTAMP NOT NULL, version INTEGER NOT NULL,
            signature BLOB NOT NULL, cluster VARCHAR, twins INTEGER
        )
    """)
    comment(con, "scene_quality", "What sim check measured of each scene (one row per scene).", SCENE_QUALITY)
    con.execute("""
        CREATE TABLE corpus_quality (
            measure VARCHAR NOT NULL, stage VARCHAR NOT NULL, value DOUBLE, detail JSON,
            fingerprint VARCHAR NOT NULL, measured_at TIMESTAMP NOT NULL, PRIMARY KEY (measure, stage)
        )
    """)
    comment(con, "corpus_quality", "What sim check measured of the corpus, per stage.", CORPUS_QUALITY)
