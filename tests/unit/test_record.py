"""Recording and replay without a guest: the format round-trips, a cut file is read up
to the cut, a foreign or corrupt file is refused, and replay finds divergences."""

from __future__ import annotations

import asyncio
import errno
import struct
from pathlib import Path

import msgspec
import pytest

from syscalls_async import cli
from syscalls_async.api import Plugins
from syscalls_async.api.record import (
    MAGIC,
    EventRecord,
    Fault,
    ReadString,
    RecordedVerdict,
    Recorder,
    RecordingError,
    header,
    read_recording,
)
from syscalls_async.errors import GuestMemoryError
from syscalls_async.machine import qemu
from syscalls_async.portal.trap import ObservedTrap
from syscalls_async.portal.types import Phase
from syscalls_async.syscalls import FailClosed
from syscalls_async.testing import FakeGuest, FakeMemory, FakeTrap, replay

FAULTED = "error: guest memory string read failed at 0xdead0000 (errno 14)"


def shadow_guard(plugins: Plugins, skip_with: int = -errno.EACCES) -> list[str]:
    """A hook that reads the path of each openat and refuses /etc/shadow; what it saw."""
    seen: list[str] = []

    async def guard(regs, proto, syscall, dfd, filename, flags, mode):  # type: ignore[no-untyped-def]
        try:
            path = await plugins.mem.read_str(filename)
        except GuestMemoryError as exc:
            seen.append(f"error: {exc}")
            raise
        seen.append(path)
        if path == "/etc/shadow":
            syscall.skip_syscall = True
            syscall.retval = skip_with

    plugins.syscalls.syscall("on_sys_openat_enter", comm_filter="cat")(guard)
    return seen


async def record(path: Path, on_error: FailClosed | None = None) -> list[str]:
    """A recording of four events made through the kit's fake guest: a refused open,
    an allowed one, one whose path faults, and a read nobody hooks."""
    plugins = Plugins()
    seen = shadow_guard(plugins)
    memory = FakeMemory()
    policy = on_error or "continue"
    with FakeGuest(plugins, memory=memory, raise_errors=False, on_error=policy) as guest:
        recorder = Recorder(path)
        recorder.start(
            header(guest.prototypes, kernel_release="6.1.0-test", image_digest="d1g3st",
                   on_error=policy)
        )  # fmt: skip
        tapped = recorder.tap(guest.dispatcher)
        ids = tuple(h.id for h in guest.registry)
        for event in (
            guest.event("openat", -100, "/etc/shadow", 0, 0, comm="cat"),
            guest.event("openat", -100, "/etc/passwd", 0, 0, comm="cat"),
            guest.event("openat", -100, 0xDEAD0000, 0, 0, comm="cat"),
            guest.event("read", 3, 0, 10, comm="cat"),
        ):
            await tapped(FakeTrap(event, memory, ids))
        recorder.close()
    return seen


async def test_a_recording_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "run.rec"
    seen = await record(path)
    assert seen == ["/etc/shadow", "/etc/passwd", FAULTED]
    rec = read_recording(path)
    assert rec.complete and rec.cut == ""
    assert (rec.header.version, rec.header.kernel_release, rec.header.image_digest) == (
        1, "6.1.0-test", "d1g3st",
    )  # fmt: skip
    assert rec.header.fail_closed is None and len(rec.header.prototypes) > 300
    assert [r.event.nr for r in rec.events][:3] == [257] * 3
    shadow, passwd, fault, unhooked = rec.events
    assert shadow.verdict == RecordedVerdict(skipped=True, retval=-errno.EACCES)
    assert shadow.requests == [ReadString(shadow.event.args[1], 1 << 20, b"/etc/shadow")]
    assert passwd.verdict == RecordedVerdict()
    (failed,) = fault.requests
    assert isinstance(failed, ReadString)
    assert failed.fault == Fault("memory", 0xDEAD0000, errno.EFAULT)
    assert unhooked.requests == [] and unhooked.verdict == RecordedVerdict()
    assert unhooked.event.phase is Phase.ENTER


