"""Handlers driven without a guest: fake memory, fake traps, a fake guest.

A :class:`FakeGuest` builds syscall events by name, answers the handlers'
``plugins.mem`` (and ``plugins.portal``/``plugins.OSI``) requests from a
:class:`FakeMemory`, and runs each event through the session's own
:class:`~syscalls_async.syscalls.Dispatcher`: the registry's filters (checked
on the host, as a live session does), then the handlers in registration
order.  What comes back is the :class:`Verdict` the guest task would get.

Example::

    async def test_shadow_is_refused():
        with FakeGuest() as guest:
            guest.load_plugin_file("examples/file_access.py")
            verdict = await guest.syscall("openat", -100, "/etc/shadow", 0, 0, comm="cat")
            assert verdict.skipped and verdict.retval == -13
"""

from __future__ import annotations

import bisect
import errno
import functools
import struct
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import msgspec

from ..api.plugins import Plugin, Plugins, load_plugin_file, plugins
from ..api.record import fold_calls
from ..api.syscalls import load_prototypes, prototype_cache
from ..errors import (
    GuestMemoryError,
    HandlerError,
    IndexOutOfRange,
    InvalidType,
    InvalidValue,
    OutOfRange,
    StateError,
)
from ..machine import current_image
from ..portal.abi import MASK64, C
from ..portal.arch import X86_64
from ..portal.trap import PTRLIST_MAX, STR_MAX, ObservedTrap
from ..portal.types import CapturedString, FdInfo, Phase, ProcEntry, ProcInfo, RawEvent
from ..portal.types import Mapping as MemoryMapping
from ..syscalls.dispatch import Dispatcher, DispatchStats
from ..syscalls.policy import OnError, failure_policy
from ..syscalls.prototypes import PrototypeTable, SyscallPrototype

_MAX_ARGS = len(X86_64.arg_regs)
#: where the kit's fake tasks "run" (any values do; these look like x86_64 user space)
FAKE_PC, FAKE_SP = 0x401000, 0x7FFC0000
#: bytes of a user string an observed event captures (``SA_STR_CAP``)
CAPTURE: int = C.SA_STR_CAP
#: the guest kernel whose prototypes the kit ships (the bundled guest's)
BUNDLED_KERNEL = "6.1.0-amd64"

PhaseName = Literal["enter", "return"]
#: what an argument of :func:`fake_event` may be: a number (negative ones are
#: two's complement, as in a register), or something placed in fake memory
#: whose address is passed instead: a str/bytes (a C string), a list of
#: str/bytes (a NULL-terminated ``char *[]``, like argv)
ArgValue = int | str | bytes | Sequence[str | bytes]


# -- prototypes ---------------------------------------------------------------------------


@functools.cache
def bundled_prototypes() -> PrototypeTable:
    """The syscall prototypes of the bundled guest kernel (Debian's 6.1, x86_64).

    A snapshot of what that kernel's own metadata says, shipped with the package
    so that handlers can be tested before any guest was booted.
    """
    data = resources.files(__package__).joinpath(f"prototypes-{BUNDLED_KERNEL}.json")
    return PrototypeTable(msgspec.json.decode(data.read_bytes(), type=list[SyscallPrototype]))


def default_prototypes() -> PrototypeTable:
    """The prototypes the kit uses unless given others.

    Those cached for the current guest image (every session that boots an image
    writes them) when there are any, else :func:`bundled_prototypes`.  The two
    agree as long as the image runs the bundled kernel.
    """
    image = current_image()
    if image is not None:
        table = load_prototypes(prototype_cache(image.directory))
        if table is not None:
            return table
    return bundled_prototypes()


def _table(prototypes: PrototypeTable | Iterable[SyscallPrototype] | None) -> PrototypeTable:
    if prototypes is None:
        return default_prototypes()
    if isinstance(prototypes, PrototypeTable):
        return prototypes
    return PrototypeTable(prototypes)


# -- memory -------------------------------------------------------------------------------


