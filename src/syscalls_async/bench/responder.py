"""The floor of case (r): a bare busy-polling responder *process* on the portal ABI.

``python -m syscalls_async.bench.responder SHM_PATH SYSCALL COMM`` attaches to
the region as the host (no other host may be attached), hooks SYSCALL's entry
for tasks named COMM, prints ``ready`` once the guest has the table, and then
answers every event with "continue" as fast as one Python loop can: it reads
the 64 slot sequence words in one strided copy each round, and for a changed
slot the two words it needs; no asyncio, no task per event, no decoding.  On
SIGTERM (or when its parent dies) it clears the table, detaches and prints
``answered N``.

What it leaves out on purpose (and the real portal does): validation of the
event, hook generations, memory requests, a second-host check.  It is a
measuring stick for what a Python host costs at least, not a host.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import signal
import struct
import sys
import time
from types import FrameType
from typing import Any

from ..errors import InvalidValue, PortalError
from ..portal import decode
from ..portal.abi import (
    HOOKS_ACK_OFF,
    HOST_HEARTBEAT_OFF,
    HOST_HOOKS_GEN_OFF,
    SLOT_SEQ_OFF,
    C,
    ffi,
    slot_offset,
    store,
)
from ..portal.hooks import HookSpec, encode_hooks
from ..syscalls import syscall_nr

_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_H = "struct sa_host_header"
_HOOK_COUNT_OFF = C.SA_HOST_OFF + ffi.offsetof(_H, "hook_count")
_ATTACHED_OFF = C.SA_HOST_OFF + ffi.offsetof(_H, "attached")
_DEADLINE_OFF = C.SA_HOST_OFF + ffi.offsetof(_H, "deadline_ms")
_MAGIC_OFF = C.SA_GUEST_OFF + ffi.offsetof("struct sa_guest_header", "magic")
_STATE_OFF = C.SA_GUEST_OFF + ffi.offsetof("struct sa_guest_header", "state")
_STATUS_OFF = C.SA_GUEST_OFF + ffi.offsetof("struct sa_guest_header", "hooks_status")
_MSG_OFF = ffi.offsetof("struct sa_slot_guest", "msg")
_EPOCH_OFF = ffi.offsetof("struct sa_slot_guest", "epoch")
_H_MSG_OFF = C.SA_SLOT_HOST_OFF + ffi.offsetof("struct sa_slot_host", "msg")
_H_ACTION_OFF = C.SA_SLOT_HOST_OFF + ffi.offsetof("struct sa_slot_host", "action")
_H_EPOCH_OFF = C.SA_SLOT_HOST_OFF + ffi.offsetof("struct sa_slot_host", "epoch")
_H_SEQ_OFF = C.SA_SLOT_HOST_OFF + ffi.offsetof("struct sa_slot_host", "seq")
_PR_SET_PDEATHSIG = 1
_ACK_TIMEOUT = 30.0

_stop = False


def _on_term(signum: int, frame: FrameType | None) -> None:
    global _stop
    _stop = True


def _set_hooks(mm: mmap.mmap, hooks: list[HookSpec]) -> int:
    """Write ``hooks`` and return the generation the guest must acknowledge."""
    table = encode_hooks(hooks)
    mm[C.SA_HOOKS_OFF : C.SA_HOOKS_OFF + len(table)] = table
    store(_U32, mm, _HOOK_COUNT_OFF, len(hooks))
    gen: int = (_U32.unpack_from(mm, HOST_HOOKS_GEN_OFF)[0] + 1) & 0xFFFFFFFF
    store(_U32, mm, HOST_HOOKS_GEN_OFF, gen)
    return gen


def _wait_ack(mm: mmap.mmap, gen: int) -> None:
    """Wait for the guest's ack (the guest only needs the host's heartbeat for
    trapping, not for taking a table, so plain sleeps are fine here)."""
    deadline = time.monotonic() + _ACK_TIMEOUT
    while _U32.unpack_from(mm, HOOKS_ACK_OFF)[0] != gen:
        if time.monotonic() > deadline:
            raise PortalError(f"guest did not take hook table {gen}")
        time.sleep(0.001)
    if struct.unpack_from("<i", mm, _STATUS_OFF)[0]:
        raise PortalError(f"guest refused hook table {gen}")


def _wait_ready(mm: mmap.mmap) -> Any:
    """The guest header once the module says it is ready (it may just be loading)."""
    deadline = time.monotonic() + _ACK_TIMEOUT
    while True:
        magic = _U64.unpack_from(mm, _MAGIC_OFF)[0]
        state = _U32.unpack_from(mm, _STATE_OFF)[0]
        if magic == C.SA_MAGIC and state == C.SA_STATE_READY:
            return decode.check_header(mm[: C.SA_GUEST_SIZE])
        if time.monotonic() > deadline:
            raise PortalError(f"no ready portal (magic {magic:#x}, state {state})")
        time.sleep(0.05)


def serve(mm: mmap.mmap, nr: int, comm: str) -> int:
    """Hook ``nr`` for ``comm``, answer events until SIGTERM; returns the count."""
    last = [_U32.unpack_from(mm, slot_offset(i) + SLOT_SEQ_OFF)[0] for i in range(C.SA_SLOT_COUNT)]
    bases = [slot_offset(i) for i in range(C.SA_SLOT_COUNT)]
    store(_U32, mm, _DEADLINE_OFF, 3000)
    store(_U32, mm, _ATTACHED_OFF, 1)
    beat = _U64.unpack_from(mm, HOST_HEARTBEAT_OFF)[0]
    gen = _set_hooks(mm, [HookSpec(id=1, nr=nr, comm=comm)])
    _wait_ack(mm, gen)
    print("ready", flush=True)
    answered = 0
    view = memoryview(mm).cast("I")
    first = (C.SA_SLOTS_OFF + SLOT_SEQ_OFF) // 4
    step = C.SA_SLOT_SIZE // 4
    end = first + step * C.SA_SLOT_COUNT
    try:
        # every slot's sequence word, every round: no reliance on the doorbell
        # word, whose meaning a sleeping host may change
        while not _stop:
            beat = (beat + 1) & 0xFFFFFFFFFFFFFFFF
            store(_U64, mm, HOST_HEARTBEAT_OFF, beat)
            seqs = view[first:end:step].tolist()
            if seqs == last:
                continue
            for i, seq in enumerate(seqs):
                if seq == last[i] or seq & 1:  # odd: mid-write, seen next round
                    continue
                base = bases[i]
                msg = _U32.unpack_from(mm, base + _MSG_OFF)[0]
                epoch = _U32.unpack_from(mm, base + _EPOCH_OFF)[0]
                if _U32.unpack_from(mm, base + SLOT_SEQ_OFF)[0] != seq:
                    continue
                last[i] = seq
                if msg == C.SA_MSG_EVENT:
                    store(_U32, mm, base + _H_ACTION_OFF, 0)
                    store(_U32, mm, base + _H_MSG_OFF, C.SA_MSG_VERDICT)
                    store(_U32, mm, base + _H_EPOCH_OFF, epoch)
                    store(_U32, mm, base + _H_SEQ_OFF, seq)
                    answered += 1
    finally:
        view.release()
    _wait_ack(mm, _set_hooks(mm, []))
    store(_U32, mm, _ATTACHED_OFF, 0)
    return answered


def main(argv: list[str]) -> int:
    if len(argv) not in (3, 5):
        usage = (
            "usage: python -m syscalls_async.bench.responder SHM_PATH SYSCALL COMM [OFFSET SIZE]"
        )
        print(usage, file=sys.stderr)
        return 2
    shm_path, name, comm = argv[:3]
    # the region within the file (mipsel: a range of the guest's RAM)
    offset, size = (int(argv[3]), int(argv[4])) if len(argv) == 5 else (0, 0)
    signal.signal(signal.SIGTERM, _on_term)
    # a busy loop must not outlive the benchmark that started it
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    fd = os.open(shm_path, os.O_RDWR)
    try:
        mm = mmap.mmap(fd, size or os.fstat(fd).st_size, mmap.MAP_SHARED, offset=offset)
    finally:
        os.close(fd)
    try:
        g = _wait_ready(mm)
        count = int(g.nr_syscalls)
        meta = decode.meta_table(mm[C.SA_META_OFF : C.SA_META_OFF + count * C.SA_META_SIZE], count)
        answered = serve(mm, syscall_nr(meta, name), comm)
    except (PortalError, InvalidValue) as exc:
        print(f"responder: {exc}", file=sys.stderr)
        return 1
    finally:
        mm.close()
    print(f"answered {answered}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
