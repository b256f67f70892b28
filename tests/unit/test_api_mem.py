"""``plugins.mem``, ``plugins.portal``, ``plugins.OSI`` outside and inside a handler (host only)."""

from __future__ import annotations

import struct
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from syscalls_async import plugins
from syscalls_async.api.introspection import OSI, PortalAPI
from syscalls_async.api.mem import MAX_PTRLIST, MAX_TRANSFER, Mem
from syscalls_async.errors import (
    HandlerContextError,
    OutOfRange,
    RequestTooLarge,
    SyscallsAsyncError,
)
from syscalls_async.syscalls import current_trap

MiB = 1024 * 1024

OUTSIDE: list[tuple[str, Callable[[Mem], Awaitable[Any]]]] = [
    ("read_bytes", lambda m: m.read_bytes(0x1000, 4)),
    ("read_str", lambda m: m.read_str(0x1000)),
    ("read_ptrlist", lambda m: m.read_ptrlist(0x1000)),
    ("read_int", lambda m: m.read_int(0x1000)),
    ("read_long", lambda m: m.read_long(0x1000)),
    ("read_ptr", lambda m: m.read_ptr(0x1000)),
    ("write_bytes", lambda m: m.write_bytes(0x1000, b"x")),
    ("write_str", lambda m: m.write_str(0x1000, "x")),
    ("write_int", lambda m: m.write_int(0x1000, 1)),
    ("write_long", lambda m: m.write_long(0x1000, 1)),
    ("write_ptr", lambda m: m.write_ptr(0x1000, 1)),
]


@pytest.mark.parametrize(("name", "call"), OUTSIDE, ids=[n for n, _ in OUTSIDE])
async def test_mem_outside_a_handler(name: str, call: Callable[[Mem], Awaitable[Any]]) -> None:
    with pytest.raises(HandlerContextError, match="only reachable from inside a syscall handler"):
        await call(plugins.mem)
    with pytest.raises(HandlerContextError):
        await call(Mem())


@pytest.mark.parametrize("method", ["get_proc", "get_mappings", "get_fds", "get_proc_list"])
async def test_portal_and_osi_outside_a_handler(method: str) -> None:
    for api in (PortalAPI(), OSI(), plugins.portal, plugins.OSI):
        with pytest.raises(HandlerContextError):
            await getattr(api, method)()
    assert issubclass(HandlerContextError, SyscallsAsyncError)


