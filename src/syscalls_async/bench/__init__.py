"""``syscalls-async bench``: the cost of each way a syscall can pass, in one boot.

Example::

    syscalls-async bench                    # default counts, under three minutes on a quiet host
    syscalls-async bench --quick --json out.json

In your own program::

    report = await run_bench(BenchOptions.quick())
    print(format_report(report))

The guest program ``sa_bench`` (``guest/sa_bench.c``) times every call with
CLOCK_MONOTONIC in the guest; the cases, their order and the JSON are
described in :mod:`.runner` and :mod:`.report`, the method in BENCHMARKS.md.
This package sits above the plugin API (like the CLI): it uses sessions,
the portal ABI and the machine, and nothing below imports it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import msgspec

from .report import BenchError, BenchReport, Figure, Latency, Throughput, format_report
from .runner import BenchOptions, run_bench

__all__ = [
    "run_bench",
    "BenchOptions",
    "BenchReport",
    "format_report",
    "Latency",
    "Throughput",
    "Figure",
    "BenchError",
    "add_arguments",
    "command",
]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {text}")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``bench`` subcommand's own options (the CLI adds the machine's)."""
    d = BenchOptions()
    q = BenchOptions.quick()
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"tiny counts (calls {q.count}, hooked {q.hooked_count}, after idle "
        f"{q.idle_count}, idle {q.idle_seconds:g} s): checks it works, measures nothing",
    )
    p.add_argument(
        "--count",
        type=_positive_int,
        metavar="N",
        help=f"calls per unhooked case (a), (b), (f) (default {d.count})",
    )
    p.add_argument(
        "--hooked-count",
        type=_positive_int,
        metavar="N",
        help=f"calls per hooked case and per process in (g0) (default {d.hooked_count})",
    )
    p.add_argument(
        "--idle-count",
        type=_positive_int,
        metavar="N",
        help=f"first calls after {d.idle_ms} ms idle in (h) (default {d.idle_count})",
    )
    p.add_argument(
        "--idle-seconds",
        type=_positive_float,
        metavar="S",
        help=f"how long host CPU is watched while the guest idles (default {d.idle_seconds:g})",
    )
    p.add_argument("--json", metavar="FILE", help="also write the figures to FILE as JSON")


def options_from(args: argparse.Namespace) -> BenchOptions:
    """The options a command line asks for: ``--quick`` sets what is not given."""
    base = BenchOptions.quick() if args.quick else BenchOptions()
    given = {
        "count": args.count,
        "hooked_count": args.hooked_count,
        "idle_count": args.idle_count,
        "idle_seconds": args.idle_seconds,
        "timeout": args.timeout,
    }
    return msgspec.structs.replace(base, **{k: v for k, v in given.items() if v is not None})


def command(args: argparse.Namespace) -> int:
    """Run ``syscalls-async bench`` with parsed arguments; checks them before booting."""
    options = options_from(args)
    json_path = Path(args.json) if args.json else None
    if json_path is not None and not json_path.parent.is_dir():
        raise BenchError(f"--json {args.json}: no folder {json_path.parent}")
    report = asyncio.run(
        run_bench(
            options,
            smp=args.smp,
            memory_mib=args.memory,
            console_log=args.console_log,
            arch=args.arch,
            say=lambda text: print(f"bench: {text}", file=sys.stderr, flush=True),
        )
    )
    print(format_report(report))
    if json_path is not None:
        json_path.write_bytes(msgspec.json.format(msgspec.json.encode(report)) + b"\n")
    return 0
