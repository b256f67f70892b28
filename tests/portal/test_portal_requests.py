"""Portal requests served by the trapped task: memory, strings, process, mappings."""

from __future__ import annotations

import pytest

from syscalls_async.errors import GuestMemoryError
from syscalls_async.machine import Machine
from syscalls_async.portal import FilterKind, GuestFilter, HookSpec, Portal, Trap
from syscalls_async.syscalls import syscall_nr

pytestmark = pytest.mark.guest


async def test_read_str_of_the_openat_path(
    machine: Machine, portal: Portal, make_recorder: type
) -> None:
    paths: list[str] = []

    async def read(trap: Trap) -> None:
        paths.append(await trap.read_str(trap.event.args[1]))

    portal.handler = make_recorder(read)
    await portal.set_hooks(
        [HookSpec(id=1, nr=syscall_nr(portal.syscalls, "openat"), comm="send_syscall")]
    )
    await machine.run("send_syscall openat ffffff9c /etc/sa-no-such-file 0")
    assert "/etc/sa-no-such-file" in paths


async def test_execve_argv_as_a_pointer_list(
    machine: Machine, portal: Portal, make_recorder: type
) -> None:
    seen: list[tuple[str, list[str]]] = []

    async def read(trap: Trap) -> None:
        name = await trap.read_str(trap.event.args[0])
        seen.append((name, await trap.read_ptrlist(trap.event.args[1])))

    portal.handler = make_recorder(read)
    exe = GuestFilter(FilterKind.STR_ENDSWITH, text=b"/send_syscall")
    await portal.set_hooks([HookSpec(id=1, nr=syscall_nr(portal.syscalls, "execve"), args=(exe,))])
    r = await machine.run("send_syscall getpid 1 sa-marker-arg")
    assert r.exit_status is not None
    assert seen, "execve of send_syscall was not trapped"
    name, argv = seen[0]
    assert name.endswith("/send_syscall")
    assert argv == ["send_syscall", "getpid", "1", "sa-marker-arg"]


async def test_write_bytes_is_seen_by_the_program(
    machine: Machine, portal: Portal, make_recorder: type
) -> None:
    async def shout(trap: Trap) -> None:
        buf = trap.event.args[1]
        assert await trap.read_bytes(buf, 5) == b"hello"
        await trap.write_bytes(buf, b"HELLO")

    rec = make_recorder(shout)
    portal.handler = rec
    five = GuestFilter(FilterKind.EXACT, 5)
    await portal.set_hooks(
        [
            HookSpec(
                id=1,
                nr=syscall_nr(portal.syscalls, "write"),
                comm="send_syscall",
                args=(None, None, five),
            )
        ]
    )
    r = await machine.run("send_syscall write 1 hello 5")
    assert r.stdout.startswith(b"HELLO")
    assert len(rec.traps) == 1


async def test_bad_address_raises_with_the_address(
    machine: Machine, portal: Portal, make_recorder: type
) -> None:
    errors: list[GuestMemoryError] = []

    async def bad(trap: Trap) -> None:
        for coro in (
            trap.read_bytes(0x10, 4),
            trap.read_str(0x20),
            trap.write_bytes(0x30, b"x"),
            trap.read_ptrlist(0x40),
        ):
            try:
                await coro
            except GuestMemoryError as exc:
                errors.append(exc)

    portal.handler = make_recorder(bad)
    await portal.set_hooks(
        [HookSpec(id=1, nr=syscall_nr(portal.syscalls, "getppid"), comm="send_syscall")]
    )
    r = await machine.run("send_syscall getppid")
    assert b"returned" in r.stdout
    assert [e.addr for e in errors] == [0x10, 0x20, 0x30, 0x40]
    assert all(e.errno == 14 for e in errors)  # EFAULT


async def test_large_read_is_chunked(machine: Machine, portal: Portal, make_recorder: type) -> None:
    got: list[bytes] = []

    async def read(trap: Trap) -> None:
        maps = await trap.mappings()
        stack = next(m for m in maps if m.path == "[stack]")
        got.append(await trap.read_bytes(stack.start, stack.end - stack.start))

    portal.handler = make_recorder(read)
    await portal.set_hooks(
        [HookSpec(id=1, nr=syscall_nr(portal.syscalls, "getppid"), comm="send_syscall")]
    )
    await machine.run("send_syscall getppid")
    assert got and len(got[0]) >= 128 * 1024 and len(got[0]) % 4096 == 0


