"""The machine layer: the guest image, QEMU under asyncio, the command channel.

This is the bottom layer: it imports nothing else from the package but
:mod:`syscalls_async.errors`.
"""

from __future__ import annotations

from .agent import CommandResult
from .image import Image, build_image, cache_dir, current_image, fetch_kernel
from .qemu import Machine

__all__ = [
    "Machine",
    "CommandResult",
    "Image",
    "build_image",
    "current_image",
    "fetch_kernel",
    "cache_dir",
]
