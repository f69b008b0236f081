"""`--batch`: Anthropic Message Batches (half price), in lock-step rounds.

Scenes run concurrently and each waits on its next call, so when a round's replies arrive every
scene in flight asks again within milliseconds. `BatchProvider.complete` puts its call into the
open round and waits; a round closes once no call has arrived for `window` seconds, goes out as one
batch, and is polled every `poll` seconds until it ends. Replies are matched by `custom_id`, the
request hash, since results come back in any order. `SIM_BATCH_WINDOW_S` and `SIM_BATCH_POLL_S`
override the two intervals (tests shorten them; nothing else needs to).

Invariants:
- No submitted work is lost: a batch is recorded in the reply cache (`add_batch`) as soon as it is
  submitted, its replies are stored (`put_many`) before any caller sees one, and only then is it
  marked collected. On its first call a provider adopts the batches an earlier (killed) run left
  open: a call whose request is in one waits for that batch instead of being submitted, and paid
  for, again. What such a batch does not answer is submitted anew, since nothing was paid for it.
- One batch entry per request hash: identical calls, in one round or while one is in flight, share it.
- Nothing but a `ProviderError` comes out of `complete()` for a failure of the API, its message one
  line with the key redacted (the inner provider's error mapping, also for batch entries).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, cast

import anthropic
from anthropic.types.messages import (
    MessageBatchErroredResult,
    MessageBatchIndividualResponse,
    MessageBatchSucceededResult,
    batch_create_params,
)

from sim.backends.cache import ReplyCache
from sim.backends.providers.anthropic import API, AnthropicProvider, request_params, to_completion
from sim.backends.providers.common import (
    AuthError,
    Completion,
    ModelCall,
    ProviderError,
    RejectedError,
    TransientError,
    elapsed_ms,
)
from sim.errors import UsageError

WINDOW_S = 0.5
"""Seconds without a new call after which a round is submitted (env `SIM_BATCH_WINDOW_S`)."""
POLL_S = 5.0
"""Seconds between two looks at a submitted batch (env `SIM_BATCH_POLL_S`)."""
WINDOW_ENV = "SIM_BATCH_WINDOW_S"
POLL_ENV = "SIM_BATCH_POLL_S"

_REJECTED = frozenset({"invalid_request_error", "not_found_error", "request_too_large"})
_REFUSED = frozenset({"authentication_error", "permission_error", "billing_error"})
_UNREADABLE = (ValueError, TypeError, AttributeError, KeyError)  # a line of results that is not a result
_DETAIL_CHARS = 300

Outcome = Completion | None
"""What a waiting call gets: its reply, or None when an earlier run's batch did not answer it."""
Entry = tuple[str, Completion] | ProviderError
"""One request's result in a batch: (model, reply), or the error it ended with."""


@dataclass
class _Round:
    """The calls gathered for the next batch, and when the last one arrived (loop time)."""

    calls: dict[str, ModelCall] = field(default_factory=dict)
    last: float = 0.0


