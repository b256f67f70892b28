"""The stat structs of each architecture, built field by field as the uapi
``asm/stat.h`` of each arch declares them (``struct.pack`` with the C padding
written out), decoded by :func:`strace_decode.stat_struct`."""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest

from syscalls_async.api import strace_decode as sd

MODE = 0o100640  # S_IFREG|0640
SIZE = 0x1_2345_6789  # beyond 32 bits where st_size is a long long
SHOWN = "{st_mode=S_IFREG|0640, st_size=4886718345, ...}"
# every other field a value that would show if an offset were off
DEV, INO, NLINK, UID, GID, RDEV, BLK, BLOCKS, T = 0x0803, 77, 3, 1000, 1001, 0x0104, 4096, 9, 5


def arm_stat64() -> bytes:
    """ARM EABI ``struct stat64``: long long 8-byte aligned, hence the 4x pads."""
    return struct.pack(
        "<Q4sLIILLQ4s4xqL4xQ6LQ",
        DEV, b"\0" * 4, INO, MODE, NLINK, UID, GID, RDEV, b"\0" * 4,
        SIZE, BLK, BLOCKS, T, 0, T, 0, T, 0, INO,
    )  # fmt: skip


def mips_stat64() -> bytes:
    """MIPS o32 ``struct stat64``: st_dev and st_rdev each with three pad words."""
    return struct.pack(
        "<L3LQIIIIL3Lq6LLLq",
        DEV, 0, 0, 0, INO, MODE, NLINK, UID, GID, RDEV, 0, 0, 0,
        SIZE, T, 0, T, 0, T, 0, BLK, 0, BLOCKS,
    )  # fmt: skip


def arm_stat(size: int) -> bytes:
    """ARM little-endian ``struct stat``: 16-bit mode, nlink, uid, gid; 32-bit size."""
    return struct.pack(
        "<LLHHHHLLLL6L2L",
        DEV, INO, MODE, NLINK, UID, GID, RDEV, size, BLK, BLOCKS, T, 0, T, 0, T, 0, 0, 0,
    )  # fmt: skip


def mips_stat(size: int) -> bytes:
    """MIPS o32 ``struct stat``: 32-bit st_size after st_pad2[2]."""
    return struct.pack(
        "<I3lLIIIII2llL6lll14l",
        DEV, 0, 0, 0, INO, MODE, NLINK, UID, GID, RDEV, 0, 0, size, 0,
        T, 0, T, 0, T, 0, BLK, BLOCKS, *[0] * 14,
    )  # fmt: skip


@pytest.mark.parametrize(("arch", "data"), [("armhf", arm_stat64()), ("mipsel", mips_stat64())])
def test_stat64_of_the_32_bit_archs(arch: str, data: bytes) -> None:
    assert len(data) == sd.STAT64_LAYOUTS[arch].size == 104
    assert sd.stat_struct(data, arch, "stat64buf") == SHOWN


@pytest.mark.parametrize(
    ("arch", "build", "size"), [("armhf", arm_stat, 64), ("mipsel", mips_stat, 144)]
)
def test_old_stat_of_the_32_bit_archs(arch: str, build: Callable[[int], bytes], size: int) -> None:
    data = build(30)
    assert len(data) == sd.STAT_LAYOUTS[arch].size == size
    assert sd.stat_struct(data, arch) == "{st_mode=S_IFREG|0640, st_size=30, ...}"
    # a 32-bit st_size: the kernel refuses (EOVERFLOW) sizes beyond MAX_NON_LFS
    assert sd.stat_struct(build(0x7FFFFFFF), arch).endswith("st_size=2147483647, ...}")


def test_the_layouts_differ_so_the_wrong_one_would_show_garbage() -> None:
    assert sd.stat_struct(arm_stat64(), "mipsel", "stat64buf") != SHOWN
    assert sd.stat_struct(mips_stat64(), "armhf", "stat64buf") != SHOWN


def test_stat64_calls_take_the_stat64_struct() -> None:
    for name in ("stat64", "lstat64", "fstat64", "fstatat64"):
        assert "stat64buf" in sd.SPECS[name]
    assert "stat64buf" in sd.RETURN_KINDS
    assert sd.SPECS["fstatat64"] == ("dirfd", "path", "stat64buf", "atflags")


def test_a_stat64_of_an_arch_without_one_is_not_decoded() -> None:
    """x86_64 and aarch64 have no stat64 calls: no layout, shown as a pointer."""
    assert sd.stat_layout("x86_64", "stat64buf") is None
    assert sd.stat_layout("aarch64", "stat64buf") is None
    assert sd.stat_layout("x86_64") == sd.STAT_LAYOUTS["x86_64"]
    assert sd.stat_struct(bytes(104), "x86_64", "stat64buf") == "{...}"
    assert sd.stat_struct(bytes(100), "armhf", "stat64buf") == "{...}"
