"""Files into the guest before it boots, and out of it after a command.

In: host files become a second cpio archive appended to the image's
initramfs for this boot only (the kernel unpacks concatenated archives in
order), so they are in place before ``/init`` runs, need no guest driver and
cost no time on the slow command channel.  Executables keep their mode.

Out: the guest packs the path with busybox ``tar`` on the command channel and
the host unpacks it itself, trusting nothing in it: each name must stay under
the destination folder, only regular files and folders are written (links,
devices and the like are refused and counted), sizes and counts are bounded,
and nothing is created through a symlink or over a folder.
"""

from __future__ import annotations

import contextlib
import io
import os
import posixpath
import stat
import tarfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path, PurePosixPath
from typing import TypeVar

from ..errors import InvalidValue
from .cpio import Archive

#: where ``--add HOST_PATH`` puts a file without a guest path: the commands'
#: working folder, so ``--add ./prog -- ./prog`` runs it
DEFAULT_GUEST_DIR = "/root"
#: bytes ``add`` may put into the initramfs (the guest holds them in RAM twice while booting)
MAX_ADD_BYTES = 256 * 1024 * 1024
#: bytes ``collect`` accepts from the guest by default (the channel moves ~170 KB/s)
MAX_COLLECT_BYTES = 64 * 1024 * 1024
#: entries ``collect`` looks at by default
MAX_COLLECT_ENTRIES = 10_000
#: folders whose contents the guest's own mounts hide after boot
_HIDDEN_AT_BOOT = {"proc", "sys", "dev", "tmp", "run"}

T = TypeVar("T")
AddSpec = str | os.PathLike[str] | tuple[str | os.PathLike[str], str]


def guest_path(text: str) -> str:
    """Check a guest path: absolute, normalized, not ``/``; return it."""
    if "\0" in text or not text.startswith("/"):
        raise InvalidValue(f"guest path {text!r} must be absolute (start with /)")
    norm = posixpath.normpath(text)
    if norm != text.rstrip("/") or ".." in PurePosixPath(norm).parts or norm in ("/", "//"):
        raise InvalidValue(f"guest path {text!r} must be a plain path below / (no .., no //)")
    return norm


def parse_add(spec: AddSpec) -> tuple[Path, str]:
    """``HOST_PATH[:GUEST_PATH]`` (or a path, or a pair) -> (host path, guest path).

    The guest part is whatever follows the last ``:`` when it starts with
    ``/``; otherwise the whole text is the host path and the file goes to
    :data:`DEFAULT_GUEST_DIR` under its own name.
    """
    if isinstance(spec, tuple):
        host, guest = Path(spec[0]), guest_path(spec[1])
    else:
        text = os.fspath(spec)
        head, sep, tail = text.rpartition(":")
        if sep and head and tail.startswith("/"):
            host, guest = Path(head), guest_path(tail)
        else:
            host = Path(text)
            name = host.resolve().name
            if not name:
                raise InvalidValue(f"{text!r}: name a file or folder, not /")
            guest = f"{DEFAULT_GUEST_DIR}/{name}"
    if guest.split("/")[1] in _HIDDEN_AT_BOOT:
        raise InvalidValue(
            f"guest path {guest!r}: /{guest.split('/')[1]} is mounted over at boot; "
            f"choose another folder (e.g. {DEFAULT_GUEST_DIR})"
        )
    if not host.exists():
        raise InvalidValue(f"{str(host)!r} does not exist")
    if not (host.is_file() or host.is_dir()):
        raise InvalidValue(f"{str(host)!r} is neither a file nor a folder")
    return host, guest


def overlay(specs: Iterable[AddSpec], limit: int = MAX_ADD_BYTES) -> bytes:
    """A cpio archive (uncompressed) holding every added file at its guest path.

    Folders are added recursively, symlinks inside them kept as symlinks.
    """
    archive = Archive()
    made: set[str] = set()
    total = 0

    def parents(path: str) -> None:
        parts = path.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            folder = "/".join(parts[:i])
            if folder not in made:
                made.add(folder)
                archive.directory(folder)

    def add(host: Path, guest: str) -> None:
        nonlocal total
        info = host.lstat()
        if stat.S_ISLNK(info.st_mode):
            parents(guest)
            archive.symlink(guest, os.readlink(host))
        elif stat.S_ISDIR(info.st_mode):
            parents(guest)
            made.add(guest.strip("/"))
            archive.directory(guest, stat.S_IMODE(info.st_mode) | 0o700)
            for child in sorted(host.iterdir()):
                add(child, f"{guest}/{child.name}")
        elif stat.S_ISREG(info.st_mode):
            total += info.st_size
            if total > limit:
                raise InvalidValue(f"more than {limit} bytes to add in all (at {str(host)!r})")
            parents(guest)
            archive.file(guest, host.read_bytes(), stat.S_IMODE(info.st_mode))
        else:
            raise InvalidValue(f"{str(host)!r} is neither a file, a folder nor a symlink")

    for spec in specs:
        host, guest = parse_add(spec)
        add(host.resolve(), guest)  # the path the user named is followed
    return archive.raw()


