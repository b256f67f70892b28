"""Files in and out of a running guest from Python: copy_in, collect and their bounds."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from syscalls_async import CommandFailed
from syscalls_async.machine import Machine
from syscalls_async.machine.agent import MAX_INPUT


async def test_copy_in_and_collect_round_trip(machine: Machine, tmp_path: Path) -> None:
    data = os.urandom(MAX_INPUT * 2 + 123)  # more than one command's stdin
    source = tmp_path / "blob"
    source.write_bytes(data)
    source.chmod(0o750)
    await machine.copy_in(source, "/root/files-test/blob")
    try:
        result = await machine.run("ls -l /root/files-test/blob")
        assert result.stdout.startswith(b"-rwxr-x---")
        got = await machine.collect("/root/files-test", tmp_path / "back")
        assert got.files == [tmp_path / "back/files-test/blob"] and got.refused == []
        assert got.files[0].read_bytes() == data
        assert stat.S_IMODE(got.files[0].stat().st_mode) == 0o750
        # one file alone lands directly in the folder
        got = await machine.collect("/root/files-test/blob", tmp_path / "single")
        assert got.files == [tmp_path / "single/blob"]
        # past max_bytes nothing is written, and that is said
        got = await machine.collect("/root/files-test", tmp_path / "small", max_bytes=1000)
        assert got.files == [] and got.refused == [
            ("files-test/blob", "more than 1000 bytes in all")
        ]
    finally:
        await machine.run("rm -rf /root/files-test")


async def test_collecting_a_missing_path_fails(machine: Machine, tmp_path: Path) -> None:
    with pytest.raises(CommandFailed, match="collecting '/root/no-such-file' failed"):
        await machine.collect("/root/no-such-file", tmp_path)


async def test_a_command_printing_past_its_bound_is_stopped(machine: Machine) -> None:
    with pytest.raises(CommandFailed, match="printed more than 10000 bytes"):
        await machine.run("yes", max_output=10_000, timeout=60)
    assert (await machine.run("echo still here")).stdout == b"still here\n"
