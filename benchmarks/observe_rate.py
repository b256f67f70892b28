"""What limits observed events per second: the guest's production or the host's consumption.

``python -m benchmarks.observe_rate [COUNT] [ROUNDS]`` boots the default guest
once and, ROUNDS times in turn, runs ``sa_bench time COUNT getppid`` in two
processes at once with (1) a ``read_only`` per-event hook, (2) a
``read_only=True, batch=True`` hook, (3) no hook; each line gives the rate the
guest made events at (its timed loops), the events handled and dropped, and
the host's CPU time per handled event (the poller's spinning included).
Guest-timed: alternate configurations in one boot, give the load average.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any

from syscalls_async.api import Plugins, Session
from syscalls_async.bench.runner import PROGRAM, BenchOptions, _Run
from syscalls_async.machine import Machine


async def main(count: int, rounds: int) -> None:
    async with Machine(smp=2, memory_mib=1024) as machine:
        run = _Run(machine, BenchOptions(hooked_count=count), lambda text: None)
        plugins = Plugins()
        async with Session(plugins, machine=machine) as session:
            got = [0]

            def one(regs: Any, proto: Any, syscall: Any) -> None:
                got[0] += 1

            async def many(events: Any) -> None:
                got[0] += len(events)

            def dropped() -> int:
                return sum(session.stats.ring_drops) + session.stats.queue_drops

            for rnd in range(rounds):
                for mode in ("per_event", "batch", "unhooked"):
                    load = os.getloadavg()[0]
                    if mode == "unhooked":
                        made = await run._events_per_second(2)
                        print(f"{rnd} {mode:9} made {made:8.0f}/s, load {load:.2f}", flush=True)
                        continue
                    options: dict[str, Any] = {"batch": True} if mode == "batch" else {}
                    hook = await plugins.syscalls.register(
                        many if options else one, "getppid", comm_filter=PROGRAM,
                        read_only=True, **options,
                    )  # fmt: skip
                    got[0] = 0
                    drops = dropped()
                    cpu, wall = time.process_time(), time.perf_counter()
                    made = await run._events_per_second(2)
                    await session.flush_observed()
                    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                    drops = dropped() - drops
                    print(
                        f"{rnd} {mode:9} made {made:8.0f}/s, handled {got[0]} + dropped {drops}"
                        f" = {got[0] + drops}; host CPU {cpu:.2f} s in {wall:.2f} s"
                        f" = {1e6 * cpu / max(got[0], 1):.2f} µs/handled event, load {load:.2f}",
                        flush=True,
                    )
                    await plugins.syscalls.unregister(hook)


if __name__ == "__main__":
    argv = sys.argv[1:]
    asyncio.run(main(int(argv[0]) if argv else 20000, int(argv[1]) if len(argv) > 1 else 3))
