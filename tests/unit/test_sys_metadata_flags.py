"""The guest's ``hookable`` and ``truncated`` metadata flags reach the registry (host only).

On the bundled kernel every syscall is hookable and none is truncated, so
these tables say otherwise on purpose.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
import pytest
from sysproto_table import OPENAT

from syscalls_async.errors import RegistrationError
from syscalls_async.portal import SyscallMeta
from syscalls_async.syscalls import PrototypeTable, Registry, SyscallPrototype
from syscalls_async.syscalls import registry as registry_module

UNHOOKABLE = SyscallMeta(57, "sys_fork", 0, (), (), known=True, hookable=False)
CUT = SyscallMeta(
    257,
    "sys_openat",
    4,
    ("int", "const char *", "int", "umode_"),
    ("dfd", "filename", "flags", "mo"),
    known=True,
    truncated=True,
)


def _registry() -> Registry:
    reg = Registry()
    reg.bind(PrototypeTable.from_meta([UNHOOKABLE, CUT]))
    return reg


async def handler(regs: Any, proto: Any, syscall: Any, *args: int) -> None:
    pass


def test_the_table_keeps_both_flags() -> None:
    table = PrototypeTable.from_meta([UNHOOKABLE, CUT])
    fork, openat = table.by_name("fork"), table.by_name("openat")
    assert fork is not None and not fork.hookable and not fork.truncated
    assert openat is not None and openat.truncated and openat.hookable


def test_a_hook_on_an_unhookable_syscall_is_refused_saying_why() -> None:
    with pytest.raises(RegistrationError, match=r"cannot hook fork .*would never fire"):
        _registry().add(handler, "fork")


def test_an_unhookable_syscall_is_refused_once_the_prototypes_arrive() -> None:
    reg = Registry()
    reg.add(handler, "fork")  # no prototypes yet: checked when they are known
    with pytest.raises(RegistrationError, match="would never fire"):
        reg.bind(PrototypeTable.from_meta([UNHOOKABLE, CUT]))


def test_a_hook_on_truncated_metadata_is_warned_once(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry_module, "_warned_truncated", set())
    reg = _registry()
    with caplog.at_level(logging.WARNING, logger="syscalls"):
        hook = reg.add(handler, "openat")
        reg.add(handler, "on_sys_openat_return")
    warnings = [r for r in caplog.records if "proto.truncated" in r.getMessage()]
    assert len(warnings) == 1 and "openat" in warnings[0].getMessage()
    assert hook.proto is not None and hook.proto.truncated  # what the handler gets as proto


def test_a_cache_written_before_the_flags_reads_as_hookable_and_whole() -> None:
    old = b'{"name":"sys_openat","nr":257,"nargs":1,"types":["int"],"names":["dfd"],"known":true}'
    proto = msgspec.json.decode(old, type=SyscallPrototype)
    assert proto.hookable and not proto.truncated
    assert msgspec.json.decode(msgspec.json.encode(OPENAT), type=SyscallPrototype) == OPENAT


def test_the_prototype_carries_every_fact_of_the_portal_s_record() -> None:
    # two classes for one concept on two sides of a layer boundary: they must not drift
    # (the prototype adds only where a 32-bit ABI puts the arguments, see abi32)
    extra = set(SyscallPrototype.__struct_fields__) - set(SyscallMeta.__struct_fields__)
    assert set(SyscallMeta.__struct_fields__) <= set(SyscallPrototype.__struct_fields__)
    assert extra == {"word_bits", "slots", "big_endian"}
    (proto,) = PrototypeTable.from_meta([CUT])
    assert all(getattr(proto, f) == getattr(CUT, f) for f in SyscallMeta.__struct_fields__)
