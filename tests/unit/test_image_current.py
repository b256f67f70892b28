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


def test_a_failed_apt_update_while_fetching_the_kernel_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the first download fails, apt-get update exits 100 (one index of many
    # unreachable), and the retried download works with the lists apt has
    monkeypatch.setenv("SYSCALLS_ASYNC_CACHE", str(tmp_path))
    monkeypatch.setattr(image_mod.os, "geteuid", lambda: 0)
    downloads: list[str] = []

    def download(release: str, debs: Path, target: Any) -> list[Path]:
        downloads.append(release)
        if len(downloads) == 1:
            raise image_mod.ImageBuildError("not in the lists")
        return []

    def run(cmd: list[str], what: str, cwd: Path | None = None) -> str:
        if cmd[-1] == "update":
            raise image_mod.ImageBuildError("apt-get update failed (exit 100)")
        return ""

    monkeypatch.setattr(image_mod, "_download", download)
    monkeypatch.setattr(image_mod, "_run", run)
    monkeypatch.setattr(image_mod, "_package_version", lambda *a: "1")
    monkeypatch.setattr(image_mod, "_point_headers_into_cache", lambda tree: None)

    tree = image_mod.fetch_kernel("6.1.0-0-amd64", update=True)

    assert downloads == ["6.1.0-0-amd64", "6.1.0-0-amd64"]
    assert (Path(tree.root) / ".complete").exists()
