"""The hook registry: what is hooked, with which filters, in which order.

Checks that need nothing but the arguments (types, comm length, handler
signature) run when a hook is added.  Checks that need the guest kernel's
prototypes (does the syscall exist, how many arguments it has, their types)
run as soon as prototypes are known: at once when a session is running or a
prototype cache exists, otherwise when the session starts -- before any
workload runs.

The registration parameters travel from both API forms to here as one
:class:`HookOptions`; what :meth:`Registry.add` returns, a :class:`Hook`, names
that one registration and is still callable as its handler.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import itertools
import logging
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

import msgspec

from ..errors import RegistrationError
from ..portal.abi import COMM_MAX, C
from ..portal.hooks import NR_ALL, NR_NONE, NR_UNKNOWN, GuestFilter, HookSpec
from .abi32 import ARG_WORDS
from .filters import BoundFilter, ValueFilter, coerce
from .names import Target, TargetKind, parse_target
from .policy import OnError, Policy, failure_policy
from .prototypes import RAW, RETVAL, PrototypeTable, SyscallPrototype, is_pointer

log = logging.getLogger("syscalls")
#: syscalls whose truncated metadata was already warned about (once per process)
_warned_truncated: set[str] = set()
#: hooks left out of the compat ABI, already warned about (once per process)
_warned_compat: set[tuple[str, str]] = set()
#: hooks whose handler gets an argument the events do not carry, already warned about
_warned_unseen: set[tuple[str, str]] = set()

MAX_ARGS = C.SA_MAX_ARGS
#: the guest's hook table has this many entries; registered hooks are counted against it,
#: disabled ones too, so that enabling one can never overflow the table
MAX_HOOKS = C.SA_MAX_HOOKS

Handler = Callable[..., Any]


class HookOptions(msgspec.Struct, frozen=True, kw_only=True):
    """The registration parameters, as both API forms hand them to the registry.

    Checked by :meth:`Registry.add_with`, not here: the fields hold what the
    user passed.
    """

    on_enter: bool | None = None
    on_return: bool | None = None
    comm_filter: str | None = None
    pid_filter: int | None = None
    #: one entry per argument: None, an int (exact), a str (starts with) or a ValueFilter
    arg_filters: Sequence[Any] | None = None
    retval_filter: Any = None
    #: the handler only watches: changing the call raises ReadOnlyHookError
    read_only: bool = False
    #: with read_only: the handler gets the observed events in batches,
    #: ``handler(events)`` (a sequence of :class:`~.batch.ObservedSyscall`)
    batch: bool = False
    #: False: registered, but off in the guest until enable_syscall
    enabled: bool = True
    #: the failure policy of this hook (None: the session's)
    on_error: OnError | None = None

    @classmethod
    def of(cls, kwargs: Mapping[str, Any], where: str) -> HookOptions:
        """Options from keyword arguments; an unknown keyword is a RegistrationError."""
        accepted = cls.__struct_fields__
        for key in kwargs:
            if key not in accepted:
                close = difflib.get_close_matches(key, accepted, n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                raise RegistrationError(
                    f"{where}: unknown keyword argument {key!r}{hint}; accepted: "
                    f"name_or_pattern, {', '.join(accepted)}"
                )
        return cls(**kwargs)


class HookKwargs(TypedDict, total=False):
    """:class:`HookOptions` as keyword arguments (for type checkers; same fields)."""

    on_enter: bool | None
    on_return: bool | None
    comm_filter: str | None
    pid_filter: int | None
    arg_filters: Sequence[Any] | None
    retval_filter: Any
    read_only: bool
    batch: bool
    enabled: bool
    on_error: OnError | None


@dataclass(frozen=True)
class _Signature:
    capacity: int  # positional parameters
    required: int  # of which without default
    var: bool  # takes *args

    @classmethod
    def of(cls, handler: Handler, where: str) -> _Signature:
        try:
            sig = inspect.signature(handler)
        except (TypeError, ValueError):
            return cls(3 + MAX_ARGS, 3, True)  # builtins etc.: trust the caller
        positional = [
            p
            for p in sig.parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        kw_required = [
            p.name
            for p in sig.parameters.values()
            if p.kind is p.KEYWORD_ONLY and p.default is p.empty
        ]
        if kw_required:
            raise RegistrationError(
                f"{where}: handler {_name(handler)} has required keyword-only parameters "
                f"{kw_required}; handlers are called as h(regs, proto, syscall, *args)"
            )
        var = any(p.kind is p.VAR_POSITIONAL for p in sig.parameters.values())
        required = sum(1 for p in positional if p.default is p.empty)
        if len(positional) < 3 and not var:
            raise RegistrationError(
                f"{where}: handler {_name(handler)} takes {len(positional)} positional "
                "parameters; it must accept at least (regs, proto, syscall)"
            )
        return cls(len(positional), required, var)

    def passed_args(self, nargs: int) -> int:
        """How many unpacked syscall arguments to pass."""
        return nargs if self.var else max(0, min(nargs, self.capacity - 3))


def _batch_signature(handler: Handler, where: str) -> _Signature:
    """A batch handler's signature: ``handler(events)``, one positional parameter."""
    try:
        sig = inspect.signature(handler)
    except (TypeError, ValueError):
        return _Signature(1, 1, False)  # builtins etc.: trust the caller
    params = list(sig.parameters.values())
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    var = any(p.kind is p.VAR_POSITIONAL for p in params)
    kw_required = [p.name for p in params if p.kind is p.KEYWORD_ONLY and p.default is p.empty]
    if kw_required or len(required) > 1 or not (positional or var):
        shown = ", ".join(p.name for p in positional) or "no positional parameter"
        raise RegistrationError(
            f"{where}: with batch=True the handler is called as h(events), one sequence of "
            f"observed syscalls per batch, but {_name(handler)} takes ({shown})"
            + (f" and requires keyword-only {kw_required}" if kw_required else "")
            + "; write `async def handler(events)` (or drop batch for h(regs, proto, syscall, ...))"
        )
    return _Signature(1, 1, False)


