"""A deterministic writer for the cpio "newc" format the kernel unpacks.

Every entry gets mtime 0 and owner root, so the same inputs always give the
same bytes and the image hash stays meaningful.
"""

from __future__ import annotations

import gzip
import io
import stat
from dataclasses import dataclass, field


@dataclass
class Archive:
    """An in-memory initramfs; add entries, then :meth:`gzipped` it."""

    _buf: io.BytesIO = field(default_factory=io.BytesIO)
    _ino: int = 0

    def _entry(
        self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)
    ) -> None:
        self._ino += 1
        encoded = name.lstrip("/").encode() + b"\0"
        fields = (
            self._ino,
            mode,
            0,
            0,
            1,
            0,
            len(data),
            0,
            0,
            rdev[0],
            rdev[1],
            len(encoded),
            0,
        )
        header = b"070701" + b"".join(b"%08x" % v for v in fields)
        self._buf.write(header + encoded)
        self._pad()
        self._buf.write(data)
        self._pad()

    def _pad(self) -> None:
        self._buf.write(b"\0" * (-self._buf.tell() % 4))

    def directory(self, name: str, mode: int = 0o755) -> None:
        self._entry(name, stat.S_IFDIR | mode)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self._entry(name, stat.S_IFREG | mode, data)

    def symlink(self, name: str, target: str) -> None:
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def char_device(self, name: str, major: int, minor: int, mode: int = 0o600) -> None:
        self._entry(name, stat.S_IFCHR | mode, rdev=(major, minor))

    def raw(self) -> bytes:
        """The archive with its trailer, uncompressed (closes it)."""
        self._entry("TRAILER!!!", 0)
        return self._buf.getvalue()

    def gzipped(self) -> bytes:
        """The archive with its trailer, gzipped (closes it)."""
        return gzip.compress(self.raw(), compresslevel=6, mtime=0)
