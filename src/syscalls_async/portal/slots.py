"""The slot channel: the seqlock protocol of the event slots, as typed messages.

The guest writes a message into a slot's guest part between two changes of
its ``seq`` word (odd while it writes).  :meth:`SlotChannel.scan` copies every
slot whose ``seq`` moved, keeps a copy only if ``seq`` was even and the same
before and after, and turns it into one :data:`SlotMessage`, a tagged union
the portal dispatches with ``match``::

    for m in channel.scan():
        match m:
            case EventMsg(): ...
            case ResponseMsg(): ...

The host answers by writing the slot's host part, ``seq`` last
(:meth:`SlotChannel.write`).  Nothing here knows traps or hooks.

The scan runs in C (:mod:`.cscan`) where that could be built: the same
checks, the same messages; the Python scan here is the reference and the
fallback (``SlotChannel(region, use_c=False)``, or ``SYSCALLS_ASYNC_CSCAN=0``).
"""

from __future__ import annotations

import itertools
import mmap
import operator
import struct
from collections.abc import Sequence
from typing import Any

import msgspec

from ..errors import PortalError, PortalVersionError
from . import cscan
from .abi import SLOT_SEQ_OFF, C, ffi, packed, slot_offset, store
from .region import U32, Region

#: the words every guest message starts with
_HEAD = packed("struct sa_slot_guest", [("owner", "I"), ("seq", "I"), ("epoch", "I"), ("msg", "I")])
_GEN_OFF = ffi.offsetof("struct sa_slot_guest", "hooks_gen")
_SLOT_INDICES = range(C.SA_SLOT_COUNT)
_HOST_FIELDS = [
    ("msg", "I"),
    ("req", "I"),
    ("addr", "Q"),
    ("len", "Q"),
    ("arg", "Q"),
    ("action", "I"),
    ("args_mask", "I"),
    ("retval", "q"),
    ("args", f"{C.SA_MAX_ARGS}Q"),
]
#: the host part after seq and epoch, written in one copy
_HOST_BODY_OFF = ffi.offsetof("struct sa_slot_host", "msg")


_HOST_BODY = packed("struct sa_slot_host", _HOST_FIELDS)
NO_ARGS = (0,) * C.SA_MAX_ARGS
#: one ``struct sa_scan_msg`` of the C scan
_SCAN_MSG = struct.Struct("<6I")


class EventMsg(msgspec.Struct, tag="event", gc=False):
    """A guest task stopped in a syscall: ``data`` is the slot's guest part."""

    slot: int
    seq: int
    epoch: int
    hooks_gen: int
    data: bytes


class ResponseMsg(msgspec.Struct, tag="response", gc=False):
    """A guest task answered a request; its payload is read with :meth:`SlotChannel.payload`."""

    slot: int
    seq: int
    epoch: int
    data: bytes


class AbandonMsg(msgspec.Struct, tag="abandon", gc=False):
    """A guest task stopped waiting for its verdict."""

    slot: int
    epoch: int


class UnknownMsg(msgspec.Struct, tag="unknown", gc=False):
    """A message number this host does not know."""

    slot: int
    msg: int


SlotMessage = EventMsg | ResponseMsg | AbandonMsg | UnknownMsg


