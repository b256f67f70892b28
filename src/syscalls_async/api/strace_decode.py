"""Syscall arguments shown as strace shows them (host-only: no guest, no session).

The tables of flag and constant names are written from the x86_64 Linux uapi
headers (``asm-generic/fcntl.h``, ``asm-generic/mman-common.h``,
``linux/sched.h``, ``asm/signal.h``, ``linux/socket.h``, ``asm-generic/ioctls.h``).

Example::

    >>> open_flags(0x90800)
    'O_RDONLY|O_NONBLOCK|O_CLOEXEC|O_DIRECTORY'
    >>> escape(b"hi\\n\\x7fELF", limit=32)
    '"hi\\\\n\\\\177ELF"'
"""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence
from typing import NamedTuple

#: the kernel's restart codes (include/linux/errno.h), with the words strace uses
RESTARTS = {
    512: ("ERESTARTSYS", "To be restarted if SA_RESTART is set"),
    513: ("ERESTARTNOINTR", "To be restarted"),
    514: ("ERESTARTNOHAND", "To be restarted if no handler"),
    516: ("ERESTART_RESTARTBLOCK", "Interrupted by signal"),
}

AT_FDCWD = -100

#: x86_64 kernel names strace shows otherwise (the kernel's ``new*`` calls are the plain ones)
STRACE_NAMES = {
    "newstat": "stat",
    "newfstat": "fstat",
    "newlstat": "lstat",
    "newuname": "uname",
    "sendfile64": "sendfile",
}
_KERNEL_NAMES = {shown: kernel for kernel, shown in STRACE_NAMES.items()}


def strace_name(name: str) -> str:
    """The name strace shows for kernel syscall ``name`` (``newstat`` -> ``stat``)."""
    return STRACE_NAMES.get(name, name)


def kernel_name(name: str) -> str:
    """The kernel's name for a syscall named as strace does (``stat`` -> ``newstat``)."""
    return _KERNEL_NAMES.get(name, name)


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_O_ACCMODE = {0: "O_RDONLY", 1: "O_WRONLY", 2: "O_RDWR", 3: "O_ACCMODE"}
# multi-bit flags first: O_TMPFILE holds O_DIRECTORY's bit, O_SYNC holds O_DSYNC's
_O_FLAGS = (
    (0o20200000, "O_TMPFILE"),
    (0o4010000, "O_SYNC"),
    (0o100, "O_CREAT"),
    (0o200, "O_EXCL"),
    (0o400, "O_NOCTTY"),
    (0o1000, "O_TRUNC"),
    (0o2000, "O_APPEND"),
    (0o4000, "O_NONBLOCK"),
    (0o10000, "O_DSYNC"),
    (0o20000, "O_ASYNC"),
    (0o40000, "O_DIRECT"),
    (0o100000, "O_LARGEFILE"),
    (0o400000, "O_NOFOLLOW"),
    (0o1000000, "O_NOATIME"),
    (0o2000000, "O_CLOEXEC"),
    (0o10000000, "O_PATH"),
    (0o200000, "O_DIRECTORY"),
)
O_CREAT = 0o100
O_TMPFILE = 0o20200000

_AT_FLAGS = (
    (0x100, "AT_SYMLINK_NOFOLLOW"),
    (0x200, "AT_REMOVEDIR"),
    (0x400, "AT_SYMLINK_FOLLOW"),
    (0x800, "AT_NO_AUTOMOUNT"),
    (0x1000, "AT_EMPTY_PATH"),
    (0x2000, "AT_STATX_FORCE_SYNC"),
    (0x4000, "AT_STATX_DONT_SYNC"),
    (0x8000, "AT_RECURSIVE"),
)

_PROT = (
    (1, "PROT_READ"),
    (2, "PROT_WRITE"),
    (4, "PROT_EXEC"),
    (0x1000000, "PROT_GROWSDOWN"),
    (0x2000000, "PROT_GROWSUP"),
)

_MAP_TYPE = {1: "MAP_SHARED", 2: "MAP_PRIVATE", 3: "MAP_SHARED_VALIDATE"}
_MAP_FLAGS = (
    (0x10, "MAP_FIXED"),
    (0x20, "MAP_ANONYMOUS"),
    (0x40, "MAP_32BIT"),
    (0x100, "MAP_GROWSDOWN"),
    (0x800, "MAP_DENYWRITE"),
    (0x1000, "MAP_EXECUTABLE"),
    (0x2000, "MAP_LOCKED"),
    (0x4000, "MAP_NORESERVE"),
    (0x8000, "MAP_POPULATE"),
    (0x10000, "MAP_NONBLOCK"),
    (0x20000, "MAP_STACK"),
    (0x40000, "MAP_HUGETLB"),
    (0x80000, "MAP_SYNC"),
    (0x100000, "MAP_FIXED_NOREPLACE"),
    (0x4000000, "MAP_UNINITIALIZED"),
)

