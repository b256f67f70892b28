"""``plugins.syscalls``: registering hooks, turning them on and off.

Two ways to register, with the same parameters:

- the decorator ``@plugins.syscalls.syscall(...)`` registers at once and, while a
  session runs, *schedules* the guest's table update (hooks declared before the
  session starts are all live before its first workload command runs);
- ``await plugins.syscalls.register(handler, ...)`` returns only once the hook
  is live in the guest: every matching syscall started after that is seen.

Both return the :class:`~syscalls_async.syscalls.Hook` of that one
registration (callable as the handler).  ``disable_syscall``,
``enable_syscall`` and ``unregister`` take a Hook (that registration), a
handler (every registration of it) or a handler's name (every registration of
a handler so named), and are awaited the same way: when they return, the
guest's table says so.

Example::

    first = plugins.syscalls.syscall("on_sys_getpid_return", read_only=True)(self.count)
    plugins.syscalls.syscall("on_sys_getpid_return", read_only=True)(self.count)
    await plugins.syscalls.unregister(first)       # the second one keeps firing
    await plugins.syscalls.unregister(self.count)  # every one left of it: the second
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Unpack

import msgspec

from ..errors import InvalidType, SyscallsAsyncError
from ..machine import Image, current_image
from ..portal.abi import C
from ..portal.arch import ARCHS
from ..syscalls.prototypes import PrototypeTable, SyscallPrototype
from ..syscalls.registry import Hook, HookKwargs, HookOptions, Registry

if TYPE_CHECKING:
    from .session import Session

#: what unregister, disable_syscall and enable_syscall accept
Which = Hook | Callable[..., Any] | str
log = logging.getLogger("syscalls")


class SyscallsAPI:
    """The hook registry as users see it."""

    def __init__(self) -> None:
        self.registry = Registry()
        self._session: Session | None = None
        self._cache_tried = False

    # -- registration ---------------------------------------------------------

    def syscall(
        self, name_or_pattern: str | None = None, **options: Unpack[HookKwargs]
    ) -> Callable[[Callable[..., Any]], Hook]:
        """Decorator: hook ``name_or_pattern`` with the decorated handler.

        Raises :class:`RegistrationError` at once for wrong parameters (an
        unknown keyword included).  Returns the :class:`Hook` of this one
        registration; it calls the handler when called, so the decorated
        function can still be called directly or decorated again.
        """
        # validate the parameters now, before a handler is even given
        from ..syscalls.names import parse_target

        parse_target(name_or_pattern)
        checked = HookOptions.of(options, "syscall()")

        def decorate(handler: Callable[..., Any]) -> Hook:
            return self._add(handler, name_or_pattern, checked)

        return decorate

    async def register(
        self,
        handler: Callable[..., Any],
        name_or_pattern: str | None = None,
        **options: Unpack[HookKwargs],
    ) -> Hook:
        """Register ``handler`` and return once the hook is live in the guest."""
        hook = self._add(handler, name_or_pattern, HookOptions.of(options, "register()"))
        await self.synced()
        return hook

    def _add(
        self, handler: Callable[..., Any], name_or_pattern: str | None, options: HookOptions
    ) -> Hook:
        self._ensure_prototypes()
        return self.registry.add_with(handler, name_or_pattern, options)

    async def unregister(self, which: Which) -> None:
        """Remove hooks; returns once the guest's table no longer has them.

        ``which`` is a :class:`Hook` (what registering returned: that one
        registration), a handler function or bound method (every registration
        of it) or a handler's name (every registration of a handler so named).
        """
        self.registry.remove(which)
        await self.synced()

    async def disable_syscall(self, which: Which) -> None:
        """Stop calling hooks until enabled (``which`` as for :meth:`unregister`)."""
        self.registry.set_enabled(which, False)
        await self.synced()

    async def enable_syscall(self, which: Which) -> None:
        """Call hooks again (``which`` as for :meth:`unregister`)."""
        self.registry.set_enabled(which, True)
        await self.synced()

    async def synced(self) -> None:
        """Wait until the guest's hook table reflects every change made so far.

        Without a running session there is nothing to wait for: the session
        puts the table in force when it starts.
        """
        if self._session is not None:
            await self._session.sync_hooks()

    def _ensure_prototypes(self) -> None:
        """Before any session ran, validate against the prototypes cached for the
        current image (written by the first session that booted it; see
        :func:`remember_prototypes`)."""
        if self.registry.prototypes is not None or self._cache_tried:
            return
        self._cache_tried = True
        image = current_image()
        if image is not None:
            table = load_prototypes(prototype_cache(image.directory), image.digest)
            if table is not None:
                self.registry.bind(table)

    # -- information ----------------------------------------------------------

    def get_syscall_info_by_name(self, name: str) -> SyscallPrototype | None:
        """The prototype of ``name`` (``open``, ``sys_open``, ``_sys_open``), or None.

        Before any session ran, this answers from the prototypes cached for the
        current image; with no cache at all it returns None.
        """
        if not isinstance(name, str):
            raise InvalidType(f"a syscall name is a str, not {type(name).__name__}")
        self._ensure_prototypes()
        table = self.registry.prototypes
        return table.by_name(name) if table is not None else None

    @property
    def hooks(self) -> list[Hook]:
        """Every registered hook, in registration order."""
        return list(self.registry)


class PrototypeCache(msgspec.Struct, frozen=True):
    """An image's syscall prototypes, as a pristine boot of it reported them."""

    #: the digest of the image they belong to
    image: str
    #: both ABIs' (``compat`` tells which)
    prototypes: list[SyscallPrototype]


