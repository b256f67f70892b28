"""Shared fixtures: one real guest booted per test session.

Integration tests take the ``machine`` fixture: the testing kit's
``syscalls_machine`` (the pytest plugin the package installs), the default
image with the portal module booted once with ``-smp 2`` and shared by every
test, the kit's own guest tests included.  Tests must leave the guest as they
found it (remove their hooks, kill their processes).
"""

from __future__ import annotations

import logging

import pytest

from syscalls_async.machine import Image, Machine


@pytest.fixture(scope="session")
def image(syscalls_image: Image) -> Image:
    return syscalls_image


@pytest.fixture(scope="session")
def machine(syscalls_machine: Machine) -> Machine:
    logging.getLogger("syscalls").setLevel(logging.DEBUG)
    return syscalls_machine
