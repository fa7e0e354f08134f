"""Figures for the HTML report (matplotlib, Agg), returned as PNG bytes.

They read only the agreement document's records: the error per case, per op, one line per
pair, log scale, with each dtype's tolerance drawn as a line.
"""

from __future__ import annotations

import io
from collections import defaultdict

from gradmatrix.reports.document import worst_ratio


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


def error_by_case(document: dict, op: str) -> bytes | None:
    """One PNG per op: the worst norm-wise relative error per case (its label names what varies),
    one line per pair, a panel per dtype, tolerances dashed; comparisons that raised or
    returned the wrong structure are marked with an x at the top instead of vanishing."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    records = [r for r in document["comparisons"] if r["op"] == op and r["case_kind"] == "random"
               and r["verdict"] != "skipped"]
    dtypes = sorted({r["dtype"] for r in records}, reverse=True)
    if not records or not dtypes:
        return None
    varying = varying_dims(records)
    labels = list(dict.fromkeys(case_label(r, varying) for r in records))
    x_of = {label: i for i, label in enumerate(labels)}
    fig, axes = plt.subplots(1, len(dtypes), figsize=(max(5.2, 1.1 * len(labels) + 2.5) * len(dtypes), 3.8),
                             squeeze=False)
    for ax, dtype in zip(axes[0], dtypes):
        series: dict = defaultdict(lambda: defaultdict(float))
        raised: dict = defaultdict(set)
        tolerances = {}
        for r in records:
            if r["dtype"] != dtype:
                continue
            pair = "~".join(r["pair"])
            x = x_of[case_label(r, varying)]
            err = _record_error(r)
            if err is None or r["verdict"] == "error" or any(t.get("problem") for t in r["tensors"]):
                raised[pair].add(x)
                continue
            series[pair][x] = max(series[pair][x], max(err, 1e-17))  # zero error drawn at the floor
            if "tolerance" in r:
                tolerances[r["kind"]] = r["tolerance"]["rtol"]
        for pair in sorted(set(series) | set(raised)):
            points = series.get(pair, {})
            xs = sorted(points)
            line = ax.plot(xs, [points[x] for x in xs], marker="o", label=pair, linewidth=1.2)
            if raised.get(pair):
                color = line[0].get_color()
                ax.plot(sorted(raised[pair]), [RAISED] * len(raised[pair]), linestyle="none", marker="x",
                        markersize=9, color=color, label=f"{pair}: raised or wrong structure")
        for kind, rtol in sorted(tolerances.items()):
            ax.axhline(rtol, color="crimson" if kind == "autodiff" else "darkorange",
                       linestyle="--" if kind == "autodiff" else ":", linewidth=1.2, label=f"tolerance ({kind})")
        ax.set_yscale("log")
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels, fontsize=7, rotation=20, ha="right")
        ax.set_xlim(-0.5, len(labels) - 0.5)
        # plain tick labels (1e-08): matplotlib's default mathtext labels are parsed glyph by
        # glyph and took most of the report's rendering time
        ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:.0e}".replace("e-0", "e-").replace("e+0", "e+")))
        ax.yaxis.set_minor_locator(ticker.NullLocator())
        ax.yaxis.set_major_locator(ticker.LogLocator(numticks=7))
        ax.set_xlabel("case (" + (", ".join(varying) if varying else "one shape") + "; worst over seeds)")
        ax.set_ylabel("worst norm-wise relative error")
        ax.set_title(f"{op}, {dtype}")
        ax.grid(True, which="major", alpha=0.3)
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, loc="center right", fontsize=7, frameon=False)
    # fixed margins: tight_layout measured every text's extent and took most of a run's
    # report-writing time (0.7 s a figure)
    fig.subplots_adjust(left=0.09, right=0.74, bottom=0.24, top=0.9, wspace=0.3)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()


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
    """Implementations and, per pair (a, b), its worst comparison for an op's agreement grid:
    {"ratio": share of the allowed error (inf: raised or wrong structure), "error": its
    norm-wise relative error, "tensor": the tensor, "problem": a structural problem}."""
    cells: dict = {}
    names: list = []
    for r in document["comparisons"]:
        if r["op"] != op:
            continue
        for name in r["pair"]:
            if name not in names:
                names.append(name)
        if r["verdict"] == "skipped":
            continue
        key = tuple(r["pair"])
        if r["verdict"] == "error" or any(t.get("problem") for t in r["tensors"]):
            problem = next((t["problem"] for t in r["tensors"] if t.get("problem")), r["message"].split("; reproduce")[0])
            tensor = next((t["tensor"] for t in r["tensors"] if t.get("problem")), "")
            cell = {"ratio": float("inf"), "error": None, "tensor": tensor, "problem": problem}
        else:
            measured = [t for t in r["tensors"] if "of_allowed" in t
                        and not (r["verdict"] == "convention" and t.get("kink_only"))]
            if not measured:
                continue
            t = max(measured, key=lambda t: t["of_allowed"])
            cell = {"ratio": t["of_allowed"], "error": t["metrics"]["normwise_rel_err"], "tensor": t["tensor"],
                    "problem": None}
        if key not in cells or cell["ratio"] > cells[key]["ratio"]:
            cells[key] = cell
    return names, cells