_SIGNALS = _words(
    "HUP INT QUIT ILL TRAP ABRT BUS FPE KILL USR1 SEGV USR2 PIPE ALRM TERM STKFLT "
    "CHLD CONT STOP TSTP TTIN TTOU URG XCPU XFSZ VTALRM PROF WINCH IO PWR SYS"
)

_CLONE_FLAGS = (
    (0x100, "CLONE_VM"),
    (0x200, "CLONE_FS"),
    (0x400, "CLONE_FILES"),
    (0x800, "CLONE_SIGHAND"),
    (0x1000, "CLONE_PIDFD"),
    (0x2000, "CLONE_PTRACE"),
    (0x4000, "CLONE_VFORK"),
    (0x8000, "CLONE_PARENT"),
    (0x10000, "CLONE_THREAD"),
    (0x20000, "CLONE_NEWNS"),
    (0x40000, "CLONE_SYSVSEM"),
    (0x80000, "CLONE_SETTLS"),
    (0x100000, "CLONE_PARENT_SETTID"),
    (0x200000, "CLONE_CHILD_CLEARTID"),
    (0x400000, "CLONE_DETACHED"),
    (0x800000, "CLONE_UNTRACED"),
    (0x1000000, "CLONE_CHILD_SETTID"),
    (0x2000000, "CLONE_NEWCGROUP"),
    (0x4000000, "CLONE_NEWUTS"),
    (0x8000000, "CLONE_NEWIPC"),
    (0x10000000, "CLONE_NEWUSER"),
    (0x20000000, "CLONE_NEWPID"),
    (0x40000000, "CLONE_NEWNET"),
    (0x80000000, "CLONE_IO"),
)

_FAMILIES = {
    0: "AF_UNSPEC",
    1: "AF_UNIX",
    2: "AF_INET",
    3: "AF_AX25",
    4: "AF_IPX",
    5: "AF_APPLETALK",
    9: "AF_X25",
    10: "AF_INET6",
    16: "AF_NETLINK",
    17: "AF_PACKET",
    38: "AF_ALG",
    40: "AF_VSOCK",
}
_SOCK_TYPES = {
    1: "SOCK_STREAM",
    2: "SOCK_DGRAM",
    3: "SOCK_RAW",
    4: "SOCK_RDM",
    5: "SOCK_SEQPACKET",
    6: "SOCK_DCCP",
    10: "SOCK_PACKET",
}
_SOCK_FLAGS = ((0o4000, "SOCK_NONBLOCK"), (0o2000000, "SOCK_CLOEXEC"))
_IP_PROTOCOLS = {
    0: "IPPROTO_IP",
    1: "IPPROTO_ICMP",
    6: "IPPROTO_TCP",
    17: "IPPROTO_UDP",
    41: "IPPROTO_IPV6",
    58: "IPPROTO_ICMPV6",
    132: "IPPROTO_SCTP",
    255: "IPPROTO_RAW",
}

# asm-generic/ioctls.h: the terminal requests
_IOCTLS = {
    0x5401: "TCGETS",
    0x5402: "TCSETS",
    0x5403: "TCSETSW",
    0x5404: "TCSETSF",
    0x5405: "TCGETA",
    0x5406: "TCSETA",
    0x5407: "TCSETAW",
    0x5408: "TCSETAF",
    0x5409: "TCSBRK",
    0x540A: "TCXONC",
    0x540B: "TCFLSH",
    0x540C: "TIOCEXCL",
    0x540D: "TIOCNXCL",
    0x540E: "TIOCSCTTY",
    0x540F: "TIOCGPGRP",
    0x5410: "TIOCSPGRP",
    0x5411: "TIOCOUTQ",
    0x5412: "TIOCSTI",
    0x5413: "TIOCGWINSZ",
    0x5414: "TIOCSWINSZ",
    0x5415: "TIOCMGET",
    0x5416: "TIOCMBIS",
    0x5417: "TIOCMBIC",
    0x5418: "TIOCMSET",
    0x5419: "TIOCGSOFTCAR",
    0x541A: "TIOCSSOFTCAR",
    0x541B: "FIONREAD",
    0x541C: "TIOCLINUX",
    0x541D: "TIOCCONS",
    0x541E: "TIOCGSERIAL",
    0x541F: "TIOCSSERIAL",
    0x5420: "TIOCPKT",
    0x5421: "FIONBIO",
    0x5422: "TIOCNOTTY",
    0x5423: "TIOCSETD",
    0x5424: "TIOCGETD",
    0x5425: "TCSBRKP",
    0x5427: "TIOCSBRK",
    0x5428: "TIOCCBRK",
    0x5429: "TIOCGSID",
    0x5441: "TIOCGPTPEER",
    0x5450: "FIONCLEX",
    0x5451: "FIOCLEX",
    0x5452: "FIOASYNC",
    0x80045430: "TIOCGPTN",
    0x40045431: "TIOCSPTLCK",
}

