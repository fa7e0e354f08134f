"""Strings from a document reach agreement.md, agreement.html and the SVG figures only through
``reports.escape``: Markdown shows them as written and never as markup or raw HTML, HTML and
SVG never as a tag or an attribute.

No Markdown renderer is installed, so the Markdown is read back here by the CommonMark rules
the escaping relies on (with GitHub's table cells): fenced code blocks, backslash escapes,
code spans, and a table row's split at its unescaped pipes.
"""

import base64
import re
import string
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

from hypothesis import example, given, settings
from hypothesis import strategies as st

from gradmatrix.reports import document as documents
from gradmatrix.reports import environment, html, markdown
from gradmatrix.reports.escape import html_text, markdown_block, markdown_code, markdown_text

# ---------------------------------------------------------------- reading Markdown back

PUNCTUATION = set(string.punctuation)  # CommonMark's ASCII punctuation: what a backslash escapes
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def span_content(raw: str) -> str:
    """A code span's content as CommonMark shows it: line endings as spaces, one space stripped
    from each end when both ends have one and it is not all spaces."""
    raw = re.sub(r"\r\n|\r|\n", " ", raw)
    if len(raw) >= 2 and raw[0] == raw[-1] == " " and raw.strip(" "):
        return raw[1:-1]
    return raw


def read_inline(line: str) -> tuple[list, str, str]:
    """The code spans, the text shown and the raw markup of one line of inline Markdown.

    Returns:
        (spans, shown, raw): each code span's content; the text outside spans as shown
        (escapes resolved); the text outside spans with every escaped character left out,
        where any markup left would act.

    Raises:
        AssertionError: a backtick run that opens no span (the escaping never leaves one).
    """
    spans, shown, raw, i = [], [], [], 0
    while i < len(line):
        c = line[i]
        if c == "\\" and line[i + 1:i + 2] in PUNCTUATION:
            shown.append(line[i + 1])
            i += 2
        elif c == "`":
            fence = re.match(r"`+", line[i:]).group()
            # the span ends at the next backtick run of exactly the fence's length
            close = next((m for m in re.finditer(r"`+", line[i + len(fence):]) if len(m.group()) == len(fence)), None)
            assert close is not None, f"backtick run {fence!r} opens no code span in {line!r}"
            start = i + len(fence)
            spans.append(span_content(line[start:start + close.start()]))
            i = start + close.end()
        else:
            shown.append(c)
            raw.append(c)
            i += 1
    return spans, "".join(shown), "".join(raw)


def table_cells(row: str) -> list:
    """A GitHub table row's cells: split at pipes no backslash escapes, then ``\\|`` read as ``|``."""
    cells = re.split(r"(?<!\\)\|", row.strip())
    return [c.replace("\\|", "|").strip() for c in cells[1:-1]]


def read_code_span(markup: str, table_cell: bool = False) -> str:
    """The content of a string that must be exactly one code span (in a table cell if asked)."""
    if table_cell:
        cells = table_cells(f"| {markup} |")
        assert len(cells) == 1, f"{markup!r} splits the table cell into {len(cells)}"
        markup = cells[0]
    spans, shown, _ = read_inline(markup)
    assert len(spans) == 1 and shown == "", f"{markup!r} is not one code span"
    return spans[0]


