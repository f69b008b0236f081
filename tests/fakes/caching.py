"""Fake prompt caches: which input tokens a provider would report as cache writes and reads.

Anthropic caches explicit `cache_control` breakpoints; OpenAI caches any repeated message
prefix automatically. Both key on a hash of the exact prefix, so a single changed byte before
a breakpoint is a miss, as for real. Token counts use the fakes' one-token-per-word rule.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from .replies import content_text, count_tokens

_LOOKBACK = 20


@dataclass
class PromptCache:
    """Prefix cache keyed by the hash of everything up to a `cache_control` breakpoint.

    Render order is tools -> system -> messages, as in the real API. Each breakpoint looks for a
    hit at itself and up to 20 blocks before it; prefixes are stored only at breakpoints, and
    only when at least `min_tokens` long (shorter ones are silently not cached, as for real).
    """

    min_tokens: int = 0
    _seen: set[str] = field(default_factory=set)

    def account(self, request: dict[str, Any]) -> dict[str, int]:
        """Split the prompt's tokens into uncached, cache-written and cache-read, and learn it."""
        segments = _segments(request)
        total = sum(tokens for _, tokens, _ in segments)
        prefix_tokens, hashes, digest, running = [], [], hashlib.sha256(), 0
        for text, tokens, _ in segments:
            digest.update(text.encode())
            running += tokens
            prefix_tokens.append(running)
            hashes.append(digest.copy().hexdigest())
        breakpoints = [i for i, (_, _, cc) in enumerate(segments) if cc is not None]
        usage = {
            "input_tokens": total,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "ephemeral_5m_input_tokens": 0,
            "ephemeral_1h_input_tokens": 0,
        }
        if not breakpoints:
            return usage
        hits = [i for bp in breakpoints for i in range(max(bp - _LOOKBACK, 0), bp + 1) if hashes[i] in self._seen]
        read = prefix_tokens[max(hits)] if hits else 0
        last = breakpoints[-1]
        written = prefix_tokens[last] - read if prefix_tokens[last] >= self.min_tokens else 0
        for i in breakpoints:
            if prefix_tokens[i] >= self.min_tokens:
                self._seen.add(hashes[i])
        ttl = (segments[last][2] or {}).get("ttl", "5m")
        usage.update(
            input_tokens=total - read - written,
            cache_creation_input_tokens=written,
            cache_read_input_tokens=read,
        )
        usage["ephemeral_1h_input_tokens" if ttl == "1h" else "ephemeral_5m_input_tokens"] = written
        return usage


def _segments(request: dict[str, Any]) -> list[tuple[str, int, dict[str, Any] | None]]:
    """(canonical text, fake tokens, cache_control) for each cacheable block, in render order."""
    blocks: list[tuple[str, dict[str, Any]]] = [("tool", t) for t in request.get("tools") or []]
    system = request.get("system")
    if isinstance(system, str):
        blocks.append(("system", {"type": "text", "text": system}))
    elif isinstance(system, list):
        blocks.extend(("system", b) for b in system)
    for message in request.get("messages") or []:
        content = message.get("content")
        items = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
        blocks.extend((message.get("role", "?"), b) for b in items)
    segments = []
    for role, block in blocks:
        body = {k: v for k, v in block.items() if k != "cache_control"}
        words = json.dumps(body) if role == "tool" else str(body.get("text", body.get("thinking", "")))
        segments.append((json.dumps([role, body], sort_keys=True), count_tokens(words), block.get("cache_control")))
    top = request.get("cache_control")
    if top is not None and segments and segments[-1][2] is None:
        segments[-1] = (segments[-1][0], segments[-1][1], top)
    return segments


@dataclass
class PrefixCache:
    """OpenAI-style automatic caching: the longest previously seen message prefix is cached."""

    min_tokens: int = 0
    _seen: set[str] = field(default_factory=set)

    def account(self, messages: list[dict[str, Any]]) -> tuple[int, int]:
        """Return (prompt_tokens, cached_tokens) for `messages`, and remember its prefixes."""
        digest, running, cached = hashlib.sha256(), 0, 0
        for message in messages:
            digest.update(json.dumps(message, sort_keys=True).encode())
            running += count_tokens(content_text(message.get("content")))
            key = digest.copy().hexdigest()
            if key in self._seen:
                cached = running
            elif running >= self.min_tokens:
                self._seen.add(key)
        return running, cached
