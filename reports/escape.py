"""The escaping functions of the reports: every string from a document (ids, op and file
names, messages and tracebacks from candidate code, params, environment values, findings)
reaches agreement.md, agreement.html or an SVG figure through one of them.

Markdown (CommonMark with GitHub's tables, as GitHub and GitLab render agreement.md):
  - ``markdown_text``: prose and table cells; backslash-escapes every character that makes
    markup or raw HTML, and joins lines, so a string can neither start a block nor end a cell.
  - ``markdown_code``: an inline code span, shown exactly as written; its fence is one backtick
    longer than the longest backtick run inside, so nothing inside can close it.
  - ``markdown_block``: a fenced code block (a traceback), fenced the same way.
HTML and SVG:
  - ``html_text``: text and quoted attribute values, in HTML and in XML (SVG) alike.

None of them raises on any ``str`` (lone surrogates from undecodable file names included) and
each returns text that encodes as UTF-8.
"""

from __future__ import annotations

import html
import re

REPLACEMENT = "\ufffd"
# lone surrogates (os.fsdecode of an undecodable file name) cannot be written as UTF-8; NUL is
# replaced by CommonMark and invalid in XML, as are the other C0 controls but tab and newlines
_UNWRITABLE = re.compile("[\ud800-\udfff\x00]")
_NOT_XML = re.compile("[\ud800-\udfff\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_LINE_ENDING = re.compile(r"\r\n|\r|\n")  # CommonMark's line endings

# characters that make Markdown structure anywhere in a line: escapes, code, emphasis,
# strikethrough, links and images, raw HTML and entities, table cells
_MD_INLINE = re.compile(r"([\\`*~\[\]<>&|])")
# an underscore opens or closes emphasis unless letters or digits stand on both sides
_MD_UNDERSCORE = re.compile(r"(?<![^\W_])_|_(?![^\W_])")
# what makes a block when it starts a line: a heading, list item, thematic break, setext
# underline or ordered list item (the blockquote's ">" is escaped everywhere)
_MD_LEADING = re.compile(r"^([ \t]*)([#+=-]|\d{1,9}(?=[.)](?:[ \t]|$)))")


def _text(value) -> str:
    return _UNWRITABLE.sub(REPLACEMENT, str(value))


def markdown_text(value) -> str:
    """Text for Markdown prose, a list item or a table cell, shown as written.

    Args:
        value: anything; ``str(value)`` is shown.

    Returns:
        One line: markup characters (``\\ ` * ~ [ ] < > & |``, an underscore not inside a word,
        a heading or list marker at the start) backslash-escaped, line endings as spaces.
    """
    text = _LINE_ENDING.sub(" ", _text(value))
    text = _MD_INLINE.sub(r"\\\1", text)
    text = _MD_UNDERSCORE.sub(r"\\_", text)
    match = _MD_LEADING.match(text)
    if match:  # the ordered-list marker is the "." or ")" after the digits
        at = match.end() if match.group(2)[0].isdigit() else match.start(2)
        text = text[:at] + "\\" + text[at:]
    return text


def _longest_run(text: str, char: str) -> int:
    return max((len(run) for run in re.findall(re.escape(char) + "+", text)), default=0)


def markdown_code(value, table_cell: bool = False) -> str:
    """An inline code span that shows ``str(value)`` exactly, line endings as spaces (CommonMark
    turns them into spaces inside a span anyway; kept, they could start a block).

    The fence is one backtick longer than the longest backtick run inside, so no run inside
    closes the span early. Content holding a backtick, or starting and ending with a space, is
    padded with one space on each side, which CommonMark strips again. An empty value is shown
    as a span of one space: CommonMark has no empty code span.

    Args:
        value: anything; ``str(value)`` is shown.
        table_cell: the span stands in a table cell, where GitHub's tables end a cell at any
            ``|``, inside code too, unless written ``\\|`` (turned back into ``|`` before the
            span is read).

    Returns:
        The span, fences included.
    """
    text = _LINE_ENDING.sub(" ", _text(value))
    if not text:
        return "` `"
    fence = "`" * (_longest_run(text, "`") + 1)
    pad = " " if "`" in text or (text[0] == text[-1] == " " and text.strip(" ")) else ""
    if table_cell:
        text = text.replace("|", "\\|")
    return f"{fence}{pad}{text}{pad}{fence}"


def markdown_block(value) -> str:
    """A fenced code block that shows ``str(value)`` line by line, exactly.

    Its fence is at least three backticks and one longer than the longest backtick run inside,
    so no line inside can close it.

    Args:
        value: anything; ``str(value)`` is shown.

    Returns:
        The block, opening and closing fences on lines of their own, without a final newline.
    """
    text = _text(value)
    fence = "`" * max(3, _longest_run(text, "`") + 1)
    return f"{fence}\n{text}\n{fence}"


def html_text(value) -> str:
    """Text for an HTML or SVG element, or for an attribute value in quotes (single or double).

    Args:
        value: anything; ``str(value)`` is shown.

    Returns:
        ``& < > " '`` as character references; characters XML forbids (C0 controls but tab and
        line endings, U+FFFE, U+FFFF, lone surrogates) as U+FFFD, so an SVG stays well-formed.
    """
    return html.escape(_NOT_XML.sub(REPLACEMENT, str(value)), quote=True)
