"""An strace-like tracer built on the plugin API.

Example::

    tracer = Tracer(plugins, emit=lambda r: print(r.format()))
    await tracer.start()            # hooks live in the guest
    await session.run("sh -c 'cat /etc/passwd | head -1'")   # sh, cat and head

**Which tasks.** By default the tracer follows the commands the guest's agent
starts (its children) and, like ``strace -f``, every process and thread they
create.  ``pid=N`` or ``comm=NAME`` choose other roots (their descendants are
followed too, unless ``follow=False``); ``trace_all`` takes every task but the
agent (PID 1).  A traced process's ``clone``/``fork``/``vfork`` is always
hooked, whatever ``syscalls`` selects: its result makes the child traced.  A
child may run before that result reaches the host, so a task not yet placed
is placed at its first hooked event by asking the guest for its parent; the
parent's place is known by then (its fork's entry was handled before the child
existed).  A process that calls ``exit_group`` stops being traced, so its
number, when reused, is placed afresh.  A command the agent starts is traced
from its ``execve`` (what the agent's child does before, setting up its stdio,
is the framework's).

**Why blocking hooks.** The tracer reads the task's memory at entry (paths,
``execve``'s argv before the new image replaces it, the bytes ``write`` sends)
and at return (the bytes ``read`` got), and asks the guest for a new task's
parent.  Observe-only hooks capture only the arguments and C strings up to 256
bytes and cannot ask anything, so the tracer uses ordinary hooks: each traced
call waits for the host twice (entry and return).

Every call becomes one :class:`TraceRecord` when it returns (``exit`` and
``exit_group``, which never return, at entry).  Times are the host's: when it
handled the entry, and how long from entry to return (``-T``), which includes
the trip through the portal.
"""

from __future__ import annotations

import difflib
import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from ..errors import GuestMemoryError, InvalidValue, TrapGone
from ..syscalls.event import SyscallEvent
from ..syscalls.names import normalize
from ..syscalls.prototypes import SyscallPrototype
from . import strace_decode as sd
from .mem import trap
from .plugins import Plugins
from .trace_inject import Injection, parse_injection
from .trace_record import Arg, Bytes, Num, Out, Ptr, Str, Strings, TraceRecord, Unreadable

__all__ = [
    "Selection",
    "Summary",
    "TraceRecord",
    "Tracer",
    "parse_expressions",
    "unknown_syscalls",
]

#: bytes of strings and buffers shown by default (strace's ``-s``)
STRING_SHOWN = 32
#: paths are shown whole, up to the kernel's PATH_MAX
PATH_MAX = 4096
#: argv entries shown at most (the rest is ``...``); environment entries counted at most
ARGV_SHOWN = 256
ENV_COUNTED = 1024
PAGE = 4096
_NO_RETURN = ("exit", "exit_group")
#: always hooked at entry, so that a new process's parent has been placed
_FORKS = ("clone", "clone3", "fork", "vfork")
_EXECS = ("execve", "execveat")
AGENT_PID = 1
CLONE_THREAD = 0x10000


class Selection(msgspec.Struct, frozen=True):
    """What ``-e`` expressions select: syscall names (None: all), and results."""

    syscalls: frozenset[str] | None = None
    #: "failed" or "successful" (None: both)
    status: str | None = None
    #: ``inject=`` rules, in order
    injections: tuple[Injection, ...] = ()


def parse_expressions(expressions: Iterable[str]) -> Selection:
    """strace's ``-e`` qualifiers: ``trace=NAME,%CLASS,...`` (``trace=`` may be
    left out), ``status=failed|successful``, ``inject=RULE`` (see
    :mod:`.trace_inject`).  Raises InvalidValue (a ValueError) saying what is wrong.

    Example::

        >>> sorted(parse_expressions(["trace=openat,%network"]).syscalls)[:3]
        ['accept', 'accept4', 'bind']
    """
    names: set[str] | None = None
    status: str | None = None
    injections: list[Injection] = []
    for expr in expressions:
        key, sep, value = expr.partition("=")
        if not sep:
            key, value = "trace", expr
        if key == "trace":
            names = set() if names is None else names
            for item in value.split(","):
                item = item.strip()
                if item.startswith("%"):
                    if item[1:] not in sd.CLASSES:
                        known = ", ".join("%" + c for c in sd.CLASSES)
                        raise InvalidValue(f"unknown syscall class {item!r} (known: {known})")
                    names.update(sd.kernel_name(n) for n in sd.CLASSES[item[1:]])
                elif item and all(c.isalnum() or c == "_" for c in item):
                    names.add(sd.kernel_name(normalize(item)))
                else:
                    raise InvalidValue(f"not a syscall name: {item!r} in -e {expr!r}")
        elif key == "inject":
            injections.append(parse_injection(value))
        elif key == "status":
            if value not in ("failed", "successful"):
                raise InvalidValue(f"-e status= takes failed or successful, not {value!r}")
            status = value
        else:
            raise InvalidValue(
                f"unknown -e qualifier {key!r} (known: trace=NAME,%CLASS,..., "
                "status=failed|successful, inject=SET:error=ERRNO|retval=N[:when=N+])"
            )
    return Selection(None if names is None else frozenset(names), status, tuple(injections))


