"""``syscalls-async demo``: one boot, every effect shown under its heading, counts at the end."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: the guest architecture the demo runs on (``nox -s arch -- aarch64``)
ARCH = os.environ.get("SYSCALLS_ASYNC_EXAMPLES_ARCH", "x86_64")


def section(out: str, number: str) -> str:
    """The text under heading ``== <number>. ...`` up to the next heading."""
    m = re.search(rf"^== {re.escape(number)}\b.*?$(.*?)(?=^== |\Z)", out, re.M | re.S)
    assert m, f"no section {number}"
    return m.group(1)


@pytest.mark.guest
def test_demo() -> None:
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "syscalls_async.cli", "demo", "--arch", ARCH],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240 if ARCH == "x86_64" else 900,
    )
    elapsed = time.monotonic() - start
    print(f"exit {proc.returncode} after {elapsed:.1f} s\n{proc.stdout}\n--- stderr\n{proc.stderr}")
    assert proc.returncode == 0
    out = proc.stdout
    assert "hooks are live" in out

    execs = section(out, "1")
    assert "  hook> [exec] pid " in execs
    assert re.search(r"^  hook> \[exec\] pid \d+: /bin/ls argv=\['/bin/ls', '/etc'\]$", execs, re.M)
    assert "  | passwd\n" in execs

    shadow = section(out, "2")
    assert "  hook> [block] cat: openat('/etc/shadow') skipped, returns -EACCES" in shadow
    assert "  hook> [failed open] cat: /etc/shadow -> -13 (EACCES)" in shadow
    assert re.search(r"^  \| -rw-r--r-- .* /etc/shadow$", shadow, re.M)  # it exists
    assert "  ! cat: can't open '/etc/shadow': Permission denied" in shadow
    assert "(exit status 1)" in shadow

    failed = section(out, "3")
    assert "  hook> [failed open] cat: /no/such/file -> -2 (ENOENT)" in failed
    assert "  hook> [failed open] wc: /etc/passwd/x -> -20 (ENOTDIR)" in failed
    assert "  | root:x:0:" in failed
    assert "[failed open] cat: /etc/group" not in failed

    skip = section(out, "4")
    assert "  hook> [skip] ioctl(fd=9, op=0xabcd) never reaches the kernel; returns 43" in skip
    assert "  | send_syscall: syscall returned 43\n  (exit status 43)" in skip
    assert "  | send_syscall: syscall returned -9\n  (exit status 247)" in skip
    assert skip.count("[skip]") == 1

    toggle = section(out, "5")
    samples = re.findall(r"^  hook> \[sample (\d)/5\] sys_\w+ by ls$", toggle, re.M)
    assert samples == [str(i) for i in range(1, 6)] * 2
    assert re.findall(r"^  sampled so far: (\d+)", toggle, re.M) == ["5", "5", "5"]
    assert "(the hook is off: this ls went unseen)" in toggle
    assert toggle.count("limit reached: hook disabled") == 2

    counts = section(out, "counts")
    assert re.search(r"^  opens of /etc/shadow +1 blocked$", counts, re.M)
    assert re.search(r"^  ioctls skipped +1$", counts, re.M)
    assert re.search(r"^  ls syscalls sampled +10 ", counts, re.M)
    assert re.search(r"^  failed opens +[4-9]$", counts, re.M)
    assert re.search(r" 0 errors, 0 timeouts$", counts, re.M)
    assert "guest stopped after" in out