async def test_replay_through_the_same_handlers_is_the_same(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "run.rec"
    await record(path)
    plugins = Plugins()
    seen = shadow_guard(plugins)
    report = await replay(path, plugins)
    assert report.same, report.summary()
    assert seen == ["/etc/shadow", "/etc/passwd", FAULTED]  # the recorded fault, worded alike
    assert report.stats.handler_errors == 1  # the fault, as when recorded
    assert (report.events, report.observed, report.complete) == (4, 0, True)
    assert report.summary() == "replayed 4 events (0 observed): verdicts as recorded\n" \
        "handler errors: 1"  # fmt: skip
    assert plugins.syscalls.hooks  # the caller's hooks stay registered


async def test_replay_reports_a_changed_verdict(tmp_path: Path) -> None:
    path = tmp_path / "run.rec"
    await record(path)
    plugins = Plugins()
    shadow_guard(plugins, skip_with=-errno.EPERM)
    report = await replay(path, plugins)
    assert not report.same
    (d,) = report.divergences
    assert d.index == 0 and d.event == "openat enter by cat[100]"
    assert d.recorded == RecordedVerdict(True, -errno.EACCES)
    assert d.replayed == RecordedVerdict(True, -errno.EPERM)
    assert "#0 openat enter by cat[100]: the verdict differs (recorded: skipped with -13; " \
        "replayed: skipped with -1)" in report.summary()  # fmt: skip


async def test_a_read_the_recording_lacks_is_a_divergence(tmp_path: Path) -> None:
    path = tmp_path / "run.rec"
    await record(path)
    plugins = Plugins()
    errors: list[GuestMemoryError] = []

    @plugins.syscalls.syscall("on_sys_openat_enter", comm_filter="cat")
    async def greedy(regs, proto, syscall, dfd, filename, flags, mode):  # type: ignore[no-untyped-def]
        try:
            await plugins.mem.read_bytes(filename, 4)  # the recording holds string reads
        except GuestMemoryError as exc:
            errors.append(exc)

    report = await replay(path, plugins)
    assert len(errors) == 3
    assert str(errors[0]) == (
        "guest memory read of 4 bytes (not in the recording being replayed) failed at "
        f"{read_recording(path).events[0].event.args[1]:#x} (errno 14)"
    )
    assert [d.index for d in report.divergences] == [0, 1, 2]
    assert report.divergences[0].reason.startswith("the verdict differs; no recorded answer")
    assert "no recorded answer to the read of 4 bytes at" in report.divergences[1].reason


async def test_the_recorded_failure_policy_is_replayed(tmp_path: Path) -> None:
    path = tmp_path / "run.rec"
    await record(path, on_error=FailClosed(errno.EPERM))
    rec = read_recording(path)
    assert rec.header.fail_closed == errno.EPERM
    # the faulting path failed closed when recorded, and does again
    assert rec.events[2].verdict == RecordedVerdict(True, -errno.EPERM)
    plugins = Plugins()
    shadow_guard(plugins)
    assert (await replay(rec, plugins)).same


async def test_a_cut_recording_is_read_up_to_the_cut(tmp_path: Path) -> None:
    path = tmp_path / "run.rec"
    await record(path)
    data = path.read_bytes()
    whole = read_recording(path)
    for cut in (len(data) - 1, len(data) - 7, len(data) - 20, len(data) - 400):
        part = tmp_path / f"cut{cut}.rec"
        part.write_bytes(data[:cut])
        rec = read_recording(part)
        assert not rec.complete and rec.cut
        assert rec.events == whole.events[: len(rec.events)]
    # a run that never wrote its trailer (killed) is complete up to its last event
    rec = read_recording(_without_trailer(path, tmp_path))
    assert rec.events == whole.events and "no trailer" in rec.cut
    # the summary says so
    plugins = Plugins()
    shadow_guard(plugins)
    report = await replay(rec, plugins)
    assert report.same and "note: the recording has no trailer" in report.summary()


def _without_trailer(path: Path, tmp_path: Path) -> Path:
    data = path.read_bytes()
    at, last = len(MAGIC), len(MAGIC)
    while at < len(data):
        last = at
        at += 4 + struct.unpack_from("<I", data, at)[0]
    out = tmp_path / "killed.rec"
    out.write_bytes(data[:last])
    return out


def _frame(obj: object) -> bytes:
    payload = msgspec.msgpack.encode(obj)
    return struct.pack("<I", len(payload)) + payload


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not a syscalls-async recording"),
        (b"#!/bin/sh\necho hi\n", "not a syscalls-async recording"),
        (MAGIC + b"\x10\x00", "cut before its header ends"),
        (MAGIC + _frame({"type": "header", "version": 2}), "format version 2; this"),
        (MAGIC + _frame({"type": "event", "version": 1}), "is a 'event', not the header"),
        (MAGIC + _frame([1, 2, 3]), "corrupt recording at byte 8"),
        (MAGIC + b"\xff\xff\xff\xff" + b"x" * 10, "corrupt recording"),
    ],
)
def test_a_foreign_or_corrupt_file_is_refused(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.rec"
    path.write_bytes(content)
    with pytest.raises(RecordingError, match=message):
        read_recording(path)


async def test_a_corrupt_event_is_refused_with_its_offset(tmp_path: Path) -> None:
    path = tmp_path / "run.rec"
    await record(path)
    good = read_recording(path)
    head = path.read_bytes()[: len(MAGIC) + 4 + struct.unpack_from("<I", path.read_bytes(),
                                                                     len(MAGIC))[0]]  # fmt: skip
    bad_event = msgspec.structs.replace(good.events[0].event, nr=-5)
    for frame, why in (
        (_frame({"type": "event", "time": "soon", "event": {}}), "Expected `float`"),
        (_frame(EventRecord(0.0, bad_event)), "outside 64 bits"),
        (_frame({"type": "trailer", "events": 5}), "the trailer counts 5 events"),
    ):
        path.write_bytes(head + frame)
        with pytest.raises(RecordingError, match=f"corrupt recording at byte {len(head)}.*{why}"):
            read_recording(path)


def test_an_unwritable_recording_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match=r"cannot write the recording .*/no/such"):
        Recorder(tmp_path / "no" / "such")


