"""``plugins.arch``: the guest's architecture, known before the guest boots (no guest)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from syscalls_async import Session, plugins
from syscalls_async.api import Plugins
from syscalls_async.errors import InvalidValue
from syscalls_async.testing import FakeGuest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def global_arch() -> Iterator[None]:
    """The global plugins' architecture is put back after the test."""
    saved = plugins._arch, plugins._arch_read
    yield
    plugins._arch, plugins._arch_read = saved


def test_the_default_is_x86_64() -> None:
    assert Plugins().arch == "x86_64"


def test_a_session_tells_its_plugins_before_any_boot() -> None:
    own = Plugins()
    Session(own, arch="mipsel")  # created, not started: nothing boots
    assert own.arch == "mipsel"


def test_an_unknown_architecture_is_refused_naming_the_known_ones() -> None:
    own = Plugins()
    with pytest.raises(InvalidValue, match=r"'sparc'.*x86_64, aarch64, armhf, mipsel"):
        own.arch = "sparc"
    assert own.arch == "x86_64"


def test_changing_it_after_plugin_code_read_it_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    own = Plugins()
    own.arch = "aarch64"  # nobody read it yet: silent
    assert not caplog.records
    assert own.arch == "aarch64"
    with caplog.at_level(logging.WARNING, logger="syscalls"):
        own.arch = "mipsel"
    assert own.arch == "mipsel"
    (record,) = caplog.records
    assert "read plugins.arch == 'aarch64' before it became 'mipsel'" in record.getMessage()


@pytest.mark.usefixtures("global_arch")
@pytest.mark.parametrize(("arch", "hooked"), [("x86_64", False), ("mipsel", True)])
async def test_the_ioctl_example_takes_the_guests_request_numbers(
    arch: str, hooked: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    plugins.arch = arch
    with FakeGuest() as guest:
        guest.load_plugin_file(EXAMPLES / "ioctl_filter.py")
        # MIPS's FIOCLEX: in mipsel's range, out of x86_64's
        call = await guest.syscall(
            "ioctl", 1, 0x6601, 1, phase="return", retval=0, comm="send_syscall"
        )
    assert call.handlers_run == hooked
    printed = "Targeted ioctl: fd=1, cmd=0x6601, arg=0x1 -> 0\n"
    assert capsys.readouterr().out == (printed if hooked else "")
