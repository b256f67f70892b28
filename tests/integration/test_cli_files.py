"""Files in and out of the guest from the command line, and a command's timeout.

Each test boots its own guest through a child ``syscalls-async``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from syscalls_async.machine import Image

pytestmark = pytest.mark.guest

#: a user's program: copies its stdin and a sample, transformed, into /root/out
PROGRAM = r"""
#include <stdio.h>
#include <unistd.h>
int main(int argc, char **argv)
{
    char buf[256];
    FILE *in = fopen(argv[1], "rb"), *out = fopen("/root/out/result.bin", "wb");
    size_t n = fread(buf, 1, sizeof(buf), in);
    for (size_t i = 0; i < n; i++)
        fputc(buf[i] ^ 0xff, out);
    while ((n = fread(buf, 1, sizeof(buf), stdin)) > 0)
        fwrite(buf, 1, n, out);
    fclose(out);
    symlink("/etc/passwd", "/root/out/escape");
    puts("done");
    return 0;
}
"""


def _cli(*args: str, input: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "syscalls_async.cli", *args],
        input=input,
        capture_output=True,
        timeout=280,
        check=False,
    )


def test_an_added_static_binary_runs_and_its_output_is_collected(
    image: Image, tmp_path: Path
) -> None:
    (tmp_path / "prog.c").write_text(PROGRAM)
    subprocess.run(
        ["gcc", "-static", "-O1", "-o", str(tmp_path / "prog"), str(tmp_path / "prog.c")],
        check=True,
    )
    sample = bytes(range(256))
    (tmp_path / "sample.bin").write_bytes(sample)
    dest = tmp_path / "collected" / "here"  # made by --collect
    # a symlink in the way on the host is never written through
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    trap = tmp_path / "trap"
    trap.mkdir()
    (trap / "out").symlink_to(elsewhere)
    proc = _cli(
        "exec", "-i", "--smp", "1",
        "--add", str(tmp_path / "prog"),
        "--add", f"{tmp_path / 'sample.bin'}:/opt/samples/sample.bin",
        "--collect", f"/root/out:{dest}",
        "--collect", f"/root/out:{trap}",
        "--", "sh", "-c", "mkdir /root/out && ./prog /opt/samples/sample.bin",
        input=b"\x00stdin\xff",
    )  # fmt: skip
    err = proc.stderr.decode()
    assert proc.returncode == 0, err
    assert proc.stdout == b"done\n"
    assert (dest / "out" / "result.bin").read_bytes() == bytes(b ^ 0xFF for b in sample) + (
        b"\x00stdin\xff"
    )
    # the guest's symlink is refused and counted, not written
    assert "--collect /root/out: refused 1 entries (out/escape: not a regular file" in err
    assert sorted(p.name for p in (dest / "out").iterdir()) == ["result.bin"]
    assert "--collect /root/out: refused 3 entries" in err
    assert list(elsewhere.iterdir()) == []


def test_a_timed_out_run_keeps_its_output_and_stats_and_exits_124(
    image: Image, tmp_path: Path
) -> None:
    plugin = tmp_path / "plugin.py"
    plugin.write_text("from syscalls_async import plugins  # no hooks\n")
    # options after PLUGIN are options, not the command
    proc = _cli(
        "run", str(plugin), "--timeout", "3", "--stats", "--smp", "1",
        "--", "sh", "-c", "echo partial; echo oops >&2; exec sleep 100",
    )  # fmt: skip
    err = proc.stderr.decode()
    assert proc.returncode == 124, err
    assert proc.stdout == b"partial\n"
    lines = err.splitlines()
    assert "oops" in lines
    assert any(
        line.startswith("syscalls-async: command ") and line.endswith("did not finish within 3 s")
        for line in lines
    )
    assert any(line.startswith("syscalls-async: ") and "ring_drops=" in line for line in lines)
