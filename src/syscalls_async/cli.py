"""The ``syscalls-async`` command.

::

    syscalls-async setup                 # install host tools, build the guest image
    syscalls-async image build|info      # the bundled guest image
    syscalls-async exec -- CMD [ARG...]  # boot the guest, run CMD, exit with its status
    syscalls-async run PLUGIN.py -- CMD  # load a plugin file, run CMD with its hooks live
    syscalls-async trace -- CMD          # strace-like: every syscall of CMD, decoded
    syscalls-async demo                  # boot the guest and show the framework at work
    syscalls-async bench [--quick]       # measure the cost of each kind of hook, in one boot
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import math
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TextIO

import msgspec

from . import bench, demo
from ._text import json_safe, printable
from .api import Session, load_plugin_file, plugins
from .api.plugins import Plugins
from .api.session import check_handler_timeout
from .api.trace import (
    Selection,
    Summary,
    Tracer,
    TraceRecord,
    parse_expressions,
    unknown_syscalls,
)
from .api.trace_record import schema as trace_schema
from .errors import SyscallsAsyncError
from .machine import CommandResult, Machine, build_image, current_image
from .syscalls import FailClosed
from .syscalls.policy import parse_errno


def _print_image(image: object) -> None:
    print(msgspec.json.format(msgspec.json.encode(image)).decode())


def cmd_setup(args: argparse.Namespace) -> int:
    image = build_image(force=args.force)
    print(f"guest image ready: {image.directory}")
    return 0


def cmd_image(args: argparse.Namespace) -> int:
    if args.action == "build":
        image = build_image(force=args.force)
        print(image.directory)
        return 0
    current = current_image()
    if current is None:
        print("no image built yet: run `syscalls-async image build`", file=sys.stderr)
        return 1
    _print_image(current)
    return 0


def _machine(args: argparse.Namespace) -> Machine:
    return Machine(smp=args.smp, memory_mib=args.memory, console_log=args.console_log)


def _command(args: argparse.Namespace, usage: str) -> list[str] | None:
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        print(f"syscalls-async: no command given (usage: {usage})", file=sys.stderr)
        return None
    return command


def _print_result(result: CommandResult) -> int:
    sys.stdout.buffer.write(result.stdout)
    sys.stdout.flush()
    sys.stderr.buffer.write(result.stderr)
    return result.exit_status


async def _exec(args: argparse.Namespace) -> int:
    command = _command(args, "exec -- CMD [ARG...]")
    if command is None:
        return 2
    async with _machine(args) as machine:
        result = await machine.run(command, timeout=args.timeout)
    return _print_result(result)


async def _run(args: argparse.Namespace) -> int:
    command = _command(args, "run PLUGIN.py -- CMD [ARG...]")
    if command is None:
        return 2
    load_plugin_file(args.plugin)  # registration errors surface before booting
    async with Session(
        plugins,
        smp=args.smp,
        memory_mib=args.memory,
        console_log=args.console_log,
        fail_fast=args.fail_fast,
        handler_timeout=args.handler_timeout,
        on_error="continue" if args.fail_closed is None else FailClosed(args.fail_closed),
    ) as session:
        result = await session.run(command, timeout=args.timeout)
        # handlers print as they run; their output comes before the command's
        sys.stdout.flush()
    if args.stats:
        print(f"syscalls-async: {session.stats}", file=sys.stderr)
    return _print_result(result)


def cmd_trace(args: argparse.Namespace) -> int:
    if args.schema:
        print(msgspec.json.format(msgspec.json.encode(trace_schema())).decode())
        return 0
    try:
        selection = parse_expressions(
            [*args.expressions, *(f"inject={rule}" for rule in args.inject)]
        )
    except ValueError as exc:
        print(f"syscalls-async: {exc}", file=sys.stderr)
        return 2
    if args.output is None:
        return run_async(_trace(args, selection, sys.stderr))
    try:
        out = open(args.output, "w")  # noqa: SIM115 (closed below, after the run)
    except OSError as exc:
        print(
            f"syscalls-async: cannot write the trace to {args.output}: {exc.strerror}",
            file=sys.stderr,
        )
        return 2
    with out:
        return run_async(_trace(args, selection, out))


async def _trace(args: argparse.Namespace, selection: Selection, out: TextIO) -> int:
    command = _command(
        args, "trace [-e EXPR] [--inject RULE] [-s N] [-tt] [-T] [-c] [--json] -- CMD [ARG...]"
    )
    if command is None:
        return 2
    trace_plugins = Plugins()
    unknown = unknown_syscalls(trace_plugins, selection)
    if unknown:
        print(f"syscalls-async: unknown syscall {', '.join(unknown)}", file=sys.stderr)
        return 2
    encoder = msgspec.json.Encoder()
    summary = Summary()
    lines = not args.summary_only

    def emit(record: TraceRecord) -> None:
        summary.add(record)
        if not lines:
            return
        if args.json:
            line = json_safe(encoder.encode(record).decode())
        else:
            line = record.format(
                pid_prefix=len(tracer.tasks) > 1,
                timestamps=args.timestamps,
                durations=args.durations,
            )
        print(line, file=out, flush=True)

    async with Session(
        trace_plugins, smp=args.smp, memory_mib=args.memory, console_log=args.console_log
    ) as session:
        tracer = Tracer(
            session.plugins,
            comm=args.comm,
            pid=args.pid,
            trace_all=args.all,
            follow=args.follow,
            syscalls=selection.syscalls,
            status=selection.status,
            string_limit=args.string_limit,
            inject=selection.injections,
            fd_paths=args.fd_paths,
            emit=emit,
        )
        await tracer.start()
        result = await session.run(command, timeout=args.timeout)
    if args.summary_only or args.summary:
        print(summary.format(), file=out, flush=True)
    return _print_result(result)


#: signals that end a command cleanly (the guest is stopped, nothing is left behind)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def run_async(main: Coroutine[Any, Any, int]) -> int:
    """Run ``main``; SIGTERM or SIGHUP cancel it, so it cleans up, and give 128 + N.

    (SIGINT does the same through asyncio and :class:`KeyboardInterrupt`: 130.)
    """

    async def supervised() -> int:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        received: list[signal.Signals] = []

        def stop(signum: signal.Signals) -> None:
            if not received:  # a second signal must not cut the clean-up short
                received.append(signum)
                print(f"syscalls-async: {signum.name}: stopping the guest", file=sys.stderr)
                task.cancel()

        for signum in STOP_SIGNALS:
            loop.add_signal_handler(signum, stop, signum)
        try:
            return await main
        except asyncio.CancelledError:
            if received:
                return 128 + received[0]
            raise
        finally:
            for signum in STOP_SIGNALS:
                loop.remove_signal_handler(signum)

    return asyncio.run(supervised())


def positive(kind: Callable[[str], float], example: str) -> Callable[[str], float]:
    """An argparse ``type`` that accepts only finite numbers above 0."""

    def convert(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(
                f"must be a number greater than 0 (e.g. {example}), not {text!r}"
            )
        return value

    convert.__name__ = kind.__name__  # argparse names the type in its messages
    return convert


def _add_machine_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--smp", type=positive(int, "2"), default=2, help="virtual CPUs (default 2)")
    p.add_argument(
        "--memory", type=positive(int, "1024"), default=1024, help="guest RAM in MiB (default 1024)"
    )
    p.add_argument(
        "--timeout",
        type=positive(float, "600"),
        default=600,
        help="command timeout in seconds (default 600)",
    )
    p.add_argument("--console-log", help="keep the guest console log in this file")


def _errno_arg(text: str) -> int:
    try:
        return parse_errno(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"{exc}; just before PLUGIN write --fail-closed=EPERM (an ERRNO is optional)"
        ) from None


def _handler_timeout(text: str) -> float:
    """A positive number (as every time option), and at most the module's wait."""
    value = positive(float, "30")(text)
    try:
        return check_handler_timeout(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="syscalls-async",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    top.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = top.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("setup", help="install host tools and build the guest image")
    p.add_argument("--force", action="store_true", help="rebuild even if cached")
    p.set_defaults(func=cmd_setup)

    p = sub.add_parser("image", help="build or describe the guest image")
    p.add_argument("action", choices=["build", "info"])
    p.add_argument("--force", action="store_true", help="rebuild even if cached")
    p.set_defaults(func=cmd_image)

    p = sub.add_parser("exec", help="boot the guest, run a command in it, exit with its status")
    _add_machine_options(p)
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD [ARG...]")
    p.set_defaults(func=lambda a: run_async(_exec(a)))

    p = sub.add_parser("run", help="load a plugin file and run a command with its hooks live")
    _add_machine_options(p)
    p.add_argument("plugin", help="a Python file with Plugin subclasses or decorated handlers")
    p.add_argument(
        "--fail-fast",
        action="store_true",
        help="end with the first handler error instead of logging it",
    )
    p.add_argument(
        "--handler-timeout",
        type=_handler_timeout,
        default=30.0,
        metavar="SECONDS",
        help="the budget of one syscall's handlers (default 30): one still running then "
        "is cancelled and counted; the guest waits for the verdict this long plus a margin",
    )
    p.add_argument(
        "--fail-closed",
        nargs="?",
        const=errno.EPERM,
        type=_errno_arg,
        metavar="ERRNO",
        help="when a handler fails (raises or times out), refuse its call with -ERRNO "
        "(a name or number, default EPERM) instead of letting it run; hooks with their own "
        "on_error keep theirs (just before PLUGIN write --fail-closed=ERRNO)",
    )
    p.add_argument(
        "--stats", action="store_true", help="print dispatch and guest counts at the end"
    )
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD [ARG...]")
    p.set_defaults(func=lambda a: run_async(_run(a)))

    p = sub.add_parser(
        "trace", help="strace-like: run a command and print each of its syscalls, decoded"
    )
    _add_machine_options(p)
    p.add_argument(
        "-f",
        dest="follow",
        action="store_true",
        default=True,
        help="follow children and threads (the default)",
    )
    p.add_argument(
        "--no-follow", dest="follow", action="store_false", help="trace only the root processes"
    )
    p.add_argument("--comm", help="trace tasks with this comm (and what they start)")
    p.add_argument(
        "--pid", type=positive(int, "42"), help="trace this guest process (and what it starts)"
    )
    p.add_argument("--all", action="store_true", help="trace every task but the guest's agent")
    p.add_argument(
        "-e",
        dest="expressions",
        action="append",
        default=[],
        metavar="EXPR",
        help="trace=NAME,%%CLASS,... (classes: %%file %%process %%network %%memory "
        "%%signal; 'trace=' may be left out), status=failed|successful, "
        "inject=SET:error=ERRNO|retval=N[:when=N|N+|N+S]; repeatable",
    )
    p.add_argument(
        "--inject",
        action="append",
        default=[],
        metavar="RULE",
        help="fault injection with an argument match: SET:error=ERRNO|retval=N"
        "[:when=...][:path=GLOB], e.g. 'openat:error=EACCES:path=/etc/*'; repeatable",
    )
    p.add_argument(
        "-s",
        dest="string_limit",
        type=positive(int, "64"),
        default=32,
        metavar="N",
        help="bytes of strings and buffers shown (default 32)",
    )
    p.add_argument(
        "-y", dest="fd_paths", action="store_true", help="show file descriptors with their paths"
    )
    p.add_argument("-tt", dest="timestamps", action="store_true", help="time of each call")
    p.add_argument("-T", dest="durations", action="store_true", help="time spent in each call")
    p.add_argument(
        "-c", dest="summary_only", action="store_true", help="only a summary table at the end"
    )
    p.add_argument("-C", dest="summary", action="store_true", help="the lines and the summary")
    p.add_argument("--json", action="store_true", help="one JSON record a line (see --schema)")
    p.add_argument(
        "--schema", action="store_true", help="print the JSON Schema of a --json line and exit"
    )
    p.add_argument(
        "-o", dest="output", metavar="FILE", help="write the trace here (default: stderr)"
    )
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD [ARG...]")
    p.set_defaults(func=cmd_trace)

    p = sub.add_parser("demo", help="boot the guest and show the framework at work")
    _add_machine_options(p)
    p.set_defaults(
        func=lambda a: run_async(
            demo.main(smp=a.smp, memory_mib=a.memory, console_log=a.console_log, timeout=a.timeout)
        )
    )

    p = sub.add_parser("bench", help="measure the cost of each kind of hook, in one boot")
    _add_machine_options(p)
    bench.add_arguments(p)
    p.set_defaults(func=bench.command)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        status: int = args.func(args)
    except SyscallsAsyncError as exc:
        # messages may quote guest text (console lines, agent replies)
        print(f"syscalls-async: {printable(str(exc), multiline=True)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return status


if __name__ == "__main__":
    sys.exit(main())
