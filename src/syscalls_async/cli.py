"""The syscalls-async command: run programs in a QEMU guest and watch their syscalls.

  syscalls-async setup                 install host tools, build the guest image
  syscalls-async image build|info      the bundled guest image
  syscalls-async exec -- CMD [ARG...]  boot the guest, run CMD, exit with its status
  syscalls-async run PLUGIN.py -- CMD  load a plugin file, run CMD with its hooks live
  syscalls-async trace -- CMD          strace-like: every syscall of CMD, decoded
  syscalls-async replay FILE PLUGIN.py  a run's recording (run --record FILE) fed to a plugin
  syscalls-async demo                  boot the guest and show the framework at work
  syscalls-async bench [--quick]       measure the cost of each kind of hook, in one boot

Options go anywhere before "--"; everything after it is the guest command.
A command that outlives --timeout is killed: what it printed is kept and the
exit status is 124.  Run "syscalls-async COMMAND -h" for a command's options.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import math
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TextIO

import msgspec

from . import __version__, bench, demo
from ._text import json_safe, printable
from .api import Session, load_plugin_file, plugins
from .api.plugins import Plugins
from .api.record import read_recording
from .api.session import check_handler_timeout
from .api.trace import (
    Selection,
    Summary,
    Tracer,
    TraceRecord,
    parse_expressions,
    unknown_syscalls,
)
from .api.trace_record import LinePrinter
from .api.trace_record import schema as trace_schema
from .errors import CommandTimeout, InvalidValue, MachineError, SyscallsAsyncError
from .machine import CommandResult, Machine, build_image, current_image
from .machine.agent import MAX_INPUT
from .machine.files import DEFAULT_GUEST_DIR, guest_path, parse_add
from .machine.hosttools import ensure_host_tools
from .machine.targets import DEFAULT_TARGET, TARGETS
from .portal import cscan
from .syscalls import FailClosed
from .syscalls.policy import parse_errno
from .testing.replay import replay

log = logging.getLogger("syscalls.cli")

#: exit status of a command killed by its --timeout (as timeout(1) has it)
TIMEOUT_STATUS = 124


def _print_image(image: object) -> None:
    print(msgspec.json.format(msgspec.json.encode(image)).decode())


def cmd_setup(args: argparse.Namespace) -> int:
    archs = list(TARGETS) if args.arch == "all" else [args.arch]
    if args.tools_only:
        ensure_host_tools(install=True, targets=[TARGETS[a] for a in archs])
        print(f"host tools ready for {', '.join(archs)}")
        return 0
    for arch in archs:
        image = build_image(force=args.force, install=True, arch=arch)
        print(f"guest image ready ({arch}): {image.directory}")
    return 0


def cmd_image(args: argparse.Namespace) -> int:
    if args.action == "build":
        image = build_image(force=args.force, arch=args.arch)
        print(image.directory)
        return 0
    current = current_image(args.arch)
    if current is None:
        hint = "" if args.arch == DEFAULT_TARGET else f" --arch {args.arch}"
        print(f"no image built yet: run `syscalls-async image build{hint}`", file=sys.stderr)
        return 1
    _print_image(current)
    return 0


def _machine_options(args: argparse.Namespace) -> dict[str, Any]:
    """What the shared machine options ask of a :class:`Machine` or :class:`Session`."""
    return dict(
        smp=args.smp,
        memory_mib=args.memory,
        console_log=args.console_log,
        add=args.add,
        arch=args.arch,
    )


def _machine(args: argparse.Namespace) -> Machine:
    return Machine(**_machine_options(args))


async def _guest_command(
    target: Machine | Session, command: list[str], args: argparse.Namespace, input: bytes = b""
) -> CommandResult:
    """Run the user's command; on a timeout keep what it printed, with exit status 124."""
    try:
        return await target.run(command, timeout=args.timeout, input=input)
    except CommandTimeout as exc:
        print(f"syscalls-async: {printable(str(exc))}", file=sys.stderr)
        return CommandResult(exc.command, TIMEOUT_STATUS, exc.stdout, exc.stderr)


async def _collect(machine: Machine | None, args: argparse.Namespace) -> bool:
    """Copy each ``--collect`` path out of the guest; False if one failed."""
    assert machine is not None
    ok = True
    for guest, host in args.collect:
        try:
            got = await machine.collect(guest, host)
        except MachineError as exc:
            ok = False
            print(f"syscalls-async: --collect {guest}: {printable(str(exc))}", file=sys.stderr)
            continue
        log.info("collected %d files from %s into %s", len(got.files), guest, host)
        if got.refused:
            shown = "; ".join(f"{printable(n)}: {why}" for n, why in got.refused[:3])
            more = f" and {len(got.refused) - 3} more" if len(got.refused) > 3 else ""
            print(
                f"syscalls-async: --collect {guest}: refused {len(got.refused)} "
                f"entries ({shown}{more})",
                file=sys.stderr,
            )
    return ok


