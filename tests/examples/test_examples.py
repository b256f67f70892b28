"""Every example under examples/, run the way its docstring says.

Each test is one ``syscalls-async run examples/X.py -- CMD`` in a subprocess
(one guest boot each, 6-10 s) and checks what the example prints and what
its workload does.  ``$SYSCALLS_ASYNC_EXAMPLES_ARCH`` boots another
architecture's guest instead (``nox -s arch -- aarch64``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
#: the guest architecture the examples run on
ARCH = os.environ.get("SYSCALLS_ASYNC_EXAMPLES_ARCH", "x86_64")
TIMEOUT = 180 if ARCH == "x86_64" else 600


def run(
    example: str,
    *command: str,
    env: dict[str, str] | None = None,
    options: tuple[str, ...] = (),
) -> subprocess.CompletedProcess[str]:
    """``syscalls-async run [options] examples/<example> -- <command>``; its output."""
    argv = [
        sys.executable,
        "-m",
        "syscalls_async.cli",
        "run",
        "--arch",
        ARCH,
        *options,
        str(EXAMPLES / example),
        "--",
        *command,
    ]
    proc = subprocess.run(
        argv,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env={**os.environ, **(env or {})},
    )
    # shown by pytest when an assertion fails
    print(
        f"$ {' '.join(argv)}\nexit {proc.returncode}\n--- stdout\n{proc.stdout}"
        f"--- stderr\n{proc.stderr}"
    )
    return proc


def lines(text: str, prefix: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(prefix)]


def test_every_example_has_a_test() -> None:
    tested = set(re.findall(r'run\(\s*"(\w+\.py)"', Path(__file__).read_text()))
    # test_*.py files are example tests for plugin authors (tests/unit/test_testing_plugin.py)
    present = {p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("test_")}
    assert present == tested


@pytest.mark.guest
def test_quick_start() -> None:
    proc = run("quick_start.py", "cat", "/etc/passwd")
    assert proc.returncode == 0
    out = proc.stdout
    assert "Process executing: /bin/sh" in out
    syscalls = lines(out, "Syscall: ")
    # only cat's syscalls, each named like the prototype
    assert syscalls and all(line.endswith(" by cat") for line in syscalls)
    assert "Syscall: sys_openat by cat" in syscalls
    assert syscalls[-1] == "Syscall: sys_exit_group by cat"
    # the command's output follows the handlers'
    assert out.rstrip().endswith("root:x:0:0:root:/root:/bin/sh")


@pytest.mark.guest
def test_process_monitor(tmp_path: Path) -> None:
    log = tmp_path / "process_log.txt"
    proc = run(
        "process_monitor.py",
        "sh",
        "-c",
        "/bin/ls /etc; send_syscall getuid",
        env={"PROCESS_LOG": str(log)},
    )
    assert proc.returncode == 0
    out = proc.stdout
    assert "New process: /bin/ls\nArguments: ['/bin/ls', '/etc']\n" in out
    assert "New process: /bin/send_syscall\nArguments: ['send_syscall', 'getuid']\n" in out
    assert "passwd" in out and "send_syscall: syscall returned 0" in out
    logged = log.read_text().splitlines()
    assert "/bin/ls /bin/ls /etc" in logged
    assert "/bin/send_syscall send_syscall getuid" in logged
    assert len(logged) == len(lines(out, "New process: "))


@pytest.mark.guest
def test_file_access_blocks_shadow() -> None:
    proc = run(
        "file_access.py",
        "sh",
        "-c",
        "echo root:x:0 > /etc/sh.tmp; mv /etc/sh.tmp /etc/shadow; ls /etc; "
        "cat /etc/passwd; cat /etc/shadow",
    )
    assert proc.returncode == 1  # the last command, cat /etc/shadow, failed
    out = proc.stdout
    assert "ALERT: Access to sensitive file: /etc/passwd by cat" in out
    assert "ALERT: Access to sensitive file: /etc/shadow by cat" in out
    assert "BLOCKED: /etc/shadow (returning -13, EACCES)" in out
    assert "shadow\n" in out  # ls: the file exists
    assert "root:x:0:0:root:/root:/bin/sh" in out  # /etc/passwd is still readable
    assert "root:x:0\n" not in out  # the shadow file's content never came out
    assert "cat: can't open '/etc/shadow': Permission denied" in proc.stderr


@pytest.mark.guest
def test_network_monitor() -> None:
    proc = run("network_monitor.py", "udp_send", "user=admin password=hunter2")
    assert proc.returncode == 0
    out = proc.stdout
    assert re.search(r"^Network send: 27 bytes on fd \d+$", out, re.M)
    assert "Data preview: b'user=admin password=hunter2'" in out
    assert "WARNING: Potential password transmission detected" in out
    assert "udp_send: received 27 bytes: user=admin password=hunter2" in out
    assert len(lines(out, "Network send:")) == 1


@pytest.mark.guest
def test_failed_opens(tmp_path: Path) -> None:
    log = tmp_path / "failed_access.log"
    proc = run(
        "failed_opens.py",
        "sh",
        "-c",
        "cat /no/such/file; wc -l /etc/passwd/x; cat /etc/group",
        env={"FAILED_ACCESS_LOG": str(log)},
    )
    assert proc.returncode == 0
    failed = lines(proc.stdout, "Failed to open:")
    assert failed == [
        "Failed to open: /no/such/file (error: 2 ENOENT) in cat",
        "Failed to open: /etc/passwd/x (error: 20 ENOTDIR) in wc",
    ]
    assert "root:x:0:" in proc.stdout  # the successful open printed nothing
    assert log.read_text() == "/no/such/file 2\n/etc/passwd/x 20\n"


#: (FIOCLEX, TCGETS) of the guest, from its kernel's uapi <asm/ioctls.h>
IOCTLS = {"mipsel": (0x6601, 0x540D)}.get(ARCH, (0x5451, 0x5401))


@pytest.mark.guest
def test_ioctl_filter() -> None:
    fioclex, tcgets = IOCTLS
    proc = run(
        "ioctl_filter.py",
        "sh",
        "-c",
        f"send_syscall ioctl 1 {fioclex:#x} 0x2; send_syscall ioctl 1 0x1234 0x1; "
        f"send_syscall ioctl 1 {tcgets:#x} 0x1; send_syscall ioctl 1 {fioclex:#x} 0x1",
    )
    assert proc.returncode == 0
    out = proc.stdout
    # of the four calls only the last matches every filter
    assert lines(out, "Targeted ioctl") == [f"Targeted ioctl: fd=1, cmd={fioclex:#x}, arg=0x1 -> 0"]
    assert lines(out, "send_syscall:") == [
        "send_syscall: syscall returned 0",  # bit 0 of arg clear
        "send_syscall: syscall returned -25",  # cmd out of range
        "send_syscall: syscall returned -25",  # failed (ENOTTY)
        "send_syscall: syscall returned 0",
    ]


@pytest.mark.guest
def test_caching_reads() -> None:
    proc = run("caching_reads.py", "reopen", "/etc/passwd", "5")
    assert proc.returncode == 0
    assert lines(proc.stdout, "openat(") == [
        "openat(/etc/passwd): cache miss (hits=0, misses=1)",
        *(f"openat(/etc/passwd): cache hit (hits={i}, misses=1)" for i in range(1, 5)),
    ]
    assert "reopen: opened /etc/passwd 5 of 5 times" in proc.stdout


@pytest.mark.guest
def test_dynamic_toggle() -> None:
    proc = run("dynamic_toggle.py", "sh", "-c", "ls / >/dev/null; ls /tmp >/dev/null")
    assert proc.returncode == 0
    out = proc.stdout
    reports = re.findall(
        r"^ls\[\d+\] exiting: sample hook saw (\d+) syscalls, count_all saw (\d+)$", out, re.M
    )
    assert len(reports) == 2
    for sampled, total in reports:
        # disabled after 5 (the reference count keeps going), enabled again for the next ls
        assert int(sampled) == 5
        assert int(total) > 5
    assert out.count("sample hook disabled after 5 syscalls") == 2
    assert out.count("sample hook enabled again") == 2
    assert len(lines(out, "sample ")) == 2 * 5 + 2 * 2  # 5 samples + 2 notices per ls


@pytest.mark.guest
def test_portal_osi() -> None:
    proc = run("portal_osi.py", "send_syscall", "close", "9")
    assert proc.returncode == 256 - 9  # send_syscall exits with -EBADF
    out = proc.stdout
    m = re.search(r"^Syscall by PID (\d+): sys_close\(fd=9\)$", out, re.M)
    assert m
    pid = m.group(1)
    assert re.search(
        r"^  portal: comm=send_syscall exe=/bin/send_syscall ppid=\d+ uid=0 "
        r"cwd=/\S* argv=\['send_syscall', 'close', '9'\]$",
        out,
        re.M,
    )
    m2 = re.search(r"^  portal: (\d+) mappings, (\d+) of /bin/send_syscall", out, re.M)
    assert m2 and int(m2.group(2)) >= 1 and int(m2.group(1)) > int(m2.group(2))
    assert "  portal: open fds [0, 1, 2]" in out
    assert re.search(r"^  portal: \d+ processes in the guest$", out, re.M)
    assert re.search(
        rf"^  OSI: Process: send_syscall \(PID: {pid}, PPID: \d+\) "
        r"args=\['send_syscall', 'close', '9'\] exe=/bin/send_syscall$",
        out,
        re.M,
    )
    # the portal handler ran first, the OSI one second, on the same call
    assert out.index("Syscall by PID") < out.index("  OSI: ")
    assert "send_syscall: syscall returned -9" in out


@pytest.mark.guest
def test_skip_ioctl() -> None:
    proc = run("skip_ioctl.py", "send_syscall", "ioctl", "9", "0xabcd")
    assert proc.returncode == 43
    assert proc.stdout == (
        "ioctl(fd=9, op=0xabcd) skipped, returning 43\nsend_syscall: syscall returned 43\n"
    )


@pytest.mark.guest
def test_watch_opens() -> None:
    proc = run(
        "watch_opens.py",
        "sh",
        "-c",
        "cat /etc/passwd >/dev/null; cat /nope; observe 1 2",
        options=("--stats",),
    )
    out = proc.stdout
    assert re.search(r"^open /etc/passwd by cat\[\d+\] = 3$", out, re.M), out
    assert re.search(r"^open /nope by cat\[\d+\] = -ENOENT$", out, re.M), out
    # the 300-byte path of observe's first call: 256 bytes captured, flagged
    long = re.search(r"^open (/nonexistent/sa-observe/\d+/long/x+)\.\.\. by observe", out, re.M)
    assert long and len(long[1]) == 256, out
    assert "ring_drops=(0, 0, 0, 0, 0, 0, 0, 0)" in proc.stderr
    assert "hook_drops={}" in proc.stderr
