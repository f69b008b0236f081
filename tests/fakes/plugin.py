"""pytest fixtures for the fake providers: `pytest_plugins = ["fakes.plugin"]` to use them.

Kept apart from the package's `__init__` so pytest can assertion-rewrite this module even when
a test module has already imported `fakes` for its classes.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .anthropic_server import AnthropicFake
from .openai_server import OpenAIFake


@pytest.fixture
def anthropic_fake() -> Iterator[AnthropicFake]:
    """A running fake Anthropic API (expects api_key "test-key"); stopped after the test."""
    with AnthropicFake() as fake:
        yield fake


@pytest.fixture
def openai_fake() -> Iterator[OpenAIFake]:
    """A running fake OpenAI-compatible API (expects api_key "test-key"); stopped after the test."""
    with OpenAIFake() as fake:
        yield fake