def _with_collected(result: CommandResult, collected: bool) -> CommandResult:
    """A failed --collect makes a successful run fail (status 1)."""
    if collected or result.exit_status != 0:
        return result
    return CommandResult(result.command, 1, result.stdout, result.stderr)


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
        result = await _guest_command(machine, command, args, input=args.input)
        result = _with_collected(result, await _collect(machine, args))
    return _print_result(result)


async def _run(args: argparse.Namespace) -> int:
    command = _command(args, "run PLUGIN.py -- CMD [ARG...]")
    if command is None:
        return 2
    plugins.arch = args.arch  # a plugin file may pick per-architecture numbers
    load_plugin_file(args.plugin)  # registration errors surface before booting
    async with Session(
        plugins,
        **_machine_options(args),
        fail_fast=args.fail_fast,
        handler_timeout=args.handler_timeout,
        on_error="continue" if args.fail_closed is None else FailClosed(args.fail_closed),
        record=args.record,
    ) as session:
        result = await _guest_command(session, command, args)
        # handlers print as they run; their output comes before the command's
        sys.stdout.flush()
        result = _with_collected(result, await _collect(session.machine, args))
    if args.stats:
        print(f"syscalls-async: {session.stats}", file=sys.stderr)
        print(f"syscalls-async: portal scan: {cscan.status()}", file=sys.stderr)
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
    with open(args.output, "w") as out:
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
    # colour only for a terminal, and not when the user asks for none (no-color.org)
    colour = out.isatty() and not os.environ.get("NO_COLOR")

    printer = LinePrinter(
        lambda line: print(line, file=out, flush=True),
        timestamps=args.timestamps,
        durations=args.durations,
        colour=colour,
    )

    def emit(record: TraceRecord) -> None:
        summary.add(record)
        if not lines:
            return
        if args.json:
            print(json_safe(encoder.encode(record).decode()), file=out, flush=True)
        else:
            printer.record(record)

    # unfinished/resumed lines only when every call's line is printed as it ends
    interleave = lines and not args.json and selection.status is None

    async with Session(trace_plugins, **_machine_options(args), record=args.record) as session:
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
            entered=printer.entered if interleave else None,
        )
        await tracer.start()
        result = await _guest_command(session, command, args)
        result = _with_collected(result, await _collect(session.machine, args))
    if args.summary_only or args.summary:
        print(summary.format(), file=out, flush=True)
    return _print_result(result)


#: the exit status of a replay whose verdicts differ from the recording's
DIVERGED = 3


def cmd_replay(args: argparse.Namespace) -> int:
    recording = read_recording(args.recording)  # a bad file is refused before any import
    load_plugin_file(args.plugin)
    report = asyncio.run(replay(recording, plugins))
    sys.stdout.flush()  # handler output first, then the summary
    print(report.summary(), file=sys.stderr)
    return 0 if report.same else DIVERGED


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


def _add_machine_options(
    p: argparse.ArgumentParser, *, add: bool = True, collect: bool = True
) -> None:
    """The options of every booting command (``add``/``collect``: the files options)."""
    _add_arch_option(p)
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
    p.add_argument("--console-log", metavar="FILE", help="keep the guest console log in this file")
    if add:
        _add_files_option(p)
    if collect:
        _add_collect_option(p)
    _add_verbose(p)


def _add_arch_option(p: argparse.ArgumentParser, *, all_: bool = False) -> None:
    """``--arch``: the guest's architecture; argparse refuses other names, listing these."""
    choices = [*TARGETS, "all"] if all_ else list(TARGETS)
    extra = "; all: every one" if all_ else ""
    p.add_argument(
        "--arch",
        choices=choices,
        default=DEFAULT_TARGET,
        help=f"guest architecture (default {DEFAULT_TARGET}; non-x86_64 run under TCG{extra})",
    )


def _add_files_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--add",
        action="append",
        default=[],
        metavar="HOST_PATH[:GUEST_PATH]",
        help="put a file or folder into the guest before it boots (repeatable); modes are "
        f"kept; without GUEST_PATH it goes to {DEFAULT_GUEST_DIR}/NAME, the command's "
        "working folder",
    )


