"""Nothing outlives the process that needs it, whatever kills that process.

Two mechanisms, because SIGKILL runs no Python code:

- QEMU is started with a parent-death signal (``prctl(PR_SET_PDEATHSIG,
  SIGKILL)`` in the child before ``exec``): the kernel kills it when the
  thread that started it exits.  That thread is the one running the event
  loop, so a :class:`Machine` must not outlive its loop's thread (it cannot
  anyway: its ``async with`` block runs there).
- A :class:`Reaper` is a tiny ``sh`` in its own session that holds the read
  end of a pipe and removes the named paths (temp dir, shared-memory file)
  once the pipe closes: when the machine is done with them, or when the
  process holding the write end dies in any way.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
from collections.abc import Callable
from pathlib import Path

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)
_prctl = _libc.prctl
_prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_prctl.restype = ctypes.c_int

# $1.. are the paths; `read` returns at EOF, i.e. when every writer is gone.
_REAP = 'read -r _ignored; rm -rf -- "$@"'


def die_with_parent(parent: int | None = None) -> Callable[[], None]:
    """A ``preexec_fn`` that makes the child get SIGKILL when its parent thread exits.

    It checks the parent afterwards: if the child's parent is not ``parent``
    (default: the calling process) -- it died between ``fork`` and ``prctl``
    -- the child kills itself instead of running orphaned.
    """
    expected = os.getpid() if parent is None else parent

    def preexec() -> None:
        if _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0 or os.getppid() != expected:
            signal.raise_signal(signal.SIGKILL)

    return preexec


class Reaper:
    """Removes ``paths`` when :meth:`aclose` is called or this process dies.

    Example::

        reaper = await Reaper.start([tmp_dir, shm_file])
        ...                      # a SIGKILL here still removes both
        await reaper.aclose()    # removes them now
    """

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self._proc = proc

    @classmethod
    async def start(cls, paths: list[Path]) -> Reaper:
        proc = await asyncio.create_subprocess_exec(
            "/bin/sh",
            "-c",
            _REAP,
            "syscalls-async-reaper",
            *map(str, paths),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,  # a terminal's SIGHUP or ^C must not stop it first
        )
        return cls(proc)

    @property
    def pid(self) -> int:
        return self._proc.pid

    async def aclose(self) -> None:
        """Let the reaper remove the paths, and wait until it has."""
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        await self._proc.wait()
