"""The traced step as a computation graph: nodes with forward values, edges with gradients.

``step_graph(trace)`` lays the graph out in columns (inputs, then each layer's pre-activations z and
ReLU activations h, the output, the loss); ``to_svg`` writes it as plain SVG (no dependency) and
``to_png`` draws the same layout with matplotlib (the ``plot`` extra). A node shows its symbol, its
forward value and dL/d(node); a weight edge shows its weight and dL/dweight; dead ReLU units (z <= 0
for every sample) are drawn grey with a dashed red outline, and the edges they block grey.
With a batch, node values are those of sample 0 and gradients are batch means.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

import numpy as np

from ._format import fmt as _fmt

COL_WIDTH, ROW_HEIGHT, NODE_W, NODE_H, MARGIN = 230, 86, 128, 50, 40
MAX_LABELLED_EDGES = 8  # past this many weight edges, labels would cover each other


@dataclass
class Node:
    key: str
    symbol: str
    value: str
    grad: str
    col: int
    row: int
    kind: str          # input, z, h, output, loss
    dead: bool = False


@dataclass
class Edge:
    src: str
    dst: str
    label: str
    kind: str          # weight, skip, relu, loss
    dead: bool = False


def fmt(value) -> str:
    """4 significant digits: the drawing's boxes are small (the table has every digit)."""
    return _fmt(value, 4) if np.ndim(value) == 0 else _fmt(value)


def _unit(prefix: str, k: int, u: int, width: int) -> str:
    return f"{prefix}{k}" + (f"[{u}]" if width > 1 else "")


def step_graph(trace) -> tuple[list[Node], list[Edge]]:
    """The nodes and edges of ``trace``'s step (see the module docstring)."""
    net = trace.net
    nodes: dict[str, Node] = {}
    edges: list[Edge] = []
    first = lambda a: a[0] if np.ndim(a) else a
    for u in range(net.n_inputs):
        nodes[f"h-1.{u}"] = Node(f"h-1.{u}", "x" + (f"[{u}]" if net.n_inputs > 1 else ""),
                                 fmt(first(trace.x[:, u])), "", 0, u, "input")
    col = 1
    last = len(net.layers) - 1
    dead = trace.dead_units
    for k, layer in enumerate(net.layers):
        width = layer.units
        for u in range(width):
            is_dead = u in dead.get(k, [])
            symbol = _unit("z", k, u, width) if k < last else "yhat" + (f"[{u}]" if width > 1 else "")
            grad = trace.dz[k][:, u].mean() if k < last else trace.dh[-1][:, u].mean()
            nodes[f"z{k}.{u}"] = Node(f"z{k}.{u}", symbol, fmt(first(trace.z[k][:, u])),
                                      f"dL/d{symbol} = {fmt(grad)}", col, u, "z" if k < last else "output", is_dead)
            if layer.activation == "relu":
                hs = _unit("h", k, u, width)
                nodes[f"h{k}.{u}"] = Node(f"h{k}.{u}", hs, fmt(first(trace.h[k][:, u])),
                                          f"dL/d{hs} = {fmt(trace.dh[k][:, u].mean())}", col + 1, u, "h", is_dead)
                edges.append(Edge(f"z{k}.{u}", f"h{k}.{u}", "dead: relu' = 0" if is_dead else "relu", "relu",
                                  is_dead))
        _weight_edges(trace, k, edges)
        col += 2 if layer.activation == "relu" else 1
    nodes["L"] = Node("L", "L", fmt(trace.loss), f"{trace.loss_name} loss", col, 0, "loss")
    for u in range(net.n_outputs):
        edges.append(Edge(f"z{last}.{u}", "L", "", "loss"))
    # an edge out of a dead unit carries nothing: relu'(z) = 0 blocks its gradient
    src_of = {key: node for key, node in nodes.items()}
    for e in edges:
        if e.kind in ("weight", "skip") and src_of[e.src].dead:
            e.dead = True
    if sum(e.kind in ("weight", "skip") for e in edges) > MAX_LABELLED_EDGES:
        for e in edges:
            e.label = ""
    return list(nodes.values()), edges


