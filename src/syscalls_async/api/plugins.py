"""The ``plugins`` object and the ``Plugin`` base class.

Example::

    from syscalls_async import Plugin, plugins

    class ExecLogger(Plugin):
        def __init__(self) -> None:
            plugins.syscalls.syscall("on_sys_execve_enter")(self.on_execve)

        async def on_execve(self, regs, proto, syscall, filename, argv, envp):
            print(await plugins.mem.read_str(filename), await plugins.mem.read_ptrlist(argv))
"""

from __future__ import annotations

import importlib.util
import inspect
import itertools
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import RegistrationError, StateError
from ..machine.targets import DEFAULT_TARGET, target_for
from .introspection import OSI, PortalAPI
from .mem import Mem
from .syscalls import SyscallsAPI

if TYPE_CHECKING:
    from .session import Session

log = logging.getLogger("syscalls")


class Plugin:
    """Base class of plugins: register hooks in ``__init__`` with bound methods.

    ``syscalls-async run FILE`` and :meth:`Session.load_plugin_file` create one
    instance of every ``Plugin`` subclass defined in the file.
    """


class Plugins:
    """``plugins.syscalls``, ``plugins.mem``, ``plugins.portal``, ``plugins.OSI``
    and ``plugins.arch``."""

    def __init__(self) -> None:
        self.syscalls = SyscallsAPI()
        self.mem = Mem()
        self.portal = PortalAPI()
        self.OSI = OSI()
        self.session: Session | None = None
        self._arch = DEFAULT_TARGET
        self._arch_read = False  # whether plugin code has asked for ``arch`` yet

    @property
    def arch(self) -> str:
        """The guest's architecture (``--arch`` name: ``x86_64``, ``aarch64``,
        ``armhf``, ``mipsel``), for what differs between architectures, such
        as ioctl request numbers.

        It is known before the guest boots, so a plugin file may read it while
        it registers its hooks: ``syscalls-async run --arch A`` sets it before
        importing the file, ``Session(arch=A)`` when it is created, and a
        running session sets it from its portal.  Without any of them (e.g.
        under :class:`~syscalls_async.testing.FakeGuest`) it is ``x86_64``.
        """
        self._arch_read = True
        return self._arch

    @arch.setter
    def arch(self, name: str) -> None:
        target_for(name)  # an unknown name is refused, listing the known ones
        if self._arch_read and name != self._arch:
            # hooks registered already may carry the other architecture's numbers
            log.warning(
                "plugin code read plugins.arch == %r before it became %r: hooks it "
                "registered may use %s's numbers; set plugins.arch (syscalls-async run "
                "--arch) before loading plugin files",
                self._arch,
                name,
                self._arch,
            )
        self._arch = name

    def _bind(self, session: Session) -> None:
        if self.session is not None:
            raise StateError("these plugins already belong to a running session")
        self.session = session
        self.syscalls._session = session

    def _unbind(self) -> None:
        self.session = None
        self.syscalls._session = None


#: The process-wide plugins object the reference API documents.
plugins = Plugins()

_module_ids = itertools.count(1)


def load_plugin_file(path: str | Path, into: Plugins | None = None) -> list[Plugin]:
    """Import a plugin file and instantiate every ``Plugin`` subclass it defines.

    Module-level decorated handlers register while the file is imported.  A
    plugin file registers on the global ``plugins`` (the object it imports), so
    ``into`` (the plugins object the caller runs) must be that one: loading for
    a ``Plugins()`` of one's own is refused, since its hooks would never fire.
    """
    if into is not None and into is not plugins:
        raise RegistrationError(
            "a plugin file registers its hooks on the global `plugins` (the object it "
            "imports), not on this Plugins() of your own, so they would never fire here: "
            "use Session(plugins) / FakeGuest(plugins) to load plugin files, or register "
            "the handlers on your own object (your_plugins.syscalls.syscall(...))"
        )
    path = Path(path)
    if not path.is_file():
        raise RegistrationError(f"plugin file {path} does not exist")
    name = f"syscalls_async_plugin_{path.stem}_{next(_module_ids)}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise RegistrationError(f"{path} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return [
        cls()
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, Plugin) and cls is not Plugin and cls.__module__ == name
    ]
