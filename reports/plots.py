"""Figures for the HTML report, as SVG bytes, and the agreement grid's cells.

They read only the agreement document's records: the error per case, per op, one line per
pair, log scale, with each dtype's tolerance drawn as a line. Every string from a record (op,
dtype, pair, dims, kind) goes into the SVG through ``reports.escape.html_text``, which also
keeps it well-formed XML.
"""

from __future__ import annotations

import math
from collections import defaultdict

from gradmatrix.reports.compare import headline
from gradmatrix.reports.document import worst_ratio
from gradmatrix.reports.escape import html_text as _e


def _record_error(record: dict) -> float | None:
    """The largest norm-wise relative error among a record's measured tensors."""
    errors = [t["metrics"]["normwise_rel_err"] for t in record["tensors"] if "metrics" in t]
    errors = [e for e in errors if e is not None]
    return max(errors) if errors else None


def case_label(record: dict, varying: list) -> str:
    """A case by the dimensions that vary across the op's cases ("N=8 C=10"), seed and dtype left out."""
    def show(v):
        return "x".join(str(x) for x in v) if isinstance(v, list) else f"{v:g}" if isinstance(v, float) else str(v)
    return " ".join(f"{k}={show(record['dims'][k])}" for k in varying if k in record["dims"]) or "one shape"


def varying_dims(records: list) -> list:
    """The dimensions whose value differs between some of ``records`` (in first-seen order)."""
    seen: dict = {}
    for r in records:
        for k, v in r["dims"].items():
            seen.setdefault(k, set()).add(str(v))
    keys = list(dict.fromkeys(k for r in records for k in r["dims"]))
    return [k for k in keys if len(seen[k]) > 1 or any(k not in r["dims"] for r in records)]


RAISED = 1e3  # where comparisons without an error (raised, wrong shape) are drawn: above every tolerance
ZERO_MARK = "0"  # an error of exactly zero: drawn hollow on a row of its own below the decades

# the figure's geometry, in SVG pixels
PANEL_HEIGHT, PLOT_TOP, PLOT_BOTTOM, PLOT_LEFT, PLOT_RIGHT = 330, 34, 250, 64, 16
LEGEND_WIDTH, STEP_PER_CASE = 260, 58
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
MARKERS = ("circle", "square", "triangle", "diamond")
PAIR_SHIFT = 3.0  # pixels between the points of pairs at one case
TOLERANCE_STYLE = {"autodiff": ("crimson", "6 4"), "other": ("darkorange", "2 3")}


def error_by_case(document: dict, op: str) -> bytes | None:
    """One SVG per op: the worst norm-wise relative error per case (its label names what
    varies), one line per pair, a panel per dtype, log scale, tolerances dashed; comparisons
    that raised or returned the wrong structure are marked with an x at the top instead of
    vanishing.  Written directly as SVG text: drawing these with a plotting library cost a
    third of a run's time."""
    records = [r for r in document["comparisons"] if r["op"] == op and r["case_kind"] == "random"
               and r["verdict"] != "skipped"]
    dtypes = sorted({r["dtype"] for r in records}, reverse=True)
    if not records or not dtypes:
        return None
    varying = varying_dims(records)
    labels = list(dict.fromkeys(case_label(r, varying) for r in records))
    x_of = {label: i for i, label in enumerate(labels)}
    panels = []
    for dtype in dtypes:
        series: dict = defaultdict(lambda: defaultdict(float))
        raised: dict = defaultdict(set)
        tolerances = {}
        for r in records:
            if r["dtype"] != dtype:
                continue
            pair = "~".join(r["pair"])
            x = x_of[case_label(r, varying)]
            err = _record_error(r)
            # drawn at the top: raised, the wrong structure, or an infinite relative error (a
            # reference of exactly 0)
            if err is None or not math.isfinite(err) or r["verdict"] == "error" \
                    or any(t.get("problem") for t in r["tensors"]):
                raised[pair].add(x)
                continue
            series[pair][x] = max(series[pair][x], err)  # 0: exactly equal, drawn on the row for zero
            if "tolerance" in r:
                tolerances[r["kind"]] = r["tolerance"]["rtol"]
        panels.append((dtype, series, raised, tolerances))
    pairs = sorted({p for _, series, raised, _ in panels for p in (*series, *raised)})
    color = {p: COLORS[i % len(COLORS)] for i, p in enumerate(pairs)}
    # pairs that agree exactly draw on top of each other: each gets its own marker, and a
    # small sideways shift, so that three coinciding lines are seen as three
    style = {p: (MARKERS[i % len(MARKERS)], (i - (len(pairs) - 1) / 2) * PAIR_SHIFT) for i, p in enumerate(pairs)}
    width = max(300, STEP_PER_CASE * len(labels) + PLOT_LEFT + PLOT_RIGHT)
    xlabel = "case (" + (", ".join(varying) if varying else "one shape") + "; worst over seeds)"
    body = [_panel(i * width, width, op, labels, xlabel, *panel, color, style) for i, panel in enumerate(panels)]
    body.append(_legend(len(panels) * width, pairs, panels, color, style))
    total = len(panels) * width + LEGEND_WIDTH
    svg = (f"<svg xmlns='http://www.w3.org/2000/svg' width='{total}' height='{PANEL_HEIGHT}' "
           f"viewBox='0 0 {total} {PANEL_HEIGHT}' font-family='sans-serif' font-size='10'>"
           f"<rect width='100%' height='100%' fill='white'/>{''.join(body)}</svg>")
    return svg.encode("utf-8")


