"""The DuckDB schema, as migrations: named functions, appended with `@migration`, never edited.

Invariant: `MIGRATIONS` is append-only and a name is never reused, since a database records each migration it
has run by name (`sim.store.schema`); the README's table reference is generated from the comments set here.
"""

from __future__ import annotations

import duckdb

from sim.store.migrating import MIGRATIONS, Migration, migration
from sim.store.migrating import comment as _comment

__all__ = ["MIGRATIONS", "Migration", "migration"]


@migration
def m001_trajectories(con: duckdb.DuckDBPyConnection) -> None:
    """Runs, the people in them, scenes, turns and the learner's state after each scene."""
    con.execute("""
        CREATE TABLE runs (
            run_id VARCHAR PRIMARY KEY, started_at TIMESTAMP NOT NULL, finished_at TIMESTAMP,
            status VARCHAR NOT NULL, command VARCHAR NOT NULL, args JSON NOT NULL, seed BIGINT NOT NULL,
            backend VARCHAR NOT NULL, model VARCHAR NOT NULL, learner VARCHAR NOT NULL, packs VARCHAR[] NOT NULL,
            versions JSON NOT NULL, scenes_planned INTEGER NOT NULL, scenes_done INTEGER NOT NULL DEFAULT 0,
            error VARCHAR
        )""")
    _comment(
        con,
        "runs",
        "One row per `sim run` invocation.",
        {
            "run_id": "Unique id of the run.",
            "started_at": "When the run started (UTC).",
            "finished_at": "When it ended (UTC); NULL while running or if killed.",
            "status": "running, done, interrupted (stopped or killed; run again to finish) or failed.",
            "command": "The command line, without secrets.",
            "args": "The run's options as JSON.",
            "seed": "The seed.",
            "backend": "Backend name (scripted, ...).",
            "model": "Model name.",
            "learner": "Learner id.",
            "packs": "Pack ids in the run.",
            "versions": "Versions of raising-sim, langgraph, duckdb and faker.",
            "scenes_planned": "Scenes the run set out to live (after skipping finished ones).",
            "scenes_done": "Scenes it finished.",
            "error": "Why it failed or stopped, if it did.",
        },
    )
    con.execute("""
        CREATE TABLE people (
            person_id VARCHAR PRIMARY KEY, name VARCHAR NOT NULL, known_as VARCHAR NOT NULL,
            role VARCHAR NOT NULL, kinship VARCHAR, generated BOOLEAN NOT NULL, persona JSON NOT NULL,
            first_run_id VARCHAR NOT NULL
        )""")
    _comment(
        con,
        "people",
        "Everyone who appeared in a scene, including people drafted with Faker.",
        {
            "person_id": "Persona id (file stem), or gen-<slot>-<hash> for a drafted person.",
            "name": "Full name.",
            "known_as": "How the learner addresses them; the label in training text.",
            "role": "learner, teacher, peer, family or community.",
            "kinship": "Kinship to the learner, for family.",
            "generated": "True when drafted with Faker because no persona fit a cast slot.",
            "persona": "The full persona as JSON.",
            "first_run_id": "The run in which they first appeared.",
        },
    )
    con.execute("""
        CREATE TABLE scenes (
            scene_key VARCHAR PRIMARY KEY, run_id VARCHAR NOT NULL, learner VARCHAR NOT NULL,
            pack VARCHAR NOT NULL, pack_version VARCHAR NOT NULL, scene VARCHAR NOT NULL,
            variation INTEGER NOT NULL, seed BIGINT NOT NULL, stage VARCHAR NOT NULL, stage_rank INTEGER NOT NULL,
            depth INTEGER NOT NULL, position INTEGER NOT NULL, age INTEGER NOT NULL, title VARCHAR NOT NULL,
            "values" VARCHAR[] NOT NULL, learner_role VARCHAR NOT NULL, setting JSON NOT NULL, "cast" JSON NOT NULL,
            opening VARCHAR NOT NULL, reflection VARCHAR NOT NULL, memories_recalled VARCHAR[] NOT NULL,
            turn_count INTEGER NOT NULL, repairs INTEGER NOT NULL, status VARCHAR NOT NULL,
            backend VARCHAR NOT NULL, model VARCHAR NOT NULL, started_at TIMESTAMP NOT NULL,
            finished_at TIMESTAMP NOT NULL, effect JSON NOT NULL,
            UNIQUE (learner, pack, scene, variation, seed)
        )""")
    _comment(
        con,
        "scenes",
        "One row per lived scene; written atomically with its turns.",
        {
            "scene_key": "Hash of (learner, pack, scene, variation, seed): the idempotency key.",
            "run_id": "The run that lived it.",
            "learner": "Learner id.",
            "pack": "Pack id.",
            "pack_version": "Pack version.",
            "scene": "Scene id.",
            "variation": "Variation (a life line) from 0.",
            "seed": "Seed.",
            "stage": "Stage id.",
            "stage_rank": "Stage position, 0 = youngest.",
            "depth": "Longest follow-on chain into the scene within its stage.",
            "position": "Place of the scene in its pack, from 0.",
            "age": "The learner's age in the scene.",
            "title": "Scene title.",
            "values": "Value ids the scene is about.",
            "learner_role": "The learner's part: student, grandchild, ...",
            "setting": "Place, time and situation.",
            "cast": "Cast slot -> person id.",
            "opening": "First-person opening narration.",
            "reflection": "First-person reflection.",
            "memories_recalled": "scene_keys of memories the scene drew on.",
            "turn_count": "Number of turns.",
            "repairs": "Learner lines shortened or regenerated to meet stage targets.",
            "status": "done.",
            "backend": "Backend.",
            "model": "Model.",
            "started_at": "Start (UTC).",
            "finished_at": "End (UTC).",
            "effect": "What the scene changed in the learner's life (memory, bonds, values).",
        },
    )
    con.execute("""
        CREATE TABLE turns (
            scene_key VARCHAR NOT NULL, turn_index INTEGER NOT NULL, speaker_id VARCHAR NOT NULL,
            speaker_label VARCHAR NOT NULL, role VARCHAR NOT NULL, addressee_id VARCHAR NOT NULL,
            text VARCHAR NOT NULL, beat INTEGER NOT NULL, exchange INTEGER NOT NULL, intent VARCHAR NOT NULL,
            repairs INTEGER NOT NULL, latency_ms DOUBLE NOT NULL, PRIMARY KEY (scene_key, turn_index)
        )""")
    _comment(
        con,
        "turns",
        "Every line spoken, in order.",
        {
            "scene_key": "The scene.",
            "turn_index": "Order in the scene, from 0.",
            "speaker_id": "Person id of the speaker (the learner's id for the learner).",
            "speaker_label": "How the learner knows the speaker; 'I' for the learner.",
            "role": "The speaker's role.",
            "addressee_id": "Person id of who is addressed.",
            "text": "What was said.",
            "beat": "Beat index in the scene.",
            "exchange": "Which exchange of the beat, from 0.",
            "intent": "The beat's intent.",
            "repairs": "Times the line was repaired to meet stage targets.",
            "latency_ms": "Time the backend took for this line.",
        },
    )
    con.execute("""
        CREATE TABLE learner_states (
            scene_key VARCHAR PRIMARY KEY, learner VARCHAR NOT NULL, variation INTEGER NOT NULL,
            stage VARCHAR NOT NULL, age INTEGER NOT NULL, state JSON NOT NULL
        )""")
    _comment(
        con,
        "learner_states",
        "The learner's life right after each scene.",
        {
            "scene_key": "The scene.",
            "learner": "Learner id.",
            "variation": "Life line (variation).",
            "stage": "Stage of the scene.",
            "age": "Age in the scene.",
            "state": "The whole LearnerState as JSON: memories, bonds, values.",
        },
    )


