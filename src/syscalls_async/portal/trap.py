"""One trapped syscall: requests served by the waiting guest task, and the verdict."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, TypeVar

import msgspec

from ..errors import (
    GuestMemoryError,
    IndexOutOfRange,
    InvalidType,
    InvalidValue,
    ObserveOnlyError,
    OutOfRange,
    PortalProtocolError,
    TrapGone,
)
from . import decode
from .abi import MASK64, C
from .types import CapturedString, FdInfo, Mapping, Phase, ProcEntry, ProcInfo, RawEvent

if TYPE_CHECKING:
    from .portal import Portal

T = TypeVar("T")
#: How many bytes read_str reads before giving up on finding the NUL.
STR_MAX = 1 << 20
#: How many entries read_ptrlist reads at most unless told otherwise.
PTRLIST_MAX = 4096
#: Seconds past the guest's deadline after which a request counts as lost.
_RESPONSE_MARGIN = 5.0
#: Trap._gone once the verdict was sent (the error is made only if a request comes)
_ANSWERED = TrapGone("the verdict was already sent")


class Response(msgspec.Struct, frozen=True):
    """The guest's answer to one request (copied out of the slot once)."""

    seq: int
    status: int
    count: int
    flags: int
    fault_addr: int
    next: int
    data: bytes

    @property
    def more(self) -> bool:
        return bool(self.flags & C.SA_RF_MORE)

    @property
    def truncated(self) -> bool:
        return bool(self.flags & C.SA_RF_TRUNCATED)


def _signed64(v: int) -> int:
    v &= MASK64
    return v - (1 << 64) if v >> 63 else v


