"""What handlers receive: Args, Regs, SyscallEvent (syscalls.event), host only."""

from __future__ import annotations

import pytest

from syscalls_async.portal.arch import X86_64
from syscalls_async.syscalls.event import Args, Regs, SyscallEvent, Task

ARG_REGS, PT_REGS = X86_64.arg_regs, X86_64.regs

M64 = (1 << 64) - 1


def make_event(phase: str = "enter", retval: int = 0) -> SyscallEvent:
    return SyscallEvent(
        name="sys_openat",
        nr=257,
        pc=0x401000,
        sp=0x7FFC0000,
        argc=4,
        args=Args((0xFFFFFF9C, 0x5000, 0, 0o644, 0, 0)),
        task=Task("cat", 101, 100),
        phase=phase,
        retval=retval,
    )


def make_regs(event: SyscallEvent) -> Regs:
    # every register holds a distinct value: 0x1000 + its index
    values = tuple(0x1000 + i for i in range(len(PT_REGS)))
    return Regs(values, event)


# -- Args ----------------------------------------------------------------------------


def test_args_has_six_entries_padded_with_zeros() -> None:
    a = Args((1, 2))
    assert len(a) == 6 and list(a) == [1, 2, 0, 0, 0, 0] and a[:2] == [1, 2]
    assert a.changed == set()


def test_assignment_records_the_index_and_masks_to_64_bits() -> None:
    a = Args((1, 2, 3, 4, 5, 6))
    a[1] = -1
    a[5] = 1 << 64 | 7
    a[-1] = a[-1]  # negative index is the last argument; same value still counts
    assert a[1] == M64 and a[5] == 7
    assert a.changed == {1, 5}
    a[0] = 0
    assert a.changed == {0, 1, 5}


@pytest.mark.parametrize("value", ["1", 1.0, None, True, b"\x01"])
def test_non_int_is_refused(value: object) -> None:
    a = Args((1,))
    with pytest.raises(TypeError, match="a syscall argument is an int"):
        a[0] = value  # type: ignore[call-overload]
    assert a.changed == set() and a[0] == 1


def test_shape_cannot_change() -> None:
    a = Args((1, 2, 3))
    with pytest.raises(IndexError):
        a[6] = 1
    with pytest.raises(TypeError, match="one at a time"):
        a[0:2] = [5, 6]
    with pytest.raises(TypeError):
        del a[0]
    with pytest.raises(TypeError):
        a.append(1)
    assert len(a) == 6 and a.changed == set()


def test_args_repr_is_hex() -> None:
    assert repr(Args((0xFF,))) == "[0xff, 0x0, 0x0, 0x0, 0x0, 0x0]"


# -- SyscallEvent ----------------------------------------------------------------------


def test_event_pid_is_the_process_id() -> None:
    e = make_event()
    assert e.pid == 100 and e.task.pid == 101 and e.task.tgid == 100 and e.task.comm == "cat"
    assert e.is_enter and not make_event("return").is_enter
    assert not e.skip_syscall and e.retval == 0


def test_event_has_no_field_that_is_never_set() -> None:
    # the return phase cannot know whether the entry was skipped: no ``skipped`` that says False
    assert not hasattr(make_event("return"), "skipped")


# -- Regs ------------------------------------------------------------------------------


def test_regs_read_by_name() -> None:
    e = make_event()
    r = make_regs(e)
    assert r.rdi == e.args[0] == 0xFFFFFF9C
    assert [getattr(r, n) for n in ARG_REGS] == list(e.args)
    assert r.pc == r.ip == r.rip == 0x1000 + PT_REGS.index("rip")
    assert r.sp == r.rsp == 0x1000 + PT_REGS.index("rsp")
    assert r.orig_rax == 0x1000 + PT_REGS.index("orig_rax")
    assert r.rax == 0x1000 + PT_REGS.index("rax")  # on entry: the register as trapped
    assert r.r15 == 0x1000 and r.ss == 0x1000 + len(PT_REGS) - 1


def test_pc_and_sp_fall_back_to_the_event() -> None:
    e = make_event()
    r = Regs((), e)
    assert (r.pc, r.sp) == (0x401000, 0x7FFC0000)


def test_unknown_register_name() -> None:
    r = make_regs(make_event())
    with pytest.raises(AttributeError, match="no register 'eax'; known: r15, "):
        _ = r.eax
    assert not hasattr(r, "xmm0")


def test_writing_an_argument_register_changes_the_argument() -> None:
    e = make_event()
    r = make_regs(e)
    r.rdi = 3
    r.r10 = -1
    assert e.args[0] == 3 and r.rdi == 3
    assert e.args[3] == M64
    assert e.args.changed == {0, 3}
    # and the other way round
    e.args[1] = 0x6000
    assert r.rsi == 0x6000
    with pytest.raises(TypeError):
        r.rdx = "x"  # type: ignore[assignment]


def test_rax_on_return_is_the_return_value() -> None:
    e = make_event("return", retval=-2)
    r = make_regs(e)
    assert r.rax == M64 - 1  # the register: unsigned
    r.rax = M64  # -1 as a register value
    assert e.retval == -1
    r.rax = 5
    assert e.retval == 5
    r.rax = 0x8000_0000_0000_0000
    assert e.retval == -(1 << 63)
    e.retval = -13
    assert r.rax == (-13) & M64


@pytest.mark.parametrize("name", ["rip", "pc", "sp", "rsp", "rbx", "orig_rax", "eflags", "foo"])
def test_other_registers_are_read_only(name: str) -> None:
    e = make_event("return", retval=1)
    r = make_regs(e)
    with pytest.raises(AttributeError) as info:
        setattr(r, name, 1)
    msg = str(info.value)
    assert f"register {name} is read-only" in msg
    assert "rdi, rsi, rdx, r10, r8, r9" in msg and "rax on return" in msg
    assert e.retval == 1 and e.args.changed == set()


def test_rax_is_read_only_on_entry() -> None:
    e = make_event("enter")
    r = make_regs(e)
    with pytest.raises(AttributeError, match="register rax is read-only"):
        r.rax = 1
    assert e.retval == 0


def test_regs_repr_lists_registers() -> None:
    assert repr(make_regs(make_event())).startswith("Regs(r15=0x1000, r14=0x1001")