class Markdown:
    """A Markdown document read back: its fenced blocks, code spans, shown text and raw markup."""

    def __init__(self, md: str):
        self.blocks, self.spans, self.shown, self.raw, self.lines = [], [], [], [], []
        lines = md.split("\n")
        header_cells = None
        i = 0
        while i < len(lines):
            line = lines[i]
            opening = FENCE.match(line)
            if opening:  # a fenced block ends at a fence of its character, at least as long
                fence = opening.group(1)
                closing = re.compile(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
                end = next((j for j in range(i + 1, len(lines)) if closing.match(lines[j])), None)
                assert end is not None, f"the code block opened at line {i + 1} is never closed"
                self.blocks.append("\n".join(lines[i + 1:end]))
                i = end + 1
                continue
            self.lines.append(line)
            if line.startswith("|"):
                cells = table_cells(line)
                if re.fullmatch(r"\|(-+:?\|)+", line):
                    pass  # the delimiter row
                elif header_cells is None:
                    header_cells = len(cells)
                else:
                    assert len(cells) == header_cells, f"a row with {len(cells)} cells, not {header_cells}: {line!r}"
                parts = [read_inline(c) for c in cells]
            else:
                header_cells = None
                parts = [read_inline(line)]
            for spans, shown, raw in parts:
                self.spans += spans
                self.shown.append(shown)
                self.raw.append(raw)
            i += 1

    def shows(self, text: str) -> bool:
        """Whether ``text`` is shown as written: in a code span, a code block or the prose."""
        one_line = re.sub(r"\r\n|\r|\n", " ", text)
        return (any(one_line in s for s in self.spans) or any(text in b for b in self.blocks)
                or any(one_line in s for s in self.shown))


# ---------------------------------------------------------------- reading HTML and SVG back

PAGE_TAGS = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "div", "p", "table", "tr",
             "th", "td", "code", "pre", "b", "br", "small", "span", "details", "summary", "em", "img"}
PAGE_ATTRIBUTES = {"lang", "charset", "name", "content", "class", "id", "title", "alt", "src"}
SVG_TAGS = {"svg", "rect", "text", "line", "polyline", "circle", "path"}
SVG_ATTRIBUTES = {"xmlns", "width", "height", "viewBox", "font-family", "font-size", "fill", "x", "y", "x1", "x2",
                  "y1", "y2", "cx", "cy", "r", "d", "stroke", "stroke-width", "stroke-dasharray", "points",
                  "text-anchor", "transform"}


class Page(HTMLParser):
    """An HTML page read back: its tags with their attributes, and its text."""

    def __init__(self, page: str):
        super().__init__(convert_charrefs=True)
        self.tags, self.text = [], []
        self.feed(page)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def svg_text(svg: bytes) -> str:
    """An SVG's text, after checking it is well-formed XML made of the figure's own elements."""
    root = ET.fromstring(svg)
    for element in root.iter():
        tag = element.tag.rpartition("}")[2]
        assert tag in SVG_TAGS, f"element {tag!r} in an SVG figure"
        assert set(element.attrib) <= SVG_ATTRIBUTES, f"attributes {set(element.attrib) - SVG_ATTRIBUTES} in an SVG"
    return "".join(root.itertext())


# ---------------------------------------------------------------- a hostile document

INJECT = "<img src=x onerror=alert(1)>"
SCRIPT = "<script>alert(1)</script>"


def hostile(where: str) -> str:
    """A string for one place in a document, carrying what closes a code span early (backtick
    runs, one at each end), raw HTML, a table cell's pipe, a line break that starts a heading,
    a link, emphasis and an entity."""
    return f"`{where}`` {INJECT} | {SCRIPT}\n# [x](javascript:alert(1)) **b** &lt; ```"


OP, DTYPE, CANDIDATE, TENSOR = hostile("op"), hostile("dtype"), hostile("candidate"), hostile("tensor")
MESSAGE, PROBLEM, DIM = hostile("message"), hostile("problem"), hostile("dim")
TRACEBACK = f"Traceback\n```\n{hostile('traceback')}\n````\n~~~\n    {SCRIPT}"
IMPL = hostile("impl")  # the candidate as named in its pairs
# a lone surrogate (an undecodable file name) and a control character, which XML forbids, where
# the SVG draws them (the comparison kind) and where the reports show them (the platform)
WEIRD = "\udcff\x01"
KIND, PLATFORM = hostile("kind") + WEIRD, hostile("platform") + WEIRD


def _record(seed: int, verdict: str, tensors: list, **extra) -> dict:
    return {"id": f"{OP}-{seed}-{IMPL}~torch", "case": f"{OP}-{seed}", "op": OP, "case_kind": "random",
            "dims": {"N": seed, DIM: hostile(f"dim value {seed}")}, "seed": seed, "dtype": DTYPE,
            "pair": [IMPL, "torch"], "kind": KIND, "tensors": tensors, "verdict": verdict,
            "message": f"{MESSAGE} {seed}", **extra}