async def test_cli_replay_exit_status_and_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "run.rec"
    await record(path)
    plugin = tmp_path / "guard.py"
    plugin.write_text(
        "from syscalls_async import plugins\n"
        "@plugins.syscalls.syscall('on_sys_openat_enter', comm_filter='cat')\n"
        "async def guard(regs, proto, syscall, dfd, filename, flags, mode):\n"
        "    path = await plugins.mem.read_str(filename)\n"
        "    print('saw', path)\n"
        "    if path == '/etc/shadow':\n"
        "        syscall.skip_syscall = True\n"
        "        syscall.retval = -1\n"
    )
    with FakeGuest():  # removes the hooks the plugin file adds to the global plugins
        status = await _in_thread(["replay", str(path), str(plugin)])
    out, err = capsys.readouterr()
    assert status == cli.DIVERGED
    assert out == "saw /etc/shadow\nsaw /etc/passwd\n"
    assert err.startswith("replayed 4 events (0 observed): 1 divergence(s)\n")
    assert "#0 openat enter by cat[100]: the verdict differs" in err

    bad = tmp_path / "bad.rec"
    bad.write_bytes(b"not a recording")
    assert await _in_thread(["replay", str(bad), str(plugin)]) == 1
    err = capsys.readouterr().err
    assert err == f"syscalls-async: {bad} is not a syscalls-async recording (no recording magic)\n"


async def _in_thread(argv: list[str]) -> int:
    """cli.main runs its own event loop: call it off this one."""
    return await asyncio.to_thread(cli.main, argv)


def test_cli_run_refuses_an_unwritable_recording_before_booting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_machine(*args: object, **kwargs: object) -> None:
        raise AssertionError("a guest was booted")

    monkeypatch.setattr(qemu.Machine, "__init__", no_machine)
    plugin = tmp_path / "empty.py"
    plugin.write_text("")
    target = tmp_path / "no" / "run.rec"
    argv = ["run", "--record", str(target), str(plugin), "--", "true"]
    with FakeGuest():  # the plugin file's hooks (none) leave the global plugins as they were
        assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert err == (
        f"syscalls-async: cannot write the recording {target}: No such file or directory\n"
    )