class FakeMemory:
    """Guest memory for tests: regions of bytes at addresses; everything else faults.

    ``FakeMemory({0x5000: b"/etc/shadow\\0"})`` maps one region; :meth:`place_str`
    and friends put data at free addresses and return them.  Reads and writes
    must stay inside one region, as they would inside one mapping; any other
    access raises :class:`~syscalls_async.errors.GuestMemoryError` (EFAULT), as
    the guest does.  Writes change the region in place and are listed in
    :attr:`writes`.
    """

    def __init__(self, regions: Mapping[int, bytes] | None = None, *, base: int = 0x10000) -> None:
        self._starts: list[int] = []
        self._regions: dict[int, bytearray] = {}
        self._base = base
        #: every write, in order: (address, bytes written)
        self.writes: list[tuple[int, bytes]] = []
        for addr, data in (regions or {}).items():
            self[addr] = data

    def __setitem__(self, addr: int, data: bytes) -> None:
        """Map ``data`` at ``addr`` (a new region; overlapping another is an error)."""
        if not isinstance(addr, int) or not 0 <= addr <= MASK64:
            raise InvalidValue(f"an address is an int in [0, 2**64), not {addr!r}")
        if not isinstance(data, bytes | bytearray):
            raise InvalidType(f"a region holds bytes, not {type(data).__name__}")
        end = addr + len(data)
        i = bisect.bisect_right(self._starts, addr)
        before = self._starts[i - 1] if i else None
        after = self._starts[i] if i < len(self._starts) else None
        if (before is not None and before + len(self._regions[before]) > addr) or (
            after is not None and after < end
        ):
            raise InvalidValue(f"region {addr:#x}..{end:#x} overlaps one already mapped")
        self._starts.insert(i, addr)
        self._regions[addr] = bytearray(data)

    def __getitem__(self, addr: int) -> bytes:
        """The region that starts at ``addr``, as it is now (writes included)."""
        return bytes(self._regions[addr])

    def __contains__(self, addr: object) -> bool:
        return isinstance(addr, int) and self._find(addr) is not None

    def place(self, data: bytes) -> int:
        """Map ``data`` at a free address (after every region, with an unmapped gap)."""
        top = self._base
        if self._starts:
            last = self._starts[-1]
            top = max(top, last + len(self._regions[last]) + 16)
        addr = (top + 15) & ~15
        self[addr] = data
        return addr

    def place_str(self, text: str | bytes) -> int:
        """A C string (UTF-8, NUL-terminated) at a free address."""
        raw = text.encode() if isinstance(text, str) else bytes(text)
        return self.place(raw + b"\0")

    def place_ptrlist(self, items: Iterable[str | bytes]) -> int:
        """A NULL-terminated ``char *[]`` (argv, envp) of placed strings; its address."""
        pointers = [self.place_str(item) for item in items]
        return self.place(struct.pack(f"<{len(pointers) + 1}Q", *pointers, 0))

    def _find(self, addr: int) -> tuple[int, bytearray] | None:
        i = bisect.bisect_right(self._starts, addr)
        if not i:
            return None
        start = self._starts[i - 1]
        region = self._regions[start]
        return (start, region) if addr < start + len(region) else None

    def _span(self, addr: int, size: int, what: str) -> tuple[bytearray, int]:
        found = self._find(addr)
        if found is None:
            raise GuestMemoryError(addr, errno.EFAULT, what)
        start, region = found
        if addr + size > start + len(region):
            raise GuestMemoryError(start + len(region), errno.EFAULT, what)
        return region, addr - start

    def read(self, addr: int, size: int) -> bytes:
        """``size`` bytes at ``addr``."""
        if size == 0:
            return b""
        region, at = self._span(addr, size, "read")
        return bytes(region[at : at + size])

    def read_cstring(self, addr: int, max_len: int = STR_MAX) -> bytes:
        """The bytes at ``addr`` up to the NUL (without it), at most ``max_len``."""
        region, at = self._span(addr, 1, "string read")
        data = region[at:]
        nul = data.find(b"\0", 0, max_len)
        if nul >= 0:
            return bytes(data[:nul])
        if len(data) >= max_len:
            return bytes(data[:max_len])
        raise GuestMemoryError(addr + len(data), errno.EFAULT, "string read")

    def read_str(self, addr: int, max_len: int = STR_MAX) -> str:
        """The C string at ``addr`` decoded as ``plugins.mem.read_str`` does."""
        return self.read_cstring(addr, max_len).decode("utf-8", "surrogateescape")

    def write(self, addr: int, data: bytes) -> None:
        """Change the bytes at ``addr`` (inside one region)."""
        if data:
            region, at = self._span(addr, len(data), "write")
            region[at : at + len(data)] = data
        self.writes.append((addr, bytes(data)))