def _weight_edges(trace, k: int, edges: list[Edge]) -> None:
    """The edges into layer k: its weight from layer k-1 and every skip into it."""
    net = trace.net
    sources = [(f"W{k}", f"layers.{k}.weight", k - 1, False, "weight")]
    sources += [(f"S{i}", f"skips.{i}.weight", s.src, s.identity, "skip")
                for i, s in enumerate(net.skips) if s.dst == k]
    width = net.layers[k].units
    for sym, name, src, identity, kind in sources:
        src_width = net.n_inputs if src < 0 else net.layers[src].units
        for o in range(width):
            for q in range(src_width):
                if identity:
                    if q == o:
                        edges.append(Edge(f"h{src}.{q}", f"z{k}.{o}", "identity skip", kind))
                    continue
                W, G = trace.params[name], trace.grads[name]
                index = "" if W.shape == (1, 1) else f"[{o},{q}]"
                edges.append(Edge(f"h{src}.{q}", f"z{k}.{o}",
                                  f"{sym}{index} = {fmt(W[o, q])}\ndL/d{sym}{index} = {fmt(G[o, q])}", kind))


# ------------------------------------------------------------------------------------------ geometry
def _centre(node: Node, rows: int) -> tuple[float, float]:
    return MARGIN + node.col * COL_WIDTH + NODE_W / 2, MARGIN + 40 + node.row * ROW_HEIGHT + NODE_H / 2 + \
        (rows - 1) * ROW_HEIGHT / 2 * (node.kind == "loss")


def _size(nodes: list[Node]) -> tuple[int, int, int]:
    rows = max(n.row for n in nodes) + 1
    cols = max(n.col for n in nodes) + 1
    return MARGIN * 2 + (cols - 1) * COL_WIDTH + NODE_W, MARGIN + 40 + rows * ROW_HEIGHT, rows


def _edge_path(a, b, kind: str, rows: int):
    """Start, control point and end of an edge: skips arc above the columns they jump."""
    (x1, y1), (x2, y2) = a, b
    start, end = (x1 + NODE_W / 2, y1), (x2 - NODE_W / 2, y2)
    if kind == "skip":
        top = MARGIN + 12
        return (x1, y1 - NODE_H / 2), ((x1 + x2) / 2, top - 30), (x2, y2 - NODE_H / 2)
    return start, ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2), end


FILL = {"input": "#eaf2f8", "z": "#fdfefe", "h": "#eafaf1", "output": "#fef5e7", "loss": "#fdedec"}