# -- out of the guest -------------------------------------------------------------------


@dataclass
class Collected:
    """What :func:`unpack` wrote and what it refused (name and reason)."""

    files: list[Path] = field(default_factory=list)
    folders: list[Path] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum(p.stat().st_size for p in self.files)


def _member_parts(name: str) -> list[str] | None:
    """The path components of a tar name, or None if it would leave the folder."""
    if "\0" in name or name.startswith("/"):
        return None
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        return None
    return parts


def _open_folder(root_fd: int, parts: Sequence[str], create: bool) -> int:
    """An fd of ``root/parts...``, walked without following any symlink."""
    fd = os.dup(root_fd)
    try:
        for part in parts:
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=fd)
            new = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = new
    except BaseException:
        os.close(fd)
        raise
    return fd


def unpack(
    data: bytes,
    host_dir: str | os.PathLike[str],
    *,
    max_bytes: int = MAX_COLLECT_BYTES,
    max_entries: int = MAX_COLLECT_ENTRIES,
) -> Collected:
    """Write the regular files and folders of the tar stream ``data`` under ``host_dir``.

    ``host_dir`` is created if missing.  A file already there is replaced
    (atomically, never written through a symlink).  Entries that would leave
    ``host_dir``, that are not files or folders, or that go past ``max_bytes``
    or ``max_entries`` are refused and listed in :attr:`Collected.refused`.
    A stream that is not a tar archive raises :class:`InvalidValue`.
    """
    dest = Path(host_dir)
    dest.mkdir(parents=True, exist_ok=True)
    done = Collected()
    total = 0
    root = os.open(dest, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for count, member in enumerate(tar):
                name = member.name
                if count >= max_entries:
                    done.refused.append((name, f"more than {max_entries} entries"))
                    break
                parts = _member_parts(name)
                if parts is None:
                    done.refused.append((name, "outside the destination folder"))
                    continue
                if member.isdir():
                    if parts:
                        fd = _refusing(done, name, partial(_open_folder, root, parts, True))
                        if fd is not None:
                            os.close(fd)
                            done.folders.append(dest.joinpath(*parts))
                    continue
                if not member.isreg():
                    done.refused.append((name, "not a regular file or folder"))
                    continue
                if not parts:
                    done.refused.append((name, "no file name"))
                    continue
                if member.size < 0:
                    done.refused.append((name, "a negative size"))
                    continue
                if total + member.size > max_bytes:
                    done.refused.append((name, f"more than {max_bytes} bytes in all"))
                    continue
                source = tar.extractfile(member)
                assert source is not None
                content = source.read(member.size)
                total += len(content)
                mode = stat.S_IMODE(member.mode) & 0o755 | 0o600
                written = _refusing(done, name, partial(_write, root, parts, content, mode))
                if written:
                    done.files.append(dest.joinpath(*parts))
                elif written is False:
                    done.refused.append((name, "a folder is in the way"))
    except tarfile.TarError as exc:
        raise InvalidValue(f"the guest sent no valid tar archive: {exc}") from None
    finally:
        os.close(root)
    return done


def _refusing(done: Collected, name: str, action: Callable[[], T]) -> T | None:
    """Run ``action``; an OSError (a symlink or file in the way) refuses the entry."""
    try:
        return action()
    except OSError as exc:
        done.refused.append((name, exc.strerror or str(exc)))
        return None


def _write(root: int, parts: list[str], content: bytes, mode: int) -> bool:
    folder = _open_folder(root, parts[:-1], True)
    temp = f".{parts[-1]}.collecting"
    try:
        fd = os.open(
            temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode, dir_fd=folder
        )
        try:
            with os.fdopen(fd, "wb", closefd=False) as out:
                out.write(content)
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
        try:
            target = os.stat(parts[-1], dir_fd=folder, follow_symlinks=False)
        except FileNotFoundError:
            pass
        else:
            if stat.S_ISDIR(target.st_mode):
                os.unlink(temp, dir_fd=folder)
                return False
        os.rename(temp, parts[-1], src_dir_fd=folder, dst_dir_fd=folder)
        return True
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp, dir_fd=folder)
        raise
    finally:
        os.close(folder)
