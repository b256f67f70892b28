"""The bundled guest image: Debian's kernel plus a busybox initramfs.

The kernel and its matching headers are Debian packages, downloaded with
``apt-get download`` into the project's cache and unpacked there with
``dpkg-deb -x``; nothing is installed into the host system.  The initramfs
holds busybox, the guest tools built from ``guest/`` and the portal module
built from ``kernel/``.  An image is cached under the hash of all its inputs
and rebuilt when any of them changes.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec

from ..errors import ImageBuildError
from .cpio import Archive
from .hosttools import ensure_host_tools

log = logging.getLogger("syscalls.machine")

#: The guest kernel release built against by default.  When Debian no longer
#: serves it, the release that ``linux-image-amd64`` points to is used.
DEFAULT_KERNEL = "6.1.0-56-amd64"
#: Bumped whenever the image layout changes in a way the inputs don't show.
IMAGE_FORMAT = 1
MODULE_NAME = "syscalls_async.ko"


class Image(msgspec.Struct, frozen=True):
    """A built guest image, as recorded in its ``manifest.json``."""

    kernel: str
    initramfs: str
    kernel_release: str
    digest: str
    has_module: bool
    tools: list[str]
    built_at: float

    @property
    def directory(self) -> Path:
        return Path(self.initramfs).parent


def cache_dir() -> Path:
    """Where kernels and images live: ``$SYSCALLS_ASYNC_CACHE`` or the XDG cache."""
    env = os.environ.get("SYSCALLS_ASYNC_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "syscalls-async"


def source_root() -> Path:
    """The folder holding ``guest/`` and ``kernel/``: the checkout, or the wheel's data."""
    here = Path(__file__).resolve()
    for candidate in (here.parents[3], here.parents[1] / "_data"):
        if (candidate / "guest" / "agent.c").exists():
            return candidate
    raise ImageBuildError(f"guest sources not found near {here}")


# ---------------------------------------------------------------------------
# progress


@contextlib.contextmanager
def step(what: str) -> Iterator[None]:
    """Log a long step and its duration (the command line shows these on a terminal)."""
    start = time.monotonic()
    log.info("%s ...", what)
    yield
    log.info("%s: done in %.1f s", what, time.monotonic() - start)