@migration
def m002_training_text(con: duckdb.DuckDBPyConnection) -> None:
    """The training text: one row per scene, rendered from the learner's point of view, in curriculum order.

    Rendering lives here and only here. Style `scripted` (the default): the first-person opening, a
    blank line, the dialogue with each person labelled as the learner knows them and the learner as
    `I`, a blank line, the first-person reflection. Style `dialogue`: the dialogue lines alone.
    """
    con.execute("""
        CREATE MACRO training_text_styled(style) AS TABLE
        WITH dialogue AS (
            SELECT scene_key, string_agg(speaker_label || ': ' || text, chr(10) ORDER BY turn_index) AS lines,
                   count(*) AS turn_count,
                   sum(CASE WHEN role = 'learner' THEN len(string_split(trim(text), ' ')) END) AS learner_words,
                   sum(CASE WHEN role = 'learner' THEN 1 END) AS learner_turns,
                   sum(len(string_split(trim(text), ' '))) AS dialogue_words
            FROM turns GROUP BY scene_key
        ), rendered AS (
            SELECT s.*, d.turn_count AS turns, d.learner_words, d.learner_turns,
                   CASE style
                       WHEN 'scripted' THEN s.opening || chr(10) || chr(10) || d.lines
                                            || CASE WHEN s.reflection = '' THEN ''
                                                    ELSE chr(10) || chr(10) || s.reflection END
                       WHEN 'dialogue' THEN d.lines
                       ELSE error('unknown training text style ' || style || ' (expected scripted or dialogue)')
                   END AS text
            FROM scenes s JOIN dialogue d USING (scene_key)
        )
        SELECT scene_key AS id, text, learner, stage, stage_rank, age, pack, pack_version, scene, variation, seed,
               "values", "cast", turns AS turn_count, len(string_split(trim(text), ' ')) AS word_count,
               learner_words, learner_turns, backend, model, title, learner_role,
               row_number() OVER (
                   PARTITION BY learner ORDER BY stage_rank, age, depth, position, pack, variation, seed
               ) AS curriculum_position
        FROM rendered
    """)
    con.execute("CREATE VIEW training_text AS SELECT * FROM training_text_styled('scripted')")
    _comment_training_text(con)


