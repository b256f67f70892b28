"""Which tasks the tracer follows, and its injections' verdicts, on the testing kit's
fake guest (no guest booted)."""

from __future__ import annotations

from syscalls_async.api import Plugins
from syscalls_async.api.trace import Tracer, TraceRecord
from syscalls_async.api.trace_inject import parse_injection
from syscalls_async.api.trace_record import Strings
from syscalls_async.portal.types import ProcInfo
from syscalls_async.testing import FakeGuest


def proc(pid: int, ppid: int, comm: str = "sh") -> ProcInfo:
    return ProcInfo(pid=pid, tgid=pid, ppid=ppid, uid=0, comm=comm, exe="/bin/x", cwd="/", argv=())


async def call(
    guest: FakeGuest,
    pid: int,
    ppid: int,
    name: str,
    *args: object,
    comm: str = "sh",
    retval: int = 0,
    tid: int | None = None,
) -> None:
    """One whole call (entry and return) of a task whose parent is ``ppid``."""
    for phase in ("enter", "return"):
        event = guest.event(name, *args, phase=phase, retval=retval, comm=comm, pid=pid, tid=tid)  # type: ignore[arg-type]
        await guest.dispatch(event, proc=proc(pid, ppid, comm))


async def test_the_command_tree_is_followed_from_its_execve() -> None:
    records: list[TraceRecord] = []
    plugins = Plugins()
    with FakeGuest(plugins) as guest:
        tracer = Tracer(plugins, emit=records.append)
        await tracer.start()
        await call(guest, 1, 0, "getpid", comm="agent", retval=1)  # the agent itself
        await call(guest, 50, 1, "dup2", 8, 0, comm="agent")  # its child's set-up
        await call(guest, 50, 1, "execve", "/bin/sh", ["sh", "-c", "x"], [], comm="agent")
        # the child runs before its parent's clone returns: placed by asking its parent
        clone = (0x1200011, 0, 0, 0, 0)
        await guest.dispatch(guest.event("clone", *clone, pid=50), proc=proc(50, 1))
        await call(guest, 51, 50, "getpid", retval=51)  # the command's child
        await guest.dispatch(
            guest.event("clone", *clone, pid=50, phase="return", retval=51), proc=proc(50, 1)
        )
        await call(guest, 50, 1, "getpid", tid=52, retval=50)  # a thread of the command
        await call(guest, 70, 2, "getpid", comm="other", retval=70)  # not the command's
        await call(guest, 70, 2, "getppid", comm="other", retval=2)
        await call(guest, 71, 70, "getpid", comm="other", retval=71)
    assert [(r.tid, r.call()) for r in records] == [
        (50, f'execve("/bin/sh", ["sh", "-c", "x"], {records[0].args[2]:#x} /* 0 vars */) = 0'),
        (51, "getpid() = 51"),
        (50, "clone(CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, NULL, NULL, NULL, 0) = 51"),
        (52, "getpid() = 50"),
    ]
    assert tracer.traced == {50, 51}
    assert tracer.tasks == {50, 51, 52}
    # the guest is asked for a process's parent once: 70 twice, its child once
    asked = [t.event.tgid for t in guest.traps if ("proc_info",) in t.requests]
    assert sorted(set(asked)) == asked == [50, 51, 70, 71]


async def test_a_child_is_traced_from_its_parents_fork_even_on_a_reused_number() -> None:
    records: list[TraceRecord] = []
    plugins = Plugins()
    with FakeGuest(plugins) as guest:
        tracer = Tracer(plugins, syscalls=["getpid"], emit=records.append)
        await tracer.start()
        await call(guest, 80, 2, "getpid", comm="other", retval=80)  # found untraced
        await call(guest, 50, 1, "execve", "/bin/sh", [], [], comm="agent")
        # the command forks and its child gets the number 80 again (reported with
        # a parent the guest no longer knows: only the fork's result says whose it is)
        await call(guest, 50, 1, "fork", retval=80)
        await call(guest, 80, 999, "getpid", retval=80)
        await call(guest, 50, 1, "clone", 0x10F00, 0, 0, 0, 0, retval=81)  # a thread
    assert [(r.pid, r.call()) for r in records] == [(80, "getpid() = 80")]
    assert tracer.traced == {50, 80}


async def test_pid_roots_and_no_follow() -> None:
    for follow, traced in ((True, [70, 71]), (False, [70])):
        records: list[TraceRecord] = []
        plugins = Plugins()
        with FakeGuest(plugins) as guest:
            tracer = Tracer(plugins, pid=70, follow=follow, emit=records.append)
            await tracer.start()
            await call(guest, 50, 1, "execve", "/bin/sh", [], [], comm="agent")
            await call(guest, 70, 2, "getpid", retval=70)
            await call(guest, 71, 70, "getpid", retval=71)
        assert [r.pid for r in records] == traced


async def test_injection_verdict_only_on_the_matched_path() -> None:
    plugins = Plugins()
    with FakeGuest(plugins) as guest:
        tracer = Tracer(
            plugins,
            trace_all=True,
            inject=[parse_injection("openat:error=EACCES:path=/etc/*:when=2+")],
            emit=lambda r: None,
        )
        await tracer.start()
        verdicts = [
            await guest.syscall("openat", -100, path, 0, 0, pid=9)
            for path in ("/etc/a", "/tmp/b", "/etc/c", "/etc/d")
        ]
    assert [(v.skipped, v.retval if v.skipped else None) for v in verdicts] == [
        (False, None),
        (False, None),
        (True, -13),
        (True, -13),
    ]


async def test_a_hostile_argv_costs_bounded_work() -> None:
    records: list[TraceRecord] = []
    plugins = Plugins()
    with FakeGuest(plugins) as guest:
        tracer = Tracer(plugins, trace_all=True, string_limit=8, emit=records.append)
        await tracer.start()
        argv = ["\x1b[2J" + "A" * 9000] * 300
        await call(guest, 9, 1, "execve", "/bin/x", argv, ["E=1"] * 2000, retval=-7)
    [record] = records
    argv_arg, env_arg = record.decoded[1], record.decoded[2]
    assert isinstance(argv_arg, Strings) and isinstance(env_arg, Strings)
    assert argv_arg.count == 257 and len(argv_arg.value) == 256  # one past the shown ones
    assert argv_arg.text.startswith('["\\33[2JAAAA"..., ') and argv_arg.text.endswith(", ...]")
    assert all(len(v) <= 4096 for v in argv_arg.value)
    assert env_arg.count == 1024 and env_arg.text.endswith(" /* 1024 or more vars */")
    reads = [r for t in guest.traps for r in t.requests if r[0] == "read_cstring"]
    assert max(r[2] for r in reads) <= 4097
    assert record.call().endswith("= -1 E2BIG (Argument list too long)")
