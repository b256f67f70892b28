"""Shared fixtures: one real guest booted per test session.

Integration tests take the ``machine`` fixture; it boots the default image
(with the portal module) once, with ``-smp 2``, and every test shares it.
Tests must leave the guest as they found it (remove their hooks, kill their
processes).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

from syscalls_async.machine import Image, Machine, build_image


@pytest.fixture(scope="session")
def image() -> Image:
    return build_image()


@pytest.fixture(scope="session")
async def machine(image: Image) -> AsyncIterator[Machine]:
    logging.getLogger("syscalls").setLevel(logging.DEBUG)
    async with Machine(image, smp=2) as m:
        yield m
