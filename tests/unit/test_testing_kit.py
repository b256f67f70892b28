"""The testing kit (``syscalls_async.testing``) as a plugin author uses it, host only."""

from __future__ import annotations

import errno
import struct
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sysproto_table import OPENAT, make_table

from syscalls_async import FailClosed, HandlerError, Plugin, Session, plugins
from syscalls_async.api import Plugins
from syscalls_async.api.syscalls import prototype_cache, save_prototypes
from syscalls_async.errors import GuestMemoryError, ObserveOnlyError
from syscalls_async.portal.types import CapturedString, Phase
from syscalls_async.syscalls import PrototypeTable, SyscallEvent
from syscalls_async.testing import (
    FakeGuest,
    FakeMemory,
    FakeTrap,
    Verdict,
    bundled_prototypes,
    default_prototypes,
    fake_event,
)
from syscalls_async.testing import fake as fake_module

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
M64 = (1 << 64) - 1


# -- the examples, driven as their authors would test them ----------------------------------


async def test_file_access_example_refuses_shadow_only(capsys: pytest.CaptureFixture[str]) -> None:
    with FakeGuest() as guest:
        guest.load_plugin_file(EXAMPLES / "file_access.py")
        shadow = await guest.syscall("openat", -100, "/etc/shadow", 0, 0, comm="cat")
        passwd = await guest.syscall("openat", -100, "/etc/passwd", 0, 0, comm="cat")
        other = await guest.syscall("openat", -100, "/tmp/notes", 0o100, 0o644, comm="sh")
    assert shadow.skipped and shadow.retval == -errno.EACCES and shadow.handlers_run == 1
    assert passwd == Verdict("enter", args=passwd.args, handlers_run=1)
    assert passwd.continued and passwd.retval is None and not passwd.changed_args
    assert other.continued and other.args[2:4] == (0o100, 0o644)
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "ALERT: Access to sensitive file: /etc/shadow by cat",
        "BLOCKED: /etc/shadow (returning -13, EACCES)",
        "ALERT: Access to sensitive file: /etc/passwd by cat",
    ]
    assert plugins.syscalls.hooks == []  # leaving the block removed the example's hook


async def test_skip_ioctl_example_filters_and_assertions() -> None:
    with FakeGuest() as guest:
        guest.load_plugin_file(EXAMPLES / "skip_ioctl.py")
        hit = await guest.syscall("ioctl", 9, 0xABCD, 0, comm="send_syscall")
        other_cmd = await guest.syscall("ioctl", 9, 0x5401, 0, comm="send_syscall")
        other_comm = await guest.syscall("ioctl", 9, 0xABCD, 0, comm="cat")
        with pytest.raises(HandlerError, match="Expected fd 9") as failed:
            await guest.syscall("ioctl", 8, 0xABCD, 0, comm="send_syscall")
        assert isinstance(failed.value.__cause__, AssertionError)
        assert guest.stats.handler_errors == 1
    assert hit.skipped and hit.retval == 43
    assert other_cmd.handlers_run == other_comm.handlers_run == 0 and not other_cmd.skipped


async def test_ioctl_filter_example_on_return(capsys: pytest.CaptureFixture[str]) -> None:
    with FakeGuest() as guest:
        guest.load_plugin_file(EXAMPLES / "ioctl_filter.py")
        args = (1, 0x5451, 0x3)
        assert (await guest.syscall("ioctl", *args, comm="send_syscall")).handlers_run == 0
        ok = await guest.syscall("ioctl", *args, phase="return", retval=0, comm="send_syscall")
        err = await guest.syscall("ioctl", *args, phase="return", retval=-25, comm="send_syscall")
        even = await guest.syscall("ioctl", 1, 0x5451, 0x2, phase="return", comm="send_syscall")
    assert (ok.handlers_run, err.handlers_run, even.handlers_run) == (1, 0, 0)
    assert ok.retval is None  # watched, not changed
    assert capsys.readouterr().out == "Targeted ioctl: fd=1, cmd=0x5451, arg=0x3 -> 0\n"


