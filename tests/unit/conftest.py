"""Host-only fixtures for the syscalls layer (see sysproto_table.py)."""

from __future__ import annotations

import pytest
from sysproto_table import make_table

from syscalls_async.syscalls import PrototypeTable, Registry


@pytest.fixture
def table() -> PrototypeTable:
    return make_table()


@pytest.fixture
def registry(table: PrototypeTable) -> Registry:
    """A fresh registry that already knows the prototypes (checks run at add())."""
    reg = Registry()
    reg.bind(table)
    return reg


@pytest.fixture(autouse=True)
def _no_image_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unit tests never see the prototypes cached for this machine's guest image."""
    monkeypatch.setenv("SYSCALLS_ASYNC_CACHE", str(tmp_path_factory.mktemp("cache")))