def hostile_document() -> dict:
    metrics = {"a_value": 1.0, "b_value": -1.0, "max_abs_err": 2.0, "normwise_rel_err": 2.0, "ref_scale": 1.0,
               "rel_error": 1.0, "worst_index": [0, 0]}
    wrong = {"tensor": TENSOR, "agree": False, "metrics": metrics, "of_allowed": 2e10, "ratio": -1.0,
             "role": "gradient", "rtol": 1e-10, "max_bound": 0.0}
    records = [
        _record(1, "disagree", [wrong], tolerance={"rtol": 1e-10, "why": hostile("why")},
                conventions={IMPL: 0.0, "torch": 1.0}),
        _record(2, "error", [{"tensor": hostile("tensor 2"), "problem": PROBLEM}], traceback=TRACEBACK),
    ]
    env = dict(environment.collect(), python=hostile("python"), platform=PLATFORM,
               device=hostile("device"), versions={hostile("package"): hostile("version")},
               frameworks={hostile("framework"): {hostile("setting"): hostile("value")}})
    run = {"candidate": IMPL, "matrix": hostile("matrix"), "oracles": ["torch", hostile("oracle")]}
    return documents.build(records, env, run, interrupted=hostile("interrupted"), problems=(hostile("problem 2"),))


def md_shown(text: str) -> str:
    return text.replace("\udcff", "\ufffd")  # Markdown keeps control characters, not lone surrogates


def markup_shown(text: str) -> str:
    return re.sub("[\ud800-\udfff\x00-\x08\x0b\x0c\x0e-\x1f]", "\ufffd", text)


# ---------------------------------------------------------------- the reports


def test_markdown_shows_every_hostile_string_as_written_and_none_as_markup():
    md = markdown.render(hostile_document())
    md.encode("utf-8")  # the lone surrogate does not stop the report from being written
    read = Markdown(md)  # every backtick run opens a span that closes; every block closes
    raw = "\n".join(read.raw)
    # outside code, no raw HTML, entity, link or emphasis from the data is left to act
    for markup in ("<", "&", "[", "]", "**b**"):
        assert markup not in raw, f"unescaped {markup!r} outside code in agreement.md:\n{md}"
    # no string starts a block: the only headings are the report's own
    headings = [line for line in read.lines if re.match(r" {0,3}#", line)]
    own = re.compile(r"#{1,3} (gradmatrix agreement report|Findings \(\d+\)|Run|Agreement by op, pair and dtype"
                     r"|Conventions at kinks|Discrepancies \(\d+\)|`.*`)")
    assert all(own.fullmatch(h) for h in headings), headings
    # and every string is still there, as written (line breaks inside a line as spaces)
    for text in (OP, DTYPE, IMPL, TENSOR, f"{MESSAGE} 1", f"{MESSAGE} 2", PROBLEM, TRACEBACK, hostile("python"),
                 PLATFORM, hostile("device"), hostile("package"), hostile("version"), hostile("matrix"),
                 hostile("oracle"), hostile("interrupted"), hostile("problem 2")):
        assert read.shows(md_shown(text)), f"{text!r} is not shown as written in agreement.md"
    assert any(TRACEBACK in block for block in read.blocks)  # the traceback whole, in a block of its own


def test_html_and_svg_show_every_hostile_string_as_text_and_none_as_a_tag_or_attribute():
    page = html.render(hostile_document())
    page.encode("utf-8")
    assert INJECT not in page and SCRIPT not in page and "<script" not in page.lower()
    read = Page(page)
    for tag, attrs in read.tags:
        assert tag in PAGE_TAGS, f"tag {tag!r} in agreement.html"
        assert set(attrs) <= PAGE_ATTRIBUTES, f"attributes {set(attrs) - PAGE_ATTRIBUTES} on {tag!r}"
    text = "".join(read.text) + "".join(a.get("title", "") for _, a in read.tags)
    for shown in (OP, DTYPE, IMPL, TENSOR, f"{MESSAGE} 1", PROBLEM, hostile("python"), PLATFORM,
                  hostile("package"), hostile("version"), hostile("framework"), hostile("value"), hostile("matrix")):
        assert markup_shown(shown) in text, f"{shown!r} is not shown as text in agreement.html"
    figures = [a["src"] for tag, a in read.tags if tag == "img"]
    assert figures and all(src.startswith("data:image/svg+xml;base64,") for src in figures)
    svg = svg_text(base64.b64decode(figures[0].partition(",")[2]))
    for shown in (OP, DTYPE, f"{IMPL}~torch", DIM, hostile("dim value 1"), hostile("kind")):
        # XML reads a line break in text as written, and the figure draws each string on one line
        assert markup_shown(shown) in svg, f"{shown!r} is not drawn as text in the SVG"


