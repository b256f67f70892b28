"""Guest text made safe to print (no layer of its own).

Everything a guest chooses -- a task's comm, a path, a console line -- may hold
terminal escape sequences.  Whatever the framework prints or logs of it goes
through :func:`printable` (or :func:`quoted`) first, so no byte of the guest
reaches the user's terminal as a control character.

Example::

    >>> printable("evil\\x1b[2J\\r")
    'evil\\\\x1b[2J\\\\r'
"""

from __future__ import annotations

import unicodedata

# C0 controls, DEL and C1 controls (U+0080..U+009F): the characters a terminal
# may act on.  Common ones keep their short C form.
_SHORT = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
_ESCAPES = {
    c: _SHORT.get(chr(c), f"\\x{c:02x}")
    for c in range(0x100)
    if unicodedata.category(chr(c)) == "Cc"
}
_ESCAPES_KEEP_NEWLINES = {c: e for c, e in _ESCAPES.items() if c != ord("\n")}
_QUOTED = {**_ESCAPES, ord("\\"): "\\\\", ord('"'): '\\"'}
# JSON may carry DEL and C1 raw; \u escapes keep the same value.
_JSON = {c: f"\\u{c:04x}" for c in _ESCAPES if c >= 0x7F}


def printable(text: str | bytes, *, multiline: bool = False) -> str:
    """``text`` with every control character escaped (``\\x1b``, ``\\r``, ``\\x9b``).

    Bytes are decoded as UTF-8, invalid bytes shown as ``\\xNN``.  With
    ``multiline`` newlines are kept, for messages that quote several lines.
    """
    if isinstance(text, bytes):
        text = text.decode(errors="backslashreplace")
    return text.translate(_ESCAPES_KEEP_NEWLINES if multiline else _ESCAPES)


def quoted(text: str) -> str:
    """``text`` as a double-quoted C-like string literal with controls escaped."""
    return '"' + text.translate(_QUOTED) + '"'


def json_safe(line: str) -> str:
    """A JSON text with DEL and C1 characters written as ``\\u`` escapes (same value).

    JSON encoders escape C0 controls already; a terminal would still act on C1.
    """
    return line.translate(_JSON)
