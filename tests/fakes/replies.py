"""Reply functions for the fakes: request JSON in, reply text out.

Both providers put the conversation in `messages` as `{role, content}` where content is a string
or a list of typed blocks, so these helpers work for either wire format.
"""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any

Reply = Callable[[dict[str, Any]], str]

_TOKEN = re.compile(r"\S+\s*")


def count_tokens(text: str) -> int:
    """The fakes' tokeniser: one token per whitespace-separated word (deterministic, not real).

    `str.split()` splits on exactly the whitespace `_TOKEN` does (both use `str.isspace`), so this is
    `len(_TOKEN.findall(text))` at a fraction of the CPU: the fake shares the machine with the bench's client.
    """
    return len(text.split())


def first_tokens(text: str, n: int) -> str:
    """The first `n` fake tokens of `text`, keeping their original spacing (trailing space trimmed)."""
    return "".join(_TOKEN.findall(text)[: max(n, 0)]).rstrip()


def content_text(content: Any) -> str:
    """The text of a message `content`: a string, or the joined `text` of its text blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")
    return ""


def last_user_text(request: dict[str, Any]) -> str:
    """The text of the last `user` message in a request, or "" when there is none."""
    for message in reversed(request.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            return content_text(message.get("content"))
    return ""


def echo(request: dict[str, Any]) -> str:
    """Reply with the last user message, prefixed so a test can tell reply from prompt."""
    return f"echo: {last_user_text(request)}"


def scripted(lines: Iterable[str], *, then: Reply | None = None) -> Reply:
    """Reply with `lines` in order, one per request; after that use `then` (default: echo).

    Thread-safe, so it may be shared by a fake serving concurrent requests.
    """
    queue = iter(list(lines))
    lock = threading.Lock()
    fallback = then or echo

    def reply(request: dict[str, Any]) -> str:
        with lock:
            line = next(queue, None)
        return fallback(request) if line is None else line

    return reply


def words(n: int, word: str = "word") -> Reply:
    """Reply with `n` numbered words (`word1 word2 ...`): handy for max_tokens cut-offs."""
    text = " ".join(f"{word}{i}" for i in itertools.islice(itertools.count(1), n))
    return lambda _request: text

def in_character(request: dict[str, Any]) -> str:
    """A short line that fits any stage: the fake's stand-in for a model that follows the prompt."""
    asked = last_user_text(request)
    if "Write only the opening" in asked:
        return "I am little. Today I am at home with my family."
    if "Write only the reflection" in asked:
        return "I felt warm inside afterwards."
    if "Write I's line" in asked:
        return "Okay, I will."
    return "Be kind to others, and they will be kind to you."
