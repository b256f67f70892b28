"""Plugin files go to the plugins object the caller runs, or are refused (no guest)."""

from __future__ import annotations

from pathlib import Path

import pytest

from syscalls_async import Session, plugins
from syscalls_async.api import Plugins
from syscalls_async.errors import RegistrationError
from syscalls_async.testing import FakeGuest

PLUGIN = (
    "from syscalls_async import plugins\n"
    "import pathlib\n"
    "pathlib.Path(__file__).with_suffix('.imported').touch()\n"
    "@plugins.syscalls.syscall('close')\n"
    "def on_close(regs, proto, syscall, fd): pass\n"
)


@pytest.fixture
def plugin_file(tmp_path: Path) -> Path:
    path = tmp_path / "closer.py"
    path.write_text(PLUGIN)
    return path


def test_a_session_of_its_own_plugins_refuses_a_plugin_file(plugin_file: Path) -> None:
    before = plugins.syscalls.hooks
    with pytest.raises(RegistrationError, match=r"global `plugins`.*never fire"):
        Session(Plugins()).load_plugin_file(plugin_file)
    # refused before anything ran: nothing imported, nothing registered anywhere
    assert not plugin_file.with_suffix(".imported").exists()
    assert plugins.syscalls.hooks == before


def test_a_fake_guest_of_its_own_plugins_refuses_a_plugin_file(plugin_file: Path) -> None:
    with FakeGuest(Plugins()) as guest, pytest.raises(RegistrationError, match="never fire"):
        guest.load_plugin_file(plugin_file)


async def test_a_session_of_the_global_plugins_loads_the_file(plugin_file: Path) -> None:
    before = plugins.syscalls.hooks
    Session(plugins).load_plugin_file(plugin_file)
    try:
        assert len(plugins.syscalls.hooks) == len(before) + 1
    finally:
        for hook in plugins.syscalls.hooks:
            if hook not in before:
                await plugins.syscalls.unregister(hook)
    assert plugins.syscalls.hooks == before
