"""The cases of ``syscalls-async bench``, run in one boot of the guest.

Order (each case leaves the guest as it found it): (a) with the module
unloaded, then reloaded; (r) with the responder process as the only host;
(p) with a bare :class:`Portal`; then one :class:`Session` for (b), (c),
(c_access), (d), (e), (f), (g0) and (h), each registering its hooks through
``plugins.syscalls`` (the user's path) and removing them before the next.
The session's exit clears the table and detaches, so the guest ends with the
module loaded and the portal free for the next host.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec

from ..api import Plugins, Session
from ..errors import InvalidValue
from ..machine import Machine
from ..machine.accel import choose_accel
from ..machine.qemu import QEMU
from ..portal import BellCounters, HookSpec, Portal, Trap
from ..syscalls import syscall_nr
from .report import (
    CASES,
    BenchError,
    BenchReport,
    Counts,
    HostIdle,
    Latency,
    MachineInfo,
    Sample,
    Throughput,
    events_per_second,
    figures,
    parse_sample,
)

#: the guest program (``guest/sa_bench.c``, built into the image as /bin/sa_bench)
PROGRAM = "sa_bench"
MODULE_NAME = "syscalls_async"
MODULE_PATH = f"/lib/modules/{MODULE_NAME}.ko"
#: a path whose first component is missing: access() fails fast with ENOENT
MISSING = "/sa-bench-missing"
GETPPID = "getppid()"
ACCESS = f'access("{MISSING}", F_OK)'
NO_SUCH_COMM = "no-such-comm"
#: seconds between the last hooked call and the start of the idle CPU window
IDLE_SETTLE = 0.5


class BenchOptions(msgspec.Struct, frozen=True):
    """How much to measure.  ``quick()`` is for tests: seconds, not figures."""

    #: calls per unhooked case: (a), (b), (f)
    count: int = 20_000
    #: calls per hooked case: (r), (c), (c_access), (d), (e), and per process in (g0)
    hooked_count: int = 5_000
    #: first calls after idle in (h)
    idle_count: int = 10
    #: how long the guest program sleeps before each of those calls
    idle_ms: int = 300
    #: how long the host's CPU is watched while the guest idles in (h)
    idle_seconds: float = 2.0
    #: seconds each guest command may take
    timeout: float = 600.0

    def __post_init__(self) -> None:
        for name in ("count", "hooked_count", "idle_count", "idle_ms"):
            if getattr(self, name) < 1:
                raise InvalidValue(f"{name} must be at least 1, not {getattr(self, name)}")
        if self.idle_seconds <= 0 or self.timeout <= 0:
            raise InvalidValue("idle_seconds and timeout must be positive")

    @classmethod
    def quick(cls) -> BenchOptions:
        return cls(count=200, hooked_count=50, idle_count=3, idle_seconds=0.2)


async def _empty(regs: object, proto: object, syscall: object) -> None:
    """The empty handler of (b), (c), (e), (f), (g0), (h)."""


class _Run:
    def __init__(self, machine: Machine, options: BenchOptions, say: Callable[[str], None]):
        self.machine = machine
        self.options = options
        self.say = say
        self.cases: dict[str, Latency] = {}
        self.throughput: dict[str, Throughput] = {}
        self.guest_counters: dict[str, int] = {}

    async def _guest(self, command: str) -> list[Sample]:
        r = await self.machine.run(command, timeout=self.options.timeout)
        if r.exit_status != 0:
            raise BenchError(
                f"{command!r} failed with status {r.exit_status}: "
                f"{r.stderr.decode(errors='replace').strip()}"
            )
        return [parse_sample(line) for line in r.stdout.splitlines() if line.strip()]

    async def _time(self, key: str, call: str, count: int, *, idle: bool = False) -> Latency:
        self.say(f"({key}) {CASES[key]}: {count} x {call}")
        args = "getppid" if call == GETPPID else f"access {MISSING}"
        mode = f"idle {count} {self.options.idle_ms}" if idle else f"time {count}"
        samples = await self._guest(f"{PROGRAM} {mode} {args}")
        if len(samples) != 1:
            raise BenchError(f"{PROGRAM} printed {len(samples)} lines, expected 1")
        title = CASES[key]
        if idle:
            title = f"{title} of {self.options.idle_ms} ms"
        self.cases[key] = Latency.of(title, call, samples[0])
        return self.cases[key]

    async def _events_per_second(self, processes: int) -> float:
        n = self.options.hooked_count
        one = f"{PROGRAM} time {n} getppid"
        samples = await self._guest(" & ".join([one] * processes) + " & wait")
        if len(samples) != processes:
            raise BenchError(f"{processes} x {PROGRAM} printed {len(samples)} lines")
        return events_per_second(samples)

    # -- (a): no module ---------------------------------------------------------

    async def no_module(self) -> None:
        # a task may still be inside the module (leaving a wait): retry a while
        unload = (
            f"for i in $(seq 50); do rmmod {MODULE_NAME} 2>/dev/null && exit 0; sleep 0.1; done;"
            f" rmmod {MODULE_NAME}"
        )
        r = await self.machine.run(unload, timeout=self.options.timeout)
        if r.exit_status != 0:
            raise BenchError(f"could not unload the module: {r.stderr.decode(errors='replace')}")
        try:
            await self._time("a", GETPPID, self.options.count)
        finally:
            # the arguments init loaded it with (mipsel: where its region is in RAM)
            args = "$(cat /etc/syscalls_async.args 2>/dev/null)"
            r = await self.machine.run(f"insmod {MODULE_PATH} {args}", timeout=self.options.timeout)
            if r.exit_status != 0:
                raise BenchError(
                    f"could not reload the module: {r.stderr.decode(errors='replace')}"
                )

    # -- (r): the floor -----------------------------------------------------------

    async def floor(self) -> None:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "syscalls_async.bench.responder",
            str(self.machine.shm_path),
            "getppid",
            PROGRAM,
            str(self.machine.shm_offset),
            str(self.machine.shm_region_size or 0),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert proc.stdout is not None and proc.stderr is not None
        try:
            async with asyncio.timeout(60):
                ready = await proc.stdout.readline()
            if ready.strip() != b"ready":
                err = (await proc.stderr.read()).decode(errors="replace").strip()
                raise BenchError(f"the responder process did not start: {err or ready!r}")
            await self._time("r", GETPPID, self.options.hooked_count)
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
            out, errors = await proc.communicate()
        if proc.returncode != 0 or not out.startswith(b"answered"):
            raise BenchError(
                f"the responder process failed ({proc.returncode}): "
                f"{errors.decode(errors='replace').strip()}"
            )

    async def portal_alone(self) -> None:
        """(p): the asyncio portal with an empty handler, no dispatcher: between
        (r) and (c), it splits the time into the portal's and the API's."""

        async def empty(trap: Trap) -> None:
            return None

        shm, bell = self.machine.shm_path, self.machine.doorbell_fd
        async with Portal(
            shm,
            empty,
            doorbell=bell,
            shm_offset=self.machine.shm_offset,
            shm_size=self.machine.shm_region_size,
        ) as portal:
            await portal.set_hooks(
                [HookSpec(id=1, nr=syscall_nr(portal.syscalls, "getppid"), comm=PROGRAM)]
            )
            await self._time("p", GETPPID, self.options.hooked_count)

    # -- the plugin API cases -------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _hooked(
        self, plugins: Plugins, handler: Callable[..., Any], name: str, **options: Any
    ) -> AsyncIterator[None]:
        hook = await plugins.syscalls.register(handler, name, **options)
        try:
            yield
        finally:
            await plugins.syscalls.unregister(hook)

    async def plugin_api(self) -> HostIdle:
        plugins = Plugins()
        mem = plugins.mem
        hooked = self.options.hooked_count

        async with Session(plugins, machine=self.machine) as session:
            # aarch64 has no access(2): sa_bench calls faccessat(AT_FDCWD, path, F_OK)
            access, path_arg = "access", 0
            if plugins.syscalls.get_syscall_info_by_name("access") is None:
                access, path_arg = "faccessat", 1
            call = ACCESS if path_arg == 0 else f'faccessat(AT_FDCWD, "{MISSING}", F_OK)'

            async def read_path(regs: object, proto: object, syscall: object, *args: int) -> None:
                await mem.read_str(args[path_arg])

            async with self._hooked(plugins, _empty, "ioctl", comm_filter=PROGRAM):
                await self._time("b", GETPPID, self.options.count)
            async with self._hooked(plugins, _empty, "getppid", comm_filter=PROGRAM):
                await self._time("c", GETPPID, hooked)
            async with self._hooked(plugins, _empty, access, comm_filter=PROGRAM):
                await self._time("c_access", call, hooked)
            async with self._hooked(plugins, read_path, access, comm_filter=PROGRAM):
                await self._time("d", call, hooked)
            async with self._hooked(
                plugins, _empty, "getppid", on_enter=True, on_return=True, comm_filter=PROGRAM
            ):
                await self._time("e", GETPPID, hooked)
            async with self._hooked(plugins, _empty, "on_all_sys_enter", comm_filter=NO_SUCH_COMM):
                await self._time("f", GETPPID, self.options.count)
            async with self._hooked(plugins, _empty, "getppid", comm_filter=PROGRAM):
                self.say(f"(g0) blocking hook, empty handler: 1 and 2 processes x {hooked} calls")
                self.throughput["g0"] = Throughput(
                    title="blocking hook, empty handler",
                    call=GETPPID,
                    available=True,
                    one_process=await self._events_per_second(1),
                    two_processes=await self._events_per_second(2),
                )
                before = session.portal.bell_counters
                idle = await self._host_idle()
                await self._time("h", GETPPID, self.options.idle_count, idle=True)
                idle = msgspec.structs.replace(idle, bell=_gained(before, session.portal))
            self.throughput["g"] = await self._observe_only(session)
            self.throughput["g_batch"] = await self._observe_only(session, batch=True)
            self.guest_counters = msgspec.structs.asdict(session.portal.guest_counters())
        return idle

    async def _host_idle(self) -> HostIdle:
        seconds = self.options.idle_seconds
        self.say(f"(h) host CPU while hooks are registered and the guest idles {seconds:g} s")
        # the window starts once the host had time to notice the guest went quiet
        # (the poller spins a little after the last message): steady idle
        await asyncio.sleep(IDLE_SETTLE)
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)  # the window measured, not a wait for an event
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        return HostIdle(seconds=round(wall, 3), cpu_fraction=cpu / wall)

    async def _observe_only(self, session: Session, *, batch: bool = False) -> Throughput:
        """(g): an observe-only (read_only) hook with a handler that counts; with
        ``batch`` (g_batch) a ``batch=True`` hook whose handler counts each batch.

        Events handed to it per second, with 1 and 2 processes: the events over
        the longer of the guest's timed loops (the rate they were made at) and
        the span from the first to the last handler call (the rate the host
        took them at); the rate the guest made them at; and the drops."""
        calls: list[float] = []

        def count(regs: object, proto: object, syscall: object) -> None:
            calls.append(time.perf_counter())

        async def count_batch(events: Sequence[object]) -> None:
            calls.extend(itertools.repeat(time.perf_counter(), len(events)))

        def dropped() -> int:
            stats = session.stats
            return sum(stats.ring_drops) + stats.queue_drops

        n = self.options.hooked_count
        key, what = ("g_batch", "batch handler") if batch else ("g", "trivial handler")
        self.say(f"({key}) observe-only hook, {what}: 1 and 2 processes x {n} calls")
        rates: list[float] = []
        made: list[float] = []
        drops = dropped()
        handler = count_batch if batch else count
        options: dict[str, Any] = {"batch": True} if batch else {}
        async with self._hooked(
            session.plugins, handler, "getppid", comm_filter=PROGRAM, read_only=True, **options
        ):
            for processes in (1, 2):
                del calls[:]
                made.append(await self._events_per_second(processes))
                await session.flush_observed()
                if not calls:
                    raise BenchError("the observe-only hook saw no event")
                span = max(len(calls) / made[-1], calls[-1] - calls[0])
                rates.append(len(calls) / span)
        return Throughput(
            title=f"observe-only hook, {what}",
            call=GETPPID,
            available=True,
            one_process=rates[0],
            two_processes=rates[1],
            drops=dropped() - drops,
            made_one_process=made[0],
            made_two_processes=made[1],
        )


def _gained(before: BellCounters, portal: Portal) -> dict[str, int]:
    now = msgspec.structs.asdict(portal.bell_counters)
    if not portal.sleeps_on_bell:
        return {}
    return {k: v - getattr(before, k) for k, v in now.items()}


async def run_bench(
    options: BenchOptions,
    machine: Machine | None = None,
    *,
    smp: int = 2,
    memory_mib: int = 1024,
    console_log: str | None = None,
    arch: str = "x86_64",
    say: Callable[[str], None] = lambda text: None,
) -> BenchReport:
    """Boot the default guest (or use ``machine``) and measure every case once.

    ``machine`` must have no host attached to its portal; it is left with the
    module loaded and no host attached.
    """
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    async with contextlib.AsyncExitStack() as stack:
        if machine is None:
            say(f"booting the {arch} guest (-smp {smp}, {memory_mib} MiB)")
            machine = await stack.enter_async_context(
                Machine(smp=smp, memory_mib=memory_mib, console_log=console_log, arch=arch)
            )
        run = _Run(machine, options, say)
        await run.no_module()
        await run.floor()
        await run.portal_alone()
        idle = await run.plugin_api()
        order = [k for k in CASES if k in run.cases]
        cases = {k: run.cases[k] for k in order}
        throughput = {k: run.throughput[k] for k in ("g", "g_batch", "g0")}
        accel = machine.accel if machine.target.native else "tcg"
        if accel is None and machine.image is not None:
            accel = await choose_accel(QEMU, machine.image.kernel)  # decided at boot: cached
        info = MachineInfo(
            kernel=machine.kernel_release,
            smp=machine.smp,
            memory_mib=machine.memory_mib,
            accel=accel or "unknown",
            host_cpus=os.cpu_count() or 0,
            host_load_1min=os.getloadavg()[0],
            arch=machine.arch,
        )
    return BenchReport(
        started=started.isoformat(timespec="seconds"),
        duration_s=round(time.perf_counter() - t0, 1),
        machine=info,
        counts=Counts(
            unhooked=options.count,
            hooked=options.hooked_count,
            after_idle=options.idle_count,
            idle_ms=options.idle_ms,
            idle_seconds=options.idle_seconds,
        ),
        cases=cases,
        throughput=throughput,
        idle=idle,
        figures=figures(cases, throughput, idle),
        guest_counters=run.guest_counters,
    )