_ARCH_PRCTL = {
    0x1001: "ARCH_SET_GS",
    0x1002: "ARCH_SET_FS",
    0x1003: "ARCH_GET_FS",
    0x1004: "ARCH_GET_GS",
    0x1011: "ARCH_GET_CPUID",
    0x1012: "ARCH_SET_CPUID",
}
_RLIMITS = _words(
    "RLIMIT_CPU RLIMIT_FSIZE RLIMIT_DATA RLIMIT_STACK RLIMIT_CORE RLIMIT_RSS RLIMIT_NPROC "
    "RLIMIT_NOFILE RLIMIT_MEMLOCK RLIMIT_AS RLIMIT_LOCKS RLIMIT_SIGPENDING RLIMIT_MSGQUEUE "
    "RLIMIT_NICE RLIMIT_RTPRIO RLIMIT_RTTIME"
)
_CLOCKS = _words(
    "CLOCK_REALTIME CLOCK_MONOTONIC CLOCK_PROCESS_CPUTIME_ID CLOCK_THREAD_CPUTIME_ID "
    "CLOCK_MONOTONIC_RAW CLOCK_REALTIME_COARSE CLOCK_MONOTONIC_COARSE CLOCK_BOOTTIME "
    "CLOCK_REALTIME_ALARM CLOCK_BOOTTIME_ALARM CLOCK_SGI_CYCLE CLOCK_TAI"
)
_GRND = ((1, "GRND_NONBLOCK"), (2, "GRND_RANDOM"), (4, "GRND_INSECURE"))
_FILE_TYPES = (
    (0o140000, "S_IFSOCK"),
    (0o120000, "S_IFLNK"),
    (0o100000, "S_IFREG"),
    (0o60000, "S_IFBLK"),
    (0o40000, "S_IFDIR"),
    (0o20000, "S_IFCHR"),
    (0o10000, "S_IFIFO"),
)
_S_IFMT = 0o170000

_ACCESS = ((4, "R_OK"), (2, "W_OK"), (1, "X_OK"))
_WHENCE = {0: "SEEK_SET", 1: "SEEK_CUR", 2: "SEEK_END", 3: "SEEK_DATA", 4: "SEEK_HOLE"}
_SIGMASK_HOW = {0: "SIG_BLOCK", 1: "SIG_UNBLOCK", 2: "SIG_SETMASK"}
_WAIT_OPTIONS = (
    (1, "WNOHANG"),
    (2, "WUNTRACED"),
    (4, "WEXITED"),
    (8, "WCONTINUED"),
    (0x1000000, "WNOWAIT"),
    (0x20000000, "__WNOTHREAD"),
    (0x40000000, "__WALL"),
    (0x80000000, "__WCLONE"),
)
_FCNTL = {
    0: "F_DUPFD",
    1: "F_GETFD",
    2: "F_SETFD",
    3: "F_GETFL",
    4: "F_SETFL",
    5: "F_GETLK",
    6: "F_SETLK",
    7: "F_SETLKW",
    8: "F_SETOWN",
    9: "F_GETOWN",
    1030: "F_DUPFD_CLOEXEC",
}


def _bits(value: int, table: Sequence[tuple[int, str]], parts: list[str]) -> str:
    """``parts`` plus the names of ``value``'s bits in ``table``, the rest in hex."""
    for mask, name in table:
        if value & mask == mask:
            parts.append(name)
            value &= ~mask
    if value:
        parts.append(f"{value:#x}")
    return "|".join(parts) if parts else "0"