def word64(value: int, what: str = "value") -> int:
    """``value`` as the 64-bit word it denotes, written signed (-2**63 ..) or
    unsigned (.. 2**64-1); anything wider is refused, never wrapped.

    >>> word64(-1) == 2**64 - 1
    True
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidType(f"{what} must be an int, not {type(value).__name__}")
    if not -(1 << 63) <= value <= MASK64:
        raise OutOfRange(f"{what} {value} does not fit in 64 bits (-2**63 .. 2**64-1)")
    return value & MASK64


def signed64(value: int, what: str = "value") -> int:
    """``value`` (see :func:`word64`) as a signed 64-bit number."""
    return _signed64(word64(value, what))


def check_address(addr: int, size: int = 0, what: str = "access") -> None:
    """Refuse a guest address range that leaves the 64-bit address space
    (negative, at or past 2**64, or wrapping past its end)."""
    if isinstance(addr, bool) or not isinstance(addr, int):
        raise InvalidType(f"{what}: a guest address is an int, not {type(addr).__name__}")
    if addr < 0 or addr + max(size, 0) > 1 << 64 or addr > MASK64:
        span = f" + {size} bytes" if size else ""
        raise OutOfRange(f"{what}: address {addr:#x}{span} is outside the 64-bit address space")


class Trap:
    """A guest task stopped in a syscall, waiting for this host.

    Requests (``read_bytes`` ...) run one at a time per trap, in the guest
    task's own context.  The verdict (``skip``, ``set_arg``, ``set_retval``)
    is sent when the handler returns.  After the guest gave up waiting
    (deadline, fatal signal) requests raise :class:`TrapGone`.
    """

    def __init__(self, portal: Portal, event: RawEvent, hook_ids: tuple[int, ...]) -> None:
        self.portal = portal
        self.event = event
        #: ids of the hooks whose guest-side filters matched
        self.hook_ids = hook_ids
        self._seq = event.seq
        self._lock = asyncio.Lock()
        self._waiter: asyncio.Future[Response] | None = None
        self._gone: BaseException | None = None
        self._task: asyncio.Task[None] | None = None
        self._skip = False
        self._retval: int | None = None
        self._args: dict[int, int] = {}
        #: when the host last heard from the guest task (the event, a response)
        self._heard = time.monotonic()
        #: the handlers wrote guest memory: the strings captured with the
        #: event may no longer be what is there
        self._wrote = False

    # -- verdict --------------------------------------------------------------

    def skip(self, retval: int) -> None:
        """Do not run the syscall; the task sees ``retval`` (enter only)."""
        if self.event.phase is not Phase.ENTER:
            raise InvalidValue("only an enter trap can skip the syscall")
        self._retval = signed64(retval, "the return value")
        self._skip = True

    def set_arg(self, index: int, value: int) -> None:
        """Run the syscall with argument ``index`` changed (enter only)."""
        if self.event.phase is not Phase.ENTER:
            raise InvalidValue("arguments can only change at enter")
        if not 0 <= index < C.SA_MAX_ARGS:
            raise IndexOutOfRange(f"a syscall has {C.SA_MAX_ARGS} arguments: no index {index}")
        self._args[index] = word64(value, f"argument {index}")

    def set_retval(self, value: int) -> None:
        """Change the return value the task sees (return only; at enter use skip)."""
        if self.event.phase is not Phase.RETURN:
            raise InvalidValue("set_retval is for return traps; use skip() at enter")
        self._retval = signed64(value, "the return value")

    @property
    def args(self) -> tuple[int, ...]:
        """The arguments the syscall will run with (after set_arg)."""
        return tuple(self._args.get(i, a) for i, a in enumerate(self.event.args))

    def _verdict(self) -> tuple[int, int, int, tuple[int, ...]]:
        action = mask = 0
        retval = 0
        if self.event.phase is Phase.ENTER:
            if self._skip:
                action |= C.SA_ACT_SKIP
                retval = _signed64(self._retval or 0)
            elif self._args:
                action |= C.SA_ACT_SET_ARGS
                for i in self._args:
                    mask |= 1 << i
        elif self._retval is not None:
            action |= C.SA_ACT_SET_RETVAL
            retval = _signed64(self._retval)
        return action, mask, retval, self.args if self._args else self.event.args

    # -- requests -------------------------------------------------------------

    async def read_bytes(self, addr: int, size: int) -> bytes:
        """``size`` bytes of the task's memory at ``addr`` (chunked as needed)."""
        check_address(addr, size, "read")
        out = bytearray()
        while len(out) < size:
            n = min(size - len(out), C.SA_SLOT_G2H_SIZE)
            at = addr + len(out)
            r = await self._request(C.SA_REQ_READ, addr=at, length=n)
            if r.status:
                raise GuestMemoryError(r.fault_addr, -r.status, "read")
            if len(r.data) != n:
                raise PortalProtocolError(f"read of {n} bytes answered with {len(r.data)}")
            out += r.data
        return bytes(out)

    async def read_cstring(self, addr: int, max_len: int = STR_MAX) -> bytes:
        """The NUL-terminated string at ``addr`` as bytes (without the NUL)."""
        check_address(addr, 1, "string read")
        # a string cannot run past the end of the address space
        max_len = min(max_len, (1 << 64) - addr)
        captured = self._captured(addr, max_len)
        if captured is not None:
            self.portal.host_counters.captured_reads += 1
            return captured
        out = bytearray()
        while len(out) < max_len:
            n = min(max_len - len(out), C.SA_SLOT_G2H_SIZE)
            r = await self._request(C.SA_REQ_READ_STR, addr=addr + len(out), length=n)
            if r.status:
                raise GuestMemoryError(r.fault_addr, -r.status, "string read")
            if len(r.data) > n or b"\0" in r.data:
                raise PortalProtocolError("string response longer than asked or with a NUL")
            out += r.data
            if not r.truncated:
                break
        return bytes(out)

    def _captured(self, addr: int, max_len: int) -> bytes | None:
        """The string at ``addr`` from the event's captures, if the guest
        captured it whole (or at least ``max_len`` bytes of it) and no
        handler has written guest memory since: what a read would return,
        without the round trip (the task has not run since the capture)."""
        if self._wrote:
            return None
        e = self.event
        for i, s in enumerate(e.strings):
            if (
                s is not None
                and not s.fault
                and e.args[i] == addr
                and (not s.truncated or max_len <= len(s.data))
            ):
                return s.data[:max_len]
        return None

    async def read_str(self, addr: int, max_len: int = STR_MAX) -> str:
        """The NUL-terminated string at ``addr``, decoded as UTF-8 (surrogateescape)."""
        return (await self.read_cstring(addr, max_len)).decode("utf-8", "surrogateescape")

    async def read_ptrlist(self, addr: int, max_entries: int = PTRLIST_MAX) -> list[str]:
        """The strings of a NULL-terminated ``char *[]`` at ``addr`` (argv, envp)."""
        check_address(addr, 8, "pointer list read")
        out: list[str] = []
        index = 0
        while len(out) < max_entries:
            r = await self._request(
                C.SA_REQ_READ_PTRLIST, addr=addr, arg=index, length=max_entries - len(out)
            )
            if r.status:
                raise GuestMemoryError(r.fault_addr, -r.status, "pointer list read")
            out += decode.strings(r.data, r.count)
            if not r.more:
                break
            if r.next <= index:
                raise PortalProtocolError("pointer list chunk did not advance")
            index = r.next
        return out

    async def write_bytes(self, addr: int, data: bytes) -> None:
        """Write ``data`` into the task's memory at ``addr``."""
        check_address(addr, len(data), "write")
        self._wrote = True
        done = 0
        while done < len(data) or not data:
            chunk = data[done : done + C.SA_SLOT_H2G_SIZE]
            r = await self._request(
                C.SA_REQ_WRITE, addr=addr + done, length=len(chunk), payload=chunk
            )
            if r.status:
                raise GuestMemoryError(r.fault_addr, -r.status, "write")
            done += len(chunk)
            if not data:
                break

    async def proc_info(self) -> ProcInfo:
        """The trapped task's process: ids, comm, exe, cwd, argv."""
        r = await self._request(C.SA_REQ_PROC)
        self._check(r)
        return decode.proc_info(r.data)

    async def _cursor_list(
        self, req: int, decoder: Callable[[bytes, int], list[T]], by_addr: bool, what: str
    ) -> list[T]:
        """A listing the guest sends in chunks, each naming where the next starts."""
        out: list[T] = []
        start = 0
        while True:
            r = (
                await self._request(req, addr=start)
                if by_addr
                else await self._request(req, arg=start)
            )
            self._check(r)
            out += decoder(r.data, r.count)
            if not r.more:
                return out
            if r.next <= start:
                raise PortalProtocolError(f"{what} chunk did not advance")
            start = r.next

    async def mappings(self) -> list[Mapping]:
        """The process's memory mappings, in address order."""
        return await self._cursor_list(C.SA_REQ_MAPS, decode.maps, True, "mapping")

    async def fds(self) -> list[FdInfo]:
        """The process's open file descriptors, by number."""
        return await self._cursor_list(C.SA_REQ_FDS, decode.fds, False, "fd")

    async def processes(self) -> list[ProcEntry]:
        """Every process in the guest (tgid, parent, uid, comm)."""
        return await self._cursor_list(C.SA_REQ_PROCS, decode.procs, False, "process")

    @staticmethod
    def _check(r: Response) -> None:
        if r.status:
            raise GuestMemoryError(r.fault_addr, -r.status, "request")

    async def _request(
        self, req: int, *, addr: int = 0, length: int = 0, arg: int = 0, payload: bytes = b""
    ) -> Response:
        async with self._lock:
            if self._gone is not None:
                raise self._gone_error()
            loop = asyncio.get_running_loop()
            self._waiter = loop.create_future()
            self.portal._live_slots().write(
                self.event.slot,
                self.event.epoch,
                self._seq,
                C.SA_MSG_REQUEST,
                payload,
                req=req,
                addr=addr & MASK64,
                length=length,
                arg=arg & MASK64,
            )
            # A waiting guest task answers at once; one that is gone without a
            # word (module or guest died) must not hang the handler forever.
            limit = self.portal.deadline_ms / 1000 + _RESPONSE_MARGIN
            try:
                async with asyncio.timeout(limit):
                    r = await self._waiter
            except TimeoutError:
                raise TrapGone(
                    f"no response from guest task {self.event.pid} in {limit:g} s"
                ) from None
            finally:
                self._waiter = None
            self._seq = r.seq
            return r

    # -- called by the portal -------------------------------------------------

    def _expects(self, seq: int) -> bool:
        return self._waiter is not None and seq == (self._seq + 2) & 0xFFFFFFFF

    def _respond(self, r: Response) -> None:
        self._heard = time.monotonic()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(r)

    def _answered(self) -> None:
        """The verdict went out: later requests fail at once, not after a timeout."""
        if self._gone is None:
            self._gone = _ANSWERED
            if self._waiter is not None and not self._waiter.done():
                self._fail(self._gone_error())

    def _gone_error(self) -> BaseException:
        """Why requests fail now (the error of the verdict sent is made when asked:
        most traps are never asked again)."""
        if self._gone is _ANSWERED:
            self._gone = TrapGone(
                f"the verdict for {self.event.comm!r}[{self.event.pid}]'s syscall "
                f"{self.event.nr} was already sent: its memory is reachable only "
                "while its handlers run"
            )
        assert self._gone is not None
        return self._gone

    def _fail(self, exc: BaseException) -> None:
        self._gone = exc
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)

    def _cancel_handler(self) -> None:
        if self._task is not None:
            self._task.cancel()


