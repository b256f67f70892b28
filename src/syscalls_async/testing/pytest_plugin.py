"""pytest fixtures for plugin authors; pytest loads this module on its own.

The package registers it as a ``pytest11`` entry point, so every pytest run in
an environment where ``syscalls-async`` is installed has these fixtures:

``syscalls_fake_guest`` (function scope)
    A :class:`~syscalls_async.testing.FakeGuest` on the global ``plugins``: no
    guest, no boot.  Hooks registered during the test are removed after it.
``syscalls_image`` (session scope)
    The guest image, built the first time (minutes), reused after.
``syscalls_guests`` (session scope)
    A :class:`~syscalls_async.testing.guests.GuestPool`: one guest per
    architecture, booted when a test first asks for it
    (``await syscalls_guests.get("aarch64")``), shared by every later test and
    stopped at the end.
``syscalls_machine`` (session scope)
    The x86_64 guest of that pool (``-smp 2``), booted for the whole test run
    and shared by every test; stopped at the end.
``syscalls_session`` (function scope)
    A :class:`~syscalls_async.Session` on that guest with the global
    ``plugins``, hooks live when the test starts.  It fails fast: a handler that
    raises ends it with :class:`~syscalls_async.HandlerError` (the test fails).
    After the test the guest's hook table is cleared and the hooks registered
    during the test are removed (hooks registered before it, say by a plugin
    module imported at the top of the test file, stay).
    A test that expects a handler to fail makes its own session instead, inside
    ``pytest.raises(HandlerError)``: ``Session(plugins, machine=syscalls_machine,
    fail_fast=True)``.

Example::

    async def test_ioctl_is_skipped(syscalls_session):
        syscalls_session.load_plugin_file("skip_ioctl.py")
        result = await syscalls_session.run("send_syscall ioctl 9 0xabcd")
        assert result.stdout == b"send_syscall: syscall returned 43\\n"

The guest fixtures are async and need pytest-asyncio (``pip install
'syscalls-async[test]'``); they live in its session-wide event loop, and async
tests that use them are put in that loop too.  To override one (another
``smp``, say), define a fixture of the same name in your ``conftest.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar, cast

import pytest

if TYPE_CHECKING:
    from ..api import Session
    from ..machine import Image, Machine
    from .fake import FakeGuest
    from .guests import GuestPool

F = TypeVar("F", bound=Callable[..., Any])

#: fixtures that live in the session's event loop (so must the tests using them)
GUEST_FIXTURES = frozenset({"syscalls_machine", "syscalls_session", "syscalls_guests"})


def _async_fixture(**options: Any) -> Callable[[F], F]:
    """``pytest_asyncio.fixture``, or without it a fixture that says what is missing."""
    try:
        import pytest_asyncio
    except ImportError:

        def missing(func: F) -> F:
            def fail() -> None:
                pytest.fail(
                    f"the fixture {func.__name__} needs pytest-asyncio: "
                    "pip install 'syscalls-async[test]'",
                    pytrace=False,
                )

            scope = options.get("scope", "function")
            return cast(F, pytest.fixture(scope=scope, name=func.__name__)(fail))

        return missing
    decorate: Callable[[F], F] = pytest_asyncio.fixture(**options)
    return decorate


@pytest.fixture
def syscalls_fake_guest() -> Iterator[FakeGuest]:
    """A FakeGuest on the global ``plugins``; hooks registered in the test removed after."""
    from .fake import FakeGuest

    with FakeGuest() as guest:
        yield guest


@pytest.fixture(scope="session")
def syscalls_image() -> Image:
    """The guest image (built once, then taken from the cache)."""
    from ..machine import build_image

    return build_image()


@_async_fixture(scope="session", loop_scope="session")
async def syscalls_guests() -> AsyncIterator[GuestPool]:
    """One guest per architecture for the whole test run, each booted at first use."""
    from .guests import GuestPool

    pool = GuestPool(smp=2)
    try:
        yield pool
    finally:
        await pool.aclose()


@_async_fixture(scope="session", loop_scope="session")
async def syscalls_machine(syscalls_image: Image, syscalls_guests: GuestPool) -> Machine:
    """The x86_64 guest for the whole test run, booted at first use."""
    return await syscalls_guests.get("x86_64", syscalls_image)


@_async_fixture(loop_scope="session")
async def syscalls_session(syscalls_machine: Machine) -> AsyncIterator[Session]:
    """A fail-fast Session on the shared guest; the test's hooks are gone after it."""
    from .. import Session, plugins

    registry = plugins.syscalls.registry
    before = {hook.id for hook in registry}
    try:
        async with Session(plugins, machine=syscalls_machine, fail_fast=True) as session:
            yield session
    finally:
        for hook in registry:
            if hook.id not in before:
                registry.remove(hook)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run async tests that use the guest fixtures in the session's event loop."""
    for item in items:
        if GUEST_FIXTURES.isdisjoint(getattr(item, "fixturenames", ())):
            continue
        marker = item.get_closest_marker("asyncio")
        if marker is None or marker.kwargs.get("loop_scope") or marker.kwargs.get("scope"):
            continue  # not an asyncio test, or one that chose its loop
        item.add_marker(pytest.mark.asyncio(loop_scope="session"), append=False)