def _comment_training_text(con: duckdb.DuckDBPyConnection) -> None:
    _comment(con, "training_text", "View: one row per scene, its training text (style `scripted`) and metadata, "
             "numbered in curriculum order. `FROM training_text_styled('dialogue')` gives the dialogue-only style.", {
        "id": "The scene_key: a stable id for the record.",
        "text": "The training text: first-person opening, the dialogue (the learner as `I`), the reflection.",
        "learner": "Learner id.", "stage": "Stage id.", "stage_rank": "Stage position, 0 = youngest.",
        "age": "The learner's age.", "pack": "Pack id.", "pack_version": "Pack version.", "scene": "Scene id.",
        "variation": "Variation (life line).", "seed": "Seed.", "values": "Value ids.", "cast": "Slot -> person id.",
        "turn_count": "Turns in the dialogue.", "word_count": "Words in the text.",
        "learner_words": "Words the learner said.", "learner_turns": "Turns the learner spoke.",
        "backend": "Backend that wrote it.", "model": "Model.", "title": "Scene title.",
        "learner_role": "The learner's part in the scene.",
        "curriculum_position": "1-based place in curriculum order (stage, age, follow-on depth, place in pack, "
                               "pack, variation, seed), per learner.",
    })


@migration
def m003_stored_dialogue(con: duckdb.DuckDBPyConnection) -> None:
    """Keep each scene's dialogue with the scene, so training text needs no aggregation over turns.

    m002 aggregated turns per scene in the view; DuckDB cannot spill an ordered string_agg, so
    exporting a corpus larger than memory failed. The dialogue lines are now rendered once, when a
    scene is stored (`sim.corpus.rendering`), and the view only concatenates a scene's stored parts.
    """
    con.execute("ALTER TABLE scenes ADD COLUMN dialogue VARCHAR")
    con.execute("ALTER TABLE scenes ADD COLUMN learner_words INTEGER")
    con.execute("ALTER TABLE scenes ADD COLUMN learner_turns INTEGER")
    con.execute("""
        UPDATE scenes SET dialogue = d.lines, learner_words = d.words, learner_turns = d.turns
        FROM (SELECT scene_key, string_agg(speaker_label || ': ' || text, chr(10) ORDER BY turn_index) AS lines,
                     coalesce(sum(CASE WHEN role = 'learner' THEN len(string_split(trim(text), ' ')) END), 0) AS words,
                     count(*) FILTER (WHERE role = 'learner') AS turns
              FROM turns GROUP BY scene_key) AS d
        WHERE scenes.scene_key = d.scene_key""")
    con.execute("DROP VIEW training_text")
    con.execute("DROP MACRO TABLE training_text_styled")
    con.execute("""
        CREATE MACRO training_text_styled(style) AS TABLE
        SELECT scene_key AS id, text, learner, stage, stage_rank, age, pack, pack_version, scene, variation, seed,
               "values", "cast", turn_count, len(string_split(trim(text), ' ')) AS word_count,
               learner_words, learner_turns, backend, model, title, learner_role,
               row_number() OVER (
                   PARTITION BY learner ORDER BY stage_rank, age, depth, position, pack, variation, seed
               ) AS curriculum_position
        FROM (SELECT *,
                     CASE style
                         WHEN 'scripted' THEN opening || chr(10) || chr(10) || dialogue
                                              || CASE WHEN reflection = '' THEN ''
                                                      ELSE chr(10) || chr(10) || reflection END
                         WHEN 'dialogue' THEN dialogue
                         ELSE error('unknown training text style ' || style || ' (expected scripted or dialogue)')
                     END AS text
              FROM scenes)
    """)
    con.execute("CREATE VIEW training_text AS SELECT * FROM training_text_styled('scripted')")
    _comment_training_text(con)
    _comment(con, "scenes", "One row per lived scene; written atomically with its turns.", {
        "dialogue": "The dialogue as training text: one `Label: line` per turn, the learner as `I` "
                     "(sim.corpus.rendering).",
        "learner_words": "Words the learner said in the scene.",
        "learner_turns": "Turns the learner spoke in the scene.",
    })