def _add_collect_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--collect",
        action="append",
        default=[],
        type=_collect_spec,
        metavar="GUEST_PATH:HOST_DIR",
        help="after the command, copy this guest file or folder into HOST_DIR (repeatable); "
        "only regular files and folders are copied",
    )


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
    top.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = top.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "setup", help="install host tools and build the guest image (the only command that "
        "runs apt-get)"
    )  # fmt: skip
    p.add_argument("--force", action="store_true", help="rebuild even if cached")
    p.add_argument(
        "--tools-only",
        action="store_true",
        help="install the host packages only; images are built when first booted",
    )
    _add_arch_option(p, all_=True)
    _add_verbose(p)
    p.set_defaults(func=cmd_setup)

    p = sub.add_parser("image", help="build or describe the guest image")
    p.add_argument("action", choices=["build", "info"])
    p.add_argument("--force", action="store_true", help="rebuild even if cached")
    _add_arch_option(p)
    _add_verbose(p)
    p.set_defaults(func=cmd_image)

    p = sub.add_parser("exec", help="boot the guest, run a command in it, exit with its status")
    _add_machine_options(p)
    p.add_argument(
        "-i",
        "--stdin",
        dest="interactive",
        action="store_true",
        help=f"forward stdin to the command (at most {MAX_INPUT} bytes); without -i the "
        "command's stdin is empty, so a stdin that never closes cannot hang exec",
    )
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
    p.add_argument("--record", metavar="FILE", help="write the event stream here (for replay)")
    # not REMAINDER: options after PLUGIN are options (the command follows "--")
    p.add_argument("command", nargs="*", help="-- CMD [ARG...]")
    p.set_defaults(func=lambda a: run_async(_run(a)))

    p = sub.add_parser(
        "replay",
        help="feed a recording (run --record FILE) to a plugin's handlers, without a guest",
        description="Replay a recording through a plugin's handlers without a guest; exit "
        f"status 0 when every verdict is as recorded, {DIVERGED} when some differ.",
    )
    p.add_argument("recording", metavar="FILE", help="a recording made with run --record")
    p.add_argument("plugin", help="a Python file with Plugin subclasses or decorated handlers")
    _add_verbose(p)
    p.set_defaults(func=cmd_replay)

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
    p.add_argument("--record", metavar="FILE", help="write the event stream here (see replay)")
    p.add_argument(
        "--schema", action="store_true", help="print the JSON Schema of a --json line and exit"
    )
    p.add_argument(
        "-o", dest="output", metavar="FILE", help="write the trace here (default: stderr)"
    )
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD [ARG...]")
    p.set_defaults(func=cmd_trace)

    p = sub.add_parser("demo", help="boot the guest and show the framework at work")
    _add_machine_options(p, collect=False)
    p.set_defaults(func=lambda a: run_async(demo.main(**_machine_options(a), timeout=a.timeout)))

    p = sub.add_parser("bench", help="measure the cost of each kind of hook, in one boot")
    _add_machine_options(p, add=False, collect=False)  # it boots its own guests
    bench.add_arguments(p)
    p.set_defaults(func=bench.command)

    for name, p in sub.choices.items():
        p.formatter_class = argparse.RawDescriptionHelpFormatter
        if not p.epilog and name in EXAMPLES:
            p.epilog = "example:\n  " + "\n  ".join(EXAMPLES[name])
    return top


#: a command line or two for each command's help
EXAMPLES: dict[str, list[str]] = {
    "setup": ["sudo syscalls-async setup", "sudo syscalls-async setup --arch aarch64"],
    "image": ["syscalls-async image info", "syscalls-async image build --arch aarch64"],
    "exec": [
        "syscalls-async exec -- uname -a",
        "syscalls-async exec --add ./prog --collect /root/out:results -- ./prog",
        "echo hello | syscalls-async exec -- wc -c",
    ],
    "run": ["syscalls-async run examples/block_shadow.py --stats -- cat /etc/shadow"],
    "trace": [
        "syscalls-async trace -- sh -c 'cat /etc/passwd | head -1'",
        "syscalls-async trace -e trace=%file -e status=failed -y -- ls /nope",
        "syscalls-async trace --inject 'openat:error=EACCES:path=/etc/*' -- cat /etc/passwd",
        "syscalls-async trace -c -- ls /",
        "syscalls-async trace --json -o trace.jsonl -- ls /",
    ],
    "replay": [
        "syscalls-async run plugin.py --record run.rec -- cat /etc/passwd",
        "syscalls-async replay run.rec plugin.py",
    ],
    "demo": ["syscalls-async demo", "syscalls-async demo --arch aarch64"],
    "bench": ["syscalls-async bench --quick"],
}


