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