@dataclass
class _Pending:
    """A call whose entry was recorded and whose return is awaited."""

    args: list[int | str]
    decoded: list[Arg]
    kinds: tuple[str, ...]
    time: float
    start: float
    injected: bool = False
    fd_path: str | None = None


class Tracer:
    """Registers the hooks that turn syscalls into :class:`TraceRecord` values.

    :param comm: trace tasks with this comm (and, with ``follow``, what they create)
    :param pid: trace this process (and, with ``follow``, what it creates)
    :param trace_all: trace every task but the guest's agent
    :param follow: follow the children and threads of traced processes (``-f``)
    :param syscalls: trace only these syscalls (None: all of them)
    :param status: ``"failed"`` or ``"successful"``: only calls that ended so
    :param string_limit: bytes of strings and buffers shown (strace's ``-s``)
    :param inject: fault injection rules: a traced call a rule selects is
        skipped and returns the rule's result (the first rule that fires wins)
    :param fd_paths: show descriptors with their paths, ``3</etc/passwd>``
        (strace's ``-y``; one more question to the guest per call that has one)
    :param emit: called with each record, in the order the calls return.
    :param entered: called when a traced call that returns enters, with the
        task's id, the start of its line (what is known at entry: ``read(0, ``)
        and the time; :class:`~.trace_record.LinePrinter` uses it for strace's
        ``<unfinished ...>`` lines.

    Without ``comm``, ``pid`` or ``trace_all`` the roots are the commands the
    guest's agent starts (``session.run``).
    """

    def __init__(
        self,
        plugins: Plugins,
        *,
        comm: str | None = None,
        pid: int | None = None,
        trace_all: bool = False,
        follow: bool = True,
        syscalls: Iterable[str] | None = None,
        status: str | None = None,
        string_limit: int = STRING_SHOWN,
        inject: Iterable[Injection] = (),
        fd_paths: bool = False,
        emit: Callable[[TraceRecord], None],
        entered: Callable[[int, str, float], None] | None = None,
    ) -> None:
        self.plugins = plugins
        self.comm = comm
        self.pid = pid
        self.trace_all = trace_all
        self.follow = follow
        self.syscalls = (
            None if syscalls is None else frozenset(sd.kernel_name(normalize(n)) for n in syscalls)
        )
        self.status = status
        self.string_limit = string_limit
        self.inject = tuple(inject)
        self.fd_paths = fd_paths
        #: per rule: the calls that matched it so far
        self.inject_counts = [0] * len(self.inject)
        self.emit = emit
        self.entered = entered
        self.count = 0
        #: the traced processes (tgids) and the tasks (tids) seen so far
        self.traced: set[int] = set()
        self.tasks: set[int] = set()
        self._placed: set[int] = set()  # processes found not to be traced
        self._commands: set[int] = set()  # the agent's children before their execve
        self._pending: dict[int, _Pending] = {}

    async def start(self) -> None:
        """Register the hooks; returns once they are live in the guest."""
        api = self.plugins.syscalls
        if self.syscalls is None:
            await api.register(self._on_event, "on_all_sys_enter")
            await api.register(self._on_event, "on_all_sys_return")
            return
        injected = {name for rule in self.inject for name in rule.syscalls}
        # name -> whether its return is hooked too
        hooks = {n: n in self.syscalls and n not in _NO_RETURN for n in self.syscalls | injected}
        hooks.update(dict.fromkeys(_FORKS, True))  # their result places the child
        for name in _EXECS:
            hooks.setdefault(name, False)  # a command is traced from its execve
        for name, on_return in sorted(hooks.items()):
            if api.get_syscall_info_by_name(name) is None and name in sd.OPTIONAL:
                continue  # a class (or the fork family) names calls not every kernel has
            if on_return:
                await api.register(self._on_event, name, on_enter=True, on_return=True)
            else:
                await api.register(self._on_event, name)

    def _arch(self) -> str:
        """The traced guest's architecture (``--arch`` name)."""
        session = self.plugins.session
        return session.portal.arch.name if session is not None else "x86_64"

    async def stop(self) -> None:
        """Remove the tracer's hooks."""
        if any(h.handler == self._on_event for h in self.plugins.syscalls.registry):
            await self.plugins.syscalls.unregister(self._on_event)

    async def _follows(self, syscall: SyscallEvent) -> bool:
        task = syscall.task
        tgid = task.tgid
        if tgid in self.traced:
            return True
        if tgid == AGENT_PID and self.pid != AGENT_PID:
            return False
        if (
            self.trace_all
            or (self.pid is not None and tgid == self.pid)
            or (self.comm is not None and task.comm == self.comm)
        ):
            self.traced.add(tgid)
            return True
        roots_are_commands = self.pid is None and self.comm is None
        if tgid in self._commands:
            # the agent's child becomes the command at its execve (what it does
            # before, setting up its stdio, is the framework's)
            if syscall.phase == "enter" and normalize(syscall.name) in _EXECS:
                self._commands.discard(tgid)
                self.traced.add(tgid)
                return True
            return False
        if tgid in self._placed or not (self.follow or roots_are_commands):
            return False
        try:
            parent = (await trap().proc_info()).ppid
        except (GuestMemoryError, TrapGone):
            return False
        if self.follow and parent in self.traced:
            self.traced.add(tgid)
            return True
        if roots_are_commands and parent == AGENT_PID:
            self._commands.add(tgid)
            return await self._follows(syscall)
        self._placed.add(tgid)
        return False

    async def _on_event(self, regs: Any, proto: SyscallPrototype, syscall: SyscallEvent) -> None:
        if not await self._follows(syscall):
            return
        name = proto.short_name
        if name in _FORKS and syscall.phase == "return":
            self._forked(name, syscall)
        selected = self.syscalls is None or name in self.syscalls
        injecting = any(name in rule.syscalls for rule in self.inject)
        if not (selected or injecting):
            return  # a fork or exec hooked only to place the task
        tid = syscall.task.pid
        if syscall.phase == "enter":
            now = time.time()
            pending = await self._enter(proto, syscall, now)
            if injecting:
                pending.injected = self._inject(name, syscall, pending)
            if not selected:
                return
            if name in _NO_RETURN:
                self._record(proto, syscall, pending, None)
                if name == "exit_group":  # its number may come back as another process
                    self.traced.discard(syscall.task.tgid)
            else:
                self._pending[tid] = pending
                if self.entered is not None:
                    self.entered(tid, _head(name, pending), pending.time)
            return
        entered = self._pending.pop(tid, None)
        if entered is None:
            return  # its entry came before the tracer (or the task) was followed
        await self._out_params(entered, syscall)
        if self.fd_paths and sd.strace_name(name) in sd.FD_RESULTS and syscall.retval >= 0:
            entered.fd_path = (await self._fd_paths()).get(syscall.retval)
        self._record(proto, syscall, entered, syscall.retval)

    def _forked(self, name: str, syscall: SyscallEvent) -> None:
        """A traced process made a new one: it is traced (if its number was seen
        before, on a process found untraced, that one is gone)."""
        child = syscall.retval
        thread = name == "clone" and syscall.args[0] & CLONE_THREAD
        if child > 0 and not thread and self.follow:
            self.traced.add(child)
            self._placed.discard(child)

    def _inject(self, name: str, syscall: SyscallEvent, entered: _Pending) -> bool:
        """Apply the first rule that fires to this call (skip it with the rule's result)."""
        path = next(
            (
                a.value
                for k, a in zip(entered.kinds, entered.decoded, strict=True)
                if k == "path" and isinstance(a, Str)
            ),
            None,
        )
        for index, rule in enumerate(self.inject):
            if name not in rule.syscalls or not rule.matches_path(path):
                continue
            self.inject_counts[index] += 1
            if rule.fires(self.inject_counts[index]):
                syscall.skip_syscall = True
                syscall.retval = rule.retval
                return True
        return False

    async def _enter(self, proto: SyscallPrototype, syscall: SyscallEvent, now: float) -> _Pending:
        name = proto.short_name
        if proto.known and proto.prototype:
            count = proto.nargs
            kinds = sd.spec(sd.strace_name(name), proto.types, proto.names)[:count]
        else:
            count = syscall.argc
            kinds = ("hex",) * count
        raw = [syscall.args[i] for i in range(count)]
        kinds = sd.shown_kinds(name, kinds, raw)
        args: list[int | str] = [
            proto.domain(i).value(raw[i]) if proto.known and proto.prototype else raw[i]
            for i in range(count)
        ]
        decoded: list[Arg] = []
        paths = await self._fd_paths() if self.fd_paths and sd.FD_KINDS & set(kinds) else {}
        for i, kind in enumerate(kinds):
            value = args[i]
            assert isinstance(value, int)
            if kind in sd.MEMORY_KINDS and raw[i]:
                arg = await self._read(kind, raw, i)
                if isinstance(arg, Str):
                    args[i] = arg.value
            elif kind == "ptr" or kind in sd.RETURN_KINDS or kind in sd.MEMORY_KINDS:
                arg = Ptr(raw[i], sd.pointer(raw[i]))
            else:
                text = sd.number(kind, raw[i], raw)
                if kind in sd.FD_KINDS:
                    text = sd.with_path(text, paths.get(value))
                arg = Num(raw[i], text, value)
            decoded.append(arg)
        return _Pending(args, decoded, kinds, now, time.monotonic())

    async def _fd_paths(self) -> dict[int, str]:
        """The task's open descriptors and their paths (``-y``)."""
        try:
            return {f.fd: f.path for f in await trap().fds()}
        except (GuestMemoryError, TrapGone):
            return {}

    async def _read(self, kind: str, raw: list[int], i: int) -> Arg:
        """An argument in the task's memory, read at entry."""
        addr, limit = raw[i], self.string_limit
        task = trap()
        try:
            match kind:
                case "path" | "str":
                    cap = PATH_MAX if kind == "path" else limit
                    data = await task.read_cstring(addr, cap + 1)
                    return Str(
                        addr,
                        sd.escape(data, limit=cap),
                        data[:cap].decode(errors="backslashreplace"),
                        truncated=len(data) > cap,
                    )
                case "wbuf":
                    size = raw[i + 1]
                    data = await task.read_bytes(addr, min(size, limit))
                    return Bytes(addr, sd.escape(data, limit=limit, more=size > limit), data, size)
                case "argv":
                    pointers = await _pointers(addr, ARGV_SHOWN + 1)
                    items = [await task.read_cstring(p, PATH_MAX) for p in pointers[:ARGV_SHOWN]]
                    shown = [sd.escape(b, limit=limit) for b in items]
                    if len(pointers) > ARGV_SHOWN:
                        shown.append("...")
                    text = "[" + ", ".join(shown) + "]"
                    value = [b.decode(errors="backslashreplace") for b in items]
                    return Strings(addr, text, value, len(pointers))
                case _:  # envp: counted, as strace does by default
                    count = len(await _pointers(addr, ENV_COUNTED))
                    more = "or more " if count >= ENV_COUNTED else ""
                    return Strings(addr, f"{addr:#x} /* {count} {more}vars */", [], count)
        except (GuestMemoryError, TrapGone):
            return Unreadable(addr, sd.pointer(addr))

    async def _out_params(self, entered: _Pending, syscall: SyscallEvent) -> None:
        """Fill in what the call wrote for the task (``read``'s bytes, a ``stat``,
        a pipe's fds, a wait status)."""
        retval = syscall.retval
        if retval < 0 or syscall.restarted:
            return
        for i, kind in enumerate(entered.kinds):
            addr = syscall.args[i]
            if kind not in sd.RETURN_KINDS or not addr:
                continue
            limit = self.string_limit
            task = trap()
            arg: Arg
            try:
                match kind:
                    case "rbuf":
                        data = await task.read_bytes(addr, min(retval, limit))
                        text = sd.escape(data, limit=limit, more=retval > limit)
                        arg = Bytes(addr, text, data, retval)
                    case "pipefds":
                        arg = Out(addr, sd.pipe_fds(await task.read_bytes(addr, 8)))
                    case "statbuf" | "stat64buf":
                        arch = self._arch()
                        layout = sd.stat_layout(arch, kind)
                        if layout is None:  # a stat64 of an arch whose layout is not known
                            continue
                        data = await task.read_bytes(addr, layout.size)
                        arg = Out(addr, sd.stat_struct(data, arch, kind))
                    case _:  # wstatus: only when a child was reaped
                        if retval == 0:
                            continue
                        data = await task.read_bytes(addr, 4)
                        arg = Out(addr, sd.wait_status(int.from_bytes(data, "little")))
            except (GuestMemoryError, TrapGone):
                arg = Unreadable(addr, sd.pointer(addr))
            entered.decoded[i] = arg

    def _record(
        self,
        proto: SyscallPrototype,
        syscall: SyscallEvent,
        entered: _Pending,
        retval: int | None,
    ) -> None:
        error = None if retval is None else sd.errno_name(retval)
        if self.status == "failed" and (error is None or syscall.restarted):
            return
        if self.status == "successful" and (retval is None or error is not None):
            return
        self.count += 1
        self.tasks.add(syscall.task.pid)
        self.emit(
            TraceRecord(
                pid=syscall.task.tgid,
                tid=syscall.task.pid,
                comm=syscall.task.comm,
                nr=syscall.nr,
                name=proto.name,
                args=entered.args,
                retval=retval,
                error=error,
                restarted=syscall.restarted,
                decoded=entered.decoded,
                time=entered.time,
                duration=None if retval is None else time.monotonic() - entered.start,
                phase="enter" if retval is None else "call",
                injected=entered.injected,
                fd_path=entered.fd_path,
                abi=syscall.abi if proto.compat else "",
            )
        )


