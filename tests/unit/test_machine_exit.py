"""How the machine words QEMU's end (host only)."""

from __future__ import annotations

import pytest

from syscalls_async.machine.qemu import _exit_reason


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (0, "QEMU exited with status 0"),
        (1, "QEMU exited with status 1"),
        (-9, "QEMU was killed by signal 9 (SIGKILL)"),
        (-15, "QEMU was killed by signal 15 (SIGTERM)"),
        (-40, "QEMU was killed by signal 40 (a real-time signal)"),
    ],
)
def test_exit_reason_names_the_signal(code: int, words: str) -> None:
    assert _exit_reason("QEMU", code) == words
