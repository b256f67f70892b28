"""What the tracer produces: :class:`TraceRecord`, the schema of ``trace --json``.

Each line of ``syscalls-async trace --json`` is one record encoded as JSON;
``syscalls-async trace --schema`` prints its JSON Schema.  ``version`` changes
whenever a field changes meaning or goes away (new fields may be added).
Decode a line with ``msgspec.json.decode(line, type=TraceRecord)``.

Each argument is a tagged value (``"kind"``): ``num`` (a number, with its C
type's ``value`` and how strace names it), ``ptr`` (an address), ``str`` (a C
string read at entry), ``bytes`` (a buffer: ``data`` is the part shown,
``size`` its full length), ``strings`` (argv; envp only counted), ``out`` (what
the call filled in, decoded as strace shows it), ``unreadable`` (an address the
guest could not read).  Every one has ``raw`` (the register) and ``text``
(strace's rendering, printable ASCII).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import msgspec

from ..syscalls.names import normalize
from . import strace_decode as sd

#: the version of the record layout (``version`` in every record)
SCHEMA_VERSION = 1


class _Arg(msgspec.Struct, frozen=True, tag_field="kind", forbid_unknown_fields=True):
    raw: int
    text: str


class Num(_Arg, frozen=True, tag="num"):
    """A number: ``value`` as its C type (``-100``), ``text`` as strace names it (``AT_FDCWD``)."""

    value: int


class Ptr(_Arg, frozen=True, tag="ptr"):
    """An address the tracer does not follow."""


class Str(_Arg, frozen=True, tag="str"):
    """A C string read at entry (``value`` decoded as UTF-8, bad bytes escaped)."""

    value: str
    truncated: bool = False


class Bytes(_Arg, frozen=True, tag="bytes"):
    """A buffer: ``data`` the bytes shown (at most ``-s``), ``size`` its whole length."""

    data: bytes
    size: int


class Strings(_Arg, frozen=True, tag="strings"):
    """A NULL-terminated array of strings: ``value`` (argv), or only ``count`` (envp)."""

    value: list[str]
    count: int


class Out(_Arg, frozen=True, tag="out"):
    """What the call wrote for the task (a ``stat``, pipe fds, a wait status), as ``text``."""


class Unreadable(_Arg, frozen=True, tag="unreadable"):
    """An address whose memory the guest could not read."""


Arg = Num | Ptr | Str | Bytes | Strings | Out | Unreadable


class TraceRecord(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One traced syscall.

    ``phase`` is ``"call"`` for a call that returned (``retval`` its result)
    and ``"enter"`` for one that never returns (``exit``, ``exit_group``).
    ``args`` holds each argument as a number (its C type's value) or, for
    strings, the text read at entry; ``decoded`` the arguments strace shows as
    tagged values (see the module; it leaves out what strace does, such as
    open's mode without ``O_CREAT``).  ``time`` is the host's clock when the entry was
    handled, ``duration`` the host's seconds from entry to return.
    """

    pid: int
    tid: int
    comm: str
    nr: int
    name: str
    args: list[int | str]
    retval: int | None  # None: the call does not return
    error: str | None = None  # errno name when retval is -errno
    #: a signal interrupted the call and the kernel runs it again (a new record follows)
    restarted: bool = False
    decoded: list[Arg] = []
    time: float = 0.0
    duration: float | None = None
    phase: Literal["call", "enter"] = "call"
    #: the call did not run: a fault injection rule gave its result
    injected: bool = False
    #: with ``-y``: the path of the descriptor the call returned
    fd_path: str | None = None
    version: int = SCHEMA_VERSION
    #: "" for the guest's own ABI, else the compat ABI the call came through
    #: (``"ia32"``: a 32-bit program on the x86_64 guest; ``nr`` is its number there)
    abi: str = ""

    def call(self, *, colour: bool = False) -> str:
        """``name(args) = result``, as strace prints it (guest text escaped);
        ``colour``: the name bold, a failure red, an injected result yellow."""
        if self.decoded:
            args = ", ".join(a.text for a in self.decoded)
        else:
            args = ", ".join(_plain(a) for a in self.args)
        name = sd.strace_name(normalize(self.name))
        shown = sd.result(name, self.retval, self.restarted, self.fd_path)
        mark = " (INJECTED)" if self.injected else ""
        if colour:
            name = _paint(name, _BOLD)
            if self.injected:
                shown, mark = _paint(shown, _YELLOW), _paint(mark, _YELLOW)
            elif self.error is not None:
                shown = _paint(shown, _RED)
        return f"{name}({args}) = {shown}{mark}"

    def format(
        self,
        *,
        pid_prefix: bool = True,
        timestamps: bool = False,
        durations: bool = False,
        colour: bool = False,
    ) -> str:
        """The strace line: ``[pid N] `` (with ``pid_prefix``), ``HH:MM:SS.uuuuuu ``
        (``timestamps``, strace's ``-tt``), ``[ia32] `` for a call of the compat
        ABI, the call, `` <seconds>`` (``durations``, ``-T``); ``colour`` for a
        terminal (see :meth:`call`)."""
        parts = []
        if pid_prefix:
            prefix = f"[pid {self.tid}]"
            parts.append((_paint(prefix, _CYAN) if colour else prefix) + " ")
        if timestamps:
            parts.append(_stamp(self.time) + " ")
        if self.abi:
            parts.append(f"[{self.abi}] ")
        parts.append(self.call(colour=colour))
        if durations and self.duration is not None:
            parts.append(f" <{self.duration:.6f}>")
        return "".join(parts)