def _show_progress() -> None:
    """On a terminal, show the machine layer's progress records (image build, boot) as lines.

    Elsewhere they stay log records, shown with ``-v``.
    """
    for handler in logging.getLogger().handlers:
        handler.setLevel(logging.WARNING)
    if not sys.stderr.isatty():
        return
    progress = logging.StreamHandler(sys.stderr)
    progress.setFormatter(logging.Formatter("==> %(message)s"))
    progress.addFilter(lambda record: record.levelno == logging.INFO)
    machine = logging.getLogger("syscalls.machine")
    machine.addHandler(progress)
    machine.setLevel(logging.INFO)


def _add_verbose(p: argparse.ArgumentParser) -> None:
    # SUPPRESS: a -v before the command name is not undone by its absence after it
    p.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="debug logging"
    )


def _collect_spec(text: str) -> tuple[str, str]:
    guest, sep, host = text.partition(":")
    if not sep or not host:
        raise argparse.ArgumentTypeError(f"expected GUEST_PATH:HOST_DIR, not {text!r}")
    try:
        return guest_path(guest), host
    except InvalidValue as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """Parse a command line; the guest command is what follows the first ``--``.

    Splitting there first lets options come after PLUGIN (``run P.py
    --timeout 5 -- ls``) and keeps the command's own ``--`` and options
    out of argparse's hands.
    """
    argv = list(argv)
    tail: list[str] | None = None
    if "--" in argv:
        at = argv.index("--")
        argv, tail = argv[:at], argv[at + 1 :]
    args = parser().parse_args(argv)
    if tail is not None and hasattr(args, "command"):
        before = [a for a in args.command if a != "--"]
        args.command = [*before, "--", *tail] if before else tail
    elif tail:
        parser().error(f"{args.cmd} takes no command after --")
    return args


def _check_output(option: str, path: str) -> str | None:
    """Why ``path`` cannot be written (one line), or None."""
    target = os.path.abspath(path)
    if os.path.isdir(target):
        return f"{option} {path}: is a folder"
    if os.path.exists(target):
        return None if os.access(target, os.W_OK) else f"{option} {path}: not writable"
    folder = os.path.dirname(target)
    if not os.path.isdir(folder):
        return f"{option} {path}: no folder {folder}"
    return None if os.access(folder, os.W_OK) else f"{option} {path}: folder not writable"


def _check_collect_dir(host: str) -> str | None:
    """Why ``--collect`` could not write into ``host`` (created if missing), or None."""
    target = os.path.abspath(host)
    if os.path.exists(target) and not os.path.isdir(target):
        return f"--collect: {host} exists and is not a folder"
    while not os.path.exists(target):
        target = os.path.dirname(target)
    if not os.path.isdir(target) or not os.access(target, os.W_OK | os.X_OK):
        return f"--collect: cannot create or write into {host} ({target} is not writable)"
    return None


def check_paths(args: argparse.Namespace) -> str | None:
    """Refuse, before anything boots, output paths and added files that cannot work."""
    # (bench checks its own --json FILE, Session its --record FILE)
    outputs = [("--console-log", getattr(args, "console_log", None))]
    outputs.append(("-o", getattr(args, "output", None)))
    for option, path in outputs:
        if path is not None and (why := _check_output(option, path)):
            return why
    for spec in getattr(args, "add", []):
        try:
            parse_add(spec)
        except InvalidValue as exc:
            return f"--add {spec}: {exc}"
    for _, host in getattr(args, "collect", []):
        if why := _check_collect_dir(host):
            return why
    return None


def _read_stdin(args: argparse.Namespace) -> str | None:
    """Read exec's stdin when it is to be forwarded; why not, if too large."""
    args.input = b""
    if args.cmd != "exec" or not args.interactive:
        return None
    data = sys.stdin.buffer.read(MAX_INPUT + 1)
    if len(data) > MAX_INPUT:
        return (
            f"stdin is more than {MAX_INPUT} bytes; put it in a file, --add it and "
            "redirect it in the guest command"
        )
    args.input = data
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    verbose = getattr(args, "verbose", False)
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not verbose:
        _show_progress()
    try:
        try:
            why = check_paths(args) or _read_stdin(args)
        except OSError as exc:
            why = f"stdin: {exc.strerror or exc}"
        if why:
            print(f"syscalls-async: {why}", file=sys.stderr)
            return 2
        status: int = args.func(args)
    except OSError as exc:
        # a host file we were told to write or read (checked above, but the host may change)
        name = f"{exc.filename}: " if exc.filename else ""
        print(f"syscalls-async: {name}{exc.strerror or exc}", file=sys.stderr)
        return 1
    except SyscallsAsyncError as exc:
        # messages may quote guest text (console lines, agent replies)
        print(f"syscalls-async: {printable(str(exc), multiline=True)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return status


if __name__ == "__main__":
    sys.exit(main())