def _run(cmd: list[str], what: str, cwd: Path | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        out = (proc.stdout + proc.stderr)[-4000:]
        raise ImageBuildError(f"{what} failed: {' '.join(cmd)} (exit {proc.returncode})\n{out}")
    return proc.stdout


# ---------------------------------------------------------------------------
# kernel packages


class KernelTree(msgspec.Struct, frozen=True):
    """An unpacked Debian kernel with its headers, inside the cache."""

    release: str
    root: str

    @property
    def vmlinuz(self) -> Path:
        return Path(self.root) / "boot" / f"vmlinuz-{self.release}"

    @property
    def headers(self) -> Path:
        return Path(self.root) / "usr" / "src" / f"linux-headers-{self.release}"

    @property
    def modules(self) -> Path:
        return Path(self.root) / "lib" / "modules" / self.release / "kernel"

    @property
    def unistd_64(self) -> Path:
        return self.headers / "arch/x86/include/generated/uapi/asm/unistd_64.h"

    @property
    def unistd_32(self) -> Path:
        """The ia32 numbers (32-bit programs on the x86_64 kernel)."""
        return self.headers / "arch/x86/include/generated/uapi/asm/unistd_32.h"


def _apt_options() -> list[str]:
    # apt's download sandbox user cannot write into root's cache.
    return ["-o", "APT::Sandbox::User=root"] if os.geteuid() == 0 else []


def _package_version(package: str) -> str | None:
    proc = subprocess.run(
        ["apt-cache", "show", "--no-all-versions", package],
        capture_output=True,
        text=True,
        check=False,
    )
    m = re.search(r"^Version: (\S+)", proc.stdout, re.M)
    return m.group(1) if m else None


def _latest_release() -> str | None:
    proc = subprocess.run(
        ["apt-cache", "depends", "linux-image-amd64"], capture_output=True, text=True, check=False
    )
    m = re.search(r"Depends: linux-image-(\S+-amd64)", proc.stdout)
    return m.group(1) if m else None


def _download(release: str, debs: Path) -> list[Path]:
    version = _package_version(f"linux-image-{release}")
    if version is None:
        raise ImageBuildError(f"Debian has no package linux-image-{release}")
    series = ".".join(release.split(".")[:2])
    abi = release.rsplit("-", 1)[0]
    packages = [
        f"linux-image-{release}={version}",
        f"linux-headers-{release}={version}",
        f"linux-headers-{abi}-common={version}",
        f"linux-kbuild-{series}={version}",
    ]
    debs.mkdir(parents=True, exist_ok=True)
    _run(["apt-get", *_apt_options(), "download", *packages], "downloading kernel packages", debs)
    names = [p.split("=")[0] + "_" for p in packages]
    found = [d for d in debs.glob("*.deb") if any(d.name.startswith(n) for n in names)]
    if len(found) != len(packages):
        raise ImageBuildError(f"expected {len(packages)} packages in {debs}, found {found}")
    return found


def fetch_kernel(release: str | None = None, *, update: bool = False) -> KernelTree:
    """Return the unpacked kernel tree, downloading and unpacking it if needed.

    ``release`` defaults to ``$SYSCALLS_ASYNC_KERNEL`` or :data:`DEFAULT_KERNEL`.
    The packages are fetched with ``apt-get download`` into the cache (nothing
    is installed); only with ``update`` (``syscalls-async setup``) may a
    failed download refresh the host's package lists and retry.
    """
    release = release or os.environ.get("SYSCALLS_ASYNC_KERNEL") or DEFAULT_KERNEL
    root = cache_dir() / "kernel" / release
    tree = KernelTree(release=release, root=str(root))
    if (root / ".complete").exists():
        return tree
    with tempfile.TemporaryDirectory(prefix="debs-", dir=cache_dir()) as tmp:
        with step(f"fetching Debian kernel {release}"):
            try:
                debs = _download(release, Path(tmp))
            except ImageBuildError:
                if not update or os.geteuid() != 0:
                    raise
                _run(["apt-get", "-q", "update"], "apt-get update")
                if _package_version(f"linux-image-{release}") is None:
                    latest = _latest_release()
                    if latest is None or latest == release:
                        raise
                    log.warning("kernel %s is gone from Debian, using %s", release, latest)
                    return fetch_kernel(latest, update=update)
                debs = _download(release, Path(tmp))
        with step(f"unpacking kernel {release}"):
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir(parents=True)
            for deb in debs:
                _run(["dpkg-deb", "-x", str(deb), str(root)], f"unpacking {deb.name}")
    _point_headers_into_cache(tree)
    (root / ".complete").touch()
    return tree


def _point_headers_into_cache(tree: KernelTree) -> None:
    # The arch headers' Makefile includes the common tree by absolute path.
    makefile = tree.headers / "Makefile"
    text = makefile.read_text()
    fixed = text.replace("include /usr/src/", f"include {tree.root}/usr/src/")
    makefile.write_text(fixed)


# ---------------------------------------------------------------------------
# building


def _sources(root: Path) -> list[Path]:
    files = []
    for sub in ("guest", "kernel"):
        d = root / sub
        if d.is_dir():
            files += [
                p
                for p in sorted(d.rglob("*"))
                if p.is_file()
                and not p.name.startswith(".")
                and p.suffix not in {".o", ".ko", ".cmd"}
            ]
    return files


def _digest(root: Path, tree: KernelTree) -> str:
    h = hashlib.sha256()
    h.update(f"format={IMAGE_FORMAT} kernel={tree.release}\n".encode())
    h.update(_run(["gcc", "--version"], "gcc --version").splitlines()[0].encode())
    h.update(_run([IA32_CC, "--version"], f"{IA32_CC} --version").splitlines()[0].encode())
    h.update(Path("/bin/busybox").read_bytes())
    for f in _sources(root):
        h.update(str(f.relative_to(root)).encode() + b"\0")
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _syscall_names_header(unistd: Path, array: str = "syscall_names") -> str:
    pairs = re.findall(r"#define __NR_(\w+) (\d+)", unistd.read_text())
    if not pairs:
        raise ImageBuildError(f"no syscall numbers in {unistd}")
    rows = "\n".join(f'\t{{ "{name}", {nr} }},' for name, nr in pairs)
    return (
        "/* generated by syscalls_async.machine.image from the guest kernel */\n"
        f"static const struct {{ const char *name; long nr; }} {array}[] = {{\n"
        f"{rows}\n}};\n"
    )


#: the compiler of the 32-bit guest tools (guest/ia32/*.c): static i386
#: programs that enter the x86_64 kernel through its ia32 entry
IA32_CC = "i686-linux-gnu-gcc"


def _compile(cc: str, c: Path, out: Path, src: Path) -> Path:
    binary = out / c.stem
    _run(
        [cc, "-static", "-O2", "-Wall", "-Werror", f"-I{out}", f"-I{src}", "-o", str(binary),
         str(c)],
        f"building guest tool {c.relative_to(src.parent)}",
    )  # fmt: skip
    return binary


def _build_tools(src: Path, tree: KernelTree, out: Path) -> dict[str, Path]:
    (out / "syscall_names.h").write_text(_syscall_names_header(tree.unistd_64))
    (out / "syscall_names32.h").write_text(_syscall_names_header(tree.unistd_32, "syscall_names32"))
    tools = {c.stem: _compile("gcc", c, out, src) for c in sorted(src.glob("*.c"))}
    for c in sorted((src / "ia32").glob("*.c")):
        tools[c.stem] = _compile(IA32_CC, c, out, src)
    return tools


def _build_module(src: Path, tree: KernelTree, out: Path) -> Path | None:
    if not (src / "Makefile").exists() and not (src / "Kbuild").exists():
        return None
    build = out / "kernel"
    shutil.copytree(src, build)
    jobs = str(os.cpu_count() or 1)
    _run(
        ["make", "-j", jobs, "-C", str(tree.headers), f"M={build}", "modules"],
        "building the kernel module",
    )
    module = build / MODULE_NAME
    if not module.exists():
        raise ImageBuildError(f"the module build made no {MODULE_NAME}")
    return module


def _assemble(init: Path, tools: dict[str, Path], modules: dict[str, Path]) -> bytes:
    ar = Archive()
    for d in (
        "bin",
        "sbin",
        "usr",
        "usr/bin",
        "usr/sbin",
        "dev",
        "proc",
        "sys",
        "tmp",
        "run",
        "etc",
        "root",
        "lib",
        "lib/modules",
    ):
        ar.directory(d)
    ar.char_device("dev/console", 5, 1)
    ar.file("init", init.read_bytes(), 0o755)
    ar.file("bin/busybox", Path("/bin/busybox").read_bytes(), 0o755)
    ar.symlink("bin/sh", "busybox")
    for name, path in tools.items():
        ar.file(f"bin/{name}", path.read_bytes(), 0o755)
    for name, path in modules.items():
        ar.file(f"lib/modules/{name}", path.read_bytes())
    ar.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
    ar.file("etc/group", b"root:x:0:\n")
    return ar.gzipped()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def images_dir() -> Path:
    return cache_dir() / "images"


def build_image(*, force: bool = False, install: bool = False) -> Image:
    """Build the default guest image, or return the cached one for the same inputs.

    Missing host packages raise :class:`SetupError` naming ``syscalls-async
    setup``; only ``install=True`` (what that command passes) runs
    ``apt-get install`` and ``apt-get update``.
    """
    ensure_host_tools(install=install)
    root = source_root()
    with _locked(cache_dir() / "build.lock"):
        tree = fetch_kernel(update=install)
        digest = _digest(root, tree)
        target = images_dir() / digest
        manifest = target / "manifest.json"
        if manifest.exists() and not force:
            return msgspec.json.decode(manifest.read_bytes(), type=Image)
        with (
            step(f"building guest image {digest}"),
            tempfile.TemporaryDirectory(prefix="build-", dir=cache_dir()) as tmp,
        ):
            work = Path(tmp)
            tools = _build_tools(root / "guest", tree, work)
            module = _build_module(root / "kernel", tree, work)
            modules = {
                name: tree.modules / "drivers/misc/pvpanic" / name
                for name in ("pvpanic.ko", "pvpanic-mmio.ko")
                if (tree.modules / "drivers/misc/pvpanic" / name).exists()
            }
            if module:
                modules[MODULE_NAME] = module
            initramfs = _assemble(root / "guest" / "init", tools, modules)
            staging = images_dir() / f".{digest}.tmp"
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
            (staging / "initramfs.cpio.gz").write_bytes(initramfs)
            shutil.copy2(tree.vmlinuz, staging / "vmlinuz")
            image = Image(
                kernel=str(target / "vmlinuz"),
                initramfs=str(target / "initramfs.cpio.gz"),
                kernel_release=tree.release,
                digest=digest,
                has_module=module is not None,
                tools=sorted(tools),
                built_at=time.time(),
            )
            (staging / "manifest.json").write_bytes(msgspec.json.format(msgspec.json.encode(image)))
            shutil.rmtree(target, ignore_errors=True)
            staging.rename(target)
        (images_dir() / "current").unlink(missing_ok=True)
        (images_dir() / "current").symlink_to(digest)
        return image


def current_image() -> Image | None:
    """The image built last, if any, without building anything."""
    manifest = images_dir() / "current" / "manifest.json"
    if not manifest.exists():
        return None
    return msgspec.json.decode(manifest.read_bytes(), type=Image)