# -- events and traps ---------------------------------------------------------------------


def fake_event(
    syscall: str | int,
    *args: ArgValue,
    phase: PhaseName | Phase = "enter",
    retval: int = 0,
    comm: str = "test",
    pid: int = 100,
    tid: int | None = None,
    prototypes: PrototypeTable | None = None,
    memory: FakeMemory | None = None,
) -> RawEvent:
    """A trapped syscall as the portal would hand it to the dispatcher.

    ``syscall`` is a name (``openat``, ``sys_openat``) or a number.  ``args`` are
    the six argument registers in order (missing ones are 0; values past the
    prototype's arguments are what the unused registers hold); a str, bytes or
    list of them is placed in ``memory`` and its address passed.  ``pid`` is the process id
    (``syscall.pid``), ``tid`` the thread id (``syscall.task.pid``, default
    ``pid``); ``retval`` is the result a return event carries.
    """
    table = prototypes if prototypes is not None else default_prototypes()
    proto = _resolve(syscall, table)
    if len(args) > _MAX_ARGS:
        raise InvalidValue(f"a syscall has at most {_MAX_ARGS} arguments, {len(args)} given")
    if isinstance(phase, str):
        if phase not in ("enter", "return"):
            raise InvalidValue(f"phase is 'enter' or 'return', not {phase!r}")
        phase = Phase.ENTER if phase == "enter" else Phase.RETURN
    raw_args = tuple(_arg(a, i, memory) for i, a in enumerate(args)) + (0,) * (
        _MAX_ARGS - len(args)
    )
    _check_int(retval, "retval")
    retval &= MASK64
    arch = X86_64  # the fake guest is the default guest's architecture
    regs = dict.fromkeys(arch.regs, 0)
    regs.update(zip(arch.arg_regs, raw_args, strict=True))
    regs.update({arch.nr_reg: proto.nr, arch.pc_reg: FAKE_PC, arch.sp_reg: FAKE_SP})
    # the return register holds -ENOSYS at entry, as on Linux, and the result on return
    regs[arch.ret_reg] = retval if phase is Phase.RETURN else -errno.ENOSYS & MASK64
    return RawEvent(
        slot=0, epoch=1, seq=1, phase=phase, nr=proto.nr,
        pid=pid if tid is None else tid, tgid=pid, comm=comm,
        args=raw_args, retval=retval, pc=FAKE_PC, sp=FAKE_SP, matched=(),
        regs=tuple(regs[name] for name in arch.regs),
    )  # fmt: skip


def _resolve(syscall: str | int, table: PrototypeTable) -> SyscallPrototype:
    if isinstance(syscall, bool) or not isinstance(syscall, int | str):
        raise InvalidType(f"a syscall is a name or a number, not {syscall!r}")
    if isinstance(syscall, int):
        if syscall < 0:
            raise InvalidValue(f"a syscall number is not negative: {syscall}")
        return table.by_nr(syscall)
    proto = table.by_name(syscall)
    if proto is None:
        close = table.close_matches(syscall)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise InvalidValue(f"no syscall named {syscall!r} in the prototype table{hint}")
    return proto