def _name(handler: Handler) -> str:
    return str(
        getattr(handler, "__qualname__", None) or getattr(handler, "__name__", repr(handler))
    )


@dataclass(eq=False, repr=False)
class Hook:
    """One registration: a handler with its target and filters.

    What registering returns.  ``unregister``, ``disable_syscall`` and
    ``enable_syscall`` given a Hook act on this registration only.  Calling
    it calls the handler and it compares equal to the handler, so a decorated
    function stays usable as one::

        @plugins.syscalls.syscall("on_sys_ioctl_enter")
        async def on_ioctl(regs, proto, syscall, fd, cmd, arg): ...

        await on_ioctl(regs, proto, syscall, 1, 2, 3)   # the function itself
        await plugins.syscalls.disable_syscall(on_ioctl)  # this registration
    """

    id: int
    handler: Handler
    target: Target
    enter: bool
    ret: bool
    comm: str | None
    pid: int | None
    filters: tuple[ValueFilter | None, ...]
    retval: ValueFilter | None
    signature: _Signature
    enabled: bool = True
    read_only: bool = False
    #: a read_only hook whose handler takes a batch of events: ``handler(events)``
    batch: bool = False
    #: no filter at all (comm, pid, arguments, return value): nothing to check on the host
    unfiltered: bool = False
    #: this hook's failure policy; None: the session's
    on_error: Policy | None = None
    # filled in by resolve()
    proto: SyscallPrototype | None = None
    arg_filters: tuple[BoundFilter | None, ...] = ()
    retval_filter: BoundFilter | None = None
    nargs_passed: int = 0
    #: per argument passed to the handler: its register read as the prototype's C type
    converters: tuple[Callable[[int], int], ...] = ()
    #: some argument filter is checked on the host only (a 32-bit guest's
    #: 64-bit argument: the guest compares single registers), so the guest
    #: passes events the host then filters out
    host_only_filters: bool = False
    #: some argument filter compares a string (the host reads it from the guest)
    string_filters: bool = False
    spec_nr: int | None = field(default=None)
    #: the same for the guest's compat ABI (x86_64: ia32); proto32 None and
    #: spec_nr32 NR_NONE: the hook does not take that ABI's calls of its syscall
    proto32: SyscallPrototype | None = None
    arg_filters32: tuple[BoundFilter | None, ...] = ()
    nargs_passed32: int = 0
    converters32: tuple[Callable[[int], int], ...] = ()
    spec_nr32: int = NR_NONE

    def __post_init__(self) -> None:
        # __name__, __qualname__, __doc__, __module__, __wrapped__ of the handler
        functools.update_wrapper(self, self.handler, updated=())

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.handler(*args, **kwargs)

    def __eq__(self, other: object) -> bool:
        # a registration stands for its handler: ``hook == function`` holds, but two
        # registrations of one handler are two hooks
        if isinstance(other, Hook):
            return other is self
        return bool(other == self.handler)

    def __hash__(self) -> int:
        try:
            return hash(self.handler)
        except TypeError:  # an unhashable callable object: then no hook equals it by hash
            return id(self)

    def __get__(self, obj: object, objtype: type | None = None) -> Any:
        # decorated in a class body: obj.method(...) binds as the function would
        return self if obj is None else types.MethodType(self.handler, obj)

    def __repr__(self) -> str:
        directions = "+".join(d for d, on in (("enter", self.enter), ("return", self.ret)) if on)
        state = "" if self.enabled else ", disabled"
        return f"<Hook {self.id}: {self.where()} ({directions}{state})>"

    @property
    def name(self) -> str:
        """The handler's function name (what disable_syscall("name") matches)."""
        return str(getattr(self.handler, "__name__", ""))

    @property
    def resolved(self) -> bool:
        return self.spec_nr is not None

    def where(self) -> str:
        what = self.target.name or f"{self.target.kind.value} syscalls"
        return f"hook {_name(self.handler)} on {what}"

    def resolve(self, table: PrototypeTable) -> None:
        """Bind the hook to the guest's prototypes: its syscall's number in each
        ABI (``table.compat``: x86_64's ia32), filters typed by its prototype.

        A hook on a name hooks that syscall in every ABI the guest has it in.
        Where the compat ABI's prototype does not fit the hook (its argument
        filters or handler were written for another argument list, as for
        ia32's ``pread64``), the compat part is left out with a warning."""
        where = self.where()
        if self.target.kind is TargetKind.SYSCALL:
            assert self.target.name is not None
            native = table.by_name(self.target.name)
            compat = table.compat.by_name(self.target.name) if table.compat else None
            if native is None and compat is None:
                close = table.close_matches(self.target.name)
                if table.compat is not None:
                    close += [c for c in table.compat.close_matches(self.target.name)
                              if c not in close]  # fmt: skip
                hint = f"; did you mean {', '.join(close[:4])}?" if close else ""
                raise RegistrationError(f"{where}: unknown syscall {self.target.name!r}{hint}")
            primary = native or compat
            assert primary is not None
            self._check(primary, where)
            self.proto = primary
            self.arg_filters, self.nargs_passed, self.converters = self._bind(primary, where)
            self.spec_nr = native.nr if native is not None else NR_NONE
            # the compat ABI's part: the only one, or one that fits the hook
            fits = native is None or (
                compat is not None and not self._compat_misfit(native, compat, where)
            )
            second = compat if fits else None
            bound = None
            if second is not None:
                try:
                    bound = self._bind(second, where)
                except RegistrationError as exc:
                    if native is None:
                        raise
                    self._warn_compat(where, second, str(exc))
            if bound is None:
                self.proto32 = None
                self.arg_filters32, self.nargs_passed32, self.converters32 = (), 0, ()
                self.spec_nr32 = NR_NONE
            else:
                assert second is not None
                self.proto32 = second
                self.arg_filters32, self.nargs_passed32, self.converters32 = bound
                self.spec_nr32 = second.nr
        else:
            if self.signature.required > 3:
                raise RegistrationError(
                    f"{where}: the handler requires {self.signature.required - 3} syscall "
                    "arguments, but all-syscall and unknown-syscall handlers get none "
                    "(read syscall.args)"
                )
            self.arg_filters = tuple(
                None if f is None else f.bind(RAW, f"{where}, argument {i}", pointer=True)
                for i, f in enumerate(self.filters)
            )
            self.arg_filters32 = self.arg_filters
            self.nargs_passed = self.nargs_passed32 = 0
            self.converters = self.converters32 = ()
            self.proto32 = None
            self.spec_nr = NR_ALL if self.target.kind is TargetKind.ALL else NR_UNKNOWN
            self.spec_nr32 = NR_NONE
        self.retval_filter = (
            None
            if self.retval is None
            else self.retval.bind(RETVAL, f"{where}, return value", pointer=False)
        )
        self.string_filters = any(
            f is not None and f.is_string for f in (*self.arg_filters, *self.arg_filters32)
        )
        self.unfiltered = (
            self.comm is None
            and self.pid is None
            and self.retval_filter is None
            and not any(f is not None for f in (*self.arg_filters, *self.arg_filters32))
        )
        layout = self.proto.layout if self.proto is not None else None
        self.host_only_filters = layout is not None and any(
            f is not None and (i >= len(layout.slots) or len(layout.slots[i]) != 1)
            for i, f in enumerate(self.arg_filters)
        )

    def _guest_filters(self) -> tuple[GuestFilter | None, ...]:
        """The filters the guest checks, by argument register: on a 32-bit
        guest an argument's filter goes to the register that holds it, and a
        register pair's stays on the host (see :attr:`host_only_filters`)."""
        layout = self.proto.layout if self.proto is not None else None
        if layout is None:
            return tuple(None if f is None else f.guest() for f in self.arg_filters)
        regs: list[GuestFilter | None] = [None] * 6
        for i, f in enumerate(self.arg_filters):
            if f is None:
                continue
            slot = layout.slots[i] if i < len(layout.slots) else ()
            if len(slot) == 1:
                regs[slot[0]] = f.guest()
        return tuple(regs)

    def _check(self, proto: SyscallPrototype, where: str) -> None:
        """Refuse a hook that cannot work on ``proto``; warn once of a cut prototype."""
        if not proto.hookable:
            raise RegistrationError(
                f"{where}: the guest kernel cannot hook {proto.short_name} (its entry is "
                "not traceable by ftrace), so the hook would never fire; hook the "
                "syscalls around it, or all syscalls, instead"
            )
        if proto.truncated and proto.name not in _warned_truncated:
            _warned_truncated.add(proto.name)
            log.warning(
                "%s: the guest cut %s's metadata to fit the portal: its argument types "
                "or names (proto.types, proto.names) may be incomplete (proto.truncated)",
                where,
                proto.short_name,
            )
        if len(self.filters) > proto.nargs:
            raise RegistrationError(
                f"{where}: {len(self.filters)} arg_filters, but {proto.short_name} has "
                f"{proto.nargs} arguments ({_params(proto)})"
            )
        if self.signature.required > 3 + proto.nargs:  # *args does not fill them
            raise RegistrationError(
                f"{where}: the handler requires {self.signature.required - 3} syscall "
                f"arguments, but {proto.short_name} has {proto.nargs}"
            )
        self._check_unseen(proto, where)

    def _check_unseen(self, proto: SyscallPrototype, where: str) -> None:
        """Arguments a 32-bit ABI passes beyond the argument words an event
        carries (MIPS o32's 7th word: sync_file_range's flags): a filter on
        one is refused, a handler that takes one is warned (it reads 0)."""
        layout = proto.layout
        if layout is None:
            return
        unseen = [i for i, slot in enumerate(layout.slots) if not slot]
        if not unseen:
            return
        what = ", ".join(f"{proto.types[i]} {proto.names[i]}" for i in unseen)
        for i in unseen:
            if i < len(self.filters) and self.filters[i] is not None:
                raise RegistrationError(
                    f"{where}: argument {i} ({proto.types[i]} {proto.names[i]}) of "
                    f"{proto.short_name} lies beyond the {ARG_WORDS} argument words an "
                    "event carries on this guest's ABI, so it cannot be filtered; filter "
                    "on the other arguments, or in the handler on what it can see"
                )
        if self.signature.passed_args(proto.nargs) > unseen[0]:
            key = (where, proto.name)
            if key not in _warned_unseen:
                _warned_unseen.add(key)
                log.warning(
                    "%s: %s's %s lies beyond the %d argument words an event carries on "
                    "this guest's ABI: the handler gets 0 for it",
                    where, proto.short_name, what, ARG_WORDS,
                )  # fmt: skip

    def _compat_misfit(
        self, native: SyscallPrototype, compat: SyscallPrototype, where: str
    ) -> bool:
        """True (and a warning, once) if the hook cannot take the compat ABI's calls."""
        reason = None
        if not compat.hookable:
            reason = "the guest kernel cannot hook its entry there"
        elif any(
            f is not None and (i >= compat.nargs or compat.types[i] != native.types[i])
            for i, f in enumerate(self.filters)
        ):
            reason = "the arg_filters are written for the other argument list"
        elif self.signature.required > 3 + compat.nargs:
            reason = f"the handler requires more than its {compat.nargs} arguments"
        if reason is None:
            return False
        self._warn_compat(where, compat, reason)
        return True

    @staticmethod
    def _warn_compat(where: str, compat: SyscallPrototype, reason: str) -> None:
        """Say (once) that a hook is left out of the compat ABI, and why."""
        key = (where, compat.name)
        if key not in _warned_compat:
            _warned_compat.add(key)
            log.warning(
                "%s: not hooked for 32-bit (compat ABI) programs, whose %s takes (%s): %s",
                where,
                compat.short_name,
                _params(compat),
                reason,
            )

    def _bind(
        self, proto: SyscallPrototype, where: str
    ) -> tuple[tuple[BoundFilter | None, ...], int, tuple[Callable[[int], int], ...]]:
        """The hook's filters typed by ``proto``, how many arguments its handler
        gets, and how each is read."""
        filters = tuple(
            None
            if f is None
            else f.bind(
                proto.domain(i),
                f"{where}, argument {i} ({proto.types[i]} {proto.names[i]})",
                pointer=is_pointer(proto.types[i]),
            )
            for i, f in enumerate(self.filters)
        )
        nargs = self.signature.passed_args(proto.nargs)
        return filters, nargs, tuple(proto.domain(i).value for i in range(nargs))

    def spec(self) -> HookSpec:
        assert self.spec_nr is not None
        return HookSpec(
            id=self.id,
            nr=self.spec_nr,
            enter=self.enter,
            ret=self.ret,
            enabled=self.enabled,
            comm=self.comm,
            pid=self.pid,
            args=self._guest_filters(),
            retval=None if self.retval_filter is None else self.retval_filter.guest(),
            observe=self.read_only,
            nr32=self.spec_nr32,
        )