async def test_a_failing_disk_stops_the_recording_not_the_session(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "run.rec"
    plugins = Plugins()
    shadow_guard(plugins)
    with FakeGuest(plugins) as guest:
        recorder = Recorder(path)
        recorder.start(header(guest.prototypes))
        tapped = recorder.tap(guest.dispatcher)
        ids = tuple(h.id for h in guest.registry)
        await tapped(FakeTrap(guest.event("openat", -100, "/etc/passwd", 0, 0, comm="cat"),
                              guest.memory, ids))  # fmt: skip
        recorder._file = open("/dev/full", "wb")  # noqa: SIM115, ASYNC230 (closed by the recorder)
        trap = FakeTrap(guest.event("openat", -100, "/etc/shadow", 0, 0, comm="cat"),
                        guest.memory, ids)  # fmt: skip
        await tapped(trap)
        recorder.close()
    assert trap.calls == [("skip", -errno.EACCES)]  # the verdict was given all the same
    assert recorder.failure is not None and "No space left on device" in str(recorder.failure)
    assert "recording stopped after 1 events" in caplog.text
    rec = read_recording(path)
    assert len(rec.events) == 1 and "no trailer" in rec.cut


async def test_observed_events_round_trip_with_their_captures(tmp_path: Path) -> None:
    def watcher(plugins: Plugins) -> list[str]:
        seen: list[str] = []

        @plugins.syscalls.syscall("on_sys_openat_enter", read_only=True)
        async def watch(regs, proto, syscall, dfd, filename, flags, mode):  # type: ignore[no-untyped-def]
            seen.append(await plugins.mem.read_str(filename))  # answered from the capture

        return seen

    path = tmp_path / "observed.rec"
    plugins = Plugins()
    live = watcher(plugins)
    with FakeGuest(plugins) as guest:
        recorder = Recorder(path)
        recorder.start(header(guest.prototypes))
        ids = tuple(h.id for h in guest.registry)
        observed = guest.observed(guest.event("openat", -100, "/etc/hosts", 0, 0))
        await recorder.tap(guest.dispatcher)(ObservedTrap(observed, ids))
        recorder.close()
    (record,) = read_recording(path).events
    assert record.event == observed and record.event.strings[1] is not None
    again = Plugins()
    replayed = watcher(again)
    report = await replay(path, again)
    assert live == replayed == ["/etc/hosts"]
    assert report.same and (report.events, report.observed) == (1, 1)


def rewriter(plugins: Plugins, write: bool = True) -> list[str]:
    """A hook that reads a path, overwrites its start, and reads it again."""
    seen: list[str] = []

    @plugins.syscalls.syscall("on_sys_openat_enter")
    async def rewrite(regs, proto, syscall, dfd, filename, flags, mode):  # type: ignore[no-untyped-def]
        seen.append(await plugins.mem.read_str(filename))
        if write:
            await plugins.mem.write_bytes(filename, b"/tmp")
        seen.append(await plugins.mem.read_str(filename))

    return seen


async def test_reads_after_a_write_replay_in_order_and_writes_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "write.rec"
    plugins = Plugins()
    live = rewriter(plugins)
    with FakeGuest(plugins) as guest:
        recorder = Recorder(path)
        recorder.start(header(guest.prototypes))
        event = guest.event("openat", -100, "/etc/hosts", 0, 0)
        await recorder.tap(guest.dispatcher)(FakeTrap(event, guest.memory, (1,)))
        recorder.close()
    assert live == ["/etc/hosts", "/tmp/hosts"]
    again = Plugins()
    replayed = rewriter(again)
    assert (await replay(path, again)).same and replayed == live
    quiet = Plugins()
    rewriter(quiet, write=False)
    (d,) = (await replay(path, quiet)).divergences
    assert d.reason == f"the recorded write of 4 bytes at {event.args[1]:#x} was not made"
    assert d.recorded is None  # the verdict itself was the same