class ObservedTrap:
    """An observe-only event from a ring: its guest task did not wait.

    It answers string reads of the arguments the guest captured (the
    address must be one of the event's string arguments); every other
    request, and every verdict, raises :class:`ObserveOnlyError` saying why.
    """

    def __init__(self, event: RawEvent, hook_ids: tuple[int, ...]) -> None:
        self.event = event
        self.hook_ids = hook_ids

    def _refuse(self, what: str) -> ObserveOnlyError:
        e = self.event
        return ObserveOnlyError(
            f"{what} is not available to an observe-only (read_only=True) handler: the guest "
            f"task {e.comm!r}[{e.pid}] did not wait in syscall {e.nr}, so only what was "
            "captured at the call is known (syscall.args, and the user strings the prototype "
            "marks in syscall.strings, which plugins.mem.read_str answers); register the hook "
            "without read_only to read guest memory"
        )

    def capture(self, addr: int) -> tuple[int, CapturedString] | None:
        """The register word and string captured at ``addr``, if any (the
        guest captures per register word: on a 32-bit ABI an argument after
        a 64-bit one is a word further on)."""
        for i, s in enumerate(self.event.strings):
            if s is not None and self.event.args[i] == addr:
                return i, s
        return None

    def skip(self, retval: int) -> None:
        raise self._refuse("skipping the call")

    def set_arg(self, index: int, value: int) -> None:
        raise self._refuse("changing an argument")

    def set_retval(self, value: int) -> None:
        raise self._refuse("changing the return value")

    async def read_bytes(self, addr: int, size: int) -> bytes:
        raise self._refuse(f"reading {size} bytes at {addr:#x}")

    async def read_cstring(self, addr: int, max_len: int = STR_MAX) -> bytes:
        found = self.capture(addr)
        if found is None:
            raise self._refuse(f"the string at {addr:#x} (not a captured string argument)")
        i, s = found
        if s.fault:
            raise GuestMemoryError(addr, 14, f"string capture of argument register {i}")
        if s.truncated and max_len > len(s.data):
            raise self._refuse(
                f"the string at {addr:#x} past its first {len(s.data)} bytes (the capture was "
                "truncated; syscall.strings holds those bytes)"
            )
        return s.data[:max_len]

    async def read_str(self, addr: int, max_len: int = STR_MAX) -> str:
        return (await self.read_cstring(addr, max_len)).decode("utf-8", "surrogateescape")

    async def read_ptrlist(self, addr: int, max_entries: int = PTRLIST_MAX) -> list[str]:
        raise self._refuse(f"the pointer list at {addr:#x}")

    async def write_bytes(self, addr: int, data: bytes) -> None:
        raise self._refuse(f"writing {len(data)} bytes at {addr:#x}")

    async def proc_info(self) -> ProcInfo:
        raise self._refuse("process information")

    async def mappings(self) -> list[Mapping]:
        raise self._refuse("the memory mappings")

    async def fds(self) -> list[FdInfo]:
        raise self._refuse("the open file descriptors")

    async def processes(self) -> list[ProcEntry]:
        raise self._refuse("the process list")


class TrapProtocol(Protocol):
    """What the layers above use of a trap.

    A live :class:`Trap` is one; so is a stand-in that answers from elsewhere
    (:class:`syscalls_async.testing.FakeTrap` answers from a dict of memory), and
    the dispatcher and ``plugins.mem`` treat both the same way.
    """

    @property
    def event(self) -> RawEvent: ...
    @property
    def hook_ids(self) -> tuple[int, ...]: ...
    def skip(self, retval: int) -> None: ...
    def set_arg(self, index: int, value: int) -> None: ...
    def set_retval(self, value: int) -> None: ...
    async def read_bytes(self, addr: int, size: int) -> bytes: ...
    async def read_cstring(self, addr: int, max_len: int = STR_MAX) -> bytes: ...
    async def read_str(self, addr: int, max_len: int = STR_MAX) -> str: ...
    async def read_ptrlist(self, addr: int, max_entries: int = PTRLIST_MAX) -> list[str]: ...
    async def write_bytes(self, addr: int, data: bytes) -> None: ...
    async def proc_info(self) -> ProcInfo: ...
    async def mappings(self) -> list[Mapping]: ...
    async def fds(self) -> list[FdInfo]: ...
    async def processes(self) -> list[ProcEntry]: ...