async def test_dynamic_toggle_example_disables_and_enables_itself() -> None:
    with FakeGuest() as guest:
        (sampler,) = guest.load_plugin_file(EXAMPLES / "dynamic_toggle.py")
        for _ in range(7):
            await guest.syscall("getuid", comm="ls")
        assert (sampler.sampled, sampler.total) == (5, 7)
        await guest.syscall("exit_group", 0, comm="ls")
        await guest.syscall("getuid", comm="ls")
        assert (sampler.sampled, sampler.total) == (1, 1)


# -- handlers of one's own ------------------------------------------------------------------


async def test_memory_writes_argument_changes_and_process_queries() -> None:
    own = Plugins()
    seen: dict[str, Any] = {}

    @own.syscalls.syscall("on_sys_execve_enter")
    async def rewrite(regs: Any, proto: Any, syscall: SyscallEvent, filename: int,
                      argv: int, envp: int) -> None:  # fmt: skip
        seen["argv"] = await own.mem.read_ptrlist(argv)
        seen["proc"] = await own.portal.get_proc()
        await own.mem.write_str(filename, "/bin/t")
        syscall.args[2] = 0

    with FakeGuest(own) as guest:
        verdict = await guest.syscall("execve", "/bin/ls", ["ls", "-l"], 0x7000, comm="sh")
        (trap,) = guest.traps
    filename = verdict.args[0]
    assert verdict.changed_args == {2: 0} and verdict.continued
    assert guest.memory.read_str(filename) == "/bin/t"
    assert guest.memory[filename] == b"/bin/t\0\0"  # written in place, the rest kept
    assert guest.memory.writes == [(filename, b"/bin/t\0")]
    assert seen["argv"] == ["ls", "-l"]
    assert (seen["proc"].comm, seen["proc"].tgid) == ("sh", 100)
    assert [r[0] for r in trap.requests] == ["read_ptrlist", "proc_info", "write_bytes"]


async def test_failures_without_raising_follow_the_policy() -> None:
    own = Plugins()

    @own.syscalls.syscall("getpid")
    def broken(regs: Any, proto: Any, syscall: Any) -> None:
        raise RuntimeError("boom")

    guest = FakeGuest(own, raise_errors=False)
    assert (await guest.syscall("getpid")).continued
    assert guest.stats.handler_errors == 1
    closed = FakeGuest(own, raise_errors=False, on_error=FailClosed(errno.EACCES))
    verdict = await closed.syscall("getpid")
    assert verdict.skipped and verdict.retval == -errno.EACCES


async def test_return_value_changes_and_unmapped_reads() -> None:
    own = Plugins()

    @own.syscalls.syscall("on_sys_read_return")
    async def hide(regs: Any, proto: Any, syscall: SyscallEvent, fd: int, buf: int) -> None:
        if syscall.retval > 0 and b"secret" in await own.mem.read_bytes(buf, syscall.retval):
            syscall.retval = 0

    with FakeGuest(own) as guest:
        buf = guest.memory.place(b"a secret!")
        hidden = await guest.syscall("read", 3, buf, 64, phase="return", retval=9)
        plain = await guest.syscall("read", 3, buf, 64, phase="return", retval=1)
        with pytest.raises(HandlerError) as failed:
            await guest.syscall("read", 3, 0xDEAD000, 64, phase="return", retval=9)
    assert hidden.retval == 0 and plain.retval is None
    assert isinstance(failed.value.__cause__, GuestMemoryError)
    assert failed.value.__cause__.addr == 0xDEAD000


def test_a_running_sessions_plugins_are_refused() -> None:
    own = Plugins()
    own._bind(Session(own))
    with pytest.raises(RuntimeError, match="Plugins\\(\\) of its own"):
        FakeGuest(own)