def to_svg(nodes: list[Node], edges: list[Edge], title: str) -> str:
    """The graph as a standalone SVG document (text)."""
    width, height, rows = _size(nodes)
    at = {n.key: _centre(n, rows) for n in nodes}
    out = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, sans-serif" font-size="12">'),
           ('<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
           'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>'),
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{MARGIN}" y="22" font-size="14" font-weight="bold">{escape(title)}</text>']
    for e in edges:
        (sx, sy), (cx, cy), (ex, ey) = _edge_path(at[e.src], at[e.dst], e.kind, rows)
        colour = "#bbbbbb" if e.dead else ("#2471a3" if e.kind == "skip" else "#555")
        dash = ' stroke-dasharray="5,4"' if e.dead else ""
        out.append(f'<path class="edge {e.kind}" d="M {sx:.1f} {sy:.1f} Q {cx:.1f} {cy:.1f} {ex:.1f} {ey:.1f}" '
                   f'fill="none" stroke="{colour}" stroke-width="1.5"{dash} marker-end="url(#arrow)"/>')
        if e.label:
            lines = e.label.split("\n")
            lx, ly = (sx + 2 * cx + ex) / 4, (sy + 2 * cy + ey) / 4 - 6 - 12 * (len(lines) - 1)
            spans = "".join(f'<tspan x="{lx:.1f}" dy="{0 if i == 0 else 12}">{escape(line)}</tspan>'
                            for i, line in enumerate(lines))
            out.append(f'<text class="edge-label" x="{lx:.1f}" y="{ly:.1f}" text-anchor="middle" font-size="10" '
                       f'fill="{colour}">{spans}</text>')
    for n in nodes:
        x, y = at[n.key]
        stroke = ' stroke="#c0392b" stroke-dasharray="4,3"' if n.dead else ' stroke="#333"'
        fill = "#e5e7e9" if n.dead else FILL[n.kind]
        out.append(f'<g class="node {n.kind}{" dead" if n.dead else ""}">'
                   f'<rect x="{x - NODE_W / 2:.1f}" y="{y - NODE_H / 2:.1f}" width="{NODE_W}" height="{NODE_H}" '
                   f'rx="8" fill="{fill}"{stroke} stroke-width="1.5"/>'
                   f'<text x="{x:.1f}" y="{y - 6:.1f}" text-anchor="middle" font-weight="bold">'
                   f'{escape(n.symbol)} = {escape(n.value)}</text>'
                   f'<text x="{x:.1f}" y="{y + 12:.1f}" text-anchor="middle" font-size="10" fill="#555">'
                   f'{escape(n.grad)}</text>')
        if n.dead:
            out.append(f'<text x="{x:.1f}" y="{y + NODE_H / 2 + 13:.1f}" text-anchor="middle" font-size="10" '
                       'fill="#c0392b">dead ReLU</text>')
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


def to_png(nodes: list[Node], edges: list[Edge], title: str) -> bytes:
    """The same layout drawn with matplotlib (ImportError with the install command without it)."""
    import io

    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError("a .png drawing needs matplotlib: pip install 'skipnet[plot]' (or draw a .svg)") \
            from exc
    matplotlib.use("Agg", force=matplotlib.get_backend().lower() != "agg")
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
    from matplotlib.path import Path as MplPath

    width, height, rows = _size(nodes)
    at = {n.key: _centre(n, rows) for n in nodes}
    dpi = 100
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.axis("off")
    ax.text(MARGIN, 22, title, fontsize=11, fontweight="bold", va="center")
    for e in edges:
        start, ctrl, end = _edge_path(at[e.src], at[e.dst], e.kind, rows)
        colour = "#bbbbbb" if e.dead else ("#2471a3" if e.kind == "skip" else "#555555")
        path = MplPath([start, ctrl, end], [MplPath.MOVETO, MplPath.CURVE3, MplPath.CURVE3])
        ax.add_patch(FancyArrowPatch(path=path, arrowstyle="-|>", mutation_scale=10, color=colour, lw=1.2,
                                     linestyle="--" if e.dead else "-"))
        if e.label:
            lx, ly = (start[0] + 2 * ctrl[0] + end[0]) / 4, (start[1] + 2 * ctrl[1] + end[1]) / 4 - 6
            ax.text(lx, ly, e.label, fontsize=7, color=colour, ha="center", va="bottom", linespacing=1.3)
    for n in nodes:
        x, y = at[n.key]
        ax.add_patch(FancyBboxPatch((x - NODE_W / 2, y - NODE_H / 2), NODE_W, NODE_H,
                                    boxstyle="round,pad=0,rounding_size=8",
                                    facecolor="#e5e7e9" if n.dead else FILL[n.kind],
                                    edgecolor="#c0392b" if n.dead else "#333333",
                                    linestyle="--" if n.dead else "-", lw=1.3))
        ax.text(x, y - 6, f"{n.symbol} = {n.value}", ha="center", va="center", fontsize=8.5, fontweight="bold")
        ax.text(x, y + 12, n.grad, ha="center", va="center", fontsize=7, color="#555555")
        if n.dead:
            ax.text(x, y + NODE_H / 2 + 10, "dead ReLU", ha="center", va="center", fontsize=7, color="#c0392b")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()
