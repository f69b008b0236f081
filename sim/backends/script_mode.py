"""Script mode: a whole scene written by one structured call, then served line by line to the scene graph.

On a scene's opening request the backend asks the model for the whole scene at once (the opening,
every scheduled turn, the reflection) as JSON matching `Script`. The outline it sends lists the
turns `sim.world.schedule.schedule` will ask for, each with the offline scripted backend's line as an
example, so a script follows the same beats as a per-turn scene. The engine still runs its nodes;
its turn and reflection requests are answered from the kept script, so the tables and training
text are the same as in the per-turn mode.

Invariants:
- A script is used only if it parses, validates, has exactly the scheduled turns with the scheduled
  speakers, and every line meets the stage's targets after the repairs `targets` allows (a learner
  line over the word limit is shortened). Otherwise the model is asked once more, with what was
  wrong; a second failure fails the scene (`TargetsMissed`, carrying the calls made).
- The call goes through the inner `ModelBackend`, so the reply cache, prices, budget and
  `llm_calls` rows apply unchanged; the rows ride on the opening only, so each call is recorded once.
- A script is kept from its scene's opening until its reflection is served, and no longer.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sim.backends import prompts, targets
from sim.backends.base import Request, Utterance
from sim.backends.model import ModelBackend, TargetsMissed, _word_limit
from sim.backends.providers.common import Completion, Message, ModelCall, SceneStopped
from sim.store.rows import LlmCallRow
from sim.world.personas import Persona
from sim.world.scenarios import LEARNER
from sim.world.schedule import schedule

BASE_TOKENS = 400
TOKENS_PER_TURN = 120
"""Output budget of a script call: `BASE_TOKENS` for the opening, reflection and JSON, plus this per turn."""


class ScriptTurn(BaseModel):
    """One line of a script: who speaks (their label in the outline) and what they say."""

    # The schema is sent to the model and hashed into the cache key: describe it here, not by the docstring.
    model_config = ConfigDict(extra="forbid", json_schema_extra={"description": "one line of the scene"})

    speaker: str = Field(description="the speaker's label, exactly as the outline gives it")
    text: str = Field(description="only the words they say")


class Script(BaseModel):
    """A whole scene, as the model writes it in script mode."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"description": "a whole scene: the opening, every turn, the reflection"}
    )

    opening: str = Field(description="how I tell the start of the scene, first person, present tense")
    turns: list[ScriptTurn] = Field(description="every line of the outline, in its order")
    reflection: str = Field(description="how I look back on the scene, first person")


@functools.cache
def script_schema() -> dict[str, Any]:
    """The JSON schema a script call asks for (computed once; callers must not change it)."""
    return Script.model_json_schema()


class ScriptMissing(RuntimeError):
    """A turn or reflection was asked for a scene whose script was not written first (a bug, not a failure)."""


@dataclass(frozen=True)
class _Kept:
    """A usable script: the utterances to serve, and who the engine should be asking for each turn."""

    opening: Utterance
    turns: tuple[Utterance, ...]
    reflection: Utterance
    speakers: tuple[str, ...]  # persona id of each turn's speaker