@migration
def m004_scene_records(con: duckdb.DuckDBPyConnection) -> None:
    """Render a scene's text row by row (`scene_text`), and number scenes without holding their text.

    m003 rendered the text inside `training_text_styled`, next to its curriculum window: numbering
    the corpus held all of its text in memory. Now `scene_text(style, opening, dialogue, reflection)`
    renders one row, `text_words(text)` counts its words, and the table macro `scene_records(style)`
    gives one row per scene with its rowid and `curriculum_key`, the one definition of curriculum
    order. `training_text_styled` numbers those rows; export sorts narrow rows and joins the text in
    shard by shard, so its memory does not grow with the corpus.
    """
    con.execute("DROP VIEW training_text")
    con.execute("DROP MACRO TABLE training_text_styled")
    con.execute("""
        CREATE MACRO scene_text(style, opening, dialogue, reflection) AS
        CASE style
            WHEN 'scripted' THEN opening || chr(10) || chr(10) || dialogue
                                 || CASE WHEN reflection = '' THEN '' ELSE chr(10) || chr(10) || reflection END
            WHEN 'dialogue' THEN dialogue
            ELSE error('unknown training text style ' || style || ' (expected scripted or dialogue)')
        END
    """)
    con.execute("CREATE MACRO text_words(text) AS len(string_split(trim(text), ' '))")
    con.execute("""
        CREATE MACRO scene_records(style) AS TABLE
        SELECT scene_key AS id, text, learner, stage, stage_rank, age, pack, pack_version, scene, variation, seed,
               "values", "cast", turn_count, text_words(text) AS word_count, learner_words, learner_turns, backend,
               model, title, learner_role, _rowid AS scene_rowid,
               row(stage_rank, age, depth, position, pack, variation, seed) AS curriculum_key
        FROM (SELECT *, rowid AS _rowid, scene_text(style, opening, dialogue, reflection) AS text FROM scenes)
    """)
    con.execute("""
        CREATE MACRO training_text_styled(style) AS TABLE
        SELECT * EXCLUDE (scene_rowid, curriculum_key),
               row_number() OVER (PARTITION BY learner ORDER BY curriculum_key) AS curriculum_position
        FROM scene_records(style)
    """)
    con.execute("CREATE VIEW training_text AS SELECT * FROM training_text_styled('scripted')")
    _comment_training_text(con)

