"""The initramfs writer produces archives the standard cpio tool reads back."""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import pytest

from syscalls_async.machine.cpio import Archive


def _archive() -> bytes:
    ar = Archive()
    ar.directory("bin")
    ar.file("bin/tool", b"\x7fELF" + bytes(range(256)), 0o755)
    ar.symlink("bin/sh", "busybox")
    ar.char_device("dev/console", 5, 1)
    ar.file("odd-name.txt", b"x")  # name lengths that need padding
    return ar.gzipped()


def test_same_inputs_give_the_same_bytes() -> None:
    assert _archive() == _archive()


@pytest.mark.skipif(shutil.which("cpio") is None, reason="cpio not installed")
def test_cpio_lists_and_extracts_every_entry(tmp_path: Path) -> None:
    raw = gzip.decompress(_archive())
    listing = subprocess.run(
        ["cpio", "-itv"], input=raw, capture_output=True, check=True
    ).stdout.decode()
    names = [
        line.split()[-1] if "->" not in line else line.split()[-3] for line in listing.splitlines()
    ]
    assert names == ["bin", "bin/tool", "bin/sh", "dev/console", "odd-name.txt"]
    assert "crw-------" in listing
    # extract only regular files (device nodes need privileges we may lack)
    subprocess.run(
        ["cpio", "-id", "--quiet", "bin/tool", "odd-name.txt"],
        input=raw,
        cwd=tmp_path,
        check=True,
    )
    assert (tmp_path / "bin/tool").read_bytes() == b"\x7fELF" + bytes(range(256))
    assert (tmp_path / "bin/tool").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "odd-name.txt").read_bytes() == b"x"