def test_plugin_classes_register_on_the_global_plugins(tmp_path: Path) -> None:
    path = tmp_path / "p.py"
    path.write_text(
        "from syscalls_async import Plugin, plugins\n"
        "class P(Plugin):\n"
        "    def __init__(self):\n"
        "        plugins.syscalls.syscall('close')(self.on)\n"
        "    def on(self, regs, proto, syscall, fd): pass\n"
    )
    before = plugins.syscalls.hooks
    with FakeGuest() as guest:
        (p,) = guest.load_plugin_file(path)
        assert isinstance(p, Plugin) and len(plugins.syscalls.hooks) == len(before) + 1
    assert plugins.syscalls.hooks == before


# -- the event builder ----------------------------------------------------------------------


def test_fake_event_by_name_and_number() -> None:
    memory = FakeMemory()
    event = fake_event("sys_openat", -100, "/etc/x", 2, comm="cat", pid=7, tid=8,
                       memory=memory)  # fmt: skip
    assert (event.nr, event.phase, event.comm, event.tgid, event.pid) == (257, Phase.ENTER,
                                                                          "cat", 7, 8)  # fmt: skip
    assert event.args[0] == M64 - 99 and event.args[2:] == (2, 0, 0, 0)
    assert memory.read_str(event.args[1]) == "/etc/x"
    ret = fake_event(39, phase="return", retval=-1)
    assert (ret.nr, ret.phase, ret.retval) == (39, Phase.RETURN, M64)
    assert fake_event(449).nr == 449  # numbers without a prototype are unknown syscalls


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: fake_event("opnat"), ValueError, "did you mean openat"),
        (lambda: fake_event("getpid", phase="exit"), ValueError, "'enter' or 'return'"),
        (lambda: fake_event("read", *range(7)), ValueError, "at most 6 arguments"),
        (lambda: fake_event("read", 1, "x"), TypeError, "give memory="),
        (lambda: fake_event("read", 1.5), TypeError, "not 1.5"),
        (lambda: fake_event("read", 1 << 64), ValueError, "does not fit in 64 bits"),
        (lambda: fake_event("read", retval=True), TypeError, "retval is an int"),
        (lambda: fake_event(-1), ValueError, "not negative"),
    ],
)
def test_fake_event_mistakes(call: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        call()


# -- memory ---------------------------------------------------------------------------------


def test_fake_memory_regions_and_faults() -> None:
    memory = FakeMemory({0x5000: b"/etc/shadow\0junk", 0x6000: b"no nul"})
    assert memory.read_cstring(0x5000) == b"/etc/shadow"
    assert memory.read_cstring(0x5005, 3) == b"sha"
    assert memory.read(0x500C, 4) == b"junk" and memory.read(0x9999, 0) == b""
    assert 0x500F in memory and 0x5010 not in memory
    with pytest.raises(GuestMemoryError) as past_end:
        memory.read(0x500C, 5)
    assert past_end.value.addr == 0x5010 and past_end.value.errno == errno.EFAULT
    with pytest.raises(GuestMemoryError):
        memory.read_cstring(0x6000)  # runs off the region before a NUL
    with pytest.raises(GuestMemoryError):
        memory.write(0x7000, b"x")
    with pytest.raises(ValueError, match="overlaps"):
        memory[0x500F] = b"xy"
    pointers = memory.place_ptrlist(["a", b"b\xff"])
    first, second, end = struct.unpack("<3Q", memory[pointers])
    assert end == 0 and memory[first] == b"a\0" and memory.read_str(second) == "b\udcff"
    assert min(first, second, pointers) > 0x6000  # placed after every region, unmapped gaps
    assert second - first >= 16 and second not in (first + 2,)


async def test_fake_trap_refuses_what_a_live_trap_refuses() -> None:
    enter = FakeTrap(fake_event("getpid"))
    with pytest.raises(ValueError):
        enter.set_retval(1)
    with pytest.raises(IndexError):
        enter.set_arg(6, 1)
    ret = FakeTrap(fake_event("getpid", phase="return"))
    with pytest.raises(ValueError):
        ret.skip(1)
    with pytest.raises(ValueError):
        ret.set_arg(0, 1)


# -- prototypes -----------------------------------------------------------------------------


def test_prototypes_come_from_the_image_cache_else_the_bundled_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundled = bundled_prototypes()
    openat = bundled.by_name("openat")
    assert openat is not None and openat.names == OPENAT.names and openat.nr == OPENAT.nr
    assert len(bundled) > 400 and default_prototypes() is bundled  # no image in a fresh cache
    save_prototypes(prototype_cache(tmp_path), make_table())
    monkeypatch.setattr(fake_module, "current_image", lambda: SimpleNamespace(directory=tmp_path))
    cached = default_prototypes()
    assert len(cached) == len(make_table()) and cached.by_name("execve") is None
    own = PrototypeTable([OPENAT])
    guest = FakeGuest(Plugins(), prototypes=own)
    assert guest.prototypes is own
    with pytest.raises(ValueError, match="no syscall named 'getpid'"):
        guest.event("getpid")


async def test_verdict_return_values_are_what_the_task_sees() -> None:
    own = Plugins()

    @own.syscalls.syscall("getpid")
    def skip_unsigned(regs: Any, proto: Any, syscall: SyscallEvent) -> None:
        syscall.skip_syscall = True
        syscall.retval = M64 - 12  # the register value of -13

    @own.syscalls.syscall("on_sys_getppid_return")
    def via_rax(regs: Any, proto: Any, syscall: SyscallEvent) -> None:
        regs.rax = M64

    guest = FakeGuest(own)
    assert (await guest.syscall("getpid")).retval == -13
    assert (await guest.syscall("getppid", phase="return", retval=1)).retval == -1


async def test_a_read_only_hook_gets_the_observed_copy_with_its_strings() -> None:
    """As in the guest: read_only hooks are observe-only, they get the captured
    strings, read_str answers from them, other memory raises ObserveOnlyError."""
    own = Plugins()
    got: list[Any] = []

    @own.syscalls.syscall("openat", read_only=True)
    async def watch(regs: Any, proto: Any, syscall: SyscallEvent, dfd: int, path: int) -> None:
        got.append((syscall.observed, syscall.strings[1], await own.mem.read_str(path)))
        with pytest.raises(ObserveOnlyError, match="did not wait"):
            await own.mem.read_bytes(path, 4)

    with FakeGuest(own) as guest:
        verdict = await guest.syscall("openat", -100, "/etc/hostname", 0, 0)
        # the long path's read_str raises: its capture was truncated
        with pytest.raises(HandlerError) as failed:
            await guest.syscall("openat", -100, "/" + "x" * 300, 0, 0)
    assert isinstance(failed.value.__cause__, ObserveOnlyError)
    assert "truncated" in str(failed.value.__cause__)
    assert verdict.continued and verdict.handlers_run == 1
    assert got == [(True, CapturedString(b"/etc/hostname"), "/etc/hostname")]


async def test_a_batch_hook_gets_each_event_of_the_kit_as_a_batch_of_one() -> None:
    """The README's batch example, run by the kit (which hands events one at a time)."""
    own = Plugins()
    opened: Counter[str] = Counter()

    @own.syscalls.syscall("openat", comm_filter="make", read_only=True, batch=True)
    async def count_paths(events: Any) -> None:
        assert len(events) == 1
        for event in events:
            path = event.strings[1]
            if path is not None and not path.fault:
                opened[path.text] += 1
        with pytest.raises(ObserveOnlyError, match="batch handler"):
            await own.mem.read_str(events[0].args[1])

    with FakeGuest(own) as guest:
        for path in ("/a", "/b", "/a"):
            verdict = await guest.syscall("openat", -100, path, 0, 0, comm="make")
            assert verdict.continued and verdict.handlers_run == 1
        assert (await guest.syscall("openat", -100, "/c", 0, 0, comm="cc")).handlers_run == 0
    assert opened == {"/a": 2, "/b": 1}
