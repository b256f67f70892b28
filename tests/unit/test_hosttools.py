"""Set-up says exactly what to install when it cannot install it itself."""

from __future__ import annotations

import pytest

from syscalls_async import SetupError
from syscalls_async.machine import hosttools


def test_missing_tools_are_named_with_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        hosttools, "missing_packages", lambda target=None: ["busybox-static", "qemu-system-x86"]
    )
    with pytest.raises(SetupError) as info:
        hosttools.ensure_host_tools(install=False)
    assert "apt-get install -y busybox-static qemu-system-x86" in str(info.value)


def test_nothing_missing_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hosttools, "missing_packages", lambda target=None: [])
    hosttools.ensure_host_tools(install=False)
