"""Files in and out of the guest, host side: paths checked, archives built and unpacked safely."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from syscalls_async.errors import InvalidValue
from syscalls_async.machine.files import guest_path, overlay, parse_add, unpack


def _tar(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for info, data in members:
            info.size = len(data) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buf.getvalue()


def _entry(name: str, kind: bytes = tarfile.REGTYPE, **attrs: object) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = 0o644
    for key, value in attrs.items():
        setattr(info, key, value)
    return info


def _cpio_names(archive: bytes) -> dict[str, int]:
    """name -> mode of each entry of a newc archive."""
    names, at = {}, 0
    while True:
        header = archive[at : at + 110]
        mode, size, namesize = (int(header[6 + 8 * i : 14 + 8 * i], 16) for i in (1, 6, 11))
        name = archive[at + 110 : at + 110 + namesize - 1].decode()
        if name == "TRAILER!!!":
            return names
        names[name] = mode
        at += 110 + namesize
        at += -at % 4
        at += size + (-size % 4)


def test_guest_paths_must_be_plain_and_absolute() -> None:
    assert guest_path("/opt/x/") == "/opt/x"
    for bad in ("rel/x", "/", "/a/../b", "/a//b", "/a\0b", "/a/./b"):
        with pytest.raises(InvalidValue):
            guest_path(bad)


def test_add_specs(tmp_path: Path) -> None:
    prog = tmp_path / "prog"
    prog.write_bytes(b"x")
    odd = tmp_path / "a:b"
    odd.write_bytes(b"y")
    assert parse_add(str(prog)) == (prog, "/root/prog")
    assert parse_add(f"{prog}:/opt/tool") == (prog, "/opt/tool")
    assert parse_add(str(odd)) == (odd, "/root/a:b")  # no guest part: the whole is the host path
    assert parse_add((prog, "/usr/bin/p")) == (prog, "/usr/bin/p")
    with pytest.raises(InvalidValue, match="does not exist"):
        parse_add(str(tmp_path / "missing"))
    with pytest.raises(InvalidValue, match="mounted over at boot"):
        parse_add(f"{prog}:/tmp/prog")
    with pytest.raises(InvalidValue, match="plain path"):
        parse_add(f"{prog}:/root/../etc/passwd")


def test_overlay_keeps_modes_and_makes_parents(tmp_path: Path) -> None:
    prog = tmp_path / "prog"
    prog.write_bytes(b"\x7fELF")
    prog.chmod(0o750)
    folder = tmp_path / "samples"
    (folder / "deep").mkdir(parents=True)
    (folder / "deep" / "s.bin").write_bytes(b"s")
    (folder / "link").symlink_to("deep/s.bin")
    names = _cpio_names(overlay([str(prog), f"{folder}:/opt/samples"]))
    assert names["root/prog"] == stat.S_IFREG | 0o750
    assert stat.S_ISDIR(names["opt"]) and stat.S_ISDIR(names["opt/samples/deep"])
    assert names["opt/samples/deep/s.bin"] == stat.S_IFREG | 0o644
    assert stat.S_ISLNK(names["opt/samples/link"])


def test_overlay_is_bounded(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_bytes(b"x" * 100)
    with pytest.raises(InvalidValue, match="more than 99 bytes"):
        overlay([str(big)], limit=99)


def test_unpack_writes_files_and_folders(tmp_path: Path) -> None:
    data = _tar(
        (_entry("res", tarfile.DIRTYPE, mode=0o755), b""),
        (_entry("res/a.txt"), b"alpha"),
        (_entry("res/run", mode=0o4755), b"#!"),
    )
    got = unpack(data, tmp_path / "out")
    assert (tmp_path / "out/res/a.txt").read_bytes() == b"alpha"
    # setuid bits are not kept, execute bits are
    assert stat.S_IMODE((tmp_path / "out/res/run").stat().st_mode) == 0o755
    assert got.refused == [] and len(got.files) == 2


def test_unpack_refuses_what_would_escape_or_is_not_a_file(tmp_path: Path) -> None:
    outside = tmp_path / "victim"
    data = _tar(
        (_entry("../victim"), b"evil"),
        (_entry("/tmp/abs"), b"evil"),
        (_entry("a/../../victim"), b"evil"),
        (_entry("link", tarfile.SYMTYPE, linkname="/etc/passwd"), b""),
        (_entry("hard", tarfile.LNKTYPE, linkname="../victim"), b""),
        (_entry("dev", tarfile.CHRTYPE, devmajor=1, devminor=3), b""),
        (_entry("fifo", tarfile.FIFOTYPE), b""),
        (_entry("ok"), b"fine"),
    )
    got = unpack(data, tmp_path / "out")
    assert not outside.exists() and not Path("/tmp/abs").exists()
    assert [name for name, _ in got.refused] == [
        "../victim", "/tmp/abs", "a/../../victim", "link", "hard", "dev", "fifo",
    ]  # fmt: skip
    assert sorted(os.listdir(tmp_path / "out")) == ["ok"]


def test_unpack_never_writes_through_a_symlink_in_the_destination(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "res").symlink_to(target)
    (out / "file").symlink_to(target / "file")
    got = unpack(_tar((_entry("res/x"), b"x"), (_entry("file"), b"y")), out)
    assert os.listdir(target) == []
    assert [name for name, _ in got.refused] == ["res/x"]
    # the symlink named like the file is replaced, not followed
    assert not (out / "file").is_symlink() and (out / "file").read_bytes() == b"y"


def test_unpack_does_not_replace_a_folder(tmp_path: Path) -> None:
    (tmp_path / "out" / "res").mkdir(parents=True)
    got = unpack(_tar((_entry("res"), b"x")), tmp_path / "out")
    assert got.refused == [("res", "a folder is in the way")]
    assert os.listdir(tmp_path / "out") == ["res"] and (tmp_path / "out/res").is_dir()


def test_unpack_bounds_bytes_and_entries(tmp_path: Path) -> None:
    data = _tar(*((_entry(f"f{i}"), b"12345") for i in range(5)))
    got = unpack(data, tmp_path / "a", max_bytes=12)
    assert len(got.files) == 2 and all("bytes" in why for _, why in got.refused)
    got = unpack(data, tmp_path / "b", max_entries=3)
    assert len(got.files) == 3 and got.refused == [("f3", "more than 3 entries")]


def test_unpack_refuses_a_negative_size(tmp_path: Path) -> None:
    data = bytearray(_tar((_entry("neg"), b"abc")))
    data[124:136] = b"\xff" * 12  # base-256: -1
    data[148:156] = b"        "
    data[148:155] = b"%06o\0" % sum(data[:512])
    got = unpack(bytes(data), tmp_path / "out")
    assert got.files == [] and got.refused == [("neg", "a negative size")]


def test_unpack_refuses_garbage(tmp_path: Path) -> None:
    with pytest.raises(InvalidValue, match="no valid tar"):
        unpack(b"\x01" * 1024, tmp_path / "out")
