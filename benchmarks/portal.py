"""Per-syscall latency in the guest: no module, module loaded but the call
unhooked, and hooked with a trivial verdict from the host, under several
host polling policies; plus the host CPU the poller costs.

The guest side is ``portal_bench.c`` (built here with ``gcc -static`` and
copied in over the command channel): it times COUNT raw ``getppid`` calls one
by one with CLOCK_MONOTONIC and prints p50/p90/p99.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from syscalls_async.machine import Machine, build_image
from syscalls_async.portal import HookSpec, PollPolicy, Portal, Trap
from syscalls_async.syscalls import syscall_nr

SRC = Path(__file__).with_name("portal_bench.c")
BIN = "/tmp/sa_bench"
MODULE = "/lib/modules/syscalls_async.ko"
RUNS = 3
GETPPID = 110


def _build() -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "sa_bench"
        subprocess.run(["gcc", "-static", "-O2", "-s", "-o", str(out), str(SRC)], check=True)
        return out.read_bytes()


async def _upload(m: Machine, binary: bytes, chunk: int = 60000) -> None:
    await m.run(f"rm -f {BIN}")
    for i in range(0, len(binary), chunk):
        r = await m.run(f"cat >> {BIN}", input=binary[i : i + chunk], timeout=120)
        assert r.exit_status == 0, r.stderr
    await m.run(f"chmod +x {BIN}")


async def _bench(m: Machine, count: int) -> list[float]:
    """One run: [p50, p90, p99, min, max] in microseconds."""
    r = await m.run(f"{BIN} {GETPPID} {count}", timeout=600)
    assert r.exit_status == 0, r.stderr
    return [int(x) / 1000 for x in r.stdout.split()]


def _row(label: str, runs: list[list[float]], extra: str = "") -> str:
    med = [statistics.median(r[i] for r in runs) for i in range(3)]
    per = "; ".join(f"{r[0]:.1f}/{r[1]:.1f}/{r[2]:.1f}" for r in runs)
    return f"| {label} | {med[0]:.1f} | {med[1]:.1f} | {med[2]:.1f} | {per} | {extra} |"


async def _hooked(m: Machine, poll: PollPolicy, count: int) -> tuple[list[list[float]], str]:
    async def trivial(trap: Trap) -> None:
        return None

    runs = []
    cpu = wall = 0.0
    async with Portal(m.shm_path, trivial, poll=poll) as p:
        await p.set_hooks([HookSpec(id=1, nr=GETPPID, comm="sa_bench")])
        for _ in range(RUNS):
            c0, w0 = time.process_time(), time.perf_counter()
            runs.append(await _bench(m, count))
            cpu += time.process_time() - c0
            wall += time.perf_counter() - w0
        # idle cost: attached, nothing trapped
        c0 = time.process_time()
        await asyncio.sleep(3)
        idle = (time.process_time() - c0) / 3
        assert p.guest_counters().deadline_expired == 0
    return runs, f"host CPU {100 * cpu / wall:.0f}% busy, {100 * idle:.0f}% idle"


async def latency(count: int = 20000, hooked_count: int = 3000) -> str:
    binary = _build()
    lines = [
        "| case | p50 µs | p90 µs | p99 µs | runs (p50/p90/p99) | notes |",
        "|---|---|---|---|---|---|",
    ]
    async with Machine(build_image(), smp=2) as m:
        await _upload(m, binary)
        await m.run(f"rmmod syscalls_async; {BIN} {GETPPID} 1000")
        lines.append(_row("(a) no module", [await _bench(m, count) for _ in range(RUNS)]))
        await m.run(f"insmod {MODULE}")
        lines.append(
            _row("(b) module loaded, no hooks", [await _bench(m, count) for _ in range(RUNS)])
        )
        async with Portal(m.shm_path) as p:
            await p.set_hooks([HookSpec(id=1, nr=syscall_nr(p.syscalls, "ioctl"))])
            runs = [await _bench(m, count) for _ in range(RUNS)]
        lines.append(_row("(b') module loaded, ioctl hooked, getppid not", runs))
        async with Portal(m.shm_path) as p:
            await p.set_hooks([HookSpec(id=1, nr=GETPPID, comm="no-such-comm")])
            runs = [await _bench(m, count) for _ in range(RUNS)]
        lines.append(_row("(b'') getppid hooked, guest comm filter rejects", runs))
        for label, poll in [
            (
                "(c) hooked, host answers; default poll (spin 50 ms, then 1-4 ms sleeps)",
                PollPolicy(),
            ),
            ("(c) hooked, host answers; no spin, 1 ms sleeps", PollPolicy(0.0, 0.001, 0.001)),
            ("(c) hooked, host answers; always spin", PollPolicy(1e9, 0.001, 0.001)),
        ]:
            runs, note = await _hooked(m, poll, hooked_count)
            lines.append(_row(label, runs, note))
    return "\n".join(lines)


async def hook_update(runs: int = 5) -> str:
    """``await portal.set_hooks(...)`` until the guest's ack, by table size."""
    from syscalls_async.portal import NR_ALL

    lines = ["| table change | min ms | median ms | max ms |", "|---|---|---|---|"]
    async with Machine(build_image(), smp=2) as m, Portal(m.shm_path) as p:
        ten = [
            syscall_nr(p.syscalls, n)
            for n in (
                "read",
                "write",
                "openat",
                "close",
                "ioctl",
                "mmap",
                "execve",
                "clone",
                "wait4",
                "getpid",
            )
        ]
        cases = [
            ("empty -> 1 syscall", [HookSpec(id=1, nr=syscall_nr(p.syscalls, "ioctl"))]),
            ("empty -> 10 syscalls", [HookSpec(id=i, nr=n) for i, n in enumerate(ten)]),
            ("empty -> all syscalls", [HookSpec(id=1, nr=NR_ALL)]),
        ]
        for label, hooks in cases:
            on, off = [], []
            for _ in range(runs):
                t0 = time.perf_counter()
                await p.set_hooks(hooks)
                t1 = time.perf_counter()
                await p.set_hooks([])
                on.append(t1 - t0)
                off.append(time.perf_counter() - t1)
            for what, xs in ((label, on), (label.replace("empty ->", "back to empty from"), off)):
                lines.append(
                    f"| {what} | {min(xs) * 1e3:.1f} | {statistics.median(xs) * 1e3:.1f} "
                    f"| {max(xs) * 1e3:.1f} |"
                )
        hooked = p.hooked_entries()
    return "\n".join(lines) + f"\n(entries hooked at the end: {hooked})"
