"""Many guest tasks, many traps: each seen once, each verdict on its own call."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import pytest

from syscalls_async.machine import Machine
from syscalls_async.portal import FilterKind, GuestFilter, HookSpec, Portal, Trap

pytestmark = pytest.mark.guest

PROCS = 3
CALLS = 10_000


def pattern(n: int) -> bytes:
    return bytes((i * 7 + 1) % 251 for i in range(n))


async def test_three_processes_ten_thousand_traps_each(machine: Machine, portal: Portal) -> None:
    counts: dict[int, int] = defaultdict(int)
    seqs: set[tuple[int, int, int]] = set()

    async def stamp(trap: Trap) -> None:
        # each dd write of one byte gets the next byte of its process's pattern
        ev = trap.event
        key = (ev.slot, ev.epoch, ev.seq)
        assert key not in seqs
        seqs.add(key)
        k = counts[ev.tgid]
        counts[ev.tgid] = k + 1
        await trap.write_bytes(ev.args[1], bytes([(k * 7 + 1) % 251]))

    portal.handler = stamp
    one = GuestFilter(FilterKind.EXACT, 1)
    await portal.set_hooks(
        [
            HookSpec(
                id=1,
                nr=portal.nr("write"),
                comm="dd",
                args=(GuestFilter(FilterKind.EXACT, 1, width=32, signed=True), None, one),
            )
        ]
    )
    before = portal.guest_counters()
    dd = f"dd if=/dev/zero bs=1 count={CALLS} 2>/dev/null"
    cmd = " & ".join(f"{dd} > /tmp/sa_stress{i}" for i in range(PROCS)) + " & wait"
    r = await machine.run(cmd, timeout=900)
    assert r.exit_status == 0
    await portal.set_hooks([])
    after = portal.guest_counters()

    diag = f"guest {before} -> {after}, host {portal.host_counters}"
    assert sorted(counts.values()) == [CALLS] * PROCS, diag
    for i in range(PROCS):
        out = await machine.run(f"cat /tmp/sa_stress{i}; rm /tmp/sa_stress{i}")
        assert out.stdout == pattern(CALLS)
    assert after.events - before.events == PROCS * CALLS
    assert after.deadline_expired == before.deadline_expired
    assert after.no_slot == before.no_slot
    await asyncio.sleep(0)
    assert portal.busy_slots() == 0
