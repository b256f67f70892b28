"""The machine layer: the guest image, QEMU under asyncio, the command channel.

This is the bottom layer: of the package it imports only what sits beside
the layers, :mod:`syscalls_async.errors` and the private helpers
:mod:`syscalls_async._text` and :mod:`syscalls_async._aio`, never
``portal``, ``syscalls`` or ``api``.
"""

from __future__ import annotations

from .agent import CommandResult
from .files import AddSpec, Collected
from .image import Image, build_image, cache_dir, current_image, fetch_kernel
from .qemu import Machine

__all__ = [
    "Machine",
    "CommandResult",
    "Collected",
    "AddSpec",
    "Image",
    "build_image",
    "current_image",
    "fetch_kernel",
    "cache_dir",
]