def _params(proto: SyscallPrototype) -> str:
    return ", ".join(f"{t} {n}" for t, n in zip(proto.types, proto.names, strict=False))


def _directions(
    target: Target, on_enter: bool | None, on_return: bool | None, has_retval_filter: bool
) -> tuple[bool, bool]:
    for flag, name in ((on_enter, "on_enter"), (on_return, "on_return")):
        if flag is not None and not isinstance(flag, bool):
            raise RegistrationError(f"{name} must be True, False or None, not {flag!r}")
    if (target.enter and on_enter is False) or (target.ret and on_return is False):
        raise RegistrationError("the pattern's direction contradicts on_enter/on_return")
    enter = target.enter or bool(on_enter)
    ret = target.ret or bool(on_return)
    if not enter and not ret:
        # Entry by default; a return-value filter only makes sense on return, and
        # on_enter=False leaves only the return.
        if on_enter is False and on_return is False:
            raise RegistrationError("on_enter=False and on_return=False: the hook would never run")
        if on_enter is False or (has_retval_filter and on_enter is None and on_return is None):
            ret = True
        else:
            enter = True
    if has_retval_filter and not ret:
        raise RegistrationError(
            "retval_filter needs a return hook: pass on_return=True or use on_sys_<name>_return"
        )
    return enter, ret


