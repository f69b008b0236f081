"""`sim backends`: every backend `sim run --backend` takes, built in or registered by another package.

Invariant: the list is the registry's (`sim.backends.registry.every()`), so it shows exactly the names
`--backend` accepts; a third-party backend that cannot be loaded is one error line naming its entry point.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from sim.cli.options import console, json_option, print_json

if TYPE_CHECKING:
    from sim.backends.registry import BackendInfo


@click.command()
@json_option
def backends(as_json: bool) -> None:
    """List the backends `sim run --backend NAME` takes: what each is, what it needs, where it came from.

    Other packages add backends under the entry point group raising_sim.backends (see the README).
    """
    from sim.backends.registry import GROUP, every

    found = every()
    if as_json:
        print_json([_as_json(info) for info in found])
        return
    out = console()
    for info in found:
        out.print(f"{info.name} ({_origin(info)}, {_kind(info)})", markup=False)
        out.print(f"  {info.description}", markup=False)
        out.print(f"  needs: {', '.join(info.needs) or 'nothing'}", markup=False)
    out.print(f"use one with: sim run PACK... --backend NAME; packages add backends under the entry point group "
              f"{GROUP}", markup=False)  # fmt: skip


def _as_json(info: BackendInfo) -> dict[str, Any]:
    """One backend as `sim backends --json` prints it (its shape is in the README)."""
    return {
        "name": info.name,
        "description": info.description,
        "concurrent": info.concurrent,
        "needs": list(info.needs),
        "origin": info.origin,
    }


def _origin(info: BackendInfo) -> str:
    return info.origin if info.origin == "built-in" else f"from {info.origin}"


def _kind(info: BackendInfo) -> str:
    return "concurrent: many scenes in flight" if info.concurrent else "one scene at a time"
