"""The testing kit's GuestPool: one guest per architecture, a failed boot not retried."""

from __future__ import annotations

from typing import Any

import pytest

from syscalls_async.errors import BootTimeout, InvalidValue
from syscalls_async.testing import guests
from syscalls_async.testing.guests import GuestPool


class FakeMachine:
    booted: list[str] = []
    fail: set[str] = set()

    def __init__(self, image: Any, *, smp: int, arch: str) -> None:
        self.arch = arch
        self.closed = False

    async def __aenter__(self) -> FakeMachine:
        FakeMachine.booted.append(self.arch)
        if self.arch in FakeMachine.fail:
            raise BootTimeout(f"{self.arch} did not boot")
        return self

    async def aclose(self) -> None:
        self.closed = True


@pytest.fixture
def fake_machines(monkeypatch: pytest.MonkeyPatch) -> type[FakeMachine]:
    FakeMachine.booted, FakeMachine.fail = [], set()
    monkeypatch.setattr(guests, "Machine", FakeMachine)
    monkeypatch.setattr(guests, "build_image", lambda arch: f"image-{arch}")
    return FakeMachine


async def test_one_boot_per_arch_shared_by_every_ask(fake_machines: type[FakeMachine]) -> None:
    pool = GuestPool()
    a = await pool.get("aarch64")
    assert await pool.get("aarch64") is a
    x = await pool.get("x86_64")
    assert x is not a and fake_machines.booted == ["aarch64", "x86_64"]
    assert set(pool.boot_seconds) == {"aarch64", "x86_64"}
    await pool.aclose()
    assert a.closed and x.closed  # type: ignore[attr-defined]


async def test_a_failed_boot_fails_every_later_ask_at_once(
    fake_machines: type[FakeMachine],
) -> None:
    fake_machines.fail = {"armhf"}
    pool = GuestPool()
    for _ in range(3):
        with pytest.raises(BootTimeout, match="armhf did not boot"):
            await pool.get("armhf")
    assert fake_machines.booted == ["armhf"]  # booted once, not once per test


async def test_an_unknown_arch_is_refused_before_any_boot(
    fake_machines: type[FakeMachine],
) -> None:
    with pytest.raises(InvalidValue, match="choose one of"):
        await GuestPool().get("sparc")
    assert fake_machines.booted == []