# ---------------------------------------------------------------- the escaping functions

ONE_LINE = re.compile(r"\r\n|\r|\n")
# text that stresses the fences: backtick runs, spaces at the ends, pipes, backslashes, breaks
FENCY = st.text(alphabet=st.sampled_from("`` \\|\n\r<>&#-_*a1."), max_size=40)
ANY_TEXT = FENCY | st.text(max_size=40)
PROPERTY = settings(max_examples=400, deadline=None, database=None)


def expected_span(text: str) -> str:
    shown = md_shown(ONE_LINE.sub(" ", text)).replace("\x00", "\ufffd")
    return shown or " "  # CommonMark has no empty code span: an empty string is one space


@PROPERTY
@given(ANY_TEXT)
@example("``")
@example("`a")
@example(" a ")
@example("  ")
@example("")
@example("a\\|b")
def test_a_code_span_reads_back_as_exactly_its_text(text):
    span = markdown_code(text)
    assert read_code_span(span) == expected_span(text)
    assert read_code_span(markdown_code(text, table_cell=True), table_cell=True) == expected_span(text)


@PROPERTY
@given(ANY_TEXT)
@example("1. item")
@example("---")
@example("a_b _c_ __init__")
@example("\\`x`")
def test_markdown_text_reads_back_as_exactly_its_text_with_no_markup_left(text):
    escaped = markdown_text(text)
    assert "\n" not in escaped and "\r" not in escaped
    spans, shown, raw = read_inline(escaped)
    assert spans == [] and shown == md_shown(ONE_LINE.sub(" ", text)).replace("\x00", "\ufffd")
    assert not set(raw) & set("\\`*~[]<>&|"), f"markup left in {escaped!r}"
    assert not re.search(r"(?<![^\W_])_|_(?![^\W_])", raw), f"an underscore that can open emphasis in {escaped!r}"
    # at the start of a line it starts no block: heading, list item, break, quote, fence, HTML
    assert not re.match(r" {0,3}([#>+=-]|\d{1,9}[.)]([ \t]|$)|[*_]|`{3}|~{3}|<)", escaped), escaped
    # and it ends no table cell
    assert len(table_cells(f"| {escaped} |")) == 1


@PROPERTY
@given(ANY_TEXT)
@example("```\n````")
def test_a_code_block_reads_back_as_exactly_its_text(text):
    read = Markdown(f"before\n\n{markdown_block(text)}\n\nafter")
    assert read.blocks == [md_shown(text).replace("\x00", "\ufffd")]
    assert read.lines == ["before", "", "", "after"]


@PROPERTY
@given(ANY_TEXT)
@example("' onmouseover='alert(1)")
@example('" onerror="x')
@example(INJECT)
def test_html_text_reads_back_as_exactly_its_text_in_elements_and_attributes(text):
    for quote in "'\"":
        read = Page(f"<p title={quote}{html_text(text)}{quote}>{html_text(text)}</p>")
        assert read.tags == [("p", {"title": markup_shown(text)})]
        assert "".join(read.text) == markup_shown(text)
    # the same escape keeps an SVG well-formed: XML reads line breaks as "\n", and in an
    # attribute every tab and line break as a space
    element = ET.fromstring(f"<text title='{html_text(text)}'>{html_text(text)}</text>")
    as_xml = markup_shown(text).replace("\r\n", "\n").replace("\r", "\n")
    assert (element.text or "") == as_xml
    assert element.get("title") == re.sub(r"[\t\n]", " ", as_xml)


def test_every_escape_writes_as_utf8_whatever_the_string():
    # a lone surrogate (os.fsdecode of an undecodable file name) cannot be encoded as it is
    for escape in (markdown_text, markdown_code, markdown_block, html_text):
        assert "\ufffd" in escape("name\udcff.py") and escape("name\udcff.py").encode("utf-8")
