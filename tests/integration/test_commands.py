"""The command channel: what a command prints and returns comes back exactly."""

from __future__ import annotations

import asyncio

import pytest

from syscalls_async import CommandTimeout
from syscalls_async.machine import Machine
from syscalls_async.machine.agent import MAX_COMMANDS


@pytest.mark.parametrize("status", [0, 1, 43, 255])
async def test_exit_status_and_streams_come_back_exactly(machine: Machine, status: int) -> None:
    result = await machine.run(
        f"printf 'out %s\\n' {status}; printf 'err\\000x' >&2; exit {status}"
    )
    assert result.exit_status == status
    assert result.stdout == f"out {status}\n".encode()
    assert result.stderr == b"err\x00x"


async def test_twenty_commands_in_a_row(machine: Machine) -> None:
    for i in range(20):
        result = await machine.run(["echo", f"command {i}"])
        assert (result.exit_status, result.stdout) == (0, f"command {i}\n".encode())


async def test_concurrent_commands_keep_their_own_output(machine: Machine) -> None:
    results = await asyncio.gather(
        *(machine.run(f"for j in 1 2 3; do echo {i}-$j; done; exit {i}") for i in range(5))
    )
    for i, result in enumerate(results):
        assert result.exit_status == i
        assert result.stdout == "".join(f"{i}-{j}\n" for j in (1, 2, 3)).encode()


async def test_large_binary_output_and_input(machine: Machine) -> None:
    data = bytes(range(256)) * 200  # 51,200 bytes, every byte value
    result = await machine.run("cat", input=data)
    assert result.stdout == data
    big = await machine.run("head -c 1000000 /dev/zero")
    assert big.stdout == b"\0" * 1_000_000


async def test_timeout_kills_the_command_and_keeps_partial_output(machine: Machine) -> None:
    with pytest.raises(CommandTimeout) as info:
        await machine.run("echo started; sleep 1000", timeout=2)
    assert info.value.stdout == b"started\n"
    # the whole session was killed, so no sleep is left behind
    async with asyncio.timeout(10):
        while (await machine.run("pgrep -x sleep")).exit_status == 0:
            await asyncio.sleep(0.1)


async def test_killed_by_signal_reports_128_plus_signal(machine: Machine) -> None:
    result = await machine.run("kill -9 $$")
    assert result.exit_status == 128 + 9


async def test_send_syscall_getpid_prints_the_callers_pid(machine: Machine) -> None:
    result = await machine.run("send_syscall getpid & wait $!; echo child $!")
    lines = result.output.splitlines()
    child = lines[-1].split()[1]
    assert lines[0] == f"send_syscall: syscall returned {child}"


async def test_send_syscall_ioctl_on_a_bad_fd_returns_raw_ebadf(machine: Machine) -> None:
    result = await machine.run("send_syscall ioctl 9 0xabcd")
    assert result.stdout == b"send_syscall: syscall returned -9\n"
    assert result.exit_status == (-9) & 0xFF


async def test_send_syscall_passes_strings_as_pointers(machine: Machine) -> None:
    result = await machine.run("send_syscall write 1 /hello 3")
    assert result.stdout.startswith(b"/he")  # write(1, "/hello", 3)
    assert result.stdout.endswith(b"send_syscall: syscall returned 3\n")


async def test_unknown_syscall_name_is_refused(machine: Machine) -> None:
    result = await machine.run("send_syscall no_such_call")
    assert result.exit_status == 2
    assert b"unknown syscall" in result.stderr


async def test_more_commands_than_the_agent_runs_at_once_wait_their_turn(
    machine: Machine,
) -> None:
    count = MAX_COMMANDS + 6
    results = await asyncio.gather(
        *(machine.run(f"sleep 1; echo {i}", timeout=120) for i in range(count))
    )
    assert [(r.exit_status, r.stdout) for r in results] == [
        (0, f"{i}\n".encode()) for i in range(count)
    ]
