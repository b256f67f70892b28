"""What a handler receives: ``regs``, ``proto`` and the ``syscall`` event."""

from __future__ import annotations

from collections.abc import Iterator, MutableSequence
from dataclasses import dataclass
from typing import Any, overload

from ..errors import InvalidType, InvalidValue, ReadOnlyHookError
from ..portal.abi import MASK64
from ..portal.arch import X86_64, ArchInfo
from ..portal.trap import word64
from ..portal.types import CapturedString
from .abi32 import ArgLayout
from .prototypes import RETVAL


@dataclass(frozen=True)
class Task:
    """The guest task that made the syscall (``pid`` is the thread id, ``tgid`` the process)."""

    comm: str
    pid: int
    tgid: int


class WriteGuard:
    """Refuses changes to the call while a ``read_only`` handler runs, and counts them."""

    def __init__(self) -> None:
        self.handler: str | None = None  # the read-only handler running now
        self.refused = 0

    def check(self, what: str) -> None:
        if self.handler is not None:
            self.refused += 1
            raise ReadOnlyHookError(
                f"handler {self.handler} is registered with read_only=True: it cannot set "
                f"{what} (the change is not applied); register it without read_only to "
                "change the call"
            )


class Args(MutableSequence[int]):
    """The syscall's six arguments; assigning one changes what the syscall runs with.

    On a 64-bit guest argument ``i`` is argument register ``i``.  On a 32-bit
    one (a ``layout``, see :mod:`.abi32`) they are the prototype's arguments:
    a 64-bit argument held in a register pair is one 64-bit value here, and
    assigning it changes both registers; the entries after the prototype's
    arguments are the registers of the same index no argument occupies (0,
    and not assignable, where one does).
    """

    def __init__(self, values: tuple[int, ...], layout: ArgLayout | None = None) -> None:
        words = list(values) + [0] * (6 - len(values))
        #: the register words as the guest sent them
        self.words = tuple(words)
        self.layout = layout
        self._values = words if layout is None else layout.join(words)
        self.changed: set[int] = set()
        self.guard = WriteGuard()

    @overload
    def __getitem__(self, i: int) -> int: ...
    @overload
    def __getitem__(self, i: slice) -> list[int]: ...
    def __getitem__(self, i: int | slice) -> int | list[int]:
        return self._values[i]

    def __setitem__(self, i: Any, v: Any) -> None:
        if isinstance(i, slice):
            raise InvalidType("assign syscall arguments one at a time")
        if isinstance(v, bool) or not isinstance(v, int):
            raise InvalidType(f"a syscall argument is an int, not {type(v).__name__}")
        idx = range(6)[i]
        self.guard.check(f"syscall.args[{idx}]")
        if self.layout is None:
            self._values[idx] = v & MASK64
        else:
            bits = self.layout.width(idx)
            if not bits:
                raise InvalidValue(
                    f"syscall.args[{idx}] is in no argument register of this 32-bit guest "
                    "(a register pair or its padding holds another argument there)"
                )
            self._values[idx] = v & ((1 << bits) - 1)
        self.changed.add(idx)

    def changed_words(self) -> list[tuple[int, int]]:
        """The (register index, value) pairs the changes put into the guest's
        argument registers: one per changed argument, two for a register pair."""
        if self.layout is None:
            return [(i, self._values[i]) for i in sorted(self.changed)]
        out: list[tuple[int, int]] = []
        for i in sorted(self.changed):
            out += self.layout.split(i, self._values[i])
        return out

    def word(self, reg: int) -> int:
        """Argument register ``reg`` (its current value, changes included)."""
        if self.layout is None:
            return self._values[reg]
        words = list(self.words)
        for j, w in self.changed_words():
            words[j] = w
        return words[reg]

    def set_word(self, reg: int, value: int) -> None:
        """Change argument register ``reg``; on a 32-bit guest that changes the
        argument it holds (one half of a pair changes half of the value)."""
        if self.layout is None:
            self[reg] = value
            return
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidType(f"a register is an int, not {type(value).__name__}")
        try:
            i, v = self.layout.with_word(self._values, reg, value)
        except InvalidValue:
            raise InvalidValue(
                f"argument register {reg} holds no argument of this syscall (it is the "
                "padding before a 64-bit argument's register pair)"
            ) from None
        self[i] = v

    def __delitem__(self, i: Any) -> None:
        raise InvalidType("syscall arguments cannot be deleted")

    def insert(self, index: int, value: int) -> None:
        raise InvalidType("syscall arguments cannot be inserted")

    def __len__(self) -> int:
        return 6

    def __iter__(self) -> Iterator[int]:
        return iter(self._values)

    def __repr__(self) -> str:
        return "[" + ", ".join(f"{v:#x}" for v in self._values) + "]"


