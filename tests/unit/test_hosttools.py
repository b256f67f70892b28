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


def test_a_failed_apt_update_does_not_stop_the_install(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # apt-get update exits 100 when one index of many could not be fetched;
    # the install that follows is what says whether the packages are there
    installed: list[str] = []
    monkeypatch.setattr(hosttools.os, "geteuid", lambda: 0)
    monkeypatch.setattr(hosttools, "missing_architectures", lambda targets: [])
    monkeypatch.setattr(
        hosttools, "missing_packages", lambda target=None: [] if installed else ["qemu-system-x86"]
    )

    def run(cmd: list[str]) -> None:
        if cmd[-1] == "update":
            raise hosttools.SetupError("apt-get -q update failed (exit 100): mirror sync")
        installed.extend(cmd[cmd.index("install") + 1 :])

    monkeypatch.setattr(hosttools, "_run", run)
    hosttools.ensure_host_tools(install=True)
    assert "qemu-system-x86" in installed
    assert "apt-get update reported errors" in caplog.text
