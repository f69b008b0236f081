"""The `sim run` options for model backends, as one decorator that hands the command a `ModelFlags`.

`--backend`'s choices are the registry's (`BackendChoice`), read when the option is used or shown, so
`sim --help` reads no package metadata and `--backend scripted` imports no third-party backend.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from sim.backends import MODES, ModelOptions, registry

F = TypeVar("F", bound=Callable[..., Any])


class BackendChoice(click.Choice[str]):
    """`--backend NAME`: a built-in backend, or one a package registers (`sim.backends.registry`)."""

    def __init__(self) -> None:
        super().__init__(())

    @property
    def choices(self) -> tuple[str, ...]:
        """Every backend's name, read from the registry when asked (third-party names come from package metadata)."""
        return registry.names()

    @choices.setter
    def choices(self, value: tuple[str, ...]) -> None:
        """Ignored: click's `Choice.__init__` sets the choices, but the registry holds them."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        """`value` if a backend has that name; a built-in's is accepted without reading package metadata."""
        if value in registry.BUILTIN_NAMES:
            return str(value)
        return super().convert(value, param, ctx)


@dataclass(frozen=True)
class ModelFlags:
    """What the model options of `sim run` asked for."""

    options: ModelOptions
    concurrency: int


def model_flags(func: F) -> F:
    """Add --base-url/--mode/--concurrency/--max-cost/--batch/--prices/--timeout/--max-retries."""

    @click.option(
        "--base-url", default=None, help="OpenAI-compatible server URL (env OPENAI_BASE_URL), e.g. http://localhost:8000/v1."
    )
    @click.option(
        "--mode",
        type=click.Choice(MODES),
        default="turn",
        show_default=True,
        help="turn: one call per line; script: one structured call writes a whole scene.",
    )
    @click.option(
        "--concurrency",
        type=click.IntRange(1, 1024),
        default=8,
        show_default=True,
        help="Scenes in flight at once with a model backend.",
    )
    @click.option(
        "--max-cost",
        type=click.FloatRange(min=0, min_open=True),
        default=None,
        help="Stop cleanly once this many USD are spent; finished scenes are kept.",
    )
    @click.option("--batch", is_flag=True, help="Anthropic Message Batches (half price), in lock-step rounds.")
    @click.option(
        "--prices",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help="Price table YAML (default: shipped; env SIM_PRICES).",
    )
    @click.option(
        "--timeout", type=click.FloatRange(min=1), default=60.0, show_default=True, help="Seconds per model call."
    )
    @click.option(
        "--max-retries",
        type=click.IntRange(0, 10),
        default=2,
        show_default=True,
        help="Retries per call (the SDK's; honours retry-after).",
    )
    @functools.wraps(func)
    def wrapper(
        *args: Any,
        base_url: str | None,
        mode: str,
        concurrency: int,
        max_cost: float | None,
        batch: bool,
        prices: Path | None,
        timeout: float,
        max_retries: int,
        **kwargs: Any,
    ) -> Any:
        env_prices = os.environ.get("SIM_PRICES")
        options = ModelOptions(
            base_url=base_url,
            mode=mode,
            max_cost=max_cost,
            prices=prices or (Path(env_prices) if env_prices else None),
            timeout=timeout,
            max_retries=max_retries,
            batch=batch,
        )
        return func(*args, model_options=ModelFlags(options, concurrency), **kwargs)

    return wrapper  # type: ignore[return-value]
