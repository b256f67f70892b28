"""Syscall names and hook patterns.

``sys_openat``, ``openat``, ``_sys_openat`` (and the kernel's ``__x64_sys_openat``)
all name the same syscall; :func:`normalize` maps each to ``openat``.  Hook
patterns are the reference's: ``on_sys_<name>_enter``, ``on_sys_<name>_return``,
``on_all_sys_enter``/``_return`` and ``on_unknown_sys_enter``/``_return``.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from ..errors import RegistrationError
from ..portal.arch import ARCHS, COMPAT_ABIS

_PATTERN = re.compile(r"^on_(?:(all)_sys|(unknown)_sys|sys_(\w+?))_(enter|return)$")
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


class TargetKind(enum.Enum):
    SYSCALL = "syscall"
    ALL = "all"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Target:
    """What a hook is for, and which directions a pattern asked for."""

    kind: TargetKind
    name: str | None = None  # normalized, for SYSCALL
    enter: bool = False
    ret: bool = False


#: prefixes of syscall symbol names: each architecture's entry symbols, then the generic ones
_PREFIXES = (
    *(a.symbol_prefix for a in (*ARCHS.values(), *COMPAT_ABIS.values())),
    "__do_sys_",
    "_sys_",
    "sys_",
)


def unknown_name(nr: int) -> str:
    """The name of a syscall number the guest has no metadata for (``sys_unknown_1000``)."""
    return f"sys_unknown_{nr}"


def normalize(name: str) -> str:
    """``sys_openat`` / ``_sys_openat`` / ``__x64_sys_openat`` / ``openat`` -> ``openat``."""
    n = name.strip()
    for prefix in _PREFIXES:
        if n.startswith(prefix):
            return n[len(prefix) :]
    return n


def parse_target(name_or_pattern: str | None) -> Target:
    """Split a hook's first argument into its target and pattern directions."""
    if name_or_pattern is None:
        return Target(TargetKind.ALL)
    if not isinstance(name_or_pattern, str):
        raise RegistrationError(
            f"name_or_pattern must be a str such as 'openat' or 'on_sys_openat_enter', "
            f"not {type(name_or_pattern).__name__}"
        )
    m = _PATTERN.match(name_or_pattern.strip())
    if m:
        every, unknown, name, direction = m.groups()
        enter, ret = direction == "enter", direction == "return"
        if every:
            return Target(TargetKind.ALL, None, enter, ret)
        if unknown:
            return Target(TargetKind.UNKNOWN, None, enter, ret)
        return Target(TargetKind.SYSCALL, normalize(name), enter, ret)
    if name_or_pattern.startswith("on_"):
        raise RegistrationError(
            f"bad hook pattern {name_or_pattern!r}: use on_sys_<name>_enter, "
            "on_sys_<name>_return, on_all_sys_enter/_return or on_unknown_sys_enter/_return"
        )
    name = normalize(name_or_pattern)
    if not _NAME.match(name):
        raise RegistrationError(f"{name_or_pattern!r} is not a syscall name")
    return Target(TargetKind.SYSCALL, name)
