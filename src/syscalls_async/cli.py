"""The ``syscalls-async`` command.

::

    syscalls-async setup                 # install host tools, build the guest image
    syscalls-async image build|info      # the bundled guest image
    syscalls-async exec -- CMD [ARG...]  # boot the guest, run CMD, exit with its status
    syscalls-async run PLUGIN.py -- CMD  # load a plugin file, run CMD with its hooks live
    syscalls-async demo                  # boot the guest and show the framework at work
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import Sequence

import msgspec

from .api import Session, load_plugin_file, plugins
from .errors import SyscallsAsyncError
from .machine import CommandResult, Machine, build_image, current_image


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
    ) as session:
        result = await session.run(command, timeout=args.timeout)
        # handlers print as they run; their output comes before the command's
        sys.stdout.flush()
    if args.stats:
        print(f"syscalls-async: {session.stats}", file=sys.stderr)
    return _print_result(result)


async def _demo(args: argparse.Namespace) -> int:
    start = time.monotonic()
    print("syscalls-async demo: booting the bundled guest ...", flush=True)
    async with _machine(args) as machine:
        print(
            f"  guest ready in {time.monotonic() - start:.1f} s (kernel {machine.kernel_release})"
        )
        for command in (
            "uname -a",
            "cat /proc/cpuinfo | grep -c ^processor",
            "lsmod",
            "send_syscall getpid",
            "send_syscall ioctl 9 0xabcd",
        ):
            result = await machine.run(command, timeout=args.timeout)
            print(f"\n$ {command}    (exit status {result.exit_status})")
            print(result.output.rstrip())
    print("\nguest stopped; nothing left behind.")
    return 0


def _add_machine_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--smp", type=int, default=2, help="virtual CPUs (default 2)")
    p.add_argument("--memory", type=int, default=1024, help="guest RAM in MiB (default 1024)")
    p.add_argument("--timeout", type=float, default=600, help="command timeout in seconds")
    p.add_argument("--console-log", help="keep the guest console log in this file")


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
    p.set_defaults(func=lambda a: asyncio.run(_exec(a)))

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
        type=float,
        default=30.0,
        help="seconds a handler may run before it is cancelled (default 30)",
    )
    p.add_argument("--stats", action="store_true", help="print dispatch counts at the end")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD [ARG...]")
    p.set_defaults(func=lambda a: asyncio.run(_run(a)))

    p = sub.add_parser("demo", help="boot the guest and show the framework at work")
    _add_machine_options(p)
    p.set_defaults(func=lambda a: asyncio.run(_demo(a)))
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
        print(f"syscalls-async: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return status


if __name__ == "__main__":
    sys.exit(main())