@dataclass
class SyscallEvent:
    """One syscall as handlers see it; handlers of the same event share it.

    Assign ``args[i]`` to change an argument (on entry), set ``skip_syscall``
    and ``retval`` to skip the call and return ``retval`` instead, or set
    ``retval`` on return to change what the task sees (not on a
    ``restarted`` return: that call has no result yet).
    """

    name: str
    nr: int
    pc: int
    sp: int
    argc: int
    args: Args
    task: Task
    phase: str  # "enter" or "return"
    retval: int = 0
    skip_syscall: bool = False
    #: on return: a signal interrupted the call and the kernel runs it again
    #: (a new enter follows); ``retval`` is the kernel's -ERESTART* code and
    #: cannot be changed
    restarted: bool = False
    #: an observe-only event (a ``read_only`` hook's): the task did not wait
    observed: bool = False
    #: observe-only events: per argument, the user string the guest captured
    #: at the call (``None`` where the prototype marks no string); see
    #: :class:`~syscalls_async.portal.types.CapturedString`
    strings: tuple[CapturedString | None, ...] = (None,) * 6

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("skip_syscall", "retval") and "args" in self.__dict__:
            self.args.guard.check(f"syscall.{name}")
        object.__setattr__(self, name, value)

    @classmethod
    def build(
        cls,
        name: str,
        nr: int,
        pc: int,
        sp: int,
        argc: int,
        args: Args,
        task: Task,
        phase: str,
        retval: int,
        restarted: bool,
        observed: bool,
        strings: tuple[CapturedString | None, ...],
    ) -> SyscallEvent:
        """The same as the constructor, for the dispatcher's hot path: the fields
        are set at once, not one by one through the write guard (which has
        nothing to refuse before any handler ran)."""
        event = object.__new__(cls)
        object.__setattr__(event, "__dict__", {
            "name": name, "nr": nr, "pc": pc, "sp": sp, "argc": argc, "args": args,
            "task": task, "phase": phase, "retval": retval, "skip_syscall": False,
            "restarted": restarted, "observed": observed, "strings": strings,
        })  # fmt: skip
        return event

    @property
    def guard(self) -> WriteGuard:
        """Shared with ``args``: on while a ``read_only`` handler runs."""
        return self.args.guard

    @property
    def pid(self) -> int:
        """The process id (tgid) of the task, as ``ps`` shows it."""
        return self.task.tgid

    @property
    def is_enter(self) -> bool:
        return self.phase == "enter"


class Regs:
    """The task's user registers at the syscall, by the names of the guest's
    architecture (:class:`~syscalls_async.portal.arch.ArchInfo`; on x86_64
    ``regs.rdi``), and ``regs.pc``, ``regs.sp`` on every architecture.

    Writing an argument register (on x86_64 rdi, rsi, rdx, r10, r8, r9) changes
    that argument on entry; writing the return register (``rax``) on return
    changes the return value.  Other registers are read-only: the portal does
    not carry them back.
    """

    __slots__ = ("_arch", "_event", "_raw")

    def __init__(
        self, values: tuple[int, ...], event: SyscallEvent, arch: ArchInfo = X86_64
    ) -> None:
        # the registers by name are built when a handler asks for one
        object.__setattr__(self, "_raw", values)
        object.__setattr__(self, "_event", event)
        object.__setattr__(self, "_arch", arch)

    @property
    def _values(self) -> dict[str, int]:
        raw: tuple[int, ...] = object.__getattribute__(self, "_raw")
        arch: ArchInfo = object.__getattribute__(self, "_arch")
        return dict(zip(arch.regs, raw, strict=False))

    def __getattr__(self, name: str) -> int:
        event: SyscallEvent = object.__getattribute__(self, "_event")
        arch: ArchInfo = object.__getattribute__(self, "_arch")
        # on return the return register first: on aarch64, ARM and MIPS it is
        # also an argument register (x0, r0), and by then holds the result
        if name == arch.ret_reg and event.phase == "return":
            return event.retval & MASK64
        if name in arch.arg_regs:
            return event.args.word(arch.arg_regs.index(name))
        values = self._values
        if name in ("pc", "ip"):
            return values.get(arch.pc_reg, event.pc)
        if name == "sp":
            return values.get(arch.sp_reg, event.sp)
        try:
            return values[name]
        except KeyError:
            raise AttributeError(f"no register {name!r}; known: {', '.join(arch.regs)}") from None

    def __setattr__(self, name: str, value: int) -> None:
        event: SyscallEvent = object.__getattribute__(self, "_event")
        arch: ArchInfo = object.__getattribute__(self, "_arch")
        if name == arch.ret_reg and event.phase == "return":
            event.retval = RETVAL.value(word64(value, arch.ret_reg))
        elif name in arch.arg_regs:
            event.args.set_word(arch.arg_regs.index(name), value)
        else:
            raise AttributeError(
                f"register {name} is read-only here: change arguments "
                f"({', '.join(arch.arg_regs)}) on entry or {arch.ret_reg} on return"
            )

    def __repr__(self) -> str:
        values = self._values
        return "Regs(" + ", ".join(f"{k}={v:#x}" for k, v in values.items()) + ")"