def open_flags(value: int) -> str:
    """``O_RDONLY|O_CLOEXEC`` from an ``int flags`` of open/openat."""
    value &= 0xFFFFFFFF
    return _bits(value & ~3, _O_FLAGS, [_O_ACCMODE[value & 3]])


def at_flags(value: int) -> str:
    return _bits(value & 0xFFFFFFFF, _AT_FLAGS, [])


def prot(value: int) -> str:
    return "PROT_NONE" if value == 0 else _bits(value & 0xFFFFFFFF, _PROT, [])


def map_flags(value: int) -> str:
    value &= 0xFFFFFFFF
    kind = value & 0xF
    first = [_MAP_TYPE[kind]] if kind in _MAP_TYPE else []
    return _bits(value & ~0xF if first else value, _MAP_FLAGS, first)


def signal_name(value: int) -> str:
    """``SIGTERM``; real-time signals as ``SIGRT_N`` (N from 32)."""
    if 1 <= value <= len(_SIGNALS):
        return "SIG" + _SIGNALS[value - 1]
    if 32 <= value <= 64:
        return f"SIGRT_{value}"
    return str(value)


def clone_flags(value: int) -> str:
    """The flags of ``clone``, the exit signal (low byte) last."""
    value &= 0xFFFFFFFFFFFFFFFF
    sig = value & 0xFF
    text = _bits(value & ~0xFF, _CLONE_FLAGS, [])
    if not sig:
        return text
    return signal_name(sig) if text == "0" else f"{text}|{signal_name(sig)}"


def family(value: int) -> str:
    return _FAMILIES.get(value & 0xFFFFFFFF, str(value))


def sock_type(value: int) -> str:
    value &= 0xFFFFFFFF
    kind = value & 0xF
    return _bits(value & ~0xF, _SOCK_FLAGS, [_SOCK_TYPES.get(kind, str(kind))])


def sock_protocol(fam: int, value: int) -> str:
    if fam & 0xFFFFFFFF in (2, 10):
        return _IP_PROTOCOLS.get(value & 0xFFFFFFFF, str(value))
    return str(value)


def ioctl_request(value: int) -> str:
    return _IOCTLS.get(value & 0xFFFFFFFF, f"{value & 0xFFFFFFFF:#x}")


def file_mode(mode: int) -> str:
    """``S_IFREG|0644`` from a ``st_mode``."""
    kind = next((name for bits, name in _FILE_TYPES if mode & _S_IFMT == bits), None)
    perms = f"0{mode & 0o7777:o}" if mode & 0o7777 else "0"
    return f"{kind}|{perms}" if kind else perms


class StatLayout(NamedTuple):
    """Where a ``struct stat`` (or ``stat64``) of one architecture has what strace shows."""

    size: int
    mode: slice
    st_size: slice


#: ``struct stat`` of each architecture (by ``--arch`` name), as the stat calls fill it;
#: offsets and widths of the 32-bit ones from ``offsetof``/``sizeof`` over each
#: arch's uapi ``asm/stat.h``, compiled with ``arm-linux-gnueabihf-gcc`` and
#: ``mipsel-linux-gnu-gcc``
STAT_LAYOUTS: dict[str, StatLayout] = {
    "x86_64": StatLayout(144, slice(24, 28), slice(48, 56)),
    # asm-generic: st_dev, st_ino (8 each), then st_mode
    "aarch64": StatLayout(128, slice(16, 20), slice(48, 56)),
    # ARM: st_dev, st_ino (4 each), st_mode a 16-bit short; st_size a 32-bit long
    "armhf": StatLayout(64, slice(8, 10), slice(20, 24)),
    # MIPS o32: st_dev, st_pad0[3], st_ino (4 each), st_mode; st_size a 32-bit long
    "mipsel": StatLayout(144, slice(20, 24), slice(48, 52)),
}
#: ``struct stat64`` (what ``stat64``, ``lstat64``, ``fstat64``, ``fstatat64`` fill)
#: of the 32-bit architectures; the two differ from each other
STAT64_LAYOUTS: dict[str, StatLayout] = {
    # ARM EABI: st_dev (8), __pad0[4], __st_ino (4), st_mode; st_size after st_rdev, __pad3
    "armhf": StatLayout(104, slice(16, 20), slice(48, 56)),
    # MIPS o32: st_dev, st_pad0[3] (4 each), st_ino (8), st_mode; st_size after st_pad1[3]
    "mipsel": StatLayout(104, slice(24, 28), slice(56, 64)),
}
#: x86_64 ``struct stat``: its size, and where st_mode and st_size are
STAT_SIZE = STAT_LAYOUTS["x86_64"].size


