"""Message Batches for the fake Anthropic API: state, the `MessageBatch` view, JSONL results.

Every request in a batch is answered when the batch is created (with the same reply function
as live calls, but no latency or faults); the batch only *reports* `in_progress` until the
server's `batch_polls` retrieves have happened, then `ended` with a `results_url`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from .server import new_id


@dataclass
class Batch:
    """One submitted batch; `polls` counts retrieves so far."""

    id: str
    results: list[dict[str, Any]]
    polls: int = 0
    created: datetime = field(default_factory=lambda: datetime.now(UTC))

    def view(self, root_url: str, *, ended: bool) -> dict[str, Any]:
        """The `MessageBatch` object as retrieve/create return it."""
        kinds = [r["result"]["type"] for r in self.results]
        counts = {"processing": 0 if ended else len(kinds), "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        if ended:
            for kind in kinds:
                counts[kind] += 1
        return {
            "id": self.id,
            "type": "message_batch",
            "processing_status": "ended" if ended else "in_progress",
            "request_counts": counts,
            "ended_at": rfc3339(datetime.now(UTC)) if ended else None,
            "created_at": rfc3339(self.created),
            "expires_at": rfc3339(self.created + timedelta(hours=24)),
            "archived_at": None,
            "cancel_initiated_at": None,
            "results_url": f"{root_url}/v1/messages/batches/{self.id}/results" if ended else None,
        }


def batch_result(
    item: dict[str, Any],
    problem_of: Callable[[dict[str, Any]], str | None],
    build_message: Callable[[dict[str, Any]], dict[str, Any]],
) -> dict[str, Any]:
    """The JSONL result line for one batch request: `succeeded` with a message, or `errored`."""
    params = item.get("params") or {}
    problem = problem_of(params)
    if problem:
        failure = {
            "type": "error",
            "error": {"type": "invalid_request_error", "message": problem},
            "request_id": new_id("req_"),
        }
        return {"custom_id": item.get("custom_id"), "result": {"type": "errored", "error": failure}}
    message = build_message(params)
    message["usage"]["service_tier"] = "batch"
    return {"custom_id": item.get("custom_id"), "result": {"type": "succeeded", "message": message}}


def batch_results_body(batch: Batch) -> bytes:
    """The results file: one JSON object per line."""
    return "".join(json.dumps(line) + "\n" for line in batch.results).encode()


def rfc3339(moment: datetime) -> str:
    """A UTC timestamp the way the API writes it (`2026-01-01T00:00:00Z`)."""
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")
