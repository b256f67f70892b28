"""``syscalls-async bench`` end to end on the real guest, with tiny counts.

Only that it runs and that its figures exist and are sane: never how fast.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest

from syscalls_async.bench import BenchOptions, run_bench
from syscalls_async.machine import Machine
from syscalls_async.portal import HookSpec, Portal, Trap
from syscalls_async.syscalls import syscall_nr

pytestmark = pytest.mark.guest

LATENCY_CASES = ["a", "b", "r", "p", "c", "c_access", "d", "e", "f", "h"]
FIGURES = [
    "(b)/(a) p50",
    "(c)/(r) p50",
    "(c) p99/p50",
    "(d)/(c) p50",
    "(d)/(c_access) p50",
    "(f)/(a) p50",
    "(h) idle host CPU, % of one core",
    "(h) first call after idle p50, µs",
    "(g) observe-only events/s, 2 processes",
    "(g_batch) observe-only batch handler events/s, 2 processes",
]


def check_report(report: dict[str, Any], options: BenchOptions) -> None:
    cases = report["cases"]
    assert list(cases) == LATENCY_CASES
    for key, case in cases.items():
        assert 0 < case["min_us"] <= case["p50_us"] <= case["p90_us"], key
        assert case["p90_us"] <= case["p99_us"] <= case["max_us"], key
        assert case["elapsed_s"] > 0, key
    assert cases["a"]["count"] == options.count
    assert cases["c"]["count"] == options.hooked_count
    assert cases["h"]["count"] == options.idle_count
    assert cases["d"]["call"].startswith("access(") and cases["c"]["call"] == "getppid()"

    assert list(report["throughput"]) == ["g", "g_batch", "g0"]
    blocking = report["throughput"]["g0"]
    for key in ("g", "g_batch"):
        observed = report["throughput"][key]
        assert observed["available"] is True and observed["reason"] is None, key
        assert observed["one_process"] > 0 and observed["two_processes"] > 0, key
        assert observed["drops"] >= 0, key
        # what the host handled is at most what the guest made
        assert 0 < observed["two_processes"] <= observed["made_two_processes"] * 1.001, key
        assert 0 < observed["one_process"] <= observed["made_one_process"] * 1.001, key
    assert blocking["available"] is True
    assert blocking["one_process"] > 0 and blocking["two_processes"] > 0

    # asyncio may wake a timer a clock tick early
    assert report["idle"]["seconds"] >= 0.9 * options.idle_seconds
    assert report["idle"]["cpu_fraction"] >= 0

    counters = report["guest_counters"]
    hooked = ["r", "p", "c", "c_access", "d", "e", "h"]
    assert counters["events"] >= sum(cases[k]["count"] for k in hooked)

    figures = {f["name"]: f for f in report["figures"]}
    assert list(figures) == FIGURES
    for name, fig in figures.items():
        assert fig["value"] is not None and fig["value"] >= 0, name
        assert fig["met"] in (True, False), name
    ratio = figures["(b)/(a) p50"]["value"]
    assert ratio == pytest.approx(cases["b"]["p50_us"] / cases["a"]["p50_us"])


async def test_bench_command_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "syscalls_async.cli",
        "bench",
        "--quick",
        "--json",
        str(out),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await proc.communicate()
    assert proc.returncode == 0, stderr.decode()
    text = stdout.decode()
    for key in LATENCY_CASES:
        assert f"({key})" in text
    assert "(g) observe-only hook, trivial handler, getppid(): 1 process" in text
    check_report(msgspec.json.decode(out.read_bytes()), BenchOptions.quick())


async def test_bench_leaves_the_module_loaded_and_the_portal_usable(machine: Machine) -> None:
    options = msgspec.structs.replace(BenchOptions.quick(), count=30, hooked_count=10)
    report = await run_bench(options, machine)
    check_report(msgspec.to_builtins(report), options)

    async def skip(trap: Trap) -> None:
        trap.skip(77)

    async with Portal(machine.shm_path, skip) as portal:
        await portal.set_hooks(
            [HookSpec(id=1, nr=syscall_nr(portal.syscalls, "getppid"), comm="send_syscall")]
        )
        r = await machine.run("send_syscall getppid")
    assert r.stdout == b"send_syscall: syscall returned 77\n"
