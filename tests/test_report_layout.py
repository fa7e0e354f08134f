"""The reports of a one-bug check as people read them: Markdown short enough to read in a
terminal, the function at fault named in Markdown and HTML, an HTML page that a phone shows
without sideways scrolling (wide tables and figures scroll in their own box), dtypes apart in
the grids, pairs that coincide still told apart, and exact zeros drawn as zeros.

The one-bug module is a batchnorm backward without the branch through the mean.
"""

from __future__ import annotations

import html
import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from cli_helpers import gradmatrix
from gradmatrix.reports import plots

MUTANT = Path(__file__).parent / "mutants" / "batchnorm_missing_mean_branch.py"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    where = tmp_path_factory.mktemp("one_bug")
    run = gradmatrix("check", MUTANT, "--out", where / "r", "--progress", "none", cwd=where)
    assert run.returncode == 1, run.stdout + run.stderr
    return where / "r"


def test_markdown_of_one_bug_is_short_and_names_the_function(reports):
    md = (reports / "agreement.md").read_text()
    assert len(md.splitlines()) <= 60, md
    assert "in batchnorm\\_backward" in md or "in batchnorm_backward" in md
    assert "likely cause: a missing term that is the same in every row of dx" in md
    assert md.count("### `") == 2  # one block per group of like discrepancies: dx, and forward mode's <u,Jv>
    assert "and 47 more comparisons like it" in md


class _Tables(HTMLParser):
    """Each <table> and <img> of a page, with whether it sits in a <div> that scrolls sideways."""

    def __init__(self):
        super().__init__()
        self.divs: list = []
        self.found: list = []

    def handle_starttag(self, tag, attrs):
        if tag in ("table", "img"):
            self.found.append((tag, any(c in ("scroll", "fig") for c in self.divs)))
        if tag == "div":
            self.divs.append(dict(attrs).get("class", ""))

    def handle_endtag(self, tag):
        if tag == "div":
            self.divs.pop()


def test_html_names_the_function_and_boxes_every_wide_element(reports):
    page = (reports / "agreement.html").read_text()
    assert "In batchnorm_backward (batchnorm_forward&#x27;s output agrees)" in page \
        or "In batchnorm_backward (batchnorm_forward's output agrees)" in page
    parser = _Tables()
    parser.feed(page)
    unboxed = [tag for tag, boxed in parser.found if not boxed]
    assert parser.found and not unboxed, unboxed
    # the grid: a column per dtype, no mirrored half, no "n/a"
    assert "<th>float64</th><th>float32</th>" in page and "n/a" not in page


def test_the_grid_keeps_dtypes_apart(reports):
    document = json.loads((reports / "agreement.json").read_text())
    pairs, cells = plots.grid_cells(document, "batchnorm")
    assert {dtype for _, dtype in cells} == {"float32", "float64"}
    candidate = ("batchnorm_missing_mean_branch", "torch")
    assert candidate in pairs and cells[(candidate, "float32")]["ratio"] > 1 and cells[(candidate, "float64")]["ratio"] > 1
    # float32's rounding passes in float32 and would fail in float64: never one cell for both
    reference = ("torch", "jax")
    assert cells[(reference, "float32")]["error"] != cells[(reference, "float64")]["error"]


def _document(errors: dict) -> dict:
    """A document with one op, one random case per value, pairs -> [error per case]."""
    records = []
    for pair, values in errors.items():
        for i, value in enumerate(values):
            records.append({"op": "relu", "case_kind": "random", "verdict": "agree", "dtype": "float64", "kind": "autodiff",
                            "pair": pair.split("~"), "dims": {"N": i + 1}, "message": "",
                            "tolerance": {"rtol": 1e-10},
                            "tensors": [{"tensor": "dx", "of_allowed": 0.0, "agree": True,
                                         "metrics": {"normwise_rel_err": value}}]})
    return {"comparisons": records}


def test_plots_draw_exact_zeros_as_zero_and_coinciding_pairs_apart():
    svg = plots.error_by_case(_document({"mine~torch": [0.0, 1e-12], "mine~jax": [0.0, 1e-12]}), "relu").decode()
    assert ">0</text>" in svg and "1e-17" not in svg  # the zero row is labelled 0, nothing pinned at 1e-17
    assert "fill='white'" in svg  # an exact zero is hollow
    assert "<circle" in svg and "<rect x=" in svg  # two pairs, two markers
    alone = plots.error_by_case(_document({"mine~torch": [1e-13, 1e-12]}), "relu").decode()
    assert ">0</text>" not in alone and "fill='white' stroke" not in alone


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed (Debian package chromium)")
def test_html_on_a_phone_has_no_sideways_scroll_of_the_page(reports, tmp_path):
    # headless Chromium's window is at least 500 px wide: the page goes into a 390 px frame
    # (a srcdoc frame shares the probe's origin, so the probe can measure it)
    page = (reports / "agreement.html").read_text()
    probe = (f"<!DOCTYPE html><html><body style='margin:0'><iframe id='phone' width='390' height='844' "
             f"srcdoc='{html.escape(page, quote=True)}'></iframe><script>"
             "document.getElementById('phone').addEventListener('load',e=>{const w=e.target.contentWindow;"
             "document.title='width:'+w.document.documentElement.scrollWidth+'/'+w.innerWidth;});</script></body></html>")
    (tmp_path / "probe.html").write_text(probe)
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
             "--disable-component-update", "--disable-sync", "--hide-scrollbars", "--window-size=390,844",
             f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", f"file://{tmp_path / 'probe.html'}"],
                         capture_output=True, text=True, timeout=120)
    title = dom.stdout.split("<title>", 1)[1].split("</title>", 1)[0]
    scroll, width = map(int, title.removeprefix("width:").split("/"))
    assert width == 390 and scroll <= width, title
