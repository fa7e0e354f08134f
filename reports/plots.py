"""Figures for the HTML report (matplotlib, Agg), returned as PNG bytes.

They read only the agreement document's records: error against batch size, per op, one
line per oracle pair, log scale, with each dtype's tolerance drawn as a line.
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


def error_vs_batch(document: dict, op: str) -> bytes | None:
    """One PNG per op: worst error against batch size N, per pair, a panel per dtype."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    records = [r for r in document["comparisons"] if r["op"] == op and r["case_kind"] == "random"]
    dtypes = sorted({r["dtype"] for r in records}, reverse=True)
    if not records or not dtypes:
        return None
    fig, axes = plt.subplots(1, len(dtypes), figsize=(5.2 * len(dtypes), 3.6), squeeze=False)
    for ax, dtype in zip(axes[0], dtypes):
        series: dict = defaultdict(lambda: defaultdict(float))
        tolerances = {}
        for r in records:
            if r["dtype"] != dtype or "N" not in r["dims"]:
                continue
            err = _record_error(r)
            if err is None:
                continue
            pair = "~".join(r["pair"])
            n = r["dims"]["N"]
            series[pair][n] = max(series[pair][n], max(err, 1e-17))  # zero error drawn at the floor
            tolerances[r["kind"]] = r["tolerance"]["rtol"]
        for pair, points in sorted(series.items()):
            xs = sorted(points)
            ax.plot(xs, [points[x] for x in xs], marker="o", label=pair, linewidth=1.2)
        for kind, rtol in sorted(tolerances.items()):
            ax.axhline(rtol, color="crimson" if kind == "autodiff" else "darkorange",
                       linestyle="--" if kind == "autodiff" else ":", linewidth=1.2, label=f"tolerance ({kind})")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        # plain tick labels (1e-08, 8): matplotlib's default mathtext labels are parsed
        # glyph by glyph and took most of the report's rendering time
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:.0e}".replace("e-0", "e-")))
        ax.xaxis.set_minor_locator(ticker.NullLocator())  # no minor ticks: each is an object to lay out
        ax.yaxis.set_minor_locator(ticker.NullLocator())
        ax.yaxis.set_major_locator(ticker.LogLocator(numticks=7))
        ax.set_xlabel("batch size N")
        ax.set_ylabel("worst norm-wise relative error")
        ax.set_title(f"{op}, {dtype}")
        ax.grid(True, which="major", alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", fontsize=7, frameon=False)
    # fixed margins: tight_layout measured every text's extent and took most of a run's
    # report-writing time (0.7 s a figure)
    fig.subplots_adjust(left=0.09, right=0.8, bottom=0.16, top=0.9, wspace=0.3)
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