def stat_layout(arch: str, kind: str = "statbuf") -> StatLayout | None:
    """The ``struct stat`` (``kind`` ``statbuf``) or ``struct stat64``
    (``stat64buf``) of ``arch``: x86_64's ``stat`` for an arch not listed,
    None for a ``stat64`` of an arch without one here (shown as a pointer
    rather than decoded wrong)."""
    if kind == "stat64buf":
        return STAT64_LAYOUTS.get(arch)
    layout: StatLayout = STAT_LAYOUTS.get(arch, STAT_LAYOUTS["x86_64"])
    return layout


def stat_struct(data: bytes, arch: str = "x86_64", kind: str = "statbuf") -> str:
    """strace's short form of a ``struct stat``: ``{st_mode=S_IFREG|0644, st_size=30, ...}``
    (``{...}`` when ``arch`` has no such struct here or ``data`` is shorter than it)."""
    layout = stat_layout(arch, kind)
    if layout is None or len(data) < layout.size:
        return "{...}"
    mode = int.from_bytes(data[layout.mode], "little")
    size = int.from_bytes(data[layout.st_size], "little", signed=True)
    return f"{{st_mode={file_mode(mode)}, st_size={size}, ...}}"


def wait_status(status: int) -> str:
    """``[{WIFEXITED(s) && WEXITSTATUS(s) == 0}]`` from a wait status."""
    status &= 0xFFFFFFFF
    low = status & 0x7F
    if low == 0:
        return f"[{{WIFEXITED(s) && WEXITSTATUS(s) == {(status >> 8) & 0xFF}}}]"
    if low == 0x7F:
        return f"[{{WIFSTOPPED(s) && WSTOPSIG(s) == {signal_name((status >> 8) & 0xFF)}}}]"
    core = " && WCOREDUMP(s)" if status & 0x80 else ""
    return f"[{{WIFSIGNALED(s) && WTERMSIG(s) == {signal_name(low)}{core}}}]"


def pipe_fds(data: bytes) -> str:
    """``[3, 4]`` from the two ``int`` a pipe call wrote."""
    return (
        f"[{_s32(int.from_bytes(data[:4], 'little'))}, {_s32(int.from_bytes(data[4:8], 'little'))}]"
    )


def access_mode(value: int) -> str:
    return "F_OK" if value == 0 else _bits(value & 0xFFFFFFFF, _ACCESS, [])


def wait_options(value: int) -> str:
    return _bits(value & 0xFFFFFFFF, _WAIT_OPTIONS, [])


def fd(value: int) -> str:
    value = _s32(value)
    return "AT_FDCWD" if value == AT_FDCWD else str(value)


def with_path(text: str, path: str | None) -> str:
    """``3</etc/passwd>``: a descriptor and its path (escaped), as strace's ``-y``."""
    if path is None:
        return text
    inner = escape(
        path.encode(errors="surrogateescape"), limit=len(path.encode(errors="surrogateescape"))
    )
    return f"{text}<{inner[1:-1]}>"


def pointer(value: int) -> str:
    return "NULL" if value == 0 else f"{value:#x}"


def octal(value: int) -> str:
    return f"0{value & 0xFFFFFFFF:o}"


def _s32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def _s64(value: int) -> int:
    value &= 0xFFFFFFFFFFFFFFFF
    return value - (1 << 64) if value & (1 << 63) else value


def escape(data: bytes, *, limit: int, more: bool = False) -> str:
    """``data`` as strace quotes it: at most ``limit`` bytes, printable ASCII as
    is, C escapes for the common controls, octal for every other byte, and
    ``...`` after the quote when something was left out (``more`` says the
    caller already cut it).  The result is pure printable ASCII."""
    shown = data[:limit]
    out = ['"']
    for i, b in enumerate(shown):
        c = chr(b)
        if c in _C_ESCAPES:
            out.append(_C_ESCAPES[c])
        elif 0x20 <= b < 0x7F:
            out.append(c)
        else:
            nxt = shown[i + 1] if i + 1 < len(shown) else None
            # an octal escape followed by a digit needs all three digits
            wide = nxt is not None and 0x30 <= nxt <= 0x37
            out.append(f"\\{b:03o}" if wide else f"\\{b:o}")
    out.append('"')
    if more or len(data) > limit:
        out.append("...")
    return "".join(out)