def _check_comm(comm: object) -> str | None:
    if comm is None:
        return None
    if not isinstance(comm, str):
        raise RegistrationError(f"comm_filter must be a str, not {type(comm).__name__}")
    if "\0" in comm:
        raise RegistrationError(
            f"comm_filter {comm!r} contains NUL; a task's comm is a C string: give the "
            f"part before it ({comm.split(chr(0))[0]!r})"
        )
    if not comm or len(comm.encode()) > COMM_MAX:
        kept = comm.encode()[:COMM_MAX].decode(errors="ignore")
        raise RegistrationError(
            f"comm_filter {comm!r} has {len(comm.encode())} bytes; a task's comm is 1 to "
            f"{COMM_MAX} bytes (the kernel truncates longer names: use {kept!r})"
        )
    return comm


def _check_pid(pid: object) -> int | None:
    if pid is None:
        return None
    if isinstance(pid, bool) or not isinstance(pid, int) or not 0 < pid < 1 << 31:
        raise RegistrationError(f"pid_filter must be a positive int (a process id), not {pid!r}")
    return pid


def _check_arg_filters(arg_filters: object) -> tuple[ValueFilter | None, ...]:
    if arg_filters is None:
        return ()
    if isinstance(arg_filters, (str, bytes)) or not isinstance(arg_filters, Sequence):
        raise RegistrationError(
            f"arg_filters must be a list (one entry per argument), not {type(arg_filters).__name__}"
        )
    if len(arg_filters) > MAX_ARGS:
        raise RegistrationError(f"{len(arg_filters)} arg_filters; a syscall has at most {MAX_ARGS}")
    filters = tuple(coerce(f, f"arg_filters[{i}]") for i, f in enumerate(arg_filters))
    while filters and filters[-1] is None:
        filters = filters[:-1]
    return filters


