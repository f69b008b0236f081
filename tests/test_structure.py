"""The package's shape, measured (issue 15): what the layout promises, checked by walking `sim/` with `ast`.

- no import cycle among `sim` modules, counting imports under `if TYPE_CHECKING:` and inside functions;
- provider SDKs are imported only under `sim/backends/`, LangGraph only under `sim/engine/`;
- no module over 400 lines; the median function at most 10 lines, the 90th percentile at most 30.

Each check is a function over a source tree, so it is also run on small synthetic trees that break it:
a check that cannot fail is a defect.
"""

from __future__ import annotations

import ast
import math
import statistics
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import REPO

SDKS = frozenset({"anthropic", "openai", "httpx", "httpx2", "aiohttp"})
GRAPH_LIBRARIES = frozenset({"langgraph", "langchain_core"})
MAX_MODULE_LINES = 400
MAX_MEDIAN_FUNCTION, MAX_P90_FUNCTION = 10, 30


@dataclass(frozen=True)
class Module:
    """One module of the tree: its dotted name, its file (as `sim/run/loop.py`), and its parsed source."""

    name: str
    file: str
    tree: ast.Module
    lines: int

    @property
    def is_package(self) -> bool:
        return self.file.endswith("/__init__.py")

    def where(self, node: ast.stmt | None = None) -> str:
        return self.file if node is None else f"{self.file}:{node.lineno}"


def modules(package: Path) -> dict[str, Module]:
    """Every module of the package at `package` (a directory holding `__init__.py`), by dotted name."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        text = path.read_text(encoding="utf-8")
        file = path.relative_to(package.parent).as_posix()
        found[name] = Module(name, file, ast.parse(text, file), len(text.splitlines()))
    return found


def imports(module: Module, known: set[str]) -> Iterator[tuple[str, ast.stmt]]:
    """Every module `module` imports, anywhere in its body (type-only and function-level imports too).

    `from a.b import c` is `a.b.c` when that is a module of the tree, else `a.b`; relative imports are resolved.
    """
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, node)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                yield (sub if sub in known else base), node


def _absolute(module: Module, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module.name.split(".")
    if not module.is_package:
        package = package[:-1]
    package = package[: len(package) - (node.level - 1)]
    return ".".join([*package, *([node.module] if node.module else [])])


def import_graph(tree: dict[str, Module]) -> dict[str, set[str]]:
    """module -> the modules of the tree it imports."""
    known = set(tree)
    return {name: {target for target, _ in imports(m, known) if target in known} for name, m in tree.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The shortest cycle (`[a, b, ..., a]`) through each module that is on one, each cycle once."""
    found: dict[frozenset[tuple[str, str]], list[str]] = {}
    for group in _strongly_connected(graph):
        for start in sorted(group):
            if len(group) > 1 or start in graph[start]:
                cycle = _cycle_through(graph, group, start)
                found.setdefault(frozenset(zip(cycle, cycle[1:], strict=False)), cycle)
    return sorted(found.values())


def _strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm, iteratively (a deep package must not hit the recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.add(member)
                        if member == node:
                            break
                    groups.append(group)
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return groups


def _cycle_through(graph: dict[str, set[str]], group: set[str], start: str) -> list[str]:
    """The shortest path from `start` back to itself within `group` (breadth first)."""
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node] & group):
                if child == start:
                    return [*paths[node], start]
                if child not in paths:
                    paths[child] = [*paths[node], child]
                    following.append(child)
        frontier = following
    raise AssertionError(f"{start} is in a strongly connected group but on no cycle")


def misplaced_imports(tree: dict[str, Module], libraries: frozenset[str], home: str) -> list[str]:
    """`file:line imports lib` for every import of one of `libraries` by a module outside the package `home`."""
    known = set(tree)
    return [
        f"{m.where(node)} imports {target}"
        for m in tree.values()
        if not (m.name == home or m.name.startswith(home + "."))
        for target, node in imports(m, known)
        if target.split(".")[0] in libraries
    ]


def long_modules(tree: dict[str, Module]) -> list[str]:
    return [f"{m.where()} has {m.lines} lines" for m in tree.values() if m.lines > MAX_MODULE_LINES]