_C_ESCAPES = {
    "\t": "\\t",
    "\n": "\\n",
    "\v": "\\v",
    "\f": "\\f",
    "\r": "\\r",
    '"': '\\"',
    "\\": "\\\\",
}


def error_text(retval: int) -> str:
    """``-1 ENOENT (No such file or directory)`` for a ``-errno`` return."""
    code = -retval
    if code in RESTARTS:
        name, why = RESTARTS[code]
        return f"? {name} ({why})"
    return f"-1 {errno.errorcode.get(code, f'E{code}')} ({os.strerror(code)})"


def errno_name(retval: int) -> str | None:
    """The errno name of a ``-errno`` return, else None."""
    if -4095 <= retval < 0:
        code = -retval
        if code in RESTARTS:
            return RESTARTS[code][0]
        return errno.errorcode.get(code, f"E{code}")
    return None


# -- what each argument of the common calls is ------------------------------

#: kinds: fd, dirfd, path (a whole string), str (cut at -s), wbuf (bytes the
#: call reads: length in the next argument), rbuf (bytes the call writes: shown
#: at return, length the result), argv, envp, size, int, long, uint, hex,
#: ptr, oct, and the flag kinds named after their decoders
SPECS: dict[str, tuple[str, ...]] = {
    "read": ("fd", "rbuf", "size"),
    "write": ("fd", "wbuf", "size"),
    "pread64": ("fd", "rbuf", "size", "long"),
    "pwrite64": ("fd", "wbuf", "size", "long"),
    "readv": ("fd", "ptr", "int"),
    "writev": ("fd", "ptr", "int"),
    "open": ("path", "oflags", "mode_creat"),
    "openat": ("dirfd", "path", "oflags", "mode_creat"),
    "creat": ("path", "oct"),
    "close": ("fd",),
    "stat": ("path", "statbuf"),
    "lstat": ("path", "statbuf"),
    "fstat": ("fd", "statbuf"),
    "newfstatat": ("dirfd", "path", "statbuf", "atflags"),
    "stat64": ("path", "stat64buf"),
    "lstat64": ("path", "stat64buf"),
    "fstat64": ("fd", "stat64buf"),
    "fstatat64": ("dirfd", "path", "stat64buf", "atflags"),
    "statx": ("dirfd", "path", "atflags", "hex", "ptr"),
    "access": ("path", "access"),
    "faccessat": ("dirfd", "path", "access"),
    "faccessat2": ("dirfd", "path", "access", "atflags"),
    "lseek": ("fd", "long", "whence"),
    "mmap": ("ptr", "size", "prot", "mapflags", "fd", "hex"),
    "mprotect": ("ptr", "size", "prot"),
    "munmap": ("ptr", "size"),
    "brk": ("ptr",),
    "rt_sigaction": ("signal", "ptr", "ptr", "size"),
    "rt_sigprocmask": ("sighow", "ptr", "ptr", "size"),
    "ioctl": ("fd", "ioctl", "hex"),
    "pipe": ("pipefds",),
    "pipe2": ("pipefds", "fdflags"),
    "dup": ("fd",),
    "dup2": ("fd", "fd"),
    "dup3": ("fd", "fd", "fdflags"),
    "fcntl": ("fd", "fcntl", "hex"),
    "getdents64": ("fd", "ptr", "size"),
    "chdir": ("path",),
    "fchdir": ("fd",),
    "mkdir": ("path", "oct"),
    "mkdirat": ("dirfd", "path", "oct"),
    "rmdir": ("path",),
    "unlink": ("path",),
    "unlinkat": ("dirfd", "path", "atflags"),
    "rename": ("path", "path"),
    "renameat": ("dirfd", "path", "dirfd", "path"),
    "renameat2": ("dirfd", "path", "dirfd", "path", "hex"),
    "readlink": ("path", "rbuf", "size"),
    "readlinkat": ("dirfd", "path", "rbuf", "size"),
    "chmod": ("path", "oct"),
    "fchmod": ("fd", "oct"),
    "fchmodat": ("dirfd", "path", "oct"),
    "execve": ("path", "argv", "envp"),
    "execveat": ("dirfd", "path", "argv", "envp", "atflags"),
    "clone": ("clone", "ptr", "ptr", "ptr", "hex"),
    "wait4": ("int", "wstatus", "waitopts", "ptr"),
    "kill": ("int", "signal"),
    "tkill": ("int", "signal"),
    "tgkill": ("int", "int", "signal"),
    "exit": ("int",),
    "exit_group": ("int",),
    "socket": ("family", "socktype", "sockproto"),
    "socketpair": ("family", "socktype", "sockproto", "ptr"),
    "connect": ("fd", "ptr", "int"),
    "bind": ("fd", "ptr", "int"),
    "listen": ("fd", "int"),
    "accept": ("fd", "ptr", "ptr"),
    "accept4": ("fd", "ptr", "ptr", "socktype"),
    "sendto": ("fd", "wbuf", "size", "hex", "ptr", "int"),
    "recvfrom": ("fd", "rbuf", "size", "hex", "ptr", "ptr"),
    "sendmsg": ("fd", "ptr", "hex"),
    "recvmsg": ("fd", "ptr", "hex"),
    "shutdown": ("fd", "int"),
    "set_tid_address": ("ptr",),
    "arch_prctl": ("archprctl", "hex"),
    "prlimit64": ("int", "rlimit", "ptr", "ptr"),
    "getrlimit": ("rlimit", "ptr"),
    "setrlimit": ("rlimit", "ptr"),
    "clock_gettime": ("clock", "ptr"),
    "clock_getres": ("clock", "ptr"),
    "clock_nanosleep": ("clock", "int", "ptr", "ptr"),
    "rseq": ("ptr", "size", "int", "hex"),
    "sendfile64": ("fd", "fd", "ptr", "size"),
    "sendfile": ("fd", "fd", "ptr", "size"),
    "set_robust_list": ("ptr", "size"),
    "umask": ("oct",),
    "getrandom": ("ptr", "size", "grnd"),
}

