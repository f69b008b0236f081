"""Fake LLM provider servers on 127.0.0.1 that speak the providers' real wire formats.

Use them as context managers (`with AnthropicFake() as fake: ...`) or through the pytest
fixtures `anthropic_fake` and `openai_fake` from the `fakes.plugin` plugin: add
`pytest_plugins = ["fakes.plugin"]` to a test module (or to the top-level conftest). Each
fixture yields a running server; pass `fake.base_url` to the SDK and set `fake.reply`,
`fake.latency` or `fake.faults` to script it. Nothing here touches the network beyond 127.0.0.1.
"""

from __future__ import annotations

from .anthropic_server import AnthropicFake
from .faults import TRANSIENT, Fault, Faults
from .openai_server import OpenAIFake
from .replies import count_tokens, echo, in_character, last_user_text, scripted, words
from .server import REDACTED, FakeServer, RecordedRequest

__all__ = [
    "REDACTED",
    "TRANSIENT",
    "AnthropicFake",
    "FakeServer",
    "Fault",
    "Faults",
    "OpenAIFake",
    "RecordedRequest",
    "count_tokens",
    "echo",
    "in_character",
    "last_user_text",
    "scripted",
    "words",
]
