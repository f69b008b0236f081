"""The backends `sim` knows: three built in, and any other package registers under an entry point group.

A package adds a backend by naming a `BackendInfo` in its metadata, under the `raising_sim.backends`
group; the entry point's name is the backend's (`--backend NAME`):

    [project.entry-points."raising_sim.backends"]
    echo = "sim_echo:BACKEND"          # BACKEND = BackendInfo(name="echo", description=..., factory=...)

Invariants:
- Nothing is imported to list names: `names()` reads the installed packages' metadata only, and a
  third-party module is imported when its backend is asked for (`get`) or every backend is described
  (`every`); a built-in name never reads the metadata at all, so `sim --help` and `sim run` stay fast.
- A built-in's name cannot be taken by a third party, and one name is one backend.
- Whatever goes wrong loading a third-party backend is one `BackendPluginError` naming its entry point
  and package, never a traceback.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sim.backends import builtin
from sim.backends.options import Setup
from sim.errors import SimError, UsageError, first_line

if TYPE_CHECKING:
    from importlib import metadata

    from sim.backends.base import Backend

GROUP = "raising_sim.backends"
"""The entry point group third-party backends register under."""
BUILT_IN = "built-in"


Factory = Callable[[Setup], "Backend"]
"""Makes a backend from what `sim.backends.create` was given (`Setup`, from `sim.backends.options`)."""


@dataclass(frozen=True)
class BackendInfo:
    """One backend: what `sim backends` shows, what a run needs to know before creating it, and its factory.

    Attributes:
        name: `--backend NAME`; for a third-party backend, also its entry point's name.
        description: One line for `sim backends`.
        factory: Makes the backend from a `Setup`.
        concurrent: A model backend: it writes with `aspeak`, many scenes in flight, and the model options
            (`--model`, `--max-cost` ...) apply to it. False: an offline backend that writes with `speak`.
        needs: What it needs to run, for people: options and environment variables ("--model", "ANTHROPIC_API_KEY").
        preload: The module a run's worker processes import before forking, so each worker starts warm
            (its provider SDK); None means the module that defines `factory`.
        origin: "built-in", or the distribution that registered it (set by the registry, not by the plugin).
    """

    name: str
    description: str
    factory: Factory
    concurrent: bool = False
    needs: tuple[str, ...] = ()
    preload: str | None = None
    origin: str = BUILT_IN

    @property
    def preload_module(self) -> str:
        """The module to import before forking a worker (`preload`, else the factory's module)."""
        return self.preload or self.factory.__module__


class BackendPluginError(SimError):
    """A third-party backend's entry point cannot be loaded, or is not a usable `BackendInfo`."""


BUILTINS: tuple[BackendInfo, ...] = (
    BackendInfo(
        "scripted",
        "offline and deterministic: realises each beat from the scene's line variants; no key, no network",
        builtin.scripted,
        preload="sim.backends",
    ),
    BackendInfo(
        "anthropic",
        "Claude through the official anthropic SDK (prompt caching, --mode script, --batch)",
        builtin.anthropic,
        concurrent=True,
        needs=("--model", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL (optional)"),
        preload="sim.backends.providers.anthropic",
    ),
    BackendInfo(
        "openai-compatible",
        "any chat-completions server (vLLM, SGLang, Ollama, llama.cpp, OpenAI) through the openai SDK",
        builtin.openai_compatible,
        concurrent=True,
        needs=("--model", "--base-url or OPENAI_BASE_URL", "OPENAI_API_KEY (if the server asks)"),
        preload="sim.backends.providers.openai_compat",
    ),
)
BUILTIN_NAMES = tuple(info.name for info in BUILTINS)


def names() -> tuple[str, ...]:
    """Every backend's name, built-ins first, then the third-party ones by name (none is imported)."""
    return BUILTIN_NAMES + tuple(name for name in _by_name() if name not in BUILTIN_NAMES)


def get(name: str) -> BackendInfo:
    """The backend called `name`; a third-party one is imported now, and only it.

    Raises:
        UsageError: no backend has that name.
        BackendPluginError: its entry point cannot be loaded or does not name a `BackendInfo`.
    """
    for info in BUILTINS:
        if info.name == name:
            return info
    found = _by_name().get(name)
    if not found:
        raise UsageError(f"unknown backend {name!r} (expected one of: {', '.join(names())})")
    return _load(*found)


def every() -> list[BackendInfo]:
    """Every backend, built-ins first, each third-party one imported (for `sim backends`).

    Raises:
        BackendPluginError: the first third-party backend that cannot be loaded (or takes a built-in's name).
    """
    return [*BUILTINS, *(_load(*found) for found in _by_name().values())]


def preload(name: str) -> str:
    """The module a run's worker processes should import before forking, for backend `name`."""
    return get(name).preload_module


def _by_name() -> dict[str, list[metadata.EntryPoint]]:
    """The group's entry points by name, sorted, read from the installed packages' metadata (nothing is imported)."""
    from importlib import metadata  # only when a name is not a built-in's: its import costs start-up time

    found: dict[str, list[metadata.EntryPoint]] = {}
    for ep in sorted(metadata.entry_points(group=GROUP), key=lambda ep: ep.name):
        found.setdefault(ep.name, []).append(ep)
    return found


def _load(first: metadata.EntryPoint, *more: metadata.EntryPoint) -> BackendInfo:
    """The `BackendInfo` an entry point names, with its origin; one clear error for anything wrong with it."""
    where = _describe(first)
    if more:
        others = ", ".join(_describe(ep) for ep in more)
        raise BackendPluginError(f"{where} and {others} both register backend {first.name!r}; uninstall one")
    if first.name in BUILTIN_NAMES:
        raise BackendPluginError(f"{where} takes the built-in name {first.name!r}; the package must rename it")
    try:
        info = first.load()
    except Exception as exc:  # whatever a broken plugin raises on import, the user sees one line
        raise BackendPluginError(
            f"{where} could not be loaded ({type(exc).__name__}: {first_line(exc)}); fix or uninstall "
            f"{_dist(first)}"
        ) from exc
    return _checked(first, info, where)


def _checked(ep: metadata.EntryPoint, info: object, where: str) -> BackendInfo:
    if not isinstance(info, BackendInfo):
        raise BackendPluginError(
            f"{where} names a {type(info).__name__}, not a sim.backends.registry.BackendInfo; fix or uninstall "
            f"{_dist(ep)}"
        )
    if info.name != ep.name:
        raise BackendPluginError(f"{where} names backend {info.name!r}, not {ep.name!r}; the two must agree")
    return dataclasses.replace(info, origin=_dist(ep))


def _describe(ep: metadata.EntryPoint) -> str:
    return f"backend entry point {ep.name!r} ({ep.value}, from {_dist(ep)}, group {GROUP})"


def _dist(ep: metadata.EntryPoint) -> str:
    dist = ep.dist
    return f"{dist.name} {dist.version}" if dist is not None else "an unknown package"


__all__ = ["GROUP", "BackendInfo", "BackendPluginError", "Factory", "Setup", "every", "get", "names", "preload"]
