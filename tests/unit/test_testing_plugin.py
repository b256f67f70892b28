"""The kit's pytest plugin as a plugin author meets it: loaded by itself, fixtures by name.

Each test runs pytest in-process on a small project (``pytester``); no guest
is booted: the guest fixtures are stood in for where one would be needed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from syscalls_async import plugins

pytest_plugins = ("pytester",)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
AUTO = "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"


def test_the_example_test_file_passes_without_a_guest(pytester: pytest.Pytester) -> None:
    for name in ("test_example_plugin.py", "file_access.py", "skip_ioctl.py"):
        shutil.copy(EXAMPLES / name, pytester.path / name)
    pytester.makeini(AUTO)
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture
        def syscalls_session():
            pytest.skip("no guest in this run")
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, skipped=1)
    assert plugins.syscalls.hooks == []  # the fake guest fixture removed the examples' hooks


def test_guest_fixtures_share_the_session_loop_with_their_tests(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini(AUTO)
    pytester.makeconftest(
        """
        import asyncio
        import pytest_asyncio

        @pytest_asyncio.fixture(scope="session", loop_scope="session")
        async def syscalls_machine():
            yield asyncio.get_running_loop()   # stands in for the booted guest
        """
    )
    pytester.makepyfile(
        """
        import asyncio

        async def test_machine(syscalls_machine):
            assert asyncio.get_running_loop() is syscalls_machine

        async def test_unrelated(request):
            machine_loop = request.getfixturevalue("syscalls_machine")
            assert asyncio.get_running_loop() is not machine_loop
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