class Registry:
    """Every hook, in registration order; ``changed`` listeners hear of edits."""

    def __init__(self) -> None:
        self._hooks: dict[int, Hook] = {}
        self._ids = itertools.count(1)
        self.prototypes: PrototypeTable | None = None
        self.listeners: list[Callable[[], None]] = []
        self._candidates: dict[tuple[int | None, bool, bool, bool, bool], list[Hook]] = {}
        #: some enabled hook takes batches (batch=True)
        self.has_batch = False
        #: grows with every change of the hooks (what caches of them compare)
        self.version = 0

    def __iter__(self) -> Iterator[Hook]:
        return iter(list(self._hooks.values()))

    def __len__(self) -> int:
        return len(self._hooks)

    def add(self, handler: Handler, name_or_pattern: str | None = None, **options: Any) -> Hook:
        """Validate and add one hook (keyword options as in :class:`HookOptions`)."""
        return self.add_with(handler, name_or_pattern, HookOptions.of(options, "add()"))

    def add_with(self, handler: Handler, name_or_pattern: str | None, options: HookOptions) -> Hook:
        """Validate and add one hook; raises :class:`RegistrationError` if wrong."""
        if isinstance(handler, Hook):
            handler = handler.handler  # stacked decorators register the function itself
        if not callable(handler):
            raise RegistrationError(f"the handler must be callable, not {type(handler).__name__}")
        target = parse_target(name_or_pattern)
        where = f"hook {_name(handler)} on {target.name or target.kind.value + ' syscalls'}"
        if inspect.isgeneratorfunction(handler) or inspect.isasyncgenfunction(handler):
            raise RegistrationError(
                f"{where}: the handler is a generator; write `async def` and `await` "
                "where the generator API used `yield from`"
            )
        if len(self._hooks) >= MAX_HOOKS:
            raise RegistrationError(
                f"{where}: the guest's hook table holds at most {MAX_HOOKS} hooks and "
                f"{len(self._hooks)} are registered (disabled ones included); unregister some"
            )
        retval = coerce(options.retval_filter, "retval_filter")
        if retval is not None and retval.kind.is_string:
            given = options.retval_filter
            what = (
                f"str {given!r} (a plain str means string_startswith)"
                if isinstance(given, str)
                else f"ValueFilter.{retval.kind.label}"
            )
            raise RegistrationError(
                f"{where}: retval_filter: expected None, an int or a numeric ValueFilter, not "
                f"{what}: return values are compared as numbers, string filters need a "
                "pointer argument"
            )
        enter, ret = _directions(target, options.on_enter, options.on_return, retval is not None)
        for flag in ("read_only", "batch", "enabled"):
            if not isinstance(getattr(options, flag), bool):
                raise RegistrationError(
                    f"{where}: {flag} must be True or False, not {getattr(options, flag)!r}"
                )
        on_error = None if options.on_error is None else failure_policy(options.on_error, where)
        if options.read_only and on_error not in (None, "continue"):
            raise RegistrationError(
                f"{where}: a read_only hook never changes the call, so it cannot fail closed "
                "(drop read_only or on_error)"
            )
        if options.batch and not options.read_only:
            raise RegistrationError(
                f"{where}: batch=True needs read_only=True: a batch handler gets the events "
                "after the guest tasks went on, so it can only watch (add read_only=True; or "
                "drop batch to get each event while its task waits, and change the call)"
            )
        signature = (
            _batch_signature(handler, where) if options.batch else _Signature.of(handler, where)
        )
        hook = Hook(
            id=next(self._ids),
            handler=handler,
            target=target,
            enter=enter,
            ret=ret,
            comm=_check_comm(options.comm_filter),
            pid=_check_pid(options.pid_filter),
            filters=_check_arg_filters(options.arg_filters),
            retval=retval,
            signature=signature,
            enabled=options.enabled,
            read_only=options.read_only,
            batch=options.batch,
            on_error=on_error,
        )
        if self.prototypes is not None:
            hook.resolve(self.prototypes)
        self._hooks[hook.id] = hook
        self._changed()
        return hook

    def bind(self, table: PrototypeTable) -> None:
        """Set the guest's prototypes and resolve every hook; the first error is raised."""
        self.prototypes = table
        errors = []
        for hook in self:
            try:
                hook.resolve(table)
            except RegistrationError as exc:
                errors.append(exc)
                del self._hooks[hook.id]
        self._changed()
        if errors:
            raise (
                errors[0]
                if len(errors) == 1
                else RegistrationError("; ".join(str(e) for e in errors))
            )

    def find(self, which: Hook | Handler | str) -> list[Hook]:
        """Hooks by Hook object, handler (function or bound method) or handler name."""
        if isinstance(which, Hook):
            found = [which] if which.id in self._hooks else []
        elif isinstance(which, str):
            found = [h for h in self if h.name == which]
        else:
            found = [h for h in self if h.handler == which]
        if not found:
            names = sorted({h.name for h in self})
            raise RegistrationError(f"no hook for {which!r}; registered handlers: {names}")
        return found

    def remove(self, which: Hook | Handler | str) -> list[Hook]:
        found = self.find(which)
        for hook in found:
            del self._hooks[hook.id]
            hook.enabled = False  # an event being handled skips it too
        self._changed()
        return found

    def set_enabled(self, which: Hook | Handler | str, enabled: bool) -> list[Hook]:
        found = self.find(which)
        for hook in found:
            hook.enabled = enabled
        self._changed()
        return found

    def clear(self) -> None:
        self._hooks.clear()
        self._changed()

    def table(self) -> tuple[list[HookSpec], list[Hook]]:
        """The guest's hook table (enabled, resolved hooks) and the hook of each entry."""
        hooks = [h for h in self if h.enabled and h.resolved]
        return [h.spec() for h in hooks], hooks

    def candidates(
        self,
        nr: int,
        enter: bool,
        observed: bool = False,
        compat: bool = False,
        batch: bool = False,
    ) -> list[Hook]:
        """Enabled hooks that may handle syscall ``nr`` in this direction, in order:
        the blocking ones, or with ``observed`` the observe-only (read_only) ones
        that take one event at a time (with ``batch`` too: those that take
        batches); ``compat``: ``nr`` is the compat ABI's (x86_64: ia32).

        ``nr`` may lie beyond the guest's table (all-syscall and unknown hooks
        see those calls); all such numbers share one cache entry, so a guest
        cannot grow the cache by sending many."""
        table = self.prototypes.for_abi(compat) if self.prototypes is not None else None
        beyond = table is not None and nr not in table
        key = (None if beyond else nr, enter, observed, compat, batch)
        cached = self._candidates.get(key)
        if cached is None:
            known = table.by_nr(nr).known if table is not None else True
            cached = [
                h
                for h in self
                if h.enabled
                and h.resolved
                and (h.enter if enter else h.ret)
                and h.read_only == observed
                and h.batch == batch
                and (
                    (h.spec_nr32 if compat else h.spec_nr) == nr
                    or h.spec_nr == NR_ALL
                    or (h.spec_nr == NR_UNKNOWN and not known)
                )
            ]
            self._candidates[key] = cached
        return cached

    def _changed(self) -> None:
        self._candidates.clear()
        self.has_batch = any(h.batch and h.enabled for h in self._hooks.values())
        self.version += 1
        for listener in list(self.listeners):
            listener()
