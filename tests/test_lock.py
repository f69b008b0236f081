"""requirements.lock must satisfy pyproject.toml: an edit to the ranges without `make lock` fails here."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")


def pins(text: str) -> dict[str, list[tuple[str, Marker | None]]]:
    """Each locked package's versions, with the marker (Python version, platform) each applies under."""
    found: dict[str, list[tuple[str, Marker | None]]] = {}
    for line in text.splitlines():
        if match := PIN.match(line):
            name, version, marker = match.groups()
            found.setdefault(canonicalize_name(name), []).append((version, Marker(marker) if marker else None))
    return found


def project_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    listed = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    return [Requirement(r) for r in listed]


def unsatisfied(locked: dict[str, list[tuple[str, Marker | None]]], wanted: list[Requirement]) -> list[str]:
    """The requirements that no pin for this Python and platform satisfies, as the lines a person reads."""
    missing = []
    for req in wanted:
        entries = locked.get(canonicalize_name(req.name), [])
        versions = [v for v, marker in entries if marker is None or marker.evaluate()]
        if not any(req.specifier.contains(v, prereleases=True) for v in versions):
            missing.append(f"{req} (locked: {', '.join(versions) or 'nothing'})")
    return missing


def test_the_lock_satisfies_every_range_in_pyproject() -> None:
    locked = pins((ROOT / "requirements.lock").read_text())

    assert unsatisfied(locked, project_requirements()) == [], "run `make lock` and commit requirements.lock"


def test_the_check_sees_a_range_the_lock_does_not_meet() -> None:
    locked = pins('duckdb==2.0.1 \\\nnetworkx==3.6.1 ; python_full_version < "3.0" \\\n')

    assert unsatisfied(locked, [Requirement("duckdb>=3"), Requirement("networkx"), Requirement("rich")]) == [
        "duckdb>=3 (locked: 2.0.1)",
        "networkx (locked: nothing)",
        "rich (locked: nothing)",
    ]


def test_every_pin_is_hashed() -> None:
    lines = (ROOT / "requirements.lock").read_text().splitlines()

    unhashed = [line for i, line in enumerate(lines) if PIN.match(line) and "--hash=" not in lines[i + 1]]
    assert unhashed == []