class UntouchableTrap:
    """Any use of this trap fails the test: size checks must come first."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the trap was touched ({name}) for an absurd request")


class RecordingTrap:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    async def read_bytes(self, addr: int, size: int) -> bytes:
        self.calls.append(("read_bytes", addr, size))
        return bytes(range(size % 256)) if size < 256 else b"\0" * size

    async def read_str(self, addr: int, max_len: int) -> str:
        self.calls.append(("read_str", addr, max_len))
        return "s"

    async def read_ptrlist(self, addr: int, max_entries: int) -> list[str]:
        self.calls.append(("read_ptrlist", addr, max_entries))
        return ["a"]

    async def write_bytes(self, addr: int, data: bytes) -> None:
        self.calls.append(("write_bytes", addr, data))


@pytest.fixture
def untouchable() -> Iterator[None]:
    token = current_trap.set(UntouchableTrap())  # type: ignore[arg-type]
    yield
    current_trap.reset(token)


@pytest.fixture
def recording() -> Iterator[RecordingTrap]:
    trap = RecordingTrap()
    token = current_trap.set(trap)  # type: ignore[arg-type]
    yield trap
    current_trap.reset(token)


ABSURD: list[tuple[str, Callable[[Mem], Awaitable[Any]]]] = [
    ("read_bytes negative", lambda m: m.read_bytes(0x1000, -1)),
    ("read_bytes over 64 MiB", lambda m: m.read_bytes(0x1000, 64 * MiB + 1)),
    ("read_bytes huge", lambda m: m.read_bytes(0x1000, 1 << 63)),
    ("read_bytes bool", lambda m: m.read_bytes(0x1000, True)),
    ("read_bytes float", lambda m: m.read_bytes(0x1000, 4.0)),
    ("read_str negative", lambda m: m.read_str(0x1000, -5)),
    ("read_str over 64 MiB", lambda m: m.read_str(0x1000, 64 * MiB + 1)),
    ("read_ptrlist negative", lambda m: m.read_ptrlist(0x1000, -1)),
    ("read_ptrlist too many", lambda m: m.read_ptrlist(0x1000, MAX_PTRLIST + 1)),
]


@pytest.mark.parametrize(("name", "call"), ABSURD, ids=[n for n, _ in ABSURD])
async def test_absurd_sizes_are_refused_before_the_trap(
    untouchable: None, name: str, call: Callable[[Mem], Awaitable[Any]]
) -> None:
    with pytest.raises(RequestTooLarge) as info:
        await call(Mem())
    assert name.split()[0] in str(info.value)
    assert isinstance(info.value, SyscallsAsyncError) and isinstance(info.value, ValueError)


async def test_absurd_sizes_outside_a_handler_are_still_request_too_large() -> None:
    with pytest.raises(RequestTooLarge, match="more than the 67108864"):
        await Mem().read_bytes(0x1000, 64 * MiB + 1)


async def test_oversized_write_is_refused_before_the_trap(untouchable: None) -> None:
    with pytest.raises(RequestTooLarge, match="write_bytes"):
        await Mem().write_bytes(0x1000, bytes(64 * MiB + 1))


async def test_limits_are_inclusive(recording: RecordingTrap) -> None:
    m = Mem()
    assert 64 * MiB == MAX_TRANSFER
    assert len(await m.read_bytes(0x1000, MAX_TRANSFER)) == MAX_TRANSFER
    assert await m.read_bytes(0x1000, 0) == b""
    await m.read_ptrlist(0x2000, MAX_PTRLIST)
    assert [c[:3] for c in recording.calls] == [
        ("read_bytes", 0x1000, MAX_TRANSFER),
        ("read_bytes", 0x1000, 0),
        ("read_ptrlist", 0x2000, MAX_PTRLIST),
    ]


async def test_typed_reads_and_writes(recording: RecordingTrap) -> None:
    m = Mem()
    assert await m.read_int(0x10) == struct.unpack("<i", bytes(range(4)))[0]
    assert await m.read_long(0x10) == struct.unpack("<q", bytes(range(8)))[0]
    assert await m.read_ptr(0x10) == struct.unpack("<Q", bytes(range(8)))[0]
    await m.write_int(0x20, -1)
    await m.write_long(0x28, -2)
    await m.write_ptr(0x30, 0xFFFF_8000_0000_0000)
    await m.write_str(0x40, "hé")
    await m.write_bytes(0x50, bytearray(b"ab"))
    assert recording.calls[3:] == [
        ("write_bytes", 0x20, b"\xff\xff\xff\xff"),
        ("write_bytes", 0x28, struct.pack("<q", -2)),
        ("write_bytes", 0x30, struct.pack("<Q", 0xFFFF_8000_0000_0000)),
        ("write_bytes", 0x40, "hé".encode() + b"\0"),
        ("write_bytes", 0x50, b"ab"),
    ]
    assert type(recording.calls[-1][2]) is bytes


BAD_ADDRESSES: list[tuple[str, Callable[[Mem], Awaitable[Any]]]] = [
    ("read_bytes negative", lambda m: m.read_bytes(-1, 4)),
    ("read_bytes at 2**64", lambda m: m.read_bytes(2**64, 4)),
    ("read_bytes wrapping", lambda m: m.read_bytes(2**64 - 2, 4)),
    ("read_str negative", lambda m: m.read_str(-0x1000)),
    ("read_str past 2**64", lambda m: m.read_str(2**64 + 0x1000)),
    ("read_ptrlist past 2**64", lambda m: m.read_ptrlist(2**64 + 0x1000)),
    ("read_int at 2**64", lambda m: m.read_int(2**64)),
    ("write_bytes wrapping", lambda m: m.write_bytes(2**64 - 1, b"ab")),
    ("write_bytes negative", lambda m: m.write_bytes(-8, b"ab")),
    ("write_long past 2**64", lambda m: m.write_long(2**65, 1)),
]


@pytest.mark.parametrize(("name", "call"), BAD_ADDRESSES, ids=[n for n, _ in BAD_ADDRESSES])
async def test_addresses_outside_64_bits_are_refused_not_wrapped(
    untouchable: None, name: str, call: Callable[[Mem], Awaitable[Any]]
) -> None:
    with pytest.raises(OutOfRange, match="outside the 64-bit address space"):
        await call(Mem())


async def test_the_last_bytes_of_the_address_space_are_reachable(
    recording: RecordingTrap,
) -> None:
    await Mem().read_bytes(2**64 - 4, 4)
    await Mem().write_bytes(2**64 - 2, b"ab")
    assert [c[:2] for c in recording.calls] == [
        ("read_bytes", 2**64 - 4),
        ("write_bytes", 2**64 - 2),
    ]


WIDE_VALUES: list[tuple[str, Callable[[Mem], Awaitable[Any]]]] = [
    ("write_int 2**32", lambda m: m.write_int(0x1000, 2**32)),
    ("write_int below -2**31", lambda m: m.write_int(0x1000, -(2**31) - 1)),
    ("write_long 2**64", lambda m: m.write_long(0x1000, 2**64)),
    ("write_long below -2**63", lambda m: m.write_long(0x1000, -(2**63) - 1)),
    ("write_ptr 2**70", lambda m: m.write_ptr(0x1000, 2**70)),
]


@pytest.mark.parametrize(("name", "call"), WIDE_VALUES, ids=[n for n, _ in WIDE_VALUES])
async def test_values_that_do_not_fit_are_refused_not_truncated(
    untouchable: None, name: str, call: Callable[[Mem], Awaitable[Any]]
) -> None:
    with pytest.raises(OutOfRange, match="does not fit"):
        await call(Mem())


async def test_values_at_the_limits_are_written(recording: RecordingTrap) -> None:
    m = Mem()
    await m.write_int(0x10, 2**32 - 1)
    await m.write_int(0x10, -(2**31))
    await m.write_long(0x10, 2**64 - 1)
    await m.write_long(0x10, -(2**63))
    assert [c[2] for c in recording.calls] == [
        b"\xff" * 4,
        struct.pack("<i", -(2**31)),
        b"\xff" * 8,
        struct.pack("<q", -(2**63)),
    ]
    with pytest.raises(TypeError, match="int"):
        await m.write_int(0x10, 1.5)  # type: ignore[arg-type]
