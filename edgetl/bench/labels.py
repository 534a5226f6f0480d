"""Label points on a matplotlib axes so that no label overlaps another label, a dot or the border.

A greedy placer: candidate spots around each dot, then rings further out with a thin leader line; the first clean
one is kept. Used by the benchmark picture (``plot.py``), where artifacts cluster.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

# Candidate label positions: directions (degrees, in preference order) and rings (pixels beyond touching the dot;
# past the first ring a thin leader line joins label and dot).
_ANGLES = (0.0, 45.0, -45.0, 90.0, -90.0, 135.0, -135.0, 180.0, 22.5, -22.5, 67.5, -67.5, 112.5, -112.5, 157.5, -157.5)
_RINGS = (0.0, 6.0, 16.0, 28.0, 42.0, 60.0, 82.0, 108.0, 140.0, 180.0)
_LEADER_FROM = 1  # rings from this index on draw a leader
_PAD = 2.0  # pixels kept clear around every label
_BACKING = {"boxstyle": "square,pad=0.12", "fc": "white", "ec": "none", "alpha": 0.75}
_HIGHLIGHT = {"boxstyle": "round,pad=0.2", "fc": "#fff1a8", "ec": "darkgoldenrod", "lw": 0.8}


Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in display pixels
Segment = tuple[tuple[float, float], tuple[float, float]]


def _hit(a: Box, b: Box, pad: float = 0.0) -> bool:
    return a[0] - pad < b[2] and b[0] - pad < a[2] and a[1] - pad < b[3] and b[1] - pad < a[3]


def _inside(a: Box, outer: Box) -> bool:
    return a[0] >= outer[0] and a[1] >= outer[1] and a[2] <= outer[2] and a[3] <= outer[3]


def _segment_hits(p: tuple[float, float], q: tuple[float, float], b: Box) -> bool:
    """Whether the segment p-q crosses box b (Liang-Barsky clipping)."""
    t0, t1 = 0.0, 1.0
    dx, dy = q[0] - p[0], q[1] - p[1]
    for d, lo, hi, v in ((dx, b[0], b[2], p[0]), (dy, b[1], b[3], p[1])):
        if d == 0.0:
            if v < lo or v > hi:
                return False
            continue
        a, c = (lo - v) / d, (hi - v) / d
        t0, t1 = max(t0, min(a, c)), min(t1, max(a, c))
        if t0 > t1:
            return False
    return True


def _ray_to_edge(w: float, h: float, cos: float, sin: float) -> float:
    """Distance from a w x h box's centre to its edge along (cos, sin)."""
    tx = w / 2 / abs(cos) if abs(cos) > 1e-9 else float("inf")
    ty = h / 2 / abs(sin) if abs(sin) > 1e-9 else float("inf")
    return min(tx, ty)


def _extent(text: Any, renderer: Any) -> Any:
    """A label's rendered extent in display pixels: its text and its backing box."""
    from matplotlib.transforms import Bbox

    text.update_bbox_position_size(renderer)
    patch = text.get_bbox_patch()
    boxes = [text.get_window_extent(renderer)] + ([patch.get_window_extent(renderer)] if patch is not None else [])
    return Bbox.union(boxes)


@dataclass
class LabelLayout:
    """Where ``place_labels`` put each label, in display pixels (what the saved PNG shows, y up)."""

    texts: list[Any]  # the matplotlib Text of each point's label
    boxes: list[Box]  # each label's rendered extent, its backing included
    dots: list[tuple[float, float, float]]  # each point's centre x, y and dot radius
    axes_box: Box
    groups: list[list[int]]  # points whose dots overlap share one label made of their labels side by side
    leaders: list[Segment | None]  # per group: the leader line from its dots to its label, if any
    collisions: int  # groups that could not be placed clear of everything (0 when the layout is clean)
    lines: list[Any] = field(default_factory=list)  # the leader Line2Ds

    def remove(self) -> None:
        for artist in self.texts + self.lines:
            artist.remove()