def _check_int(value: object, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidType(f"{what} is an int, not {type(value).__name__}")
    if not -(1 << 63) <= value <= MASK64:
        raise OutOfRange(f"{what} {value} does not fit in 64 bits")


def _arg(value: ArgValue, index: int, memory: FakeMemory | None) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        _check_int(value, f"argument {index}")
        return value & MASK64
    if isinstance(value, str | bytes):
        return _memory_for(memory, index).place_str(value)
    if isinstance(value, list | tuple) and all(isinstance(v, str | bytes) for v in value):
        return _memory_for(memory, index).place_ptrlist(value)
    raise InvalidType(
        f"argument {index}: expected an int, a str/bytes or a list of them, not {value!r}"
    )


def _memory_for(memory: FakeMemory | None, index: int) -> FakeMemory:
    if memory is None:
        raise InvalidType(f"argument {index} is placed in memory: give memory= (a FakeMemory)")
    return memory


class Verdict(msgspec.Struct, frozen=True):
    """What the guest task gets for one event.

    ``skipped``: the syscall does not run (entry only).  ``retval``: the value
    the host chose (a skip's at entry, a changed result on return; signed, as the
    task sees it), None when it chose none.  ``args``: the six arguments the syscall runs with;
    ``changed_args``: those a handler changed, by index.  ``handlers_run``: how
    many handlers were called (0 when no hook's filters matched).
    """

    phase: PhaseName
    skipped: bool = False
    retval: int | None = None
    args: tuple[int, ...] = ()
    changed_args: dict[int, int] = {}
    handlers_run: int = 0

    @property
    def continued(self) -> bool:
        """The syscall runs (perhaps with changed arguments)."""
        return not self.skipped


class FakeTrap:
    """A trap answered from a :class:`FakeMemory` instead of a waiting guest task.

    It offers what the dispatcher and ``plugins.mem``/``plugins.portal`` use of
    a live :class:`~syscalls_async.portal.Trap`, and records the verdict calls
    (:attr:`calls`) and requests (:attr:`requests`) made of it.
    """

    def __init__(
        self,
        event: RawEvent,
        memory: FakeMemory | None = None,
        hook_ids: tuple[int, ...] = (),
        *,
        proc: ProcInfo | None = None,
        mappings: Sequence[MemoryMapping] = (),
        fds: Sequence[FdInfo] = (),
        processes: Sequence[ProcEntry] = (),
    ) -> None:
        self.event = event
        #: the hooks the guest's prefilter would have said matched
        self.hook_ids = hook_ids
        self.memory = memory if memory is not None else FakeMemory()
        self.proc = proc or ProcInfo(
            pid=event.pid, tgid=event.tgid, ppid=1, uid=0, comm=event.comm,
            exe=f"/bin/{event.comm}", cwd="/", argv=(event.comm,),
        )  # fmt: skip
        self._mappings = list(mappings)
        self._fds = list(fds)
        self._processes = list(processes)
        #: verdict calls in the order made: ("skip", retval), ("set_arg", i, v), ("set_retval", v)
        self.calls: list[tuple[Any, ...]] = []
        #: memory and process requests in the order made, e.g. ("read_bytes", addr, size)
        self.requests: list[tuple[Any, ...]] = []

    # -- verdict (the same checks as a live trap) ----------------------------------------

    def skip(self, retval: int) -> None:
        if self.event.phase is not Phase.ENTER:
            raise InvalidValue("only an enter trap can skip the syscall")
        self.calls.append(("skip", retval))

    def set_arg(self, index: int, value: int) -> None:
        if self.event.phase is not Phase.ENTER:
            raise InvalidValue("arguments can only change at enter")
        if not 0 <= index < _MAX_ARGS:
            raise IndexOutOfRange(f"a syscall has {_MAX_ARGS} arguments: no index {index}")
        self.calls.append(("set_arg", index, value & MASK64))

    def set_retval(self, value: int) -> None:
        if self.event.phase is not Phase.RETURN:
            raise InvalidValue("set_retval is for return traps; use skip() at enter")
        self.calls.append(("set_retval", value))

    def verdict(self, handlers_run: int = 0) -> Verdict:
        """The verdict the calls so far amount to."""
        skipped, retval, changed = fold_calls(self.calls)
        args = tuple(changed.get(i, a) for i, a in enumerate(self.event.args))
        return Verdict(
            phase="enter" if self.event.phase is Phase.ENTER else "return",
            skipped=skipped,
            retval=retval,
            args=args,
            changed_args={} if skipped else changed,
            handlers_run=handlers_run,
        )

    # -- requests -------------------------------------------------------------------------

    async def read_bytes(self, addr: int, size: int) -> bytes:
        self.requests.append(("read_bytes", addr, size))
        return self.memory.read(addr, size)

    async def read_cstring(self, addr: int, max_len: int = STR_MAX) -> bytes:
        self.requests.append(("read_cstring", addr, max_len))
        return self.memory.read_cstring(addr, max_len)

    async def read_str(self, addr: int, max_len: int = STR_MAX) -> str:
        self.requests.append(("read_str", addr, max_len))
        return self.memory.read_str(addr, max_len)

    async def read_ptrlist(self, addr: int, max_entries: int = PTRLIST_MAX) -> list[str]:
        self.requests.append(("read_ptrlist", addr, max_entries))
        out: list[str] = []
        while len(out) < max_entries:
            (ptr,) = struct.unpack("<Q", self.memory.read(addr + 8 * len(out), 8))
            if not ptr:
                break
            out.append(self.memory.read_str(ptr))
        return out

    async def write_bytes(self, addr: int, data: bytes) -> None:
        self.requests.append(("write_bytes", addr, bytes(data)))
        self.memory.write(addr, data)

    async def proc_info(self) -> ProcInfo:
        self.requests.append(("proc_info",))
        return self.proc

    async def mappings(self) -> list[MemoryMapping]:
        self.requests.append(("mappings",))
        return list(self._mappings)

    async def fds(self) -> list[FdInfo]:
        self.requests.append(("fds",))
        return list(self._fds)

    async def processes(self) -> list[ProcEntry]:
        self.requests.append(("processes",))
        return list(self._processes)


# -- the fake guest -----------------------------------------------------------------------


class FakeGuest:
    """Runs the hooks of a plugins object on events you build, without a guest.

    :param plugins: whose hooks run (default: the global ``plugins`` that plugin
        files register on).  It must not belong to a running session.
    :param prototypes: the syscall table (default :func:`default_prototypes`);
        every registered hook must name a syscall in it.
    :param memory: the fake memory handlers read and write (default: empty).
    :param on_error: the failure policy of hooks that set none, as for a
        :class:`~syscalls_async.Session`.
    :param raise_errors: a handler that fails (raises, times out, sets a bad
        ``retval``) makes :meth:`syscall` raise :class:`HandlerError` (its
        ``__cause__`` the handler's exception) after the event was handled; with
        False it is only logged and counted, as in a session.

    Used as a context manager, leaving the block removes the hooks registered
    while it was open (those registered before stay).
    """

    def __init__(
        self,
        plugins: Plugins = plugins,
        *,
        prototypes: PrototypeTable | Iterable[SyscallPrototype] | None = None,
        memory: FakeMemory | None = None,
        handler_timeout: float | None = 30.0,
        on_error: OnError = "continue",
        raise_errors: bool = True,
    ) -> None:
        if plugins.session is not None:
            raise StateError(
                "these plugins belong to a running session; give FakeGuest a Plugins() of its own"
            )
        self.plugins = plugins
        self.prototypes = _table(prototypes)
        self.memory = memory if memory is not None else FakeMemory()
        self.raise_errors = raise_errors
        self.registry = plugins.syscalls.registry
        self._before = {hook.id for hook in self.registry}
        self._saved = self.registry.prototypes
        self.registry.bind(self.prototypes)
        self._failures: list[BaseException] = []
        self.dispatcher = Dispatcher(
            self.registry,
            self.prototypes,
            handler_timeout=handler_timeout,
            fail_fast=True,  # only to hear of failures: on_fatal collects them
            on_fatal=self._failures.append,
            on_error=failure_policy(on_error, "FakeGuest"),
        )
        #: every trap dispatched so far, oldest first
        self.traps: list[FakeTrap] = []

    def __enter__(self) -> FakeGuest:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Remove the hooks registered since this fake guest was made."""
        for hook in self.registry:
            if hook.id not in self._before:
                self.registry.remove(hook)
        if self._saved is not None:
            self.registry.prototypes = self._saved

    @property
    def stats(self) -> DispatchStats:
        """Events, handler calls, errors, as ``session.stats``."""
        return self.dispatcher.stats

    def load_plugin_file(self, path: str | Path) -> list[Plugin]:
        """Import a plugin file; its hooks register on the global ``plugins`` (so they
        run here when this fake guest runs those, the default; a fake guest of a
        ``Plugins()`` of its own refuses them, as a session does)."""
        return load_plugin_file(path, into=self.plugins)

    def event(self, syscall: str | int, *args: ArgValue, **kwargs: Any) -> RawEvent:
        """:func:`fake_event` with this guest's prototypes and memory."""
        return fake_event(syscall, *args, prototypes=self.prototypes, memory=self.memory, **kwargs)

    async def syscall(
        self,
        syscall: str | int,
        *args: ArgValue,
        phase: PhaseName = "enter",
        retval: int = 0,
        comm: str = "test",
        pid: int = 100,
        tid: int | None = None,
    ) -> Verdict:
        """Dispatch one event built as :func:`fake_event` does; its verdict.

        Example: ``await guest.syscall("openat", -100, "/etc/passwd", 0, 0, comm="cat")``
        (the path is placed in :attr:`memory`), or on return
        ``await guest.syscall("openat", -100, path, 0, 0, phase="return", retval=-2)``.
        """
        event = self.event(syscall, *args, phase=phase, retval=retval, comm=comm, pid=pid, tid=tid)
        return await self.dispatch(event)

    def observed(self, event: RawEvent) -> RawEvent:
        """``event`` as an observe-only (``read_only``) hook gets it from a ring:
        the user strings the prototype marks (``const char *``) captured from
        :attr:`memory` as the guest would (at most ``CAPTURE`` bytes each)."""
        proto = self.prototypes.by_nr(event.nr)
        strings: list[CapturedString | None] = []
        for i in range(_MAX_ARGS):
            if not proto.known or i >= proto.nargs or proto.types[i] != "const char *":
                strings.append(None)
                continue
            try:
                data = self.memory.read_cstring(event.args[i], CAPTURE)
            except GuestMemoryError:
                strings.append(CapturedString(b"", fault=True))
                continue
            strings.append(CapturedString(data, truncated=len(data) >= CAPTURE))
        return msgspec.structs.replace(
            event, observed=True, strings=tuple(strings), regs=(), slot=0, epoch=0, seq=0
        )

    async def dispatch(self, event: RawEvent, **trap_options: Any) -> Verdict:
        """Run the hooks on a built event (``trap_options`` as for :class:`FakeTrap`):
        the observe-only (``read_only``) ones on its observed copy first (the guest
        writes their ring record before it waits), then the blocking ones."""
        del self._failures[:]
        before = self.dispatcher.stats.handler_calls
        enter = event.phase is Phase.ENTER
        if not event.observed and (
            self.registry.candidates(event.nr, enter, observed=True)
            or self.registry.candidates(event.nr, enter, observed=True, batch=True)
        ):
            ids = tuple(h.id for h in self.registry)
            await self.dispatcher(ObservedTrap(self.observed(event), ids))
        trap = FakeTrap(event, self.memory, tuple(h.id for h in self.registry), **trap_options)
        self.traps.append(trap)
        await self.dispatcher(trap)
        verdict = trap.verdict(self.dispatcher.stats.handler_calls - before)
        if self.raise_errors and self._failures:
            first = self._failures[0]
            raise HandlerError(f"a handler failed: {first!r}") from first
        return verdict