#: calls whose result is an address (shown in hex)
ADDRESS_RESULTS = frozenset({"mmap", "mremap", "brk", "shmat"})
#: calls whose result is a new file descriptor (``-y`` shows its path)
FD_RESULTS = frozenset(
    {"open", "openat", "openat2", "creat", "dup", "dup2", "dup3", "socket", "accept", "accept4"}
)
#: the kinds that are file descriptors (``-y`` shows their paths)
FD_KINDS = frozenset({"fd", "dirfd"})
#: the kinds read from the task's memory at entry
MEMORY_KINDS = frozenset({"path", "str", "wbuf", "argv", "envp"})
#: the kinds the call fills in for the task: read from its memory at return
RETURN_KINDS = frozenset({"rbuf", "pipefds", "wstatus", "statbuf", "stat64buf"})


def spec(name: str, types: Sequence[str], names: Sequence[str]) -> tuple[str, ...]:
    """The argument kinds of syscall ``name`` (without ``sys_``): from the table,
    else from the kernel's prototype (C strings read, pointers in hex)."""
    if name in SPECS:
        return SPECS[name]
    kinds = []
    for ctype, arg in zip(types, names, strict=False):
        compact = ctype.replace(" ", "").replace("__user", "")
        if compact in ("constchar*", "char*") and arg not in ("buf", "ubuf"):
            kinds.append("path")
        elif "*" in ctype:
            kinds.append("ptr")
        elif compact in ("int", "pid_t", "key_t", "clockid_t", "timer_t", "mqd_t"):
            kinds.append("int")
        elif compact in ("long", "off_t", "loff_t", "ssize_t"):
            kinds.append("long")
        elif compact in ("unsignedint", "uid_t", "gid_t", "umode_t", "u32", "qid_t"):
            kinds.append("uint")
        elif any(word in arg for word in ("len", "size", "count")):
            kinds.append("size")
        else:
            kinds.append("ulong")
    return tuple(kinds)


