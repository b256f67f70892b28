"""The syscalls layer: names, prototypes, ``ValueFilter``, the hook registry, the dispatcher.

Users mostly need :class:`ValueFilter` from here::

    from syscalls_async.syscalls import ValueFilter
"""

from __future__ import annotations

from .batch import ObservedSyscall
from .dispatch import Dispatcher, DispatchStats, current_trap
from .event import Regs, SyscallEvent, Task
from .filters import ValueFilter
from .names import normalize
from .policy import FailClosed
from .prototypes import PrototypeTable, SyscallPrototype, syscall_nr
from .registry import Hook, HookOptions, Registry

__all__ = [
    "ValueFilter",
    "FailClosed",
    "SyscallEvent",
    "ObservedSyscall",
    "SyscallPrototype",
    "Regs",
    "Task",
    "Hook",
    "HookOptions",
    "Registry",
    "Dispatcher",
    "DispatchStats",
    "PrototypeTable",
    "current_trap",
    "normalize",
    "syscall_nr",
]