class ScriptModeBackend:
    """Whole scenes written by the model behind `inner`, one structured call per scene."""

    def __init__(self, inner: ModelBackend) -> None:
        """Wrap `inner`, whose cache, prices, budget and provider every script call goes through."""
        self.inner = inner
        self._scripts: dict[str, _Kept] = {}

    @property
    def name(self) -> str:
        """The provider's name, as in the per-turn mode."""
        return self.inner.name

    @property
    def model(self) -> str:
        """The model's id."""
        return self.inner.model

    @property
    def concurrent(self) -> bool:
        """True, as for the inner backend: scripts are written in `aspeak`."""
        return self.inner.concurrent

    def speak(self, request: Request, *, seed: int) -> Utterance:
        """Model backends only write asynchronously (`aspeak`)."""
        raise TypeError("a model backend writes with aspeak(); the run loop awaits it")

    async def aspeak(self, request: Request, *, seed: int) -> Utterance:
        """Write the scene's script on its opening; serve its turns and reflection from the script."""
        if request.kind == "opening":
            return await self._write(request, seed)
        kept = self._scripts.get(request.scene_key)
        what = f"turn {request.turn}" if request.kind == "turn" else "the reflection"
        if kept is None:
            raise ScriptMissing(f"script mode: {what} of scene {request.scene_key} was asked before its opening")
        if request.kind == "reflection":
            del self._scripts[request.scene_key]
            return kept.reflection
        speaker = request.speaker.id if request.speaker else None
        if not 0 <= request.turn < len(kept.turns) or kept.speakers[request.turn] != speaker:
            raise ScriptMissing(
                f"script mode: {what} of scene {request.scene_key} (speaker {speaker}) is not in its script's "
                f"{len(kept.turns)} scheduled turns"
            )
        return kept.turns[request.turn]

    async def aclose(self) -> None:
        """Close the provider's client."""
        await self.inner.aclose()

    def close(self) -> None:
        """Close the reply cache."""
        self.inner.close()

    async def _write(self, request: Request, seed: int) -> Utterance:
        """Ask for the script, once more if it cannot be used; keep it and return its opening."""
        turns = turn_requests(request)
        system = prompts.script_system_blocks(request)
        messages = [Message("user", self._outline(request, turns, seed))]
        rows: list[LlmCallRow] = []
        problem = ""
        for attempt in range(2):
            call = ModelCall(
                self.inner.model,
                system,
                tuple(messages),
                BASE_TOKENS + TOKENS_PER_TURN * len(turns),
                schema=script_schema(),
                purpose="script" if attempt == 0 else "regenerate",
                salt=f"seed={seed};variation={request.variation}",
            )
            try:
                completion, row = await self.inner._complete(call, request)
            except SceneStopped as exc:
                exc.calls[:0] = rows
                raise
            rows.append(row)
            kept = self._read(request, turns, completion)
            if isinstance(kept, _Kept):
                self._scripts[request.scene_key] = kept
                return replace(kept.opening, repairs=kept.opening.repairs + attempt, calls=tuple(rows))
            problem = kept
            messages += [
                Message("assistant", completion.text or "(nothing)"),
                Message("user", prompts.regenerate(problem)),
            ]
        missed = TargetsMissed(f"the script could not be used, twice; the second answer: {problem}")
        missed.calls = rows
        raise missed

    def _outline(self, request: Request, turns: list[Request], seed: int) -> str:
        """The user message: the scripted backend's opening, turns and reflection as the outline to follow."""
        examples = self.inner._examples
        outline = [
            prompts.OutlineTurn(
                speaker=label(turn, turn.speaker),
                addressee="me" if _is_learner(turn, turn.addressee) else label(turn, turn.addressee),
                intent=turn.beat.intent if turn.beat else "the scene",
                example=examples.speak(turn, seed=seed).text,
                max_words=_word_limit(turn),
            )
            for turn in turns
        ]
        opening = examples.speak(request, seed=seed).text
        reflection = examples.speak(replace(request, kind="reflection", turn=len(turns)), seed=seed).text
        return prompts.script_message(request, opening, outline, reflection)

    def _read(self, request: Request, turns: list[Request], completion: Completion) -> _Kept | str:
        """The usable script in `completion`, or what is wrong with it (one line, said to the model)."""
        try:
            script = Script.model_validate_json(completion.text)
        except ValidationError as exc:
            cut = " (it was cut off at max_tokens)" if completion.stop_reason == "max_tokens" else ""
            return invalid(exc) + cut
        if len(script.turns) != len(turns):
            return f"the script has {len(script.turns)} turns; the outline has {len(turns)}"
        for number, (line, turn) in enumerate(zip(script.turns, turns, strict=True), start=1):
            wanted = label(turn, turn.speaker)
            if line.speaker.strip().casefold() != wanted.casefold():
                return f"turn {number} is spoken by {line.speaker!r}; the outline gives it to {wanted!r}"
        served = [self._line(request, script.opening, "the opening")]
        pairs = enumerate(zip(script.turns, turns, strict=True), start=1)
        served += [self._line(turn, line.text, f"turn {number}") for number, (line, turn) in pairs]
        served.append(self._line(replace(request, kind="reflection"), script.reflection, "the reflection"))
        problems = [s for s in served if isinstance(s, str)]
        if problems:
            return "; ".join(problems)
        utterances = [s for s in served if isinstance(s, Utterance)]
        speakers = tuple(t.speaker.id if t.speaker else "" for t in turns)
        return _Kept(utterances[0], tuple(utterances[1:-1]), utterances[-1], speakers)

    def _line(self, request: Request, text: str, where: str) -> Utterance | str:
        """One line through the stage's targets: repaired, shortened to the word limit, or what is wrong."""
        verdict = self.inner._check(request, Completion(text))
        if verdict.retry is None:
            return Utterance(verdict.text, verdict.repairs)
        limit = _word_limit(request)
        if limit is not None and verdict.text and not targets.OUT_OF_VOICE.search(verdict.text):
            return Utterance(targets.shorten(verdict.text, limit), verdict.repairs + 1)
        return f"{where}: {verdict.retry}"


def turn_requests(request: Request) -> list[Request]:
    """The turn requests the engine will make for `request`'s scene, in order (without the transcript)."""

    def person(slot: str) -> Persona:
        return request.learner if slot == LEARNER else request.cast[slot]

    return [
        replace(
            request,
            kind="turn",
            turn=index,
            speaker=person(slot.speaker),
            addressee=person(slot.to),
            beat=request.scene.beats[slot.beat],
            beat_index=slot.beat,
            exchange=slot.exchange,
            transcript=(),
        )
        for index, slot in enumerate(schedule(request.scene))
    ]


def label(request: Request, person: Persona | None) -> str:
    """How a line by `person` is labelled: "I" for the learner, else what the learner calls them."""
    return "I" if _is_learner(request, person) else (person.known_as if person else "I")


def invalid(exc: ValidationError) -> str:
    """What pydantic found wrong with a reply, in one line: not JSON, or the first field that is wrong."""
    errors = exc.errors(include_url=False)
    if not errors:
        return f"the answer does not match the schema ({exc})"
    first = errors[0]
    if first["type"] == "json_invalid":
        return f"the answer is not valid JSON ({first['msg']})"
    where = ".".join(str(part) for part in first["loc"]) or "the answer"
    others = len(errors) - 1
    more = f" (and {others} more {'problem' if others == 1 else 'problems'})" if others else ""
    return f"{where}: {first['msg'].lower()}{more}"


def _is_learner(request: Request, person: Persona | None) -> bool:
    return person is None or person.id == request.learner.id