def number(kind: str, raw: int, args: Sequence[int]) -> str:
    """An argument of a kind that needs no guest memory, as strace prints it."""
    match kind:
        case "fd" | "dirfd":
            return fd(raw)
        case "int":
            return str(_s32(raw))
        case "long":
            return str(_s64(raw))
        case "uint":
            return str(raw & 0xFFFFFFFF)
        case "size":
            return str(raw) if raw <= 0xFFFFFFFF else f"{raw:#x}"
        case "hex":
            return f"{raw:#x}" if raw else "0"
        case "oct" | "mode_creat":
            return octal(raw)
        case "oflags":
            return open_flags(raw)
        case "fdflags":  # flags of pipe2, dup3: no access mode
            return _bits(raw & 0xFFFFFFFF, _O_FLAGS, [])
        case "ulong":
            return str(raw) if raw <= 0xFFFF else f"{raw:#x}"
        case "archprctl":
            return _ARCH_PRCTL.get(raw & 0xFFFFFFFF, f"{raw:#x}")
        case "rlimit":
            return _name(_RLIMITS, raw)
        case "clock":
            return _name(_CLOCKS, raw)
        case "grnd":
            return _bits(raw & 0xFFFFFFFF, _GRND, [])
        case "atflags":
            return at_flags(raw)
        case "prot":
            return prot(raw)
        case "mapflags":
            return map_flags(raw)
        case "signal":
            return signal_name(_s32(raw))
        case "sighow":
            return _SIGMASK_HOW.get(_s32(raw), str(_s32(raw)))
        case "clone":
            return clone_flags(raw)
        case "family":
            return family(raw)
        case "socktype":
            return sock_type(raw)
        case "sockproto":
            return sock_protocol(args[0], raw)
        case "ioctl":
            return ioctl_request(raw)
        case "access":
            return access_mode(raw)
        case "whence":
            return _WHENCE.get(_s32(raw), str(_s32(raw)))
        case "waitopts":
            return wait_options(raw)
        case "fcntl":
            return _FCNTL.get(_s32(raw), str(_s32(raw)))
        case _:
            return pointer(raw)


def _name(names: Sequence[str], raw: int) -> str:
    value = _s32(raw)
    return names[value] if 0 <= value < len(names) else str(value)


def shown_kinds(name: str, kinds: tuple[str, ...], args: Sequence[int]) -> tuple[str, ...]:
    """``kinds`` without the arguments strace leaves out (open's mode without
    ``O_CREAT``/``O_TMPFILE``)."""
    if kinds and kinds[-1] == "mode_creat":
        flags = args[len(kinds) - 2]
        if not (flags & O_CREAT or flags & O_TMPFILE == O_TMPFILE):
            return kinds[:-1]
    return kinds


def result(
    name: str, retval: int | None, restarted: bool = False, fd_path: str | None = None
) -> str:
    """What follows `` = `` in strace's line (``fd_path``: the path of the
    descriptor it returned, with ``-y``)."""
    if retval is None:
        return "?"
    if restarted or -4095 <= retval < 0:
        return error_text(retval)
    if name in ADDRESS_RESULTS:
        return f"{retval & 0xFFFFFFFFFFFFFFFF:#x}"
    return with_path(str(retval), fd_path)


#: strace's syscall classes for ``-e trace=%CLASS`` (x86_64 names)
CLASSES: dict[str, tuple[str, ...]] = {
    "file": _words(
        "open openat openat2 creat stat lstat newfstatat statx access faccessat faccessat2 "
        "execve execveat chdir chroot mkdir mkdirat rmdir unlink unlinkat rename renameat "
        "renameat2 readlink readlinkat symlink symlinkat link linkat chmod fchmodat chown "
        "lchown fchownat truncate statfs utime utimes utimensat futimesat mknod mknodat "
        "mount umount2 swapon swapoff pivot_root acct getxattr lgetxattr setxattr "
        "lsetxattr listxattr llistxattr removexattr lremovexattr inotify_add_watch "
        "name_to_handle_at quotactl uselib"
    ),
    "process": _words(
        "clone clone3 fork vfork execve execveat exit exit_group wait4 waitid kill tkill "
        "tgkill pidfd_open pidfd_send_signal rt_sigqueueinfo rt_tgsigqueueinfo"
    ),
    "network": _words(
        "socket socketpair bind listen accept accept4 connect getsockname getpeername "
        "sendto recvfrom sendmsg recvmsg sendmmsg recvmmsg shutdown setsockopt "
        "getsockopt"
    ),
    "memory": _words(
        "brk mmap munmap mprotect mremap madvise mlock mlock2 munlock mlockall munlockall "
        "msync mincore remap_file_pages mbind get_mempolicy set_mempolicy migrate_pages "
        "move_pages pkey_mprotect process_madvise"
    ),
    "signal": _words(
        "rt_sigaction rt_sigprocmask rt_sigreturn rt_sigsuspend rt_sigpending "
        "rt_sigtimedwait rt_sigqueueinfo rt_tgsigqueueinfo sigaltstack kill tkill tgkill "
        "signalfd signalfd4 pause"
    ),
}

#: names a class lists that a kernel may lack (not hooked when absent)
OPTIONAL = frozenset(kernel_name(name) for names in CLASSES.values() for name in names) | {
    "clone3",
    "fork",
    "vfork",
}