def _decades(panel_values: list) -> tuple[int, int]:
    """The log10 range of the y axis: every value, tolerance and the raised marks inside."""
    logs = [math.log10(v) for v in panel_values if v > 0]
    low, high = math.floor(min(logs)), math.ceil(max(logs))
    return low, max(high, low + 1)


def _panel(left: float, width: float, op: str, labels: list, xlabel: str, dtype: str, series: dict, raised: dict,
           tolerances: dict, color: dict, style: dict) -> str:
    values = [v for points in series.values() for v in points.values() if v > 0] + list(tolerances.values())
    low, high = _decades(values + ([RAISED] if raised else []) + [1e-1])
    zeros = any(v == 0 for points in series.values() for v in points.values())
    if zeros:
        low -= 1  # the bottom row holds the errors of exactly 0, labelled "0"
    plot_w = width - PLOT_LEFT - PLOT_RIGHT
    x0 = left + PLOT_LEFT

    def px(i: float) -> float:
        return x0 + plot_w * (i + 0.5) / len(labels)

    def py(v: float) -> float:
        at = low if v == 0 else math.log10(v)
        return PLOT_BOTTOM - (PLOT_BOTTOM - PLOT_TOP) * (at - low) / (high - low)

    out = [f"<text x='{x0 + plot_w / 2:.1f}' y='20' text-anchor='middle' font-size='12'>{_e(op)}, {_e(dtype)}</text>",
           f"<rect x='{x0}' y='{PLOT_TOP}' width='{plot_w}' height='{PLOT_BOTTOM - PLOT_TOP}' fill='none' stroke='#444'/>"]
    every = max(1, math.ceil((high - low) / 7))  # at most about seven labelled decades
    for k in range(low, high + 1, every):
        y = py(10.0 ** k)
        label = ZERO_MARK if zeros and k == low else f"1e{k:+d}".replace("1e+", "1e")
        out.append(f"<line x1='{x0}' x2='{x0 + plot_w}' y1='{y:.1f}' y2='{y:.1f}' stroke='#ddd'/>"
                   f"<text x='{x0 - 4}' y='{y + 3:.1f}' text-anchor='end'>{label}</text>")
    for i, label in enumerate(labels):
        x, y = px(i), PLOT_BOTTOM + 12
        out.append(f"<text x='{x:.1f}' y='{y}' font-size='8' text-anchor='end' "
                   f"transform='rotate(-25 {x:.1f} {y})'>{_e(label)}</text>")
    out.append(f"<text x='{x0 + plot_w / 2:.1f}' y='{PANEL_HEIGHT - 8}' text-anchor='middle'>{_e(xlabel)}</text>")
    y_mid = (PLOT_TOP + PLOT_BOTTOM) / 2
    out.append(f"<text x='{left + 12}' y='{y_mid}' text-anchor='middle' transform='rotate(-90 {left + 12} {y_mid})'>"
               "worst norm-wise relative error</text>")
    for kind, rtol in sorted(tolerances.items()):
        stroke, dash = TOLERANCE_STYLE.get(kind, TOLERANCE_STYLE["other"])
        out.append(f"<line x1='{x0}' x2='{x0 + plot_w}' y1='{py(rtol):.1f}' y2='{py(rtol):.1f}' stroke='{stroke}' "
                   f"stroke-dasharray='{dash}' stroke-width='1.2'/>")
    for pair in sorted(set(series) | set(raised)):
        points = series.get(pair, {})
        marker, shift = style[pair]
        xy = [(px(x) + shift, py(points[x]), points[x] == 0) for x in sorted(points)]
        if len(xy) > 1:
            out.append(f"<polyline fill='none' stroke='{color[pair]}' stroke-width='1.2' "
                       f"points='{' '.join(f'{x:.1f},{y:.1f}' for x, y, _ in xy)}'/>")
        out += [_marker(marker, x, y, color[pair], hollow=zero) for x, y, zero in xy]
        out += [_cross(px(x) + shift, py(RAISED), color[pair]) for x in sorted(raised.get(pair, ()))]
    return "".join(out)


