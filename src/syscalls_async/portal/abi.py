"""The portal ABI, bound from ``kernel/portal_abi.h`` with cffi (ABI mode).

The header is the single source of truth.  cffi is given only the text between
its ``SA_CDEF_BEGIN`` / ``SA_CDEF_END`` markers, with the ``#define`` lines
taken out and parsed here into :data:`C` (integer constants); cffi lays the
structs out itself and :func:`check_layout` compares its sizes with the
header's named sizes, so a header edit that breaks the layout fails at import.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from cffi import FFI

from ..errors import PortalVersionError

_BEGIN = "/* SA_CDEF_BEGIN */"
_END = "/* SA_CDEF_END */"
_DEFINE = re.compile(r"^#define\s+(SA_\w+)\s+(-?(?:0x[0-9a-fA-F]+|\d+))\s*$")


def header_path() -> Path:
    """Where ``portal_abi.h`` is: the checkout's ``kernel/`` or the wheel's data."""
    from ..machine.image import source_root

    return source_root() / "kernel" / "portal_abi.h"


def parse_header(text: str) -> tuple[str, dict[str, int]]:
    """Split the cdef part of the header into (struct declarations, constants)."""
    try:
        body = text.split(_BEGIN, 1)[1].split(_END, 1)[0]
    except IndexError:
        raise PortalVersionError("portal_abi.h has no SA_CDEF markers") from None
    decls: list[str] = []
    consts: dict[str, int] = {}
    for line in body.splitlines():
        m = _DEFINE.match(line.strip())
        if m:
            consts[m.group(1)] = int(m.group(2), 0)
        elif line.lstrip().startswith("#"):
            raise PortalVersionError(f"unexpected preprocessor line in cdef part: {line!r}")
        else:
            decls.append(line)
    return "\n".join(decls), consts


def _build() -> tuple[FFI, Any]:
    decls, consts = parse_header(header_path().read_text())
    ffi = FFI()
    ffi.cdef(decls)
    return ffi, SimpleNamespace(**consts)


ffi, C = _build()

_SIZES = {
    "struct sa_guest_header": "SA_GUEST_SIZE",
    "struct sa_host_header": "SA_HOST_SIZE",
    "struct sa_hook": "SA_HOOK_SIZE",
    "struct sa_meta": "SA_META_SIZE",
    "struct sa_slot_guest": "SA_SLOT_GUEST_SIZE",
    "struct sa_slot_host": "SA_SLOT_HOST_SIZE",
    "struct sa_map_entry": "SA_MAP_ENTRY_SIZE",
    "struct sa_fd_entry": "SA_FD_ENTRY_SIZE",
    "struct sa_task_entry": "SA_TASK_ENTRY_SIZE",
    "struct sa_proc_info": "SA_PROC_INFO_SIZE",
    "struct sa_ring_header": "SA_RING_HDR_SIZE",
    "struct sa_ring_rec": "SA_REC_SIZE",
}


def check_layout() -> None:
    """Raise :class:`PortalVersionError` if cffi's layout disagrees with the header."""
    for ctype, const in _SIZES.items():
        if ffi.sizeof(ctype) != getattr(C, const):
            raise PortalVersionError(
                f"{ctype}: cffi size {ffi.sizeof(ctype)} != {const} {getattr(C, const)}"
            )
    if C.SA_SLOT_H2G_OFF + C.SA_SLOT_H2G_SIZE != C.SA_SLOT_SIZE:
        raise PortalVersionError("slot areas do not add up to SA_SLOT_SIZE")


check_layout()

# Limits the ABI implies, in the units the layers above write them: one place for all.
#: a 64-bit register or word
MASK64 = (1 << 64) - 1
#: bytes of a task's comm, without its NUL
COMM_MAX: int = C.SA_COMM_LEN - 1
#: bytes of a string filter's operand, without its NUL
FILTER_STRING_MAX: int = C.SA_FILTER_STR_MAX - 1

#: Offsets of fields the poller reads without copying a whole struct.
SLOT_SEQ_OFF = ffi.offsetof("struct sa_slot_guest", "seq")
HOST_SEQ_OFF = ffi.offsetof("struct sa_slot_host", "seq")
HOST_EPOCH_OFF = ffi.offsetof("struct sa_slot_host", "epoch")
DOORBELL_OFF = C.SA_GUEST_OFF + ffi.offsetof("struct sa_guest_header", "doorbell")
HOOKS_ACK_OFF = C.SA_GUEST_OFF + ffi.offsetof("struct sa_guest_header", "hooks_ack")
HOST_HEARTBEAT_OFF = C.SA_HOST_OFF + ffi.offsetof("struct sa_host_header", "heartbeat")
HOST_HOOKS_GEN_OFF = C.SA_HOST_OFF + ffi.offsetof("struct sa_host_header", "hooks_gen")


HOST_RING_SIZE_OFF = C.SA_HOST_OFF + ffi.offsetof("struct sa_host_header", "ring_size")


def ring_offset(index: int) -> int:
    """Byte offset of ring ``index``'s header in the region."""
    return int(C.SA_RINGS_OFF + index * C.SA_RING_STRIDE)


def slot_offset(index: int) -> int:
    """Byte offset of slot ``index`` in the region."""
    return int(C.SA_SLOTS_OFF + index * C.SA_SLOT_SIZE)


def store(word: struct.Struct, buf: Any, off: int, *values: int) -> None:
    """Write ``values`` packed as ``word`` into shared memory at ``off``.

    Not ``word.pack_into``: CPython's ``pack_into`` zeroes its destination
    before it writes, so the guest, reading the same memory on another CPU,
    could see a word pass through 0 (a ring's tail at 0 reads as a full ring,
    a hook table generation 0 as a table to apply).  Packing first and copying
    the bytes in stores each word's final value only."""
    buf[off : off + word.size] = word.pack(*values)


def packed(ctype: str, fields: list[tuple[str, str]]) -> struct.Struct:
    """A little-endian ``struct.Struct`` for ``fields`` of ``ctype`` (name, format
    code), from the first field on, each checked to sit where cffi lays it out:
    a header edit that moves a field fails at import, not on a guest's bytes."""
    start = ffi.offsetof(ctype, fields[0][0])
    fmt = "<"
    for name, code in fields:
        if start + struct.calcsize(fmt) != ffi.offsetof(ctype, name):
            raise PortalVersionError(f"{ctype}: {name} is not where portal_abi.h has it")
        fmt += code
    return struct.Struct(fmt)
