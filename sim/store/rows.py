"""Typed rows: one frozen dataclass per table a run writes, its fields the table's columns in order.

Invariants:
- A row class's fields are its table's columns (`sim.store.migrations`), same names, same order, so the
  writer builds each column as `[row.column for row in rows]` and never renames.
- Rows are built where their data is (a finished scene in the engine, a failure in the scheduler, a
  model call in the model backend, the run in the run loop) and carry only plain values, so they are
  cheap to send between processes. Columns only the writer knows (the run's id, a call's id) are
  left empty (`""`) by the builder and filled by the writer.
- This module imports nothing from `sim`: every layer may build rows, none drags another in.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRow:
    """A row of `runs`: one `sim run` invocation (its end is written by `finish_run`)."""

    run_id: str
    started_at: datetime
    finished_at: datetime | None = None
    status: str = "running"
    command: str
    args: dict[str, Any]  # JSON
    seed: int
    backend: str
    model: str
    learner: str
    packs: list[str]
    versions: dict[str, str]  # JSON
    scenes_planned: int
    scenes_done: int = 0
    error: str | None = None
    scenes_failed: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class SceneRow:
    """A row of `scenes`: one lived scene (JSON columns already serialised)."""

    scene_key: str
    run_id: str = ""  # filled by the writer
    learner: str
    pack: str
    pack_version: str
    scene: str
    variation: int
    seed: int
    stage: str
    stage_rank: int
    depth: int
    position: int
    age: int
    title: str
    values: list[str]
    learner_role: str
    setting: str  # JSON
    cast: str  # JSON: slot -> person id
    opening: str
    reflection: str
    memories_recalled: list[str]
    turn_count: int
    repairs: int
    status: str = "done"
    backend: str
    model: str
    started_at: datetime
    finished_at: datetime
    effect: str  # JSON: the scene's SceneEffect
    dialogue: str
    learner_words: int
    learner_turns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnRow:
    """A row of `turns`: one spoken line."""

    scene_key: str
    turn_index: int
    speaker_id: str
    speaker_label: str
    role: str
    addressee_id: str
    text: str
    beat: int
    exchange: int
    intent: str
    repairs: int
    latency_ms: float


@dataclass(frozen=True, slots=True, kw_only=True)
class PersonRow:
    """A row of `people`: someone who appeared in a scene (the writer keeps the first run that met them)."""

    person_id: str
    name: str
    known_as: str
    role: str
    kinship: str | None
    generated: bool
    persona: str  # JSON
    first_run_id: str = ""  # filled by the writer


@dataclass(frozen=True, slots=True, kw_only=True)
class LearnerStateRow:
    """A row of `learner_states`: the learner's life right after a scene."""

    scene_key: str
    learner: str
    variation: int
    stage: str
    age: int
    state: str  # JSON: the whole LearnerState


@dataclass(frozen=True, slots=True, kw_only=True)
class LlmCallRow:
    """A row of `llm_calls`: one model call, made, replayed or failed."""

    call_id: str = ""  # filled by the writer: run, scene and the call's number in the scene
    run_id: str = ""  # filled by the writer
    scene_key: str
    stage: str
    purpose: str
    turn_index: int | None
    backend: str
    model: str
    request_hash: str
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    latency_ms: float
    retries: int
    stop_reason: str | None
    cost_usd: float | None
    source: str
    status: str
    error: str | None
    created_at: datetime

    @property
    def tokens(self) -> int:
        """Every token the call was billed for (input, output, prompt-cache reads and writes)."""
        return self.input_tokens + self.output_tokens + self.cache_read_tokens + self.cache_write_tokens


@dataclass(frozen=True, slots=True, kw_only=True)
class SceneFailureRow:
    """A row of `scene_failures`: a scene a run could not finish, and why."""

    run_id: str = ""  # filled by the writer
    scene_key: str
    learner: str
    pack: str
    scene: str
    variation: int
    stage: str
    reason: str
    failed_at: datetime


@dataclass(frozen=True, slots=True)
class SceneRecord:
    """Everything stored for one finished scene: its row, turns, people, the life after it, its calls."""

    scene: SceneRow
    turns: tuple[TurnRow, ...]
    people: tuple[PersonRow, ...]
    state: LearnerStateRow
    calls: tuple[LlmCallRow, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class FailedScene:
    """A scene that could not be finished: why, and the calls it made (they were paid for)."""

    failure: SceneFailureRow
    calls: tuple[LlmCallRow, ...] = ()


@dataclass(frozen=True, slots=True)
class SceneMeasures:
    """A row of `scene_quality`, as the per-scene measures give it (`sim.corpus.quality`): one figure a column.

    The table's last columns (when it was measured, the version, its MinHash signature and near-duplicate
    cluster) are filled by the quality check that stores it.
    """

    scene_key: str
    learner_turns: int
    learner_words_max: int
    learner_words_mean: float
    over_limit_turns: int  # learner turns longer than the stage's max_words_per_turn
    learner_grade: float | None  # calibrated reading grade of the learner's lines (None: too few words)
    others_grade: float | None  # the same for everyone else's lines
    grade_in_band: bool | None  # learner_grade at most the top of the stage band (None when learner_grade is None)
    turns: int
    speakers: int
    empty_lines: int
    i_label_ok: bool  # the learner speaks as `I` in every turn, and no one else does
    first_person_narration: bool  # opening and reflection are told in the first person
    name_in_narration: int  # the learner's own name used as a third person outside quoted speech
    self_repeats: int  # a speaker saying a sentence they already said in this scene
    repeated_sentences: int  # a sentence occurring more than once anywhere in the record
    meta_talk: int  # lines that talk about being an AI, a model, a script or a prompt
    pronoun_mismatches: int  # a cast member referred to with pronouns other than their persona's
    recalls: bool  # the scene recalls an earlier one
    recall_related: bool | None  # a recalled scene shares a person or a value with this one (None: no recall)


def columns(row: type[Any]) -> tuple[str, ...]:
    """The table columns of a row class, in order."""
    return tuple(f.name for f in fields(row))
