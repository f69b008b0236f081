"""The model backend: one call per utterance, through the layers (reply cache, budget, prices) around a provider.

Each utterance is one call: the speaker's cached prefix, the learner's life and the scene so far
(`sim.backends.prompts`). The offline scripted backend realises the beat first, and its line is
given to the model as an example of the beat's spirit, so a model scene follows the same outline.

Invariants:
- Every call goes through the `provider` stack (`sim.backends.layers`): the durable reply cache
  first, so a command run again, or a scene interrupted at turn 7, replays what was paid for; then the
  budget, checked before every paid call (a run passes `--max-cost` by at most one call per scene in
  flight); then the price table.
- Every call, paid, replayed or failed, becomes one `llm_calls` row (`_row`); a failure carries the
  rows of its unfinished utterance up (`SceneStopped.calls`), so nothing paid for goes unrecorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sim.backends import prompts, targets
from sim.backends.base import Request, Utterance
from sim.backends.layers import Caller
from sim.backends.providers.common import Completion, Message, ModelCall, ProviderError, SceneStopped
from sim.backends.scripted import ScriptedBackend
from sim.learner.state import LearnerState
from sim.store.rows import LlmCallRow

MAX_TOKENS = {"opening": 300, "reflection": 300, "turn": 400}
"""Output budget per call; learner lines are held to their stage's word limit by `targets`, not here."""
KEPT_SYSTEMS = 1024
"""Rendered system blocks kept (a few per scene in flight); all are dropped when this many are kept."""


class TargetsMissed(SceneStopped):
    """The model's line missed the stage's targets twice."""


@dataclass
class ModelBackend:
    """Utterances written by a model behind `provider`, a provider with its layers around it."""

    provider: Caller
    model: str
    concurrent: bool = True
    _examples: ScriptedBackend = field(default_factory=ScriptedBackend)
    _systems: dict[tuple[str, str], tuple[LearnerState, tuple[str, str]]] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        """The provider's name, which is the backend's: anthropic, openai-compatible or a plugin's."""
        return self.provider.name

    def speak(self, request: Request, *, seed: int) -> Utterance:
        """Model backends only write asynchronously (`aspeak`)."""
        raise TypeError("a model backend writes with aspeak(); the run loop awaits it")

    async def aspeak(self, request: Request, *, seed: int) -> Utterance:
        """Write one utterance; regenerate once if it misses the targets, then repair or fail the scene."""
        example = self._examples.speak(request, seed=seed).text
        system = self._system(request)
        messages = [Message("user", prompts.user_message(request, example))]
        rows: list[LlmCallRow] = []
        repairs = 0
        verdict = targets.Verdict("")
        for attempt in range(2):
            purpose = request.kind if attempt == 0 else "regenerate"
            call = ModelCall(
                self.model, system, tuple(messages), MAX_TOKENS[request.kind], purpose=purpose,
                salt=f"seed={seed};variation={request.variation}",
            )  # fmt: skip
            try:
                completion, row = await self._complete(call, request)
            except SceneStopped as exc:
                exc.calls[:0] = rows
                raise
            rows.append(row)
            verdict = self._check(request, completion)
            repairs += verdict.repairs + attempt
            if verdict.retry is None:
                return Utterance(verdict.text, repairs, tuple(rows))
            messages += [
                Message("assistant", completion.text or "(nothing)"),
                Message("user", prompts.regenerate(verdict.retry)),
            ]
        limit = _word_limit(request)
        if limit is not None and verdict.text and not targets.OUT_OF_VOICE.search(verdict.text):
            return Utterance(targets.shorten(verdict.text, limit), repairs + 1, tuple(rows))
        missed = TargetsMissed(f"{_what(request)}: {verdict.retry}, twice")
        missed.calls = rows
        raise missed

    def _system(self, request: Request) -> tuple[str, str]:
        """The call's system blocks, rendered once per speaker and scene: within a scene they do not change.

        A scene is told apart by its key and the life it was given (the same object for all its requests).
        """
        speaker = request.speaker or request.learner
        key = (request.scene_key, speaker.id)
        kept = self._systems.get(key)
        if kept is not None and kept[0] is request.life:
            return kept[1]
        if len(self._systems) >= KEPT_SYSTEMS:
            self._systems.clear()
        blocks = prompts.system_blocks(request)
        self._systems[key] = (request.life, blocks)
        return blocks

    async def aclose(self) -> None:
        """Close the provider's client."""
        await self.provider.aclose()

    def close(self) -> None:
        """Close the layers' files (the reply cache)."""
        self.provider.close()

    async def _complete(self, call: ModelCall, request: Request) -> tuple[Completion, LlmCallRow]:
        """The reply to `call` through the layers, with its `llm_calls` row; a failed call's row rides on the error."""
        key = call.key(self.provider.name)
        try:
            reply = await self.provider.call(call, key)
        except ProviderError as exc:
            failed = Completion("", retries=exc.retries)
            exc.calls.append(self._row(call, request, key, failed, source="api", cost=0.0, error=exc.reason))
            raise
        return reply.completion, self._row(call, request, key, reply.completion, source=reply.source, cost=reply.cost)

    def _check(self, request: Request, completion: Completion) -> targets.Verdict:
        speaker = request.speaker or request.learner
        own = "I" if speaker.id == request.learner.id else speaker.known_as
        labels = ["I", request.learner.first_name, *(p.known_as for p in request.cast.values())]
        return targets.check(
            completion.text,
            labels=labels,
            own_label=own,
            max_words=_word_limit(request),
            cut=completion.stop_reason == "max_tokens",
        )

    def _row(
        self,
        call: ModelCall,
        request: Request,
        key: str,
        completion: Completion,
        *,
        source: str,
        cost: float | None,
        error: str | None = None,
    ) -> LlmCallRow:
        return LlmCallRow(
            scene_key=request.scene_key,
            stage=request.stage.id,
            purpose=call.purpose,
            turn_index=request.turn if request.kind == "turn" else None,
            backend=self.provider.name,
            model=self.model,
            request_hash=key,
            input_tokens=completion.input_tokens,
            output_tokens=completion.output_tokens,
            cache_read_tokens=completion.cache_read_tokens,
            cache_write_tokens=completion.cache_write_tokens,
            latency_ms=completion.latency_ms,
            retries=completion.retries,
            stop_reason=None if error else f"{completion.stop_reason}:{completion.raw_stop_reason}",
            cost_usd=cost,
            source=source,
            status="failed" if error else "ok",
            error=error,
            created_at=datetime.now(UTC).replace(tzinfo=None),
        )


def _word_limit(request: Request) -> int | None:
    speaker = request.speaker
    if request.kind == "turn" and speaker is not None and speaker.id == request.learner.id:
        return request.stage.language.max_words_per_turn
    return None


def _what(request: Request) -> str:
    return f"turn {request.turn}" if request.kind == "turn" else f"the {request.kind}"