def function_lengths(tree: dict[str, Module]) -> list[tuple[int, str]]:
    """(lines from `def` to the end of the body, `file:line name`) for every function and method."""
    return sorted(
        (node.end_lineno - node.lineno + 1, f"{m.where(node)} {node.name}")
        for m in tree.values()
        for node in ast.walk(m.tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno is not None
    )


def function_size_problems(lengths: list[tuple[int, str]]) -> list[str]:
    """What is wrong with the distribution of function lengths, naming the longest functions; [] if nothing."""
    sizes = [size for size, _ in lengths]
    median, p90 = statistics.median(sizes), sizes[math.ceil(0.9 * len(sizes)) - 1]  # nearest rank
    problems = []
    if median > MAX_MEDIAN_FUNCTION:
        problems.append(f"median function is {median} lines (at most {MAX_MEDIAN_FUNCTION})")
    if p90 > MAX_P90_FUNCTION:
        longest = ", ".join(f"{where} ({size})" for size, where in reversed(lengths) if size > MAX_P90_FUNCTION)
        problems.append(f"90th percentile function is {p90} lines (at most {MAX_P90_FUNCTION}); longest: {longest}")
    return problems


# The package as it is.


@pytest.fixture(scope="module")
def sim() -> dict[str, Module]:
    return modules(REPO / "sim")


def test_no_import_cycle(sim: dict[str, Module]) -> None:
    found = cycles(import_graph(sim))
    assert not found, "import cycles among sim modules:\n" + "\n".join(" -> ".join(c) for c in found)


def test_provider_sdks_are_imported_only_by_backends(sim: dict[str, Module]) -> None:
    found = misplaced_imports(sim, SDKS, "sim.backends")
    assert not found, "provider SDKs imported outside sim/backends/:\n" + "\n".join(found)


def test_langgraph_is_imported_only_by_the_engine(sim: dict[str, Module]) -> None:
    found = misplaced_imports(sim, GRAPH_LIBRARIES, "sim.engine")
    assert not found, "LangGraph imported outside sim/engine/:\n" + "\n".join(found)


def test_no_module_is_over_400_lines(sim: dict[str, Module]) -> None:
    found = long_modules(sim)
    assert not found, f"modules over {MAX_MODULE_LINES} lines:\n" + "\n".join(found)


def test_functions_are_small(sim: dict[str, Module]) -> None:
    lengths = function_lengths(sim)
    assert len(lengths) > 100  # the walk found the package's functions
    problems = function_size_problems(lengths)
    assert not problems, "\n".join(problems)


# The checks themselves, on trees made to break them.


def write(root: Path, files: dict[str, str]) -> dict[str, Module]:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return modules(root / "sim")


def test_a_cycle_through_type_only_function_level_and_relative_imports_is_found(tmp_path: Path) -> None:
    tree = write(tmp_path, {
        "sim/__init__.py": "",
        "sim/run/__init__.py": "",
        "sim/run/pool.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from sim.run import loop\n",
        "sim/run/loop.py": "def go():\n    from .writer import write\n",
        "sim/run/writer.py": "import sim.run.pool as pool\n",
        "sim/store.py": "from sim import run\n",  # a package's __init__ is a module: no edge to pool
    })  # fmt: skip
    assert cycles(import_graph(tree)) == [["sim.run.loop", "sim.run.writer", "sim.run.pool", "sim.run.loop"]]
    (tmp_path / "sim/run/writer.py").write_text("import sim.store\n")
    assert cycles(import_graph(modules(tmp_path / "sim"))) == []


def test_a_module_importing_itself_through_its_package_is_a_cycle(tmp_path: Path) -> None:
    tree = write(tmp_path, {"sim/__init__.py": "from sim import world\n", "sim/world.py": "from sim import errors\n",
                            "sim/errors.py": "import sim\n"})  # fmt: skip
    assert cycles(import_graph(tree)) == [["sim", "sim.world", "sim.errors", "sim"]]


def test_an_sdk_or_langgraph_outside_its_home_is_named(tmp_path: Path) -> None:
    tree = write(tmp_path, {
        "sim/__init__.py": "",
        "sim/backends/__init__.py": "",
        "sim/backends/providers/anthropic.py": "import anthropic\nimport httpx\n",
        "sim/backends_extra.py": "def f():\n    from openai import OpenAI\n",
        "sim/engine/graph.py": "from langgraph.graph import StateGraph\n",
        "sim/run/loop.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from langchain_core.x import Y\n",
    })  # fmt: skip
    assert misplaced_imports(tree, SDKS, "sim.backends") == ["sim/backends_extra.py:2 imports openai"]
    assert misplaced_imports(tree, GRAPH_LIBRARIES, "sim.engine") == ["sim/run/loop.py:3 imports langchain_core.x"]


def test_long_modules_and_long_functions_are_named(tmp_path: Path) -> None:
    long_body = "".join(f"    x{i} = {i}\n" for i in range(40))
    tree = write(tmp_path, {
        "sim/__init__.py": "",
        "sim/big.py": "\n" * 401,
        "sim/funcs.py": "def small():\n    pass\n\n\ndef huge():\n" + long_body,
    })  # fmt: skip
    assert long_modules(tree) == ["sim/big.py has 401 lines"]
    lengths = function_lengths(tree)
    assert lengths == [(2, "sim/funcs.py:1 small"), (41, "sim/funcs.py:5 huge")]
    assert function_size_problems(lengths) == [
        "median function is 21.5 lines (at most 10)",
        "90th percentile function is 41 lines (at most 30); longest: sim/funcs.py:5 huge (41)",
    ]
    assert function_size_problems([(5, "a"), (9, "b"), (30, "c")]) == []
