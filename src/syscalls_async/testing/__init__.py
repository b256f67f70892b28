"""Testing plugins: handlers driven without a guest, and pytest fixtures with one.

Without a guest, a :class:`FakeGuest` runs your hooks on syscall events you
build, with a :class:`FakeMemory` answering ``plugins.mem``, and returns the
:class:`Verdict` the guest task would get::

    from syscalls_async.testing import FakeGuest

    async def test_shadow_is_refused():
        with FakeGuest() as guest:                      # hooks added inside are removed after
            guest.load_plugin_file("my_plugin.py")
            verdict = await guest.syscall("openat", -100, "/etc/shadow", 0, 0, comm="cat")
            assert verdict.skipped and verdict.retval == -13

With a guest, the pytest plugin (installed with the package, loaded by pytest
on its own) gives the fixtures ``syscalls_machine`` (one guest booted per test
run), ``syscalls_session`` (a :class:`~syscalls_async.Session` on it per test,
its hooks removed after the test) and ``syscalls_fake_guest`` (a FakeGuest per
test); see :mod:`syscalls_async.testing.pytest_plugin`.

:func:`replay` feeds a session's recording (``Session(record=PATH)``) to your
handlers again, without a guest, and reports where their verdicts differ.
"""

from __future__ import annotations

from .fake import (
    FakeGuest,
    FakeMemory,
    FakeTrap,
    Verdict,
    bundled_prototypes,
    default_prototypes,
    fake_event,
)
from .replay import Divergence, ReplayReport, ReplayTrap, replay

__all__ = [
    "FakeGuest",
    "Verdict",
    "FakeMemory",
    "FakeTrap",
    "fake_event",
    "default_prototypes",
    "bundled_prototypes",
    "replay",
    "ReplayReport",
    "Divergence",
    "ReplayTrap",
]
