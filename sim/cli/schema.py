"""`sim schema`: JSON Schema of the YAML formats, for editors (yaml-language-server, VS Code).

Invariant: the schema is generated from the pydantic models the loader validates with, so an editor and
`sim ... validate` accept the same files; `KINDS` names them without importing the models (a test checks).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from pydantic import BaseModel

KINDS = ("pack", "persona", "stages", "values")
# Keys the loader fills in itself: a file may leave them out.
IMPLIED = {"persona": ("id", "generated"), "pack": ("id",)}


def file_schema(name: str) -> dict[str, Any]:
    """The JSON Schema of one file format, as a person writes it."""
    schema = models()[name].model_json_schema(by_alias=True, mode="validation")
    for key in IMPLIED.get(name, ()):
        schema["required"] = [r for r in schema.get("required", []) if r != key]
        if key == "generated":
            schema["properties"].pop(key, None)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = f"raising-sim {name} file"
    return schema


def models() -> dict[str, type[BaseModel]]:
    """The model behind each kind of file (imported here: `sim --help` loads no model)."""
    from sim.world.personas import Persona
    from sim.world.scenarios import Pack
    from sim.world.stages import StageList
    from sim.world.values import ValueList

    return {"persona": Persona, "pack": Pack, "stages": StageList, "values": ValueList}


@click.command()
@click.argument("kind", required=False, type=click.Choice(KINDS))
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    help="Write <kind>.schema.json files into this directory instead of printing.",
)
def schema(kind: str | None, out: Path | None) -> None:
    """Print the JSON Schema of a YAML format (persona, pack, stages, values), or write them all with --out."""
    kinds = [kind] if kind else list(KINDS)
    if out is None:
        data = file_schema(kinds[0]) if kind else {k: file_schema(k) for k in kinds}
        click.echo(json.dumps(data, indent=2))
        return
    out.mkdir(parents=True, exist_ok=True)
    for k in kinds:
        (out / f"{k}.schema.json").write_text(json.dumps(file_schema(k), indent=2) + "\n", encoding="utf-8")
    click.echo(f"wrote {len(kinds)} schema file(s) to {out}")
