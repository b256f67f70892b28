"""Run benchmarks by name (default: all) and print one summary line each."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable

from . import machine, portal

BENCHMARKS: dict[str, Callable[[], Awaitable[str]]] = {
    "boot": machine.boot,
    "command_rtt": machine.command_rtt,
    "portal_latency": portal.latency,
    "hook_update": portal.hook_update,
}


async def main(names: list[str]) -> None:
    for name in names or list(BENCHMARKS):
        if name not in BENCHMARKS:
            raise SystemExit(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}")
        print(await BENCHMARKS[name](), flush=True)


asyncio.run(main(sys.argv[1:]))