class SlotChannel:
    """The slots of ``region``: new guest messages in, host answers out."""

    def __init__(self, region: Region, *, use_c: bool | None = None) -> None:
        self.region = region
        self.mm: mmap.mmap = region.mm
        #: the last scan found a slot mid-write: scan again soon
        self.mid_write = False
        lib = cscan.lib() if use_c is None or use_c else None
        if use_c and lib is None:
            raise PortalError(f"the C scan is not available: {cscan.status()}")
        #: the guest seq last taken per slot (what is already seen): a
        #: Python list, or the C scan's array (both index the same)
        self.last_seq: Any = region.slot_seqs()
        #: "c" or "python"
        self.impl = "python"
        if lib is not None:
            self.impl = "c"
            self._lib = lib
            ctx = self._ctx = cscan.ffi.new("struct sa_slot_scan *")
            ctx.region = region.cpointer()
            ctx.size = len(region.mm)
            ctx.last_seq = self.last_seq
            self.last_seq = ctx.last_seq
            self._out = cscan.ffi.buffer(ctx.out)
            self._data = cscan.ffi.buffer(ctx.data)

    def _scan_c(self) -> list[SlotMessage]:
        """:meth:`scan` by the C scan: the same checks, the same messages."""
        ctx = self._ctx
        n = self._lib.sa_scan_slots(ctx)
        if n <= 0:
            self.mid_write = bool(ctx.mid_write)
            if n < 0:
                raise PortalVersionError("region too small for the slots")  # attach checks it
            return []
        self.mid_write = bool(ctx.mid_write)
        out: list[SlotMessage] = []
        buf = self._data
        size = C.SA_SLOT_GUEST_SIZE
        for k, (slot, seq, epoch, msg, gen, _) in enumerate(
            _SCAN_MSG.iter_unpack(self._out[: n * _SCAN_MSG.size])
        ):
            if msg == C.SA_MSG_EVENT:
                out.append(EventMsg(slot, seq, epoch, gen, buf[k * size : (k + 1) * size]))
            elif msg == C.SA_MSG_RESPONSE:
                out.append(ResponseMsg(slot, seq, epoch, buf[k * size : (k + 1) * size]))
            elif msg == C.SA_MSG_ABANDON:
                out.append(AbandonMsg(slot, epoch))
            else:
                out.append(UnknownMsg(slot, msg))
        return out

    def scan(self) -> list[SlotMessage]:
        """Every new whole message, in slot order; sets :attr:`mid_write`."""
        if self.impl == "c":
            return self._scan_c()
        return self._scan_py()

    def _scan_py(self) -> list[SlotMessage]:
        """:meth:`scan` in Python: the reference, and the fallback."""
        mm = self.mm
        # every slot's seq word in one strided read: the common case is that
        # one or two slots changed
        seqs = self.region.slot_seqs()
        last_seqs = self.last_seq
        self.mid_write = False
        if seqs == last_seqs:
            return []
        out: list[SlotMessage] = []
        for i in itertools.compress(_SLOT_INDICES, map(operator.ne, seqs, last_seqs)):
            off = slot_offset(i)
            seq = U32.unpack_from(mm, off + SLOT_SEQ_OFF)[0]
            if seq & 1:
                self.mid_write = True
                continue
            data = mm[off : off + C.SA_SLOT_GUEST_SIZE]
            _, copied, epoch, msg = _HEAD.unpack_from(data)
            if U32.unpack_from(mm, off + SLOT_SEQ_OFF)[0] != seq or copied != seq:
                self.mid_write = True
                continue
            last_seqs[i] = seq
            if msg == C.SA_MSG_EVENT:
                out.append(EventMsg(i, seq, epoch, U32.unpack_from(data, _GEN_OFF)[0], data))
            elif msg == C.SA_MSG_RESPONSE:
                out.append(ResponseMsg(i, seq, epoch, data))
            elif msg == C.SA_MSG_ABANDON:
                out.append(AbandonMsg(i, epoch))
            else:
                out.append(UnknownMsg(i, msg))
        return out

    def payload(self, slot: int, seq: int, length: int) -> bytes | None:
        """The response data of the message ``seq`` of ``slot``, or ``None`` if
        the guest wrote the slot again meanwhile (``length`` is checked by the caller)."""
        mm = self.mm
        off = slot_offset(slot)
        data = mm[off + C.SA_SLOT_G2H_OFF : off + C.SA_SLOT_G2H_OFF + length]
        if U32.unpack_from(mm, off + SLOT_SEQ_OFF)[0] != seq:
            return None
        return data

    def write(
        self,
        slot: int,
        epoch: int,
        seq: int,
        msg: int,
        payload: bytes = b"",
        *,
        req: int = 0,
        addr: int = 0,
        length: int = 0,
        arg: int = 0,
        action: int = 0,
        args_mask: int = 0,
        retval: int = 0,
        args: Sequence[int] = NO_ARGS,
    ) -> None:
        """Write the host part of a slot; seq last so the guest sees it whole.

        Every field after seq and epoch is written (those not given as 0), in
        one copy; the padding at the end of the part is never read."""
        mm = self.mm
        base = slot_offset(slot)
        if payload:
            off = base + C.SA_SLOT_H2G_OFF
            mm[off : off + len(payload)] = payload
        hoff = base + C.SA_SLOT_HOST_OFF
        store(
            _HOST_BODY, mm, hoff + _HOST_BODY_OFF, msg, req, addr, length, arg, action,
            args_mask, retval, *args,
        )  # fmt: skip
        store(U32, mm, hoff + 4, epoch)
        store(U32, mm, hoff, seq)