async def test_process_info_mappings_fds_and_process_list(
    machine: Machine, portal: Portal, make_recorder: type
) -> None:
    out: dict[str, object] = {}

    async def inspect(trap: Trap) -> None:
        info = await trap.proc_info()
        maps = await trap.mappings()
        binary = next(m for m in maps if m.path == info.exe and m.offset == 0)
        out.update(
            info=info,
            maps=maps,
            magic=await trap.read_bytes(binary.start, 4),
            fds=await trap.fds(),
            procs=await trap.processes(),
            event=trap.event,
        )

    portal.handler = make_recorder(inspect)
    await portal.set_hooks(
        [HookSpec(id=1, nr=syscall_nr(portal.syscalls, "getppid"), comm="send_syscall")]
    )
    r = await machine.run("cd /tmp && send_syscall getppid 7 sa-proc-arg")
    info = out["info"]
    event = out["event"]
    assert out["magic"] == b"\x7fELF"
    assert info.comm == "send_syscall"  # type: ignore[attr-defined]
    assert info.exe == "/bin/send_syscall"  # type: ignore[attr-defined]
    assert info.cwd == "/tmp"  # type: ignore[attr-defined]
    assert info.argv == ("send_syscall", "getppid", "7", "sa-proc-arg")  # type: ignore[attr-defined]
    assert info.pid == info.tgid == event.tgid  # type: ignore[attr-defined]
    ppid = int(r.stdout.split()[-1])
    assert info.ppid == ppid  # type: ignore[attr-defined]
    maps = out["maps"]
    assert [m.start for m in maps] == sorted(m.start for m in maps)  # type: ignore[attr-defined]
    assert any(m.path == "[stack]" and m.read and m.write for m in maps)  # type: ignore[attr-defined]
    assert any(m.path == info.exe and m.execute for m in maps)  # type: ignore[attr-defined]
    assert event.pc and any(m.start <= event.pc < m.end and m.execute for m in maps)  # type: ignore[attr-defined]
    fds = {f.fd: f.path for f in out["fds"]}  # type: ignore[attr-defined]
    assert {0, 1, 2} <= set(fds)
    procs = {p.pid: p for p in out["procs"]}  # type: ignore[attr-defined]
    assert procs[1].comm and procs[info.tgid].comm == "send_syscall"  # type: ignore[attr-defined]
    assert procs[info.tgid].ppid == ppid  # type: ignore[attr-defined]


async def test_long_string_pointer_list_and_write_are_chunked(
    machine: Machine, portal: Portal
) -> None:
    out: dict[str, object] = {}

    async def big(trap: Trap) -> None:
        if trap.event.nr == syscall_nr(portal.syscalls, "execve"):
            out["envp"] = await trap.read_ptrlist(trap.event.args[2])
            return
        out["arg"] = await trap.read_str(trap.event.args[0])
        # 40,000 bytes below the stack pointer: unused stack, more than one slot
        maps = await trap.mappings()
        stack = next(m for m in maps if m.path == "[stack]")
        at = trap.event.sp - 48_000
        assert at >= stack.start
        data = bytes(range(256)) * 156 + b"end"
        await trap.write_bytes(at, data)
        out["back"] = (await trap.read_bytes(at, len(data))) == data

    portal.handler = big
    exe = GuestFilter(FilterKind.STR_ENDSWITH, text=b"/send_syscall")
    await portal.set_hooks(
        [
            HookSpec(id=1, nr=syscall_nr(portal.syscalls, "getppid"), comm="send_syscall"),
            HookSpec(id=2, nr=syscall_nr(portal.syscalls, "execve"), args=(exe,)),
        ]
    )
    env = " ".join(
        f"V{i}=$(head -c 3000 /dev/zero | tr '\\0' '{chr(97 + i % 26)}')" for i in range(20)
    )
    r = await machine.run(
        f"env -i {env} send_syscall getppid $(head -c 40000 /dev/zero | tr '\\0' x)"
    )
    assert b"syscall returned" in r.stdout
    assert out["arg"] == "x" * 40_000
    assert out["back"] is True
    envp = out["envp"]
    assert isinstance(envp, list) and len(envp) == 20
    assert envp[3] == "V3=" + "d" * 3000


async def test_many_fds_come_in_chunks(machine: Machine, portal: Portal) -> None:
    got: list[dict[int, str]] = []

    async def fds(trap: Trap) -> None:
        got.append({f.fd: f.path for f in await trap.fds()})

    portal.handler = fds
    await portal.set_hooks(
        [HookSpec(id=1, nr=syscall_nr(portal.syscalls, "getppid"), comm="send_syscall")]
    )
    # more descriptors than one slot's data area holds (128 entries)
    r = await machine.run(
        'for i in $(seq 10 209); do eval "exec $i</dev/null"; done; send_syscall getppid'
    )
    assert b"syscall returned" in r.stdout, r.stderr
    assert got and {fd for fd in got[0] if fd >= 10} == set(range(10, 210))
    assert all(got[0][fd] == "/dev/null" for fd in range(10, 210))
