"""Drawing the persona graph: DOT text (pydot) or a PNG/SVG picture (matplotlib), chosen by extension.

Invariant: drawing reads the derived graph only; the layout is seeded so the same world draws the same.
"""

from __future__ import annotations

from pathlib import Path

import networkx as nx

from sim.errors import UsageError

FORMATS = (".png", ".svg", ".dot", ".gv")
ROLE_COLOURS = {
    "learner": "#f4b942",
    "family": "#e07a5f",
    "teacher": "#3d85c6",
    "peer": "#81b29a",
    "community": "#9b8fc7",
}


def declared_only(graph: nx.MultiDiGraph) -> nx.MultiDiGraph:
    """The graph with only the relationships people wrote (no derived inverses), for drawing."""
    out = nx.MultiDiGraph()
    out.add_nodes_from(graph.nodes(data=True))
    out.add_edges_from((u, v, k, d) for u, v, k, d in graph.edges(keys=True, data=True) if d["declared"])
    return out


def to_dot(graph: nx.MultiDiGraph) -> str:
    """The declared graph as Graphviz DOT text."""
    plain = nx.MultiDiGraph()
    for node, data in sorted(graph.nodes(data=True)):
        person = data["persona"]
        plain.add_node(
            node,
            label=f'"{person.known_as}\\n({node})"',
            style="filled",
            fillcolor=f'"{ROLE_COLOURS[person.role]}"',
            shape="box",
        )
    for u, v, k, d in sorted(declared_only(graph).edges(keys=True, data=True)):
        plain.add_edge(u, v, key=k, label=f'"{k} {d["weight"]:.1f}"', penwidth=f"{0.5 + 2.5 * d['weight']:.2f}")
    return str(nx.nx_pydot.to_pydot(plain).to_string())


def draw(graph: nx.MultiDiGraph, out: Path) -> None:
    """Write the graph to `out`; the extension picks DOT, PNG or SVG."""
    suffix = out.suffix.lower()
    if suffix not in FORMATS:
        raise UsageError(f"cannot draw to {out.name!r}: unknown extension (use one of {', '.join(FORMATS)})")
    if not out.parent.is_dir():
        raise UsageError(f"cannot write {out}: directory {out.parent} does not exist (create it first)")
    if suffix in {".dot", ".gv"}:
        out.write_text(to_dot(graph) + "\n", encoding="utf-8")
        return
    _draw_picture(declared_only(graph), out)


def _draw_picture(graph: nx.MultiDiGraph, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    # matplotlib names SVG clip paths and glyphs with a random salt unless one is set; a fixed salt makes the
    # ids depend on the drawing alone, so the same world draws the same bytes.
    with matplotlib.rc_context({"svg.hashsalt": "raising-sim"}):
        _plot(graph, out)


def _plot(graph: nx.MultiDiGraph, out: Path) -> None:
    import matplotlib.pyplot as plt

    simple = nx.DiGraph(graph)
    pos = nx.spring_layout(simple, seed=7, k=1.6 / max(len(simple), 1) ** 0.5)
    fig, ax = plt.subplots(figsize=(14, 10))
    colours = [ROLE_COLOURS[graph.nodes[n]["persona"].role] for n in simple]
    widths = [0.5 + 2.5 * d["weight"] for _, _, d in simple.edges(data=True)]
    nx.draw_networkx_nodes(simple, pos, node_color=colours, node_size=1500, ax=ax)
    nx.draw_networkx_labels(simple, pos, {n: graph.nodes[n]["persona"].known_as for n in simple}, font_size=8, ax=ax)
    nx.draw_networkx_edges(simple, pos, width=widths, alpha=0.5, arrows=True, ax=ax, node_size=1500)
    labels = {(u, v): "/".join(sorted(graph.get_edge_data(u, v))) for u, v in simple.edges}
    nx.draw_networkx_edge_labels(simple, pos, labels, font_size=6, ax=ax)
    ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(out, format=out.suffix.lower().lstrip("."), metadata=_stable_metadata(out))
    plt.close(fig)


def _stable_metadata(out: Path) -> dict[str, str | None]:
    """Leave out dates and versions so the same graph writes the same bytes."""
    if out.suffix.lower() == ".svg":
        return {"Date": None, "Creator": None}
    return {"Software": None}
