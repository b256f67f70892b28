"""Boot-to-ready time and command round-trip time of the default guest
(``$SYSCALLS_ASYNC_BENCH_ARCH``: of another architecture's guest)."""

from __future__ import annotations

import os
import statistics
import time

from syscalls_async.machine import Machine, build_image


def _summary(samples: list[float], unit: float, label: str) -> str:
    s = sorted(samples)
    q = statistics.quantiles(s, n=100, method="inclusive") if len(s) > 1 else s * 99
    return (
        f"{label}: n={len(s)} min={s[0] * unit:.2f} p50={statistics.median(s) * unit:.2f} "
        f"p90={q[89] * unit:.2f} max={s[-1] * unit:.2f}"
    )


async def boot(runs: int = 5) -> str:
    """Wall time from entering ``Machine()`` to the agent's ready frame."""
    arch = os.environ.get("SYSCALLS_ASYNC_BENCH_ARCH", "x86_64")
    image = build_image(arch=arch)
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        async with Machine(image, arch=arch) as m:
            samples.append(time.perf_counter() - start)
            await m.run("true")
    return _summary(samples, 1, "boot to ready [s]")


async def command_rtt(runs: int = 200) -> str:
    """``machine.run('true')`` end to end: frame out, fork+exec in the guest, frames back."""
    async with Machine(build_image()) as m:
        for _ in range(10):
            await m.run("true")
        samples = []
        for _ in range(runs):
            start = time.perf_counter()
            await m.run("true")
            samples.append(time.perf_counter() - start)
    return _summary(samples, 1000, "command round trip [ms]")
