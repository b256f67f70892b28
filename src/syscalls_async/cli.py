"""The ``syscalls-async`` command.

::

    syscalls-async setup                 # install host tools, build the guest image
    syscalls-async image build|info      # the bundled guest image
    syscalls-async exec -- CMD [ARG...]  # boot the guest, run CMD, exit with its status
    syscalls-async demo                  # boot the guest and show the framework at work
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shlex
import sys
import time
from collections.abc import Sequence

import msgspec

from .errors import SyscallsAsyncError
from .machine import Machine, build_image, current_image


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


async def _exec(args: argparse.Namespace) -> int:
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        print("syscalls-async exec: no command given (usage: exec -- CMD [ARG...])",
              file=sys.stderr)
        return 2
    async with _machine(args) as machine:
        result = await machine.run(command, timeout=args.timeout)
    sys.stdout.buffer.write(result.stdout)
    sys.stderr.buffer.write(result.stderr)
    return result.exit_status


async def _demo(args: argparse.Namespace) -> int:
    start = time.monotonic()
    print("syscalls-async demo: booting the bundled guest ...", flush=True)
    async with _machine(args) as machine:
        print(f"  guest ready in {time.monotonic() - start:.1f} s "
              f"(kernel {machine.kernel_release})")
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
    top = argparse.ArgumentParser(prog="syscalls-async", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
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