class BatchProvider:
    """`Provider` that sends calls through Message Batches, many scenes' calls per batch."""

    name = "anthropic"  # the per-call provider's name, so request hashes and cached replies are shared

    def __init__(
        self, inner: AnthropicProvider, cache: ReplyCache, *, window: float = WINDOW_S, poll: float = POLL_S
    ) -> None:
        """Wrap `inner`; nothing is sent, and the cache is not read, until the first `complete`.

        Args:
            inner: The per-call provider, whose SDK client and error mapping batches use.
            cache: The reply cache that records submitted batches and stores their replies.
            window: Seconds without a new call after which a round is submitted.
            poll: Seconds between two retrieves of a batch that has not ended.
        """
        self._inner, self._cache = inner, cache
        self._window, self._poll = window, poll
        self._waiting: dict[str, asyncio.Future[Outcome]] = {}
        self._round: _Round | None = None
        self._tasks: set[asyncio.Task[Any]] = set()  # rounds and collections: cancelled on aclose
        self._submitting: set[asyncio.Task[str]] = set()  # batch creations: awaited on aclose, never cancelled
        self._adopted = False

    @classmethod
    def from_env(cls, inner: AnthropicProvider, cache: ReplyCache, environ: Mapping[str, str]) -> BatchProvider:
        """A provider whose window and poll interval may be shortened by `SIM_BATCH_WINDOW_S`/`SIM_BATCH_POLL_S`.

        Raises:
            UsageError: one of them is set but is not a number of seconds above 0.
        """
        return cls(
            inner, cache, window=_seconds(environ, WINDOW_ENV, WINDOW_S), poll=_seconds(environ, POLL_ENV, POLL_S)
        )

    async def complete(self, call: ModelCall) -> Completion:
        """Send `call` in the next round (or wait for the batch that already holds it); returns its reply."""
        if not self._adopted:
            self._adopt()
        key = call.key(self.name)
        while True:
            future = self._waiting.get(key) or self._enqueue(key, call)
            outcome = await asyncio.shield(future)  # a cancelled scene must not cancel a shared entry
            if outcome is not None:
                return outcome

    async def aclose(self) -> None:
        """Stop polling (submitted batches stay recorded for the next run), then close the SDK client."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._submitting, return_exceptions=True)
        for future in self._waiting.values():
            future.cancel()
        self._waiting.clear()
        await self._inner.aclose()

    # ----- rounds ---------------------------------------------------------------------------

    def _enqueue(self, key: str, call: ModelCall) -> asyncio.Future[Outcome]:
        loop = asyncio.get_running_loop()
        if self._round is None:
            self._round = _Round()
            self._spawn(self._run_round(self._round))
        self._round.calls[key] = call
        self._round.last = loop.time()
        return self._future(key)

    async def _run_round(self, round_: _Round) -> None:
        loop = asyncio.get_running_loop()
        while (wait := round_.last + self._window - loop.time()) > 0:
            await asyncio.sleep(wait)
        self._round = None  # no await since the last arrival was checked: no call can be left out
        futures = {key: self._waiting[key] for key in round_.calls}
        models = {key: call.model for key, call in round_.calls.items()}
        started = time.perf_counter()
        submission = asyncio.get_running_loop().create_task(self._submit(round_.calls))
        self._submitting.add(submission)
        submission.add_done_callback(self._submitting.discard)
        try:
            # Shielded: a run stopped now still records a batch the API has accepted (aclose waits for it).
            batch_id = await asyncio.shield(submission)
        except ProviderError as err:
            self._settle(futures, {}, fresh=True, missing=err)
            return
        except Exception as exc:  # the cache could not record the batch: fail these calls with its error
            _fail(futures, exc)
            raise
        await self._collect(batch_id, futures, models, fresh=True, started=started)

    async def _submit(self, calls: Mapping[str, ModelCall]) -> str:
        """Create the batch and record it in the cache at once; returns its id."""
        items = [{"custom_id": key, "params": request_params(call)} for key, call in calls.items()]
        try:
            batch = await self._inner.client.messages.batches.create(
                requests=cast("list[batch_create_params.Request]", items)
            )
        except anthropic.AnthropicError as err:
            raise self._inner.error_for(err) from err
        models = ",".join(sorted({call.model for call in calls.values()}))
        self._cache.add_batch(batch.id, self.name, models, list(calls))
        return batch.id

    # ----- collecting -----------------------------------------------------------------------

    def _adopt(self) -> None:
        """Wait on the batches an earlier run submitted and never collected, so their replies are not paid twice."""
        self._adopted = True
        for batch_id, keys in self._cache.open_batches(self.name):
            futures = {key: self._future(key) for key in keys if key not in self._waiting}
            self._spawn(self._collect(batch_id, futures, {}, fresh=False, started=time.perf_counter()))

    async def _collect(
        self,
        batch_id: str,
        futures: Mapping[str, asyncio.Future[Outcome]],
        models: Mapping[str, str],
        *,
        fresh: bool,
        started: float,
    ) -> None:
        """Poll `batch_id` until it ends, store its replies, mark it collected, then answer the waiting calls."""
        try:
            await self._gather(batch_id, futures, models, fresh=fresh, started=started)
        except Exception as exc:  # the cache could not store the replies: fail these calls with its error
            _fail(futures, exc)
            raise

    async def _gather(
        self,
        batch_id: str,
        futures: Mapping[str, asyncio.Future[Outcome]],
        models: Mapping[str, str],
        *,
        fresh: bool,
        started: float,
    ) -> None:
        try:
            await self._until_ended(batch_id, wait_first=fresh)
            results = await self._results(batch_id)
        except RejectedError as err:
            if not fresh:  # the API no longer knows the batch: give it up, and submit its calls anew
                self._cache.mark_collected(batch_id)
            self._settle(futures, {}, fresh=fresh, missing=err)
            return
        except ProviderError as err:  # the batch stays recorded: a later run collects it
            self._settle(futures, {}, fresh=fresh, missing=err)
            return
        entries = {key: self._entry(batch_id, result, models.get(key), started) for key, result in results.items()}
        replies = [(key, self.name, entry[0], entry[1]) for key, entry in entries.items() if isinstance(entry, tuple)]
        self._cache.put_many(replies)
        self._cache.mark_collected(batch_id)
        missing = self._inner.failure(TransientError, f"{API} sent no result for the request in batch {batch_id}")
        self._settle(futures, entries, fresh=fresh, missing=missing)

    async def _until_ended(self, batch_id: str, *, wait_first: bool) -> None:
        if wait_first:
            await asyncio.sleep(self._poll)
        while True:
            try:
                batch = await self._inner.client.messages.batches.retrieve(batch_id)
            except anthropic.AnthropicError as err:
                raise self._inner.error_for(err) from err
            if batch.processing_status == "ended":
                return
            await asyncio.sleep(self._poll)

    async def _results(self, batch_id: str) -> dict[str, MessageBatchIndividualResponse]:
        """The batch's results by custom id (the results file is in no particular order)."""
        try:
            decoder = await self._inner.client.messages.batches.results(batch_id)
            return {line.custom_id: line async for line in decoder}
        except anthropic.AnthropicError as err:
            raise self._inner.error_for(err) from err
        except _UNREADABLE as err:
            detail = f"{type(err).__name__}: {err}"[:_DETAIL_CHARS]
            reason = f"{API} sent unreadable results for batch {batch_id} ({detail})"
            raise self._inner.failure(TransientError, reason) from err
        except Exception as err:
            # Only the transport runs here besides the SDK's decoder: its error, when the SDK lets one through
            # unwrapped, is a broken download, named as the `APIConnectionError` the SDK wraps it in elsewhere.
            raise self._inner.connection_error(err) from err

    def _entry(self, batch_id: str, line: MessageBatchIndividualResponse, model: str | None, started: float) -> Entry:
        """One result line as (model, reply) or the error it stands for, as the per-call path would raise it."""
        result = line.result
        if isinstance(result, MessageBatchSucceededResult):
            return self._succeeded(batch_id, result, model, started)
        if isinstance(result, MessageBatchErroredResult):
            return self._errored(batch_id, result)
        if getattr(result, "type", None) == "canceled":
            return self._inner.failure(TransientError, f"{API} canceled the request in batch {batch_id} before it ran")
        if getattr(result, "type", None) == "expired":
            reason = f"{API} let the request in batch {batch_id} expire (a batch must end within 24 hours)"
            return self._inner.failure(TransientError, reason)
        kind = str(getattr(result, "type", "?"))[:40]
        return self._inner.failure(TransientError, f"{API} sent a result of unknown type {kind!r} in batch {batch_id}")

    def _succeeded(
        self, batch_id: str, result: MessageBatchSucceededResult, model: str | None, started: float
    ) -> Entry:
        try:
            completion = to_completion(result.message.to_dict(), retries=0, request_id=None)
        except _UNREADABLE as err:
            detail = f"{type(err).__name__}: {err}"[:_DETAIL_CHARS]
            reason = f"{API} sent an unreadable result in batch {batch_id} ({detail})"
            return self._inner.failure(TransientError, reason)
        extra = {"batch": True, "batch_id": batch_id}
        return model or result.message.model, replace(completion, latency_ms=elapsed_ms(started), extra=extra)

    def _errored(self, batch_id: str, result: MessageBatchErroredResult) -> ProviderError:
        """The error of an `errored` entry: rejected, refused (stops the run) or transient, as its type says."""
        kind = str(getattr(result.error.error, "type", "") or "error")
        said = f"{kind}: {getattr(result.error.error, 'message', '')}"[:_DETAIL_CHARS]
        if kind in _REJECTED:
            return self._inner.failure(RejectedError, f"{API} rejected the request in batch {batch_id} ({said})")
        if kind in _REFUSED:
            reason = f"{API} refused the request in batch {batch_id} ({said}); check ANTHROPIC_API_KEY and your plan"
            return self._inner.failure(AuthError, reason)
        return self._inner.failure(TransientError, f"{API} failed the request in batch {batch_id} ({said})")

    def _settle(
        self,
        futures: Mapping[str, asyncio.Future[Outcome]],
        entries: Mapping[str, Entry],
        *,
        fresh: bool,
        missing: ProviderError,
    ) -> None:
        """Answer each waiting call; an earlier run's batch answers only with replies (None: submit anew)."""
        for key, future in futures.items():
            if self._waiting.get(key) is future:
                del self._waiting[key]
            if future.done():
                continue
            entry = entries.get(key, missing)
            if isinstance(entry, tuple):
                future.set_result(entry[1])
            elif fresh:
                future.set_exception(entry)
            else:
                future.set_result(None)

    # ----- plumbing -------------------------------------------------------------------------

    def _future(self, key: str) -> asyncio.Future[Outcome]:
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieved)
        self._waiting[key] = future
        return future

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` as a task this provider keeps (the loop holds tasks weakly) and cancels on `aclose`."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(_done(self._tasks))


def _done(tasks: set[asyncio.Task[Any]]) -> Any:
    """A callback that forgets a finished task, its failure already passed to the calls that waited on it."""

    def forget(task: asyncio.Task[Any]) -> None:
        tasks.discard(task)
        if not task.cancelled():
            task.exception()

    return forget


def _fail(futures: Mapping[str, asyncio.Future[Outcome]], exc: BaseException) -> None:
    for future in futures.values():
        if not future.done():
            future.set_exception(exc)


def _retrieved(future: asyncio.Future[Outcome]) -> None:
    """Mark an error as seen: every waiter gets it through its shield, and an unwaited one is not a leak."""
    if not future.cancelled():
        future.exception()


def _seconds(environ: Mapping[str, str], name: str, default: float) -> float:
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise UsageError(f"{name} must be a number of seconds above 0 (got {text!r}); unset it to use the default")
    return value


__all__ = ["POLL_ENV", "POLL_S", "WINDOW_ENV", "WINDOW_S", "BatchProvider"]
