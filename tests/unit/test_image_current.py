"""``images/current`` names the image of the sources at hand, also on a cache hit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

from syscalls_async.machine import image as image_mod


def _cached_image(images: Path, digest: str) -> None:
    where = images / digest
    where.mkdir(parents=True)
    img = image_mod.Image(
        kernel=str(where / "vmlinuz"),
        initramfs=str(where / "initramfs.cpio.gz"),
        kernel_release="6.1.0-0-amd64",
        digest=digest,
        has_module=True,
        tools=[],
        built_at=0.0,
    )
    (where / "manifest.json").write_bytes(msgspec.json.encode(img))


def test_a_cache_hit_points_current_at_the_image_it_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYSCALLS_ASYNC_CACHE", str(tmp_path))
    images = tmp_path / "images"
    _cached_image(images, "aaaa")  # built by another checkout, linked last
    _cached_image(images, "bbbb")  # these sources' image, cached earlier
    (images / "current").symlink_to("aaaa")

    def nothing(*args: Any, **kwargs: Any) -> None:
        return None

    monkeypatch.setattr(image_mod, "ensure_host_tools", nothing)
    monkeypatch.setattr(image_mod, "fetch_kernel", nothing)
    monkeypatch.setattr(image_mod, "fetch_busybox", nothing)
    monkeypatch.setattr(image_mod, "_digest", lambda *a: "bbbb")

    got = image_mod.build_image()

    assert got.digest == "bbbb"
    current = image_mod.current_image()
    assert current is not None and current.digest == "bbbb"
    assert not list(images.glob(".current*")), "no temporary link is left behind"
