"""Batch handlers of observe-only hooks: one call per batch, a light view per event.

A hook registered with ``read_only=True, batch=True`` is called as
``await handler(events)``: ``events`` is a read-only sequence of
:class:`ObservedSyscall`, the events of one drain of the rings (at most 256,
in ring order) that passed the hook's filters on the host.  Each view wraps
the validated :class:`~syscalls_async.portal.types.RawEvent` and what the
dispatcher knows of its syscall (:class:`SyscallKind`, shared by every event
of that syscall); it builds nothing until a field is read, so a handler that
reads two fields of each event pays for two.

Why: a per-event handler costs a user event (``SyscallEvent`` with ``Args``,
``Task``, ``Regs``, the write guard), a context switch of ``current_trap`` and
a handler call per event, about 5 µs of CPython each (see BENCHMARKS.md,
Round 4 (g)); a watcher that counts, aggregates or forwards events does not
need any of it.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import ObserveOnlyError
from ..portal.abi import C
from ..portal.trap import ObservedTrap
from ..portal.types import CapturedString, Phase, RawEvent
from .abi32 import ArgLayout
from .event import Task
from .prototypes import RETVAL, SyscallPrototype

_NARGS = C.SA_MAX_ARGS
_ZEROS = (0,) * _NARGS
_NO_STRINGS: tuple[CapturedString | None, ...] = (None,) * _NARGS
_signed = RETVAL.value


class SyscallKind:
    """What every event of one syscall in one ABI shares: name, prototype,
    how each argument register is read as the prototype's C type."""

    __slots__ = ("abi", "converters", "layout", "name", "proto")

    def __init__(self, proto: SyscallPrototype, abi: str) -> None:
        self.proto = proto
        self.name = proto.name
        self.abi = abi
        self.layout: ArgLayout | None = proto.layout
        argc = proto.nargs if proto.known and proto.prototype else C.SA_MAX_ARGS
        self.converters: tuple[Callable[[int], int], ...] = tuple(
            proto.domain(i).value for i in range(argc)
        )


class ObservedSyscall:
    """One observed syscall as a batch handler sees it (read-only).

    - ``name`` (``"sys_openat"``), ``nr`` (in the ``abi``'s table), ``abi``
      (``"x86_64"``, or ``"ia32"`` for a 32-bit program), ``proto``;
    - ``phase`` (``"enter"`` or ``"return"``), ``is_enter``, ``restarted``
      (a return whose call the kernel runs again);
    - the task: ``comm``, ``tid`` (thread id), ``pid`` (process id, as ``ps``
      shows it), ``task`` (a :class:`~.event.Task`, as ``syscall.task``);
    - ``args``: the prototype's arguments read as their C types (signed where
      the type is; a 32-bit guest's register pair joined), as the per-event
      handler's unpacked arguments; ``words``: the six raw argument registers;
      on a return both are the enter's (the guest pairs them);
    - ``retval``: on a return the result (signed), on an enter ``None``;
    - ``strings``: per argument, the :class:`~syscalls_async.portal.types.CapturedString`
      the guest captured at the call (``data``, ``text``, ``truncated``,
      ``fault``), ``None`` where the prototype marks no user string.
    """

    __slots__ = ("_kind", "_raw")

    def __init__(self, raw: RawEvent, kind: SyscallKind) -> None:
        self._raw = raw
        self._kind = kind

    @property
    def raw(self) -> RawEvent:
        """The validated event as the guest sent it."""
        return self._raw

    @property
    def name(self) -> str:
        return self._kind.name

    @property
    def nr(self) -> int:
        return self._raw.nr

    @property
    def abi(self) -> str:
        return self._kind.abi

    @property
    def proto(self) -> SyscallPrototype:
        return self._kind.proto

    @property
    def phase(self) -> str:
        return "enter" if self._raw.phase is Phase.ENTER else "return"

    @property
    def is_enter(self) -> bool:
        return self._raw.phase is Phase.ENTER

    @property
    def restarted(self) -> bool:
        return self._raw.restarted

    @property
    def comm(self) -> str:
        return self._raw.comm

    @property
    def tid(self) -> int:
        return self._raw.pid

    @property
    def pid(self) -> int:
        return self._raw.tgid

    @property
    def task(self) -> Task:
        raw = self._raw
        return Task(raw.comm, raw.pid, raw.tgid)

    @property
    def words(self) -> tuple[int, ...]:
        words = self._raw.args
        return words if len(words) == _NARGS else (words + _ZEROS)[:_NARGS]

    @property
    def args(self) -> tuple[int, ...]:
        kind = self._kind
        words = self._raw.args
        if len(words) != _NARGS:  # a ring record always has six; a built event may not
            words = (words + _ZEROS)[:_NARGS]
        if kind.layout is not None:
            words = tuple(kind.layout.join(list(words)))
        return tuple([convert(words[i]) for i, convert in enumerate(kind.converters)])

    @property
    def retval(self) -> int | None:
        raw = self._raw
        return None if raw.phase is Phase.ENTER else _signed(raw.retval)

    @property
    def strings(self) -> tuple[CapturedString | None, ...]:
        strings = self._raw.strings
        if len(strings) != C.SA_MAX_ARGS:
            return _NO_STRINGS
        layout = self._kind.layout
        # the guest captures per register word: on a 32-bit ABI an argument
        # after a 64-bit one is a word further on
        return strings if layout is None else layout.per_argument(strings)

    def __repr__(self) -> str:
        raw = self._raw
        args = ", ".join(f"{v:#x}" for v in self.words)
        ret = "" if self.retval is None else f" = {self.retval}"
        return f"<{self.name} {self.phase} by {raw.comm!r}[{raw.pid}] ({args}){ret}>"


class BatchTrap(ObservedTrap):
    """What ``plugins.mem`` reaches from a batch handler: nothing.  Every request
    raises :class:`ObserveOnlyError` saying where the captured data is."""

    def __init__(self) -> None:
        self.hook_ids = ()

    def _refuse(self, what: str) -> ObserveOnlyError:
        return ObserveOnlyError(
            f"{what} is not available to a batch handler (read_only=True, batch=True): its "
            "events' guest tasks did not wait, so only what was captured at each call is "
            "known (event.args, and the user strings the prototype marks in event.strings); "
            "register the hook without read_only and batch to read guest memory"
        )

    def capture(self, addr: int) -> tuple[int, CapturedString] | None:
        return None


#: the trap a batch handler runs with (one for all: it holds nothing)
BATCH_TRAP = BatchTrap()
