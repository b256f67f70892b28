"""What ``syscalls-async bench`` measured, the targets of issue 7, and how both print.

Everything here is host-only: the guest program ``sa_bench`` prints one line of
nanoseconds per run (:func:`parse_sample`), the runner turns those into
:class:`Latency` and :class:`Throughput` records, and :func:`figures` computes
the ratios and compares them with the targets.  The JSON (``--json FILE``) is
:class:`BenchReport` encoded by msgspec; :func:`format_report` prints the same
figures.  Nothing here decides whether a target *must* be met: ``met`` is
reported, never enforced.
"""

from __future__ import annotations

import msgspec

from ..errors import SyscallsAsyncError


class BenchError(SyscallsAsyncError):
    """A benchmark step failed (the guest program, the responder process, the module)."""


class Sample(msgspec.Struct, frozen=True):
    """One ``sa_bench`` line: ``COUNT P50 P90 P99 MIN MAX ELAPSED`` in nanoseconds."""

    count: int
    p50_ns: int
    p90_ns: int
    p99_ns: int
    min_ns: int
    max_ns: int
    elapsed_ns: int


def parse_sample(line: bytes | str) -> Sample:
    """Parse one line of ``sa_bench`` output; :class:`BenchError` says what is wrong.

    >>> parse_sample(b"3 10 20 30 5 40 900\\n").p90_ns
    20
    """
    text = line.decode(errors="replace") if isinstance(line, bytes) else line
    fields = text.split()
    try:
        values = [int(f) for f in fields]
    except ValueError:
        values = []
    if len(values) != 7:
        raise BenchError(f"sa_bench printed {text.strip()!r}, expected 7 numbers")
    sample = Sample(*values)
    ordered = [sample.min_ns, sample.p50_ns, sample.p90_ns, sample.p99_ns, sample.max_ns]
    if sample.count < 1 or ordered != sorted(ordered) or sample.elapsed_ns < 0:
        raise BenchError(f"sa_bench printed inconsistent figures: {text.strip()!r}")
    return sample


class Latency(msgspec.Struct, frozen=True):
    """One latency case: a syscall timed one call at a time in the guest (µs)."""

    title: str
    #: the measured call as the guest program makes it, e.g. ``getppid()``
    call: str
    count: int
    p50_us: float
    p90_us: float
    p99_us: float
    min_us: float
    max_us: float
    #: wall time of the timed loop (includes the clock reads)
    elapsed_s: float

    @classmethod
    def of(cls, title: str, call: str, sample: Sample) -> Latency:
        return cls(
            title=title,
            call=call,
            count=sample.count,
            p50_us=sample.p50_ns / 1000,
            p90_us=sample.p90_ns / 1000,
            p99_us=sample.p99_ns / 1000,
            min_us=sample.min_ns / 1000,
            max_us=sample.max_ns / 1000,
            elapsed_s=sample.elapsed_ns / 1e9,
        )


class Throughput(msgspec.Struct, frozen=True):
    """Hooked events per second with 1 and 2 guest processes calling at once.

    ``available`` is false (and the figures null) for a path that does not
    exist yet; ``reason`` says why.
    """

    title: str
    call: str
    available: bool
    one_process: float | None = None
    two_processes: float | None = None
    #: events the guest could not hand over (null: the path never drops)
    drops: int | None = None
    reason: str | None = None
    #: observe-only: events/s the guest made (its timed loops), whatever the
    #: host took; ``one_process``/``two_processes`` are what the host handled
    #: (at most this)
    made_one_process: float | None = None
    made_two_processes: float | None = None


def events_per_second(samples: list[Sample]) -> float:
    """All processes' calls over the longest of their timed loops (they overlap)."""
    longest = max(s.elapsed_ns for s in samples)
    return sum(s.count for s in samples) / (longest / 1e9) if longest > 0 else 0.0


