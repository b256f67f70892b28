"""The host's writes into shared memory store each word's final value only.

A reader process in C (the guest's view: plain loads on another CPU) watches a
word while the host rewrites it many times with values that are never 0; it
must never see 0.  ``struct.pack_into`` zeroes its destination before it
writes, so this fails with it (the window is a few instructions: the test
repeats the write until the reader has looked often enough)."""

from __future__ import annotations

import mmap
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from syscalls_async.portal.abi import store

READER = r"""
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

/* argv: file. Word 0 (u32) and word 1 (u64, at 8) are watched; word 4 (u32,
 * at 16) is the host's stop flag; word 5 (u32, at 20) says we run. */
int main(int argc, char **argv)
{
	int fd = open(argv[1], O_RDWR);
	volatile uint8_t *m = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	unsigned long zeros = 0, looks = 0;

	if (m == MAP_FAILED)
		return 2;
	*(volatile uint32_t *)(m + 20) = 1;
	while (!*(volatile uint32_t *)(m + 16)) {
		zeros += *(volatile uint32_t *)(m + 0) == 0;
		zeros += *(volatile uint64_t *)(m + 8) == 0;
		looks++;
	}
	printf("%lu %lu\n", zeros, looks);
	return 0;
}
"""


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
def test_a_word_the_guest_watches_never_passes_through_zero(tmp_path: Path) -> None:
    src, exe, shm = tmp_path / "reader.c", tmp_path / "reader", tmp_path / "shm"
    src.write_text(READER)
    subprocess.run(["cc", "-O2", "-o", str(exe), str(src)], check=True)
    shm.write_bytes(b"\0" * 4096)
    u32, u64 = struct.Struct("<I"), struct.Struct("<Q")
    with shm.open("r+b") as f, mmap.mmap(f.fileno(), 4096) as mm:
        store(u32, mm, 0, 1)
        store(u64, mm, 8, 1)
        reader = subprocess.Popen([str(exe), str(shm)], stdout=subprocess.PIPE)
        try:
            while u32.unpack_from(mm, 20)[0] == 0:  # the reader looks from now on
                pass
            for i in range(100_000):
                store(u32, mm, 0, 1 + (i & 1))
                store(u64, mm, 8, (1 << 40) + (i & 1))
        finally:
            store(u32, mm, 16, 1)
            out, _ = reader.communicate(timeout=30)
        zeros, looks = map(int, out.split())
    assert looks > 0
    assert zeros == 0, f"the reader saw a watched word at 0 {zeros} times in {looks} looks"
