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

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Unpack

import msgspec

from ..machine import current_image
from ..syscalls.prototypes import PrototypeTable, SyscallPrototype
from ..syscalls.registry import Hook, HookKwargs, HookOptions, Registry

if TYPE_CHECKING:
    from .session import Session

#: what unregister, disable_syscall and enable_syscall accept
Which = Hook | Callable[..., Any] | str


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
        current image (written by the first session that booted it)."""
        if self.registry.prototypes is not None or self._cache_tried:
            return
        self._cache_tried = True
        image = current_image()
        if image is not None:
            table = load_prototypes(prototype_cache(image.directory))
            if table is not None:
                self.registry.bind(table)

    # -- information ----------------------------------------------------------

    def get_syscall_info_by_name(self, name: str) -> SyscallPrototype | None:
        """The prototype of ``name`` (``open``, ``sys_open``, ``_sys_open``), or None.

        Before any session ran, this answers from the prototypes cached for the
        current image; with no cache at all it returns None.
        """
        if not isinstance(name, str):
            raise TypeError(f"a syscall name is a str, not {type(name).__name__}")
        self._ensure_prototypes()
        table = self.registry.prototypes
        return table.by_name(name) if table is not None else None

    @property
    def hooks(self) -> list[Hook]:
        """Every registered hook, in registration order."""
        return list(self.registry)


def prototype_cache(image_dir: Path) -> Path:
    return image_dir / "prototypes.json"


def load_prototypes(path: Path) -> PrototypeTable | None:
    try:
        protos = msgspec.json.decode(path.read_bytes(), type=list[SyscallPrototype])
    except (OSError, msgspec.DecodeError):
        return None
    return PrototypeTable(protos)


def save_prototypes(path: Path, table: PrototypeTable) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(msgspec.json.encode(list(table)))
    tmp.replace(path)