class HostIdle(msgspec.Struct, frozen=True):
    """The host process's CPU time over wall time while hooks were registered
    and the guest did nothing (1.0 = one core busy)."""

    seconds: float
    cpu_fraction: float
    #: what woke the poller from the idle window's start to the end of the
    #: first calls after idle (``BellCounters`` fields; empty without a doorbell)
    bell: dict[str, int] = {}


class MachineInfo(msgspec.Struct, frozen=True):
    kernel: str
    smp: int
    memory_mib: int
    accel: str
    host_cpus: int
    host_load_1min: float
    #: the guest's architecture (reports before it was recorded: x86_64)
    arch: str = "x86_64"


class Counts(msgspec.Struct, frozen=True):
    """How many calls each kind of case times (the ``--count`` options)."""

    unhooked: int
    hooked: int
    after_idle: int
    idle_ms: int
    idle_seconds: float


class Figure(msgspec.Struct, frozen=True):
    """One target of issue 7: the measured value, the target, and whether it was met."""

    name: str
    value: float | None
    target: str
    met: bool | None
    note: str = ""


class BenchReport(msgspec.Struct, frozen=True):
    started: str
    duration_s: float
    machine: MachineInfo
    counts: Counts
    cases: dict[str, Latency]
    throughput: dict[str, Throughput]
    idle: HostIdle
    figures: list[Figure]
    #: the module's counters since it was reloaded after (a): every hooked case
    guest_counters: dict[str, int] = {}


#: guest counters that mean some hooked calls were not answered in time, so
#: their figures measure the guest's give-up path, not the host
UNANSWERED = ("deadline_expired", "no_slot", "host_dead_skips", "bad_host_msg")


def unanswered(counters: dict[str, int]) -> dict[str, int]:
    """The nonzero counters of :data:`UNANSWERED`."""
    return {k: counters[k] for k in UNANSWERED if counters.get(k)}


#: Case keys in print order, with what each measures.
CASES = {
    "a": "no module",
    "b": "module loaded, call unhooked, ioctl hooked",
    "r": "hooked, answered by a busy-polling responder process (no asyncio): the floor",
    "p": "hooked, answered by Portal with an empty handler (asyncio, no dispatcher)",
    "c": "hooked, empty async def handler (plugin API)",
    "c_access": "hooked, empty async def handler (plugin API), same call as (d)",
    "d": "hooked, handler awaits plugins.mem.read_str(path)",
    "e": "enter and return hooks, empty handlers",
    "f": "on_all_sys_enter hook whose comm filter rejects the program in the guest",
    "h": "first hooked call after idle",
}

OBSERVE_ONLY_MISSING = "the observe-only path (per-CPU rings) does not exist yet"


def _ratio(num: float, den: float) -> float | None:
    return num / den if den > 0 else None


def _figure(name: str, value: float | None, limit: float, upper: bool, note: str = "") -> Figure:
    target = f"{'<=' if upper else '>='} {limit:g}"
    met = None if value is None else (value <= limit if upper else value >= limit)
    return Figure(name=name, value=value, target=target, met=met, note=note)


def figures(
    cases: dict[str, Latency], throughput: dict[str, Throughput], idle: HostIdle
) -> list[Figure]:
    """The ratios and targets of issue 7 from one run's cases."""
    a, b, r, c, d, f, h = (cases[k] for k in "abrcdfh")
    observed = throughput["g"]
    out = [
        _figure("(b)/(a) p50", _ratio(b.p50_us, a.p50_us), 1.05, True),
        _figure("(c)/(r) p50", _ratio(c.p50_us, r.p50_us), 2, True),
        _figure("(c) p99/p50", _ratio(c.p99_us, c.p50_us), 10, True),
        _figure(
            "(d)/(c) p50",
            _ratio(d.p50_us, c.p50_us),
            2,
            True,
            f"(d) times {d.call}, (c) {c.call}",
        ),
    ]
    same = cases.get("c_access")
    if same is not None:
        out.append(
            _figure(
                "(d)/(c_access) p50",
                _ratio(d.p50_us, same.p50_us),
                2,
                True,
                f"both time {d.call}: the cost of the read_str alone",
            )
        )
    out += [
        _figure("(f)/(a) p50", _ratio(f.p50_us, a.p50_us), 1.5, True),
        _figure("(h) idle host CPU, % of one core", 100 * idle.cpu_fraction, 2, True),
        _figure("(h) first call after idle p50, µs", h.p50_us, 100, True),
        _figure(
            "(g) observe-only events/s, 2 processes",
            observed.two_processes,
            200_000,
            False,
            observed.reason or "",
        ),
    ]
    batch = throughput.get("g_batch")
    if batch is not None:
        out.append(
            _figure(
                "(g_batch) observe-only batch handler events/s, 2 processes",
                batch.two_processes,
                200_000,
                False,
                batch.reason
                or f"the guest made {_num(batch.made_two_processes, 0)}/s: the host "
                "handles at most that",
            )
        )
    return out


