"""Many guest tasks, many traps: each seen once, each verdict on its own call."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import pytest

from syscalls_async.machine import Machine
from syscalls_async.portal import FilterKind, GuestFilter, HookSpec, Portal, Trap
from syscalls_async.syscalls import syscall_nr

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
                nr=syscall_nr(portal.syscalls, "write"),
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


async def test_unimplemented_syscalls_from_three_loops_while_the_hook_comes_and_goes(
    machine: Machine, portal: Portal
) -> None:
    # nr 180 is an entry of the ni stub: its kprobe is armed and disarmed
    # while three shells call it; every call returns its own verdict or ENOSYS
    loops, per_loop = 3, 60
    answered: list[int] = []

    async def answer(trap: Trap) -> None:
        answered.append(trap.event.args[0])
        trap.skip(trap.event.args[0] + 1)

    portal.handler = answer
    hook = [HookSpec(id=1, nr=180, comm="send_syscall")]
    script = (
        "i=0; while [ $i -lt {n} ]; do send_syscall 180 $(printf 0x{k}%04x $i); i=$((i+1)); done"
    )
    cmd = " & ".join(f"({script.format(n=per_loop, k=k)})" for k in range(1, loops + 1))
    run = asyncio.create_task(machine.run(cmd + " & wait", timeout=600))
    toggles = 0
    while not run.done():
        await portal.set_hooks(hook if toggles % 2 == 0 else [])
        toggles += 1
        await asyncio.sleep(0.05)
    r = await run
    await portal.set_hooks([])
    sent = {k << 16 | i for k in range(1, loops + 1) for i in range(per_loop)}
    got = [int(line.split()[-1]) for line in r.stdout.splitlines()]
    assert len(got) == loops * per_loop
    skipped = sorted(v - 1 for v in got if v != -38)
    assert skipped == sorted(answered)
    assert set(skipped) <= sent and len(set(skipped)) == len(skipped)
    assert toggles > 2 and answered, (toggles, len(answered))
    assert portal.busy_slots() == 0