@dataclass
class _Open:
    """A call that entered and has not returned: its line's start, when it entered,
    and whether that start was printed (``<unfinished ...>``)."""

    head: str
    time: float
    shown: bool = False


class LinePrinter:
    """strace's lines when tasks interleave: a call still running when another
    task's line is printed is shown as ``read(0, <unfinished ...>``, and its
    end later as ``<... read resumed>"data", 4096) = 10``.

    Feed it :meth:`entered` (the :class:`~.trace.Tracer`'s ``entered``
    callback) and :meth:`record` (its ``emit``); ``write`` gets each line.
    Lines start with ``[pid TID]`` once more than one task was seen.
    """

    def __init__(
        self,
        write: Callable[[str], None],
        *,
        timestamps: bool = False,
        durations: bool = False,
        colour: bool = False,
    ) -> None:
        self.write = write
        self.timestamps, self.durations, self.colour = timestamps, durations, colour
        self._open: dict[int, _Open] = {}
        self._tids: set[int] = set()

    def entered(self, tid: int, head: str, when: float) -> None:
        """Task ``tid`` entered a call whose line starts with ``head``."""
        self._tids.add(tid)
        self._open[tid] = _Open(head, when)

    def record(self, record: TraceRecord) -> None:
        """A call ended: print what others left unfinished, then its line."""
        self._tids.add(record.tid)
        for tid, other in self._open.items():
            if tid != record.tid and not other.shown:
                other.shown = True
                gap = "" if other.head.endswith((" ", "(")) else " "
                self.write(
                    f"{self._prefix(tid)}{self._stamp(other.time)}{other.head}{gap}<unfinished ...>"
                )
        call = self._open.pop(record.tid, None)
        if call is None or not call.shown:
            self.write(
                record.format(
                    pid_prefix=len(self._tids) > 1,
                    timestamps=self.timestamps,
                    durations=self.durations,
                    colour=self.colour,
                )
            )
            return
        name = sd.strace_name(normalize(record.name))
        tail = record.call()[len(call.head) :]
        took = f" <{record.duration:.6f}>" if self.durations and record.duration is not None else ""
        ended = record.time + (record.duration or 0.0)
        self.write(
            f"{self._prefix(record.tid)}{self._stamp(ended)}<... {name} resumed>{tail}{took}"
        )

    def _prefix(self, tid: int) -> str:
        if len(self._tids) < 2:
            return ""
        prefix = f"[pid {tid}]"
        return (_paint(prefix, _CYAN) if self.colour else prefix) + " "

    def _stamp(self, when: float) -> str:
        return _stamp(when) + " " if self.timestamps else ""


def _stamp(when: float) -> str:
    """``HH:MM:SS.uuuuuu``, strace's ``-tt``."""
    return f"{time.strftime('%H:%M:%S', time.localtime(when))}.{int(when % 1 * 1e6):06d}"


_BOLD, _RED, _YELLOW, _CYAN = "1", "31", "33", "36"


def _paint(text: str, sgr: str) -> str:
    return f"\x1b[{sgr}m{text}\x1b[0m"


def _plain(a: int | str) -> str:
    if isinstance(a, str):
        data = a.encode(errors="surrogateescape")
        return sd.escape(data, limit=len(data))
    return f"{a:#x}" if a > 0xFFFF or a < -0xFFFF else str(a)


def schema() -> dict[str, object]:
    """The JSON Schema of one ``trace --json`` line."""
    return msgspec.json.schema(TraceRecord)
