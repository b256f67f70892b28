"""Fault injection for the tracer, in strace's ``-e inject=`` spirit.

A rule names syscalls and what they return instead of running::

    openat:error=ENOENT                 every openat fails with ENOENT
    openat,open:error=EACCES:when=2+    from the second matching call on
    read:retval=0:when=3                only the third read returns 0 (end of file)
    openat:error=EACCES:path=/etc/*     only opens of a path matching the glob

``when=N`` is the Nth matching call only, ``N+`` the Nth and every later one,
``N+S`` the Nth and then every Sth (strace's forms); without it every matching
call.  Calls are counted per rule over all traced tasks, and only calls that
match the rule's ``path`` are counted.  The call is skipped in the guest (a
blocking hook's verdict): it never runs, and the task sees the result.

Example::

    >>> rule = parse_injection("openat:error=ENOENT:when=2+")
    >>> rule.retval, [rule.fires(n) for n in (1, 2, 3)]
    (-2, [False, True, True])
"""

from __future__ import annotations

import fnmatch

import msgspec

from ..errors import InvalidValue
from ..syscalls.names import normalize
from ..syscalls.policy import parse_errno
from . import strace_decode as sd


class Injection(msgspec.Struct, frozen=True):
    """One rule: the ``syscalls`` it applies to, the ``retval`` the task sees
    (``-errno`` for ``error=``), which matching calls (``first``, then every
    ``step``-th; ``step`` 0 means only ``first``, and ``every`` from ``first`` on),
    and an optional shell-style ``path`` pattern."""

    syscalls: frozenset[str]
    retval: int
    first: int = 1
    step: int = 1
    path: str | None = None
    text: str = ""

    def fires(self, count: int) -> bool:
        """Whether the ``count``-th matching call (from 1) is injected."""
        if count < self.first:
            return False
        if self.step == 0:
            return count == self.first
        return (count - self.first) % self.step == 0

    def matches_path(self, path: str | None) -> bool:
        return self.path is None or (path is not None and fnmatch.fnmatchcase(path, self.path))


def parse_injection(text: str) -> Injection:
    """``SET:error=ERRNO|retval=N[:when=EXPR][:path=GLOB]``; InvalidValue (a
    ValueError) says what is wrong."""
    head, _, rest = text.partition(":")
    names: set[str] = set()
    for item in head.split(","):
        item = item.strip()
        if item.startswith("%") and item[1:] in sd.CLASSES:
            names.update(sd.kernel_name(n) for n in sd.CLASSES[item[1:]])
        elif item and all(c.isalnum() or c == "_" for c in item):
            names.add(sd.kernel_name(normalize(item)))
        else:
            raise InvalidValue(f"inject: not a syscall name or class: {item!r} in {text!r}")
    if not rest:
        raise InvalidValue(f"inject: {text!r} says no result (add :error=ENOENT or :retval=N)")
    retval: int | None = None
    first, step, path = 1, 1, None
    for part in rest.split(":"):
        key, sep, value = part.partition("=")
        if not sep or not value:
            raise InvalidValue(f"inject: {part!r} is not KEY=VALUE in {text!r}")
        if key in ("error", "retval") and retval is not None:
            raise InvalidValue(f"inject: give one of error= and retval=, once, in {text!r}")
        if key == "error":
            try:
                retval = -parse_errno(value)
            except InvalidValue as exc:
                raise InvalidValue(f"inject: {exc}") from None
        elif key == "retval":
            retval = _number(value, "retval", text)
            if not 0 <= retval < 1 << 63:
                raise InvalidValue(f"inject: retval must be 0 or more, not {value!r} (use error=)")
        elif key == "when":
            first, step = _when(value, text)
        elif key == "path":
            path = value
        else:
            raise InvalidValue(
                f"inject: unknown key {key!r} in {text!r} (known: error, retval, when, path)"
            )
    if retval is None:
        raise InvalidValue(f"inject: {text!r} says no result (add :error=ENOENT or :retval=N)")
    return Injection(frozenset(names), retval, first, step, path, text)


def _number(value: str, what: str, text: str) -> int:
    try:
        return int(value, 0)
    except ValueError:
        raise InvalidValue(f"inject: {what}={value!r} is not a number in {text!r}") from None


def _when(value: str, text: str) -> tuple[int, int]:
    """strace's ``N``, ``N+``, ``N+S`` as (first, step); step 0: only the first."""
    first_text, plus, step_text = value.partition("+")
    first = _number(first_text, "when", text)
    step = _number(step_text, "when", text) if step_text else (1 if plus else 0)
    if first < 1 or (plus and step < 1):
        raise InvalidValue(f"inject: when={value!r} needs numbers from 1 in {text!r}")
    return first, step
