"""The poller's scan in C (``cscan.c``), built at first use and loaded with cffi.

Why a plain shared object loaded with ``ffi.dlopen`` (cffi's ABI mode) rather
than a compiled CPython extension (API mode): it needs only a C compiler, which
the host has anyway (the guest tools are built with it), not ``Python.h``
(``python3-dev``), and one object serves every Python version.  ABI mode's
dearer call (≈ 0.3 µs, libffi) is paid once or twice per poller pass, not per
field.

The object is built on first use into ``<cache>/cscan/<digest>/`` (the image
cache's folder; the digest covers ``cscan.c``, ``portal_abi.h``, the compiler
and its flags, so a changed ABI builds a new one), under a file lock, and
checked for the ABI version it was built against.  If it cannot be built or
loaded, the Python implementation is used: that is logged once (a warning with
the reason) and visible in :func:`status` (``Portal.scan_impl``,
``syscalls-async run --stats``).  ``SYSCALLS_ASYNC_CSCAN=0`` forces the
Python implementation (tests compare both).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from cffi import FFI

from ..errors import PortalError
from .abi import C, header_path

log = logging.getLogger("syscalls.portal")

#: set to "0" to use the Python scan (the fallback) even where C builds
ENV = "SYSCALLS_ASYNC_CSCAN"
SOURCE = Path(__file__).with_name("cscan.c")
_CFLAGS = ["-O2", "-shared", "-fPIC", "-std=gnu11", "-Wall", "-Wextra", "-Werror"]
CDEF = f"""
uint32_t sa_cscan_abi(void);
uint64_t sa_cscan_size(uint32_t which);
struct sa_scan_msg {{
    uint32_t slot; uint32_t seq; uint32_t epoch; uint32_t msg; uint32_t hooks_gen; uint32_t pad;
}};
struct sa_slot_scan {{
    const uint8_t *region;
    uint64_t size;
    int32_t mid_write;
    uint32_t last_seq[{C.SA_SLOT_COUNT}];
    struct sa_scan_msg out[{C.SA_SLOT_COUNT}];
    uint8_t data[{C.SA_SLOT_COUNT}][{C.SA_SLOT_GUEST_SIZE}];
}};
struct sa_pass_state {{
    uint8_t *region;
    uint64_t size;
    uint64_t last_bell;
    uint64_t ring_seen[{C.SA_RING_COUNT}];
    uint32_t boot_id;
    uint32_t pad;
}};
int sa_scan_slots(struct sa_slot_scan *s);
uint32_t sa_pass(struct sa_pass_state *st);
uint32_t sa_wait_news(struct sa_pass_state *st, uint64_t max_ns);
"""
#: sa_pass flags
PASS_BELL = 1
PASS_RINGS = 2
PASS_GONE = 4

ffi = FFI()
ffi.cdef(CDEF)

_lib: Any = None
_status = ""


def compiler() -> str | None:
    """The C compiler to build with: ``$CC``, else ``cc`` or ``gcc`` on PATH."""
    env = os.environ.get("CC")
    if env:
        return env
    return shutil.which("cc") or shutil.which("gcc")


def _digest(cc: str) -> str:
    h = hashlib.sha256()
    for part in (SOURCE.read_bytes(), header_path().read_bytes(), CDEF.encode()):
        h.update(len(part).to_bytes(8, "little") + part)
    h.update(" ".join([cc, *_CFLAGS, platform.machine()]).encode())
    return h.hexdigest()[:24]


def build(cc: str) -> Path:
    """The shared object for this source and compiler, built if not cached
    (:class:`PortalError` or ``OSError`` if it cannot be)."""
    from ..machine.image import cache_dir, locked

    folder = cache_dir() / "cscan" / _digest(cc)
    target = folder / "libsa_cscan.so"
    if target.exists():
        return target
    with locked(cache_dir() / "cscan" / ".lock"):
        if target.exists():
            return target
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=folder)
        os.close(fd)
        try:
            cmd = [cc, *_CFLAGS, "-I", str(header_path().parent), "-o", tmp, str(SOURCE)]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)
            if proc.returncode:
                raise PortalError(f"{' '.join(cmd)} failed: {proc.stderr.strip()[-400:]}")
            os.replace(tmp, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
    return target


def _load() -> tuple[Any, str]:
    if os.environ.get(ENV, "1") == "0":
        return None, f"python ({ENV}=0)"
    cc = compiler()
    if cc is None:
        return None, "python (no C compiler on PATH to build the C scan)"
    try:
        lib = ffi.dlopen(str(build(cc)))
        abi = int(lib.sa_cscan_abi())
    except (PortalError, OSError, subprocess.SubprocessError) as exc:
        return None, f"python (the C scan could not be built or loaded: {exc})"
    if abi != C.SA_VERSION:
        return None, f"python (the C scan speaks ABI {abi}, this host {C.SA_VERSION})"
    sizes = (int(lib.sa_cscan_size(0)), int(lib.sa_cscan_size(1)))
    if sizes != (ffi.sizeof("struct sa_slot_scan"), ffi.sizeof("struct sa_pass_state")):
        return None, f"python (the C scan's struct sizes {sizes} differ from cffi's)"
    return lib, "c"


def lib() -> Any:
    """The loaded C scan, or ``None`` (then the Python one is used; logged once)."""
    global _lib, _status
    if not _status:
        _lib, _status = _load()
        if _lib is None and not _status.startswith(f"python ({ENV}=0"):
            log.warning("portal scan: %s", _status)
        else:
            log.debug("portal scan: %s", _status)
    return _lib


def status() -> str:
    """Which scan the poller uses: ``"c"``, or ``"python (why)"``."""
    lib()
    return _status


def reset() -> None:
    """Forget the loaded choice (tests switch ``SYSCALLS_ASYNC_CSCAN``)."""
    global _lib, _status
    _lib, _status = None, ""