def _groups(centres: list[tuple[float, float]], radii: list[float], alone: set[int]) -> list[list[int]]:
    """Points whose dots overlap the first dot of a group join it (bounded, no chains); ``alone`` stay alone."""
    groups: list[list[int]] = []
    for i, (x, y) in enumerate(centres):
        home = None
        if i not in alone:
            for g in groups:
                s = g[0]
                if s not in alone and math.dist((x, y), centres[s]) < 0.9 * (radii[s] + radii[i]):
                    home = g
                    break
        if home is None:
            groups.append([i])
        else:
            home.append(i)
    return groups


def _segments_cross(a: Segment, b: Segment) -> bool:
    def side(p: tuple[float, float], q: tuple[float, float], r: tuple[float, float]) -> float:
        return (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])

    return side(*a, b[0]) * side(*a, b[1]) < 0 and side(*b, a[0]) * side(*b, a[1]) < 0


def place_labels(
    ax: Any,
    points: list[tuple[float, float]],
    labels: list[str],
    *,
    radii_pt: list[float] | None = None,
    colors: list[str] | None = None,
    bold: set[int] | None = None,
    fontsize: float = 8.5,
    soft: list[Box] | None = None,
    max_ring: int | None = None,
    per_row: int = 6,
) -> LabelLayout:
    """Label each point (data coordinates) next to its dot so that no label overlaps another label, any dot or the
    axes border. A greedy placer tries candidate spots around the dot, then further out with a thin leader line, and
    keeps the first clean one (``soft`` boxes, the whiskers, are avoided where possible). Points whose dots overlap
    share one spot: their labels side by side, ``per_row`` to a row, separated by commas. Bold points get a highlighted
    label of their own and the first pick. Call once the axes' limits and the figure's layout are final."""
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    px = fig.dpi / 72.0
    n = len(points)
    bold = bold or set()
    radii = [r * px for r in (radii_pt or [3.0] * n)]  # dots 6 pt across unless told
    centres = [(float(x), float(y)) for x, y in ax.transData.transform(points)] if n else []
    dot_boxes: list[Box] = [(x - r, y - r, x + r, y + r) for (x, y), r in zip(centres, radii)]
    ab = ax.get_window_extent(renderer)
    axes_box: Box = (ab.x0 + 2, ab.y0 + 2, ab.x1 - 2, ab.y1 - 2)
    soft_boxes = list(soft or [])
    groups = _groups(centres, radii, bold)
    texts: list[Any] = [None] * n
    sizes: list[tuple[float, float]] = [(0.0, 0.0)] * n
    for g in groups:
        for j, i in enumerate(g):
            texts[i] = ax.text(
                0,
                0,
                labels[i] + ("," if j < len(g) - 1 and per_row > 1 else ""),
                fontsize=fontsize + (1 if i in bold else 0),
                fontweight="bold" if i in bold else "normal",
                color=(colors[i] if colors else "k"),
                ha="center",
                va="center",
                zorder=5,
                transform=None,  # display pixels until placed
                bbox=_HIGHLIGHT if i in bold else _BACKING,
            )
            e = _extent(texts[i], renderer)
            sizes[i] = (e.width, e.height)
    gap = 0.6  # pixels between the pieces of a group's label
    rows_of = [[g[k : k + per_row] for k in range(0, len(g), per_row)] for g in groups]
    line_h = [max(sizes[i][1] for i in g) for g in groups]
    shapes = [
        (max(sum(sizes[i][0] for i in row) + gap * (len(row) - 1) for row in rows), len(rows) * h + gap * (len(rows) - 1))
        for rows, h in zip(rows_of, line_h)
    ]
    anchors = [(sum(centres[i][0] for i in g) / len(g), sum(centres[i][1] for i in g) / len(g)) for g in groups]
    reach = [max(math.dist(a, centres[i]) + radii[i] for i in g) for a, g in zip(anchors, groups)]
    # bold first, then the most crowded: they get the best spots
    crowd = [sum(1 for c in centres if abs(c[0] - a[0]) < 40 and abs(c[1] - a[1]) < 25) for a in anchors]
    order = sorted(range(len(groups)), key=lambda u: (not (set(groups[u]) & bold), -crowd[u], u))
    placed: list[Box] = []
    segs: list[Segment] = []
    leaders: list[Segment | None] = [None] * len(groups)
    collisions = 0
    rings = _RINGS[: (max_ring + 1) if max_ring is not None else None]
    inv = ax.transData.inverted()
    for u in order:
        (cx, cy), r, (w, h) = anchors[u], reach[u], shapes[u]
        best: tuple[tuple[int, float], Box, Segment | None, float] | None = None
        for k, extra in enumerate(rings):
            for a in _ANGLES:
                cos, sin = math.cos(math.radians(a)), math.sin(math.radians(a))
                edge = _ray_to_edge(w, h, cos, sin)
                d = r + _PAD + 1.0 + extra + edge
                x, y = cx + d * cos, cy + d * sin
                box: Box = (x - w / 2, y - h / 2, x + w / 2, y + h / 2)
                hard = (not _inside(box, axes_box)) + sum(_hit(box, o, _PAD) for o in placed + dot_boxes)
                if hard and best is not None and best[0][0] == 0:
                    continue
                lead = ((cx + r * cos, cy + r * sin), (x - edge * cos, y - edge * sin)) if k >= _LEADER_FROM else None
                n_soft = sum(_hit(box, o) for o in soft_boxes) + sum(_segment_hits(p, q, box) for p, q in segs)
                if lead is not None:
                    n_soft += sum(_segment_hits(*lead, o) for j, o in enumerate(dot_boxes) if j not in groups[u])
                    n_soft += sum(_segment_hits(*lead, o) for o in placed) + sum(_segments_cross(lead, s) for s in segs)
                cost = (hard, k + 3.0 * n_soft)
                if best is None or cost < best[0]:
                    best = (cost, box, lead, cos)
            if best is not None and best[0] <= (0, float(k)):
                break  # clean on this ring: farther rings cannot do better
        assert best is not None
        (hard_cost, _), box, lead, cos = best
        collisions += hard_cost > 0
        placed.append(box)
        leaders[u] = lead
        if lead is not None:
            segs.append(lead)
        top = box[3]
        for row in rows_of[u]:  # the pieces, row by row, flush toward the dots
            row_w = sum(sizes[i][0] for i in row) + gap * (len(row) - 1)
            x = box[0] if cos > 0.3 else box[2] - row_w if cos < -0.3 else (box[0] + box[2] - row_w) / 2
            yc = top - line_h[u] / 2
            for i in row:
                texts[i].set_transform(ax.transData)
                texts[i].set_position(tuple(inv.transform((x + sizes[i][0] / 2, yc))))
                x += sizes[i][0] + gap
            top -= line_h[u] + gap
    lines = []
    for u, lead in enumerate(leaders):
        if lead is not None:
            (x0, y0), (x1, y1) = inv.transform(lead[0]), inv.transform(lead[1])
            c = colors[groups[u][0]] if colors and len(groups[u]) == 1 else "0.35"
            (line,) = ax.plot([x0, x1], [y0, y1], color=c, lw=0.6, alpha=0.8, zorder=4)
            lines.append(line)
    rendered = [_extent(t, renderer) for t in texts]
    return LabelLayout(
        texts=texts,
        boxes=[(e.x0, e.y0, e.x1, e.y1) for e in rendered],
        dots=[(c[0], c[1], r) for c, r in zip(centres, radii)],
        axes_box=axes_box,
        groups=groups,
        leaders=leaders,
        collisions=collisions,
        lines=lines,
    )
