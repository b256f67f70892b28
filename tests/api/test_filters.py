"""Every ValueFilter kind at its boundaries, checked in the guest and on the host.

Each filter is its own hook on the same syscall; one ``send_syscall`` per value
shows which hooks fired.  The expected set comes from the documented rule:
the value is read as its C type (lseek's ``off_t offset`` is signed 64-bit,
ioctl's ``unsigned long arg`` unsigned 64-bit, openat's ``int dfd`` signed
32-bit whatever the upper register bits hold), operands within the width may
be written signed or unsigned.
"""

from __future__ import annotations

import asyncio
from typing import Any

from syscalls_async import Session, ValueFilter

M64 = (1 << 64) - 1
BOUNDARIES = [0, 1, M64, 0x7FFFFFFFFFFFFFFF, 0x8000000000000000, 0x1234]

NUMERIC = {
    "exact_-1": ValueFilter.exact(-1),
    "exact_0": ValueFilter.exact(0),
    "not_equal_0": ValueFilter.not_equal(0),
    "greater_0": ValueFilter.greater(0),
    "greater_equal_max": ValueFilter.greater_equal(0x7FFFFFFFFFFFFFFF),
    "less_0": ValueFilter.less(0),
    "less_equal_1": ValueFilter.less_equal(1),
    "range_0_0x1234": ValueFilter.range(0, 0x1234),
    "success": ValueFilter.success(),
    "error": ValueFilter.error(),
    "bitmask_set_0x34": ValueFilter.bitmask_set(0x34),
    "bitmask_clear_1": ValueFilter.bitmask_clear(1),
}


def expected(name: str, v: int, signed_type: bool) -> bool:
    """The rule, written out independently of the implementation."""
    signed = v - (1 << 64) if v >> 63 else v
    sv = signed
    table = {
        "exact_-1": v == M64,
        "exact_0": v == 0,
        "not_equal_0": v != 0,
        "bitmask_set_0x34": v & 0x34 == 0x34,
        "bitmask_clear_1": v & 1 == 0,
        "success": sv >= 0,
        "error": sv < 0,
    }
    if name in table:
        return table[name]
    return {
        "greater_0": lambda x: x > 0,
        "greater_equal_max": lambda x: x >= 0x7FFFFFFFFFFFFFFF,
        "less_0": lambda x: x < 0,
        "less_equal_1": lambda x: x <= 1,
        "range_0_0x1234": lambda x: 0 <= x <= 0x1234,
    }[name](signed if signed_type else v)


async def _fired(
    session: Session, syscall: str, index: int, filters: dict[str, ValueFilter], command: str
) -> set[str]:
    fired: set[str] = set()
    done = asyncio.Event()
    for name, f in filters.items():

        def h(regs: Any, proto: Any, ev: Any, *args: Any, name: str = name) -> None:
            fired.add(name)

        arg_filters: list[Any] = [None] * index + [f]
        await session.plugins.syscalls.register(
            h, syscall, comm_filter="send_syscall", arg_filters=arg_filters
        )

    def last(regs: Any, proto: Any, ev: Any, *args: Any) -> None:
        done.set()

    await session.plugins.syscalls.register(last, syscall, comm_filter="send_syscall")
    await session.run(command)
    async with asyncio.timeout(30):
        await done.wait()
    # the guest's prefilter decided exactly as the host did, hook by hook
    assert session.stats.guest_disagreed == 0
    return fired


async def test_signed_64_bit_argument_at_the_boundaries(session: Session) -> None:
    for v in BOUNDARIES:
        fired = await _fired(session, "lseek", 1, NUMERIC, f"send_syscall lseek 9 {v:#x} 0")
        assert fired == {n for n in NUMERIC if expected(n, v, True)}, f"offset {v:#x}"
        session.plugins.syscalls.registry.clear()


async def test_unsigned_64_bit_argument_at_the_boundaries(session: Session) -> None:
    for v in BOUNDARIES:
        fired = await _fired(session, "ioctl", 2, NUMERIC, f"send_syscall ioctl 9 0x5401 {v:#x}")
        assert fired == {n for n in NUMERIC if expected(n, v, False)}, f"arg {v:#x}"
        session.plugins.syscalls.registry.clear()


async def test_int_argument_ignores_the_upper_register_bits(session: Session) -> None:
    filters = {
        "exact_5": ValueFilter.exact(5),
        "exact_-100": ValueFilter.exact(-100),
        "exact_0xffffff9c": ValueFilter.exact(0xFFFFFF9C),  # the same int as -100
        "less_0": ValueFilter.less(0),
        "range_0_10": ValueFilter.range(0, 10),
    }
    fired = await _fired(
        session, "openat", 0, filters, "send_syscall openat 0xdeadbeef00000005 /nonexistent 0"
    )
    assert fired == {"exact_5", "range_0_10"}
    session.plugins.syscalls.registry.clear()
    fired = await _fired(
        session, "openat", 0, filters, "send_syscall openat 0x12345678ffffff9c /nonexistent 0"
    )
    assert fired == {"exact_-100", "exact_0xffffff9c", "less_0"}


async def test_string_filters_on_a_path_argument(session: Session) -> None:
    filters = {
        "exact": ValueFilter.string_exact("/tmp/some/file.txt"),
        "exact_other": ValueFilter.string_exact("/tmp/some/file"),
        "contains": ValueFilter.string_contains("some/fi"),
        "contains_not": ValueFilter.string_contains("other"),
        "startswith": ValueFilter.string_startswith("/tmp/"),
        "startswith_not": ValueFilter.string_startswith("/etc/"),
        "endswith": ValueFilter.string_endswith(".txt"),
        "endswith_not": ValueFilter.string_endswith(".log"),
    }
    fired = await _fired(
        session, "openat", 1, filters, "send_syscall openat 0 /tmp/some/file.txt 0"
    )
    assert fired == {"exact", "contains", "startswith", "endswith"}


async def _retval_fired(session: Session, v: int) -> set[str]:
    fired: set[str] = set()
    done = asyncio.Event()

    def skip(regs: Any, proto: Any, ev: Any, fd: int, offset: int, whence: int) -> None:
        ev.skip_syscall = True
        ev.retval = offset

    def last(regs: Any, proto: Any, ev: Any, *args: Any) -> None:
        done.set()

    api = session.plugins.syscalls
    await api.register(skip, "lseek", comm_filter="send_syscall")
    for name, f in NUMERIC.items():

        def h(regs: Any, proto: Any, ev: Any, *args: Any, name: str = name) -> None:
            fired.add(name)

        await api.register(h, "on_sys_lseek_return", comm_filter="send_syscall", retval_filter=f)
    await api.register(last, "on_sys_lseek_return", comm_filter="send_syscall")
    await session.run(f"send_syscall lseek 9 {v:#x} 0")
    async with asyncio.timeout(30):
        await done.wait()
    api.registry.clear()
    return fired


async def test_return_value_filters_at_the_boundaries(session: Session) -> None:
    """An entry hook skips lseek returning its offset; return hooks filter on that value."""
    for v in BOUNDARIES:
        fired = await _retval_fired(session, v)
        assert fired == {n for n in NUMERIC if expected(n, v, True)}, f"retval {v:#x}"
        assert session.stats.guest_disagreed == 0