_NAME = re.compile(r"sys_[a-z0-9_]{1,36}")
_TYPE = re.compile(r"[A-Za-z0-9_ *]{1,47}")


def prototype_cache(image_dir: Path) -> Path:
    return image_dir / "prototypes.json"


def remember_prototypes(image: Image, table: PrototypeTable, *, pristine: bool) -> bool:
    """Cache ``table`` for ``image`` if it may be; True if written.

    The guest is untrusted and the cached table decides what later runs
    accept before they boot, so it is written only from a *pristine* guest
    (booted by the caller: nothing but the image's own init ran before the
    portal read the table, while a workload could have reloaded the module
    with any metadata) and only once per image.  A table that differs from
    the cached one is logged and never written back.
    """
    if not pristine:
        return False
    path = prototype_cache(image.directory)
    cached = load_prototypes(path, image.digest)
    if cached is not None:
        if sorted(cached.all(), key=_nr) != sorted(table.all(), key=_nr):
            log.warning(
                "the guest's syscall table differs from the one cached for image %s; "
                "the cache is kept",
                image.digest,
            )
        return False
    save_prototypes(path, table, image.digest)
    return True


def save_prototypes(path: Path, table: PrototypeTable, image_digest: str = "") -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(msgspec.json.encode(PrototypeCache(image_digest, table.all())))
    tmp.replace(path)


class _InvalidCache(SyscallsAsyncError):
    """A prototype cache that does not pass the checks (it is ignored whole)."""


def load_prototypes(path: Path, image_digest: str | None = None) -> PrototypeTable | None:
    """The table cached at ``path`` (for the image ``image_digest`` if given);
    None if there is none or it does not pass the checks (then it is ignored
    whole, with a warning: never trusted in part)."""
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    try:
        cache = msgspec.json.decode(raw, type=PrototypeCache)
        if image_digest is not None and cache.image != image_digest:
            raise _InvalidCache(f"it was written for image {cache.image!r}")
        native = [p for p in cache.prototypes if not p.compat]
        compat = [p for p in cache.prototypes if p.compat]
        _check_prototypes(native)
        _check_prototypes(compat)
    except (msgspec.DecodeError, _InvalidCache) as exc:
        log.warning("ignoring the prototype cache %s: %s", path, exc)
        return None
    return PrototypeTable(native, compat)


def _nr(p: SyscallPrototype) -> tuple[bool, int]:
    return p.compat, p.nr


def _check_prototypes(protos: list[SyscallPrototype]) -> None:
    """What the portal's decoder guarantees of a guest's table, checked again."""
    nrs: set[int] = set()
    names: set[str] = set()
    # a table's numbers start at its architecture's base (mipsel: 4000)
    bases = {a.nr_base for a in ARCHS.values()}
    for p in protos:
        if not any(b <= p.nr < b + C.SA_MAX_SYSCALLS for b in bases) or p.nr in nrs:
            raise _InvalidCache(f"bad or repeated syscall number {p.nr}")
        nrs.add(p.nr)
        if not p.known:
            if (p.name, p.nargs, p.types, p.names) != (f"sys_unknown_{p.nr}", 0, (), ()):
                raise _InvalidCache(f"syscall {p.nr} has no metadata but says otherwise")
            continue
        if not _NAME.fullmatch(p.name) or p.name in names:
            raise _InvalidCache(f"syscall {p.nr} has a bad or repeated name {p.name!r}")
        names.add(p.name)
        if not p.prototype and p.nargs:
            raise _InvalidCache(f"{p.name}: no prototype but {p.nargs} arguments")
        if not 0 <= p.nargs <= C.SA_MAX_ARGS or not len(p.types) == len(p.names) == p.nargs:
            raise _InvalidCache(f"{p.name}: {p.nargs} arguments but {len(p.types)} types")
        if not all(_TYPE.fullmatch(t) for t in p.types):
            raise _InvalidCache(f"{p.name}: bad argument types {p.types!r}")