def unknown_syscalls(plugins: Plugins, selection: Selection) -> list[str]:
    """Names in ``selection`` (traced or injected) the guest kernel does not have,
    each with close matches, when its prototypes are known before booting (the
    image's cache); class members a kernel may lack are not named."""
    names = set(selection.syscalls or ())
    for rule in selection.injections:
        names |= rule.syscalls
    api = plugins.syscalls
    if api.get_syscall_info_by_name("read") is None:
        return []  # no prototypes before the first boot: the session checks
    known = [p.short_name for p in api.registry.prototypes or () if p.known]
    found = []
    for name in sorted(names - sd.OPTIONAL):
        if api.get_syscall_info_by_name(name) is None:
            close = difflib.get_close_matches(name, known, n=3)
            found.append(f"{name!r}" + (f" (did you mean {', '.join(close)}?)" if close else ""))
    return found


def _head(name: str, entered: _Pending) -> str:
    """The start of a call's line known at entry: the arguments before the first
    one the call fills in (strace's ``read(0, <unfinished ...>``)."""
    texts = [a.text for a in entered.decoded]
    first_out = next((i for i, k in enumerate(entered.kinds) if k in sd.RETURN_KINDS), None)
    shown = sd.strace_name(name) + "("
    if first_out is None:
        return shown + ", ".join(texts)
    return shown + "".join(t + ", " for t in texts[:first_out])