def _marker(kind: str, x: float, y: float, stroke: str, hollow: bool = False, size: float = 3.2) -> str:
    fill = "white" if hollow else stroke
    if kind == "square":
        shape = f"<rect x='{x - size:.1f}' y='{y - size:.1f}' width='{2 * size:.1f}' height='{2 * size:.1f}'"
    elif kind == "triangle":
        shape = f"<path d='M{x:.1f},{y - size - 1:.1f}L{x + size + 1:.1f},{y + size:.1f}L{x - size - 1:.1f},{y + size:.1f}Z'"
    elif kind == "diamond":
        shape = f"<path d='M{x:.1f},{y - size - 1:.1f}L{x + size + 1:.1f},{y:.1f}L{x:.1f},{y + size + 1:.1f}L{x - size - 1:.1f},{y:.1f}Z'"
    else:
        shape = f"<circle cx='{x:.1f}' cy='{y:.1f}' r='{size:.1f}'"
    return f"{shape} fill='{fill}' stroke='{stroke}' stroke-width='1.2'/>"


def _cross(x: float, y: float, stroke: str, size: float = 4.5) -> str:
    return (f"<path d='M{x - size:.1f},{y - size:.1f}L{x + size:.1f},{y + size:.1f}M{x - size:.1f},{y + size:.1f}"
            f"L{x + size:.1f},{y - size:.1f}' stroke='{stroke}' stroke-width='1.5'/>")


def _legend(left: float, pairs: list, panels: list, color: dict, style: dict) -> str:
    out, y = [], PLOT_TOP + 6
    with_raised = {p for _, _, raised, _ in panels for p in raised}
    kinds = sorted({k for _, _, _, tolerances in panels for k in tolerances})
    for pair in pairs:
        out.append(f"<line x1='{left + 8}' x2='{left + 28}' y1='{y - 3}' y2='{y - 3}' stroke='{color[pair]}'/>"
                   + _marker(style[pair][0], left + 18, y - 3, color[pair])
                   + f"<text x='{left + 34}' y='{y}'>{_e(pair)}</text>")
        y += 14
        if pair in with_raised:
            out.append(_cross(left + 18, y - 3, color[pair]) + f"<text x='{left + 34}' y='{y}'>{_e(pair)}: raised, wrong "
                       "structure or infinite error</text>")
            y += 14
    for kind in kinds:
        stroke, dash = TOLERANCE_STYLE.get(kind, TOLERANCE_STYLE["other"])
        out.append(f"<line x1='{left + 8}' x2='{left + 28}' y1='{y - 3}' y2='{y - 3}' stroke='{stroke}' "
                   f"stroke-dasharray='{dash}' stroke-width='1.2'/><text x='{left + 34}' y='{y}'>tolerance ({_e(kind)})"
                   "</text>")
        y += 14
    return "".join(out)


def grid(document: dict, op: str) -> tuple[list, dict]:
    """Implementations and {(a, b): worst share of allowed error} for an op's agreement grid."""
    worst: dict = {}
    names: list = []
    for r in document["comparisons"]:
        if r["op"] != op:
            continue
        a, b = r["pair"]
        for name in (a, b):
            if name not in names:
                names.append(name)
        ratio = worst_ratio(r)
        if r["verdict"] in ("error",):
            ratio = float("inf")
        if r["verdict"] == "skipped":
            continue
        key = (a, b)
        if ratio is not None:
            worst[key] = max(worst.get(key, 0.0), ratio)
        elif r["verdict"] == "disagree":
            worst[key] = float("inf")
    return names, worst


def grid_cells(document: dict, op: str) -> tuple[list, dict]:
    """The pairs compared for an op and, per (pair, dtype), its worst comparison: {"ratio":
    share of the allowed error (inf: raised or wrong structure), "error": its norm-wise
    relative error, "tensor": the tensor, "problem": a structural problem}.  Each dtype apart:
    float32's 1e-07 is a pass there and would be a failure in float64."""
    cells: dict = {}
    names: list = []
    for r in document["comparisons"]:
        if r["op"] != op:
            continue
        if tuple(r["pair"]) not in names:
            names.append(tuple(r["pair"]))
        if r["verdict"] == "skipped":
            continue
        key = (tuple(r["pair"]), r["dtype"])
        if r["verdict"] == "error" or any(t.get("problem") for t in r["tensors"]):
            problem = next((t["problem"] for t in r["tensors"] if t.get("problem")), headline(r))
            tensor = next((t["tensor"] for t in r["tensors"] if t.get("problem")), "")
            cell = {"ratio": float("inf"), "error": None, "tensor": tensor, "problem": problem}
        else:
            measured = [t for t in r["tensors"] if "of_allowed" in t
                        and not (r["verdict"] == "convention" and t.get("kink_only"))]
            if not measured:
                continue
            # a share stored as null is infinite (an error against a reference of exactly 0)
            t = max(measured, key=lambda t: math.inf if t["of_allowed"] is None else t["of_allowed"])
            cell = {"ratio": math.inf if t["of_allowed"] is None else t["of_allowed"],
                    "error": t["metrics"]["normwise_rel_err"], "tensor": t["tensor"], "problem": None}
        if key not in cells or cell["ratio"] > cells[key]["ratio"]:
            cells[key] = cell
    return names, cells
