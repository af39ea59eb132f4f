"""Text that comes from the data (file names, cell values) made safe to print.

A file name may hold ESC, a carriage return or a bidi override: printed raw it
recolours or rewrites a terminal, splits a CI log line, forges a GitHub
workflow command, and makes XML invalid (XML 1.0 cannot carry most control
characters even as character references).  Every human- or CI-facing format
passes such text through :func:`printable`; findings.parquet keeps it as it was.
"""

from __future__ import annotations

import re

# C0 and C1 controls and DEL; line/paragraph separators; bidi embeddings, overrides
# and isolates; lone surrogates (undecodable bytes of a file name, which no UTF-8
# writer accepts); U+FFFE/U+FFFF, which XML forbids
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff\ufffe\uffff]")


_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match) -> str:
    char = match.group()
    if char in _SHORT:
        return _SHORT[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object) -> str:
    """``text`` as a one-line string whose unsafe characters are written as Python escapes.

    ``'bad\\x1b[2Jname.csv'`` becomes ``'bad\\\\x1b[2Jname.csv'`` (a backslash, then
    ``x1b``): visible, and the same on every output.  Newlines and tabs are
    escaped too, so one finding stays one line.
    """
    s = "" if text is None else str(text)
    return _UNSAFE.sub(_escape, s)
