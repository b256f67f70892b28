"""The prototype cache of an image: written once, by a pristine guest; checked on load (host only).

A guest that renames a syscall in its metadata must not change what later
runs see before they boot.
"""

from __future__ import annotations

import logging
from pathlib import Path

import msgspec
import pytest
from sysproto_table import OPENAT, PROTOS, make_table

from syscalls_async.api import syscalls as api_syscalls
from syscalls_async.api.syscalls import (
    PrototypeCache,
    SyscallsAPI,
    load_prototypes,
    prototype_cache,
    remember_prototypes,
)
from syscalls_async.errors import RegistrationError
from syscalls_async.machine import Image
from syscalls_async.syscalls import PrototypeTable, SyscallPrototype


def poisoned_table() -> PrototypeTable:
    renamed = msgspec.structs.replace(OPENAT, name="sys_openaz")
    return PrototypeTable(renamed if p is OPENAT else p for p in PROTOS)


@pytest.fixture
def image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Image:
    img = Image(
        kernel=str(tmp_path / "vmlinuz"),
        initramfs=str(tmp_path / "initramfs.cpio.gz"),
        kernel_release="6.1.0-test",
        digest="0123456789abcdef",
        has_module=True,
        tools=[],
        built_at=0.0,
    )
    monkeypatch.setattr(api_syscalls, "current_image", lambda: img)
    return img


def later_run_sees(name: str) -> SyscallPrototype | None:
    """What a new process sees before any session: the cache of the current image."""
    return SyscallsAPI().get_syscall_info_by_name(name)


def test_a_pristine_boot_writes_the_cache_once(image: Image) -> None:
    assert later_run_sees("openat") is None  # nothing cached yet
    assert remember_prototypes(image, make_table(), pristine=True)
    assert later_run_sees("openat") == OPENAT
    assert not remember_prototypes(image, make_table(), pristine=True)  # once


def test_a_guest_that_ran_workloads_never_writes_the_cache(image: Image) -> None:
    assert not remember_prototypes(image, poisoned_table(), pristine=False)
    assert not prototype_cache(image.directory).exists()
    remember_prototypes(image, make_table(), pristine=True)
    assert not remember_prototypes(image, poisoned_table(), pristine=False)
    assert later_run_sees("openat") == OPENAT


def test_a_differing_table_is_logged_and_not_written_back(
    image: Image, caplog: pytest.LogCaptureFixture
) -> None:
    remember_prototypes(image, make_table(), pristine=True)
    with caplog.at_level(logging.WARNING, logger="syscalls"):
        assert not remember_prototypes(image, poisoned_table(), pristine=True)
    assert any("differs" in r.getMessage() for r in caplog.records)
    assert later_run_sees("openat") == OPENAT and later_run_sees("openaz") is None
    api = SyscallsAPI()
    api.syscall("openat")(lambda r, p, s: None)  # still accepted before boot
    with pytest.raises(RegistrationError, match="did you mean openat"):
        SyscallsAPI().syscall("openaz")(lambda r, p, s: None)


def _entry(**changes: object) -> PrototypeCache:
    protos = [msgspec.structs.replace(OPENAT, **changes)]  # type: ignore[arg-type]
    return PrototypeCache("0123456789abcdef", protos)


FORGED: list[tuple[str, object]] = [
    ("another image's", PrototypeCache("fedcba9876543210", list(PROTOS))),
    ("old format (a bare list)", list(PROTOS)),
    ("a repeated name", PrototypeCache("0123456789abcdef", [OPENAT, OPENAT])),
    ("a bad name", _entry(name="sys_open\x1b[2Jat")),
    ("a number past the table", _entry(nr=100_000)),
    ("more types than arguments", _entry(nargs=2)),
    ("seven arguments", _entry(nargs=7, types=("int",) * 7, names=("a",) * 7)),
    ("a control character in a type", _entry(types=("int", "char\n*", "int", "int"))),
    ("not json", b"{not json"),
]


@pytest.mark.parametrize(("what", "cache"), FORGED, ids=[w for w, _ in FORGED])
def test_a_forged_or_foreign_cache_is_ignored_whole(
    image: Image, what: str, cache: object, caplog: pytest.LogCaptureFixture
) -> None:
    path = prototype_cache(image.directory)
    path.write_bytes(cache if isinstance(cache, bytes) else msgspec.json.encode(cache))
    with caplog.at_level(logging.WARNING, logger="syscalls"):
        assert load_prototypes(path, image.digest) is None
        assert later_run_sees("openat") is None
    assert any("ignoring the prototype cache" in r.getMessage() for r in caplog.records)
    # a pristine boot replaces what is not a valid cache
    assert remember_prototypes(image, make_table(), pristine=True)
    assert later_run_sees("openat") == OPENAT


def test_a_mipsel_table_numbered_from_4000_is_a_valid_cache(image: Image) -> None:
    # o32 numbers start at 4000 (ArchInfo.nr_base): such a table is no forgery
    protos = [
        SyscallPrototype("sys_unknown_4000", 4000, 0, (), (), known=False),
        SyscallPrototype("sys_read", 4003, 3, ("unsigned int", "char *", "size_t"),
                         ("fd", "buf", "count")),
    ]  # fmt: skip
    path = prototype_cache(image.directory)
    path.write_bytes(msgspec.json.encode(PrototypeCache(image.digest, protos)))
    table = load_prototypes(path, image.digest)
    assert table is not None and table.by_nr(4003).name == "sys_read"