def _num(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def format_report(report: BenchReport) -> str:
    """The report as text: one row per case, then throughput, idle cost and targets."""
    m = report.machine
    lines = [
        f"syscalls-async bench: {report.started}, {report.duration_s:.0f} s; "
        f"{m.arch} guest {m.kernel}, "
        f"-smp {m.smp}, {m.memory_mib} MiB, {m.accel}; host {m.host_cpus} CPUs, "
        f"load {m.host_load_1min:.2f}",
        "guest-timed per call (CLOCK_MONOTONIC), µs:",
        f"  {'case':<10} {'call':<34} {'count':>7} {'p50':>9} {'p90':>9} {'p99':>9}  what",
    ]
    for key, case in report.cases.items():
        lines.append(
            f"  ({key}){'':<{8 - len(key)}} {case.call:<34} {case.count:>7} "
            f"{case.p50_us:>9.1f} {case.p90_us:>9.1f} {case.p99_us:>9.1f}  {case.title}"
        )
    lines.append("events per second:")
    for key, t in report.throughput.items():
        if t.available:
            drops = "never drops" if t.drops is None else f"{t.drops} dropped"
            lines.append(
                f"  ({key}) {t.title}, {t.call}: 1 process {_num(t.one_process, 0)}, "
                f"2 processes {_num(t.two_processes, 0)} ({drops})"
            )
            if t.made_two_processes is not None:
                lines.append(
                    f"  {'':<{len(key) + 2}} the guest made 1 process "
                    f"{_num(t.made_one_process, 0)}, 2 processes "
                    f"{_num(t.made_two_processes, 0)} per second"
                )
        else:
            lines.append(f"  ({key}) {t.title}: not available ({t.reason})")
    lines.append(
        f"host CPU while hooks are registered and the guest idles {report.idle.seconds:g} s: "
        f"{100 * report.idle.cpu_fraction:.1f}% of one core"
    )
    b = report.idle.bell
    if b:
        lines.append(
            f"  the poller slept on the doorbell {b.get('sleeps', 0)} times: woken by the bell "
            f"{b.get('bell_wakeups', 0)}, by its liveness tick {b.get('timer_wakeups', 0)}, "
            f"lost wake-ups found by the fallback {b.get('fallback_wakeups', 0)}"
        )
    c = report.guest_counters
    if c:
        lines.append(
            f"guest module since its reload: {c.get('events', 0)} events, "
            f"{c.get('verdicts', 0)} verdicts, {c.get('requests', 0)} memory requests"
        )
    bad = unanswered(c)
    if bad:
        what = ", ".join(f"{k} {v}" for k, v in bad.items())
        lines.append(
            f"WARNING: hooked calls went unanswered ({what}):"
            " the hooked figures include the guest giving up on the host"
        )
    lines.append("targets (issue 7; reported, not enforced):")
    for fig in report.figures:
        met = {True: "met", False: "NOT met", None: "n/a"}[fig.met]
        note = f"  ({fig.note})" if fig.note else ""
        value = _num(fig.value, 2)
        lines.append(f"  {fig.name:<40} {value:>10}  target {fig.target:<10} {met}{note}")
    return "\n".join(lines)