@migration
def m005_model_calls(con: duckdb.DuckDBPyConnection) -> None:
    """Every model call with its tokens and cost, and the scenes that failed with their reasons."""
    con.execute("""
        CREATE TABLE llm_calls (
            call_id VARCHAR PRIMARY KEY, run_id VARCHAR NOT NULL, scene_key VARCHAR NOT NULL,
            stage VARCHAR NOT NULL, purpose VARCHAR NOT NULL, turn_index INTEGER, backend VARCHAR NOT NULL,
            model VARCHAR NOT NULL, request_hash VARCHAR NOT NULL, input_tokens BIGINT NOT NULL,
            output_tokens BIGINT NOT NULL, cache_read_tokens BIGINT NOT NULL, cache_write_tokens BIGINT NOT NULL,
            latency_ms DOUBLE NOT NULL, retries INTEGER NOT NULL, stop_reason VARCHAR, cost_usd DOUBLE,
            source VARCHAR NOT NULL, status VARCHAR NOT NULL, error VARCHAR, created_at TIMESTAMP NOT NULL
        )""")
    _comment(con, "llm_calls", "One row per model call a run made or replayed (never the API key).", {
        "call_id": "Run, scene and the call's number in the scene.",
        "run_id": "The run that made or replayed the call.",
        "scene_key": "The scene the call was for.",
        "stage": "The scene's stage.",
        "purpose": "opening, turn, reflection, script (a whole scene), or regenerate (a line that missed "
                   "the stage's targets, asked again).",
        "turn_index": "The turn the call wrote (NULL for openings, reflections and scripts).",
        "backend": "anthropic or openai-compatible.", "model": "Model id.",
        "request_hash": "SHA-256 of the request: the reply cache's key.",
        "input_tokens": "Uncached input tokens.", "output_tokens": "Output tokens.",
        "cache_read_tokens": "Input tokens read from the provider's prompt cache.",
        "cache_write_tokens": "Input tokens written to the provider's prompt cache.",
        "latency_ms": "Wall time of the call, retries included.",
        "retries": "Retries the SDK made (429, 529, 5xx, timeouts) plus re-sends of malformed replies.",
        "stop_reason": "end, max_tokens, refusal or other; the provider's own word after a colon.",
        "cost_usd": "Cost from the price table (0 for cache replays; NULL if the model has no price).",
        "source": "api (paid now), batch (Message Batches, half price) or cache (replayed, free).",
        "status": "ok, or failed (see error).",
        "error": "Why the call failed, one line.",
        "created_at": "When the reply arrived.",
    })
    con.execute("""
        CREATE TABLE scene_failures (
            run_id VARCHAR NOT NULL, scene_key VARCHAR NOT NULL, learner VARCHAR NOT NULL, pack VARCHAR NOT NULL,
            scene VARCHAR NOT NULL, variation INTEGER NOT NULL, stage VARCHAR NOT NULL, reason VARCHAR NOT NULL,
            failed_at TIMESTAMP NOT NULL, PRIMARY KEY (run_id, scene_key)
        )""")
    _comment(con, "scene_failures", "Scenes a run could not finish, and why; the next run tries them again.", {
        "run_id": "The run.", "scene_key": "The scene's key.", "learner": "Learner id.", "pack": "Pack id.",
        "scene": "Scene id.", "variation": "Variation.", "stage": "Stage id.",
        "reason": "Why it failed, one line (no API key).", "failed_at": "When.",
    })


@migration
def m006_run_outcomes(con: duckdb.DuckDBPyConnection) -> None:
    """Runs say how they ended, so `runs` tells success from failure.

    Before, a run whose scenes failed, or which crashed on a full disk, was recorded as 'done'. Now a
    run ends done, partial (some scenes failed), failed (with the error), interrupted (Ctrl-C,
    SIGTERM, or killed) or stopped (--max-cost), and counts the scenes that failed. Runs already
    recorded 'done' with failed scenes are classified from `scene_failures`.
    """
    con.execute("ALTER TABLE runs ADD COLUMN scenes_failed INTEGER DEFAULT 0")  # existing rows get 0
    con.execute("""
        UPDATE runs SET scenes_failed = f.failed,
               status = CASE WHEN runs.status <> 'done' THEN runs.status
                             WHEN runs.scenes_done = 0 THEN 'failed' ELSE 'partial' END,
               error = coalesce(runs.error, f.failed || ' of ' || runs.scenes_planned
                                            || ' scenes failed (see scene_failures)')
        FROM (SELECT run_id, count(*) AS failed FROM scene_failures GROUP BY run_id) AS f
        WHERE runs.run_id = f.run_id""")
    _comment(con, "runs", "One row per `sim run` invocation, and how it ended.", {
        "finished_at": "When it ended (UTC); NULL while it runs, and for a run killed outright (kill -9, power cut).",
        "status": "running; then done (every planned scene stored), partial (some scenes failed: see "
                  "scene_failures), failed (see error), interrupted (Ctrl-C, SIGTERM, or killed: the next run "
                  "marks a killed run's leftover 'running' row so) or stopped (--max-cost). Run again to finish "
                  "any but done.",
        "error": "Why it did not end done, one line; NULL when it did.",
        "scenes_failed": "Scenes it tried and could not finish (in scene_failures; the next run tries them again).",
    })


# Later migrations live in their own modules, registered here, after m001 to m006, so that importing this
# module always gives the whole list in order.
from sim.store import migrations_quality  # noqa: E402, F401