async def _pointers(addr: int, most: int) -> list[int]:
    """The pointers of a NULL-terminated array (argv, envp), at most ``most``.

    Read a page at a time (a page is readable whole or not at all), so the
    work is bounded by ``most`` whatever the strings hold.
    """
    out: list[int] = []
    while len(out) < most:
        in_page = (PAGE - addr % PAGE) // 8
        count = min(max(in_page, 1), most - len(out))
        try:
            data = await trap().read_bytes(addr, count * 8)
        except GuestMemoryError:
            if count == 1:
                raise
            count = 1  # memory that is not page-grained (a fake one): a pointer at a time
            data = await trap().read_bytes(addr, 8)
        for (pointer,) in struct.iter_unpack("<Q", data):
            if pointer == 0:
                return out
            out.append(pointer)
        addr += count * 8
    return out


@dataclass
class Summary:
    """strace's ``-c`` table: calls, errors and time per syscall.

    ``add`` every record; ``format()`` gives the table, sorted by time.
    """

    calls: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def add(self, record: TraceRecord) -> None:
        name = sd.strace_name(normalize(record.name))
        self.calls[name] = self.calls.get(name, 0) + 1
        if record.error is not None and not record.restarted:
            self.errors[name] = self.errors.get(name, 0) + 1
        self.seconds[name] = self.seconds.get(name, 0.0) + (record.duration or 0.0)

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def format(self) -> str:
        total_s = sum(self.seconds.values())
        rule = "------ ----------- ----------- --------- --------- ----------------"
        lines = [
            "% time     seconds  usecs/call     calls    errors syscall",
            rule,
        ]

        def row(share: float, secs: float, calls: int, errors: int, name: str) -> str:
            per = int(secs * 1e6 / calls) if calls else 0
            errs = str(errors) if errors else ""
            return f"{share:6.2f} {secs:11.6f} {per:11d} {calls:9d} {errs:>9} {name}"

        for name in sorted(self.calls, key=lambda n: (-self.seconds[n], n)):
            share = 100 * self.seconds[name] / total_s if total_s else 0.0
            lines.append(
                row(share, self.seconds[name], self.calls[name], self.errors.get(name, 0), name)
            )
        lines.append(rule)
        lines.append(row(100.0, total_s, self.total, sum(self.errors.values()), "total"))
        return "\n".join(lines)
