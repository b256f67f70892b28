"""Host end of the command channel to the guest agent (``guest/agent.c``).

Frames are a packed ``<BII`` header (type, command id, payload length) and
the payload; the numbers mirror ``guest/agent_proto.h``.  Several commands
may run at once, each with its own id; the agent runs at most
:data:`MAX_COMMANDS` at a time and later ones wait on the host for a free place.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ..errors import CommandFailed, CommandTimeout, InvalidValue, MachineError

HEADER = struct.Struct("<BII")
MAX_PAYLOAD = 65536
#: stdin is handed over in the RUN frame, so it must fit in one.
MAX_INPUT = MAX_PAYLOAD - 4096
#: commands the agent runs at once (MAX_CHILDREN in guest/agent.c)
MAX_COMMANDS = 64


class Frame(enum.IntEnum):
    RUN = 1
    KILL = 2
    READY = 16
    STDOUT = 17
    STDERR = 18
    EXIT = 19
    FAILED = 20


@dataclass(frozen=True)
class CommandResult:
    """What a guest command did: its exit status and everything it printed.

    ``exit_status`` is the shell's exit code, or ``128 + N`` when killed by
    signal ``N`` (as a shell reports it).
    """

    command: str
    exit_status: int
    stdout: bytes
    stderr: bytes

    @property
    def output(self) -> str:
        """stdout decoded, for convenience in tests and examples."""
        return self.stdout.decode(errors="replace")


@dataclass
class _Pending:
    command: str
    done: asyncio.Future[int]
    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)
    limit: int | None = None


def wait_status_to_exit(status: int) -> int:
    """Decode a raw wait(2) status the way a shell reports it."""
    if status & 0x7F == 0:
        return (status >> 8) & 0xFF
    return 128 + (status & 0x7F)


class AgentChannel:
    """Talks to the guest agent over a connected stream.

    :meth:`serve` reads frames until the stream ends; run it as a background
    task.  :meth:`run` sends a command and waits for its result.  ``closed``
    is awaited when the stream ends and returns the error to report (the
    machine explains it by QEMU's exit); by default "the channel closed".
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        closed: Callable[[], Awaitable[MachineError]] | None = None,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._closed = closed
        self._places = asyncio.Semaphore(MAX_COMMANDS)
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self.ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._failure: BaseException | None = None

    async def serve(self) -> None:
        """Dispatch frames from the guest until the channel closes."""
        try:
            while True:
                kind, ident, length = HEADER.unpack(await self._reader.readexactly(HEADER.size))
                if length > MAX_PAYLOAD:
                    raise MachineError(f"agent sent a {length}-byte frame (max {MAX_PAYLOAD})")
                payload = await self._reader.readexactly(length)
                self._dispatch(kind, ident, payload)
        except (asyncio.IncompleteReadError, ConnectionError):
            if self._closed is None:
                self.fail(MachineError("the guest's command channel closed"))
            else:
                self.fail(await self._closed())
        except MachineError as exc:
            self.fail(exc)

    def _dispatch(self, kind: int, ident: int, payload: bytes) -> None:
        if kind == Frame.READY:
            if not self.ready.done():
                self.ready.set_result(payload.decode(errors="replace"))
            return
        pending = self._pending.get(ident)
        if pending is None or pending.done.done():
            return  # output of a command the host gave up on
        if kind in (Frame.STDOUT, Frame.STDERR):
            (pending.stdout if kind == Frame.STDOUT else pending.stderr).extend(payload)
            size = len(pending.stdout) + len(pending.stderr)
            if pending.limit is not None and size > pending.limit:
                pending.done.set_exception(
                    CommandFailed(f"{pending.command!r} printed more than {pending.limit} bytes")
                )
                self._send(Frame.KILL, ident)  # the guest kills its whole session
        elif kind == Frame.EXIT and len(payload) == 4:
            pending.done.set_result(struct.unpack("<i", payload)[0])
        elif kind == Frame.FAILED:
            pending.done.set_exception(CommandFailed(payload.decode(errors="replace")))
        else:
            raise MachineError(f"agent sent unexpected frame type {kind} ({len(payload)} bytes)")

    def fail(self, exc: BaseException) -> None:
        """Fail every waiter, present and future, with ``exc``."""
        if self._failure is None:
            self._failure = exc
        for pending in self._pending.values():
            if not pending.done.done():
                pending.done.set_exception(self._failure)
        if not self.ready.done():
            self.ready.set_exception(self._failure)
            self.ready.exception()  # retrieved: whoever awaits it sees it anyway

    def _send(self, kind: Frame, ident: int, payload: bytes = b"") -> None:
        self._writer.write(HEADER.pack(kind, ident, len(payload)) + payload)

    async def run(
        self, command: str, *, timeout: float, input: bytes = b"", max_output: int | None = None
    ) -> CommandResult:
        """Run ``command``; with :data:`MAX_COMMANDS` already running, wait for one to end.

        The wait counts in ``timeout``.  With ``max_output``, a command that
        prints more than that many bytes (stdout and stderr together) is
        killed and :class:`CommandFailed` raised.
        """
        if self._failure is not None:
            raise self._failure
        if len(input) > MAX_INPUT:
            raise InvalidValue(f"input is {len(input)} bytes; at most {MAX_INPUT} can be sent")
        payload = struct.pack("<I", len(input)) + input + command.encode()
        if len(payload) > MAX_PAYLOAD:
            raise InvalidValue(f"command and input exceed {MAX_PAYLOAD} bytes")
        deadline = asyncio.get_running_loop().time() + timeout
        try:
            async with asyncio.timeout_at(deadline):
                await self._places.acquire()
        except TimeoutError:
            raise CommandTimeout(command, timeout, b"", b"") from None
        try:
            return await self._run(command, payload, timeout, deadline, max_output)
        finally:
            self._places.release()

    async def _run(
        self, command: str, payload: bytes, timeout: float, deadline: float, limit: int | None
    ) -> CommandResult:
        if self._failure is not None:
            raise self._failure
        ident = next(self._ids)
        pending = _Pending(command, asyncio.get_running_loop().create_future(), limit=limit)
        self._pending[ident] = pending
        try:
            self._send(Frame.RUN, ident, payload)
            await self._writer.drain()
            async with asyncio.timeout_at(deadline):
                status = await asyncio.shield(pending.done)
        except BaseException as exc:
            if not pending.done.done():
                pending.done.cancel()
                if self._failure is None and not self._writer.is_closing():
                    self._send(Frame.KILL, ident)  # the guest kills its whole session
            if isinstance(exc, TimeoutError):
                raise CommandTimeout(
                    command, timeout, bytes(pending.stdout), bytes(pending.stderr)
                ) from None
            raise
        finally:
            del self._pending[ident]
        return CommandResult(
            command, wait_status_to_exit(status), bytes(pending.stdout), bytes(pending.stderr)
        )
