"""The bundled guest image: Debian's kernel plus a busybox initramfs.

The kernel and its matching headers are Debian packages, downloaded with
``apt-get download`` into the project's cache and unpacked there with
``dpkg-deb -x``; nothing is installed into the host system.  The initramfs
holds busybox, the guest tools built from ``guest/`` and the portal module
built from ``kernel/``.  An image is cached under the hash of all its inputs
and rebuilt when any of them changes.

Each architecture (:mod:`.targets`) has its own kernel release (the one its
``linux-image-<flavour>:<debarch>`` points to), busybox (Debian's
``busybox-static:<debarch>``, unpacked into the cache), and cross-built
module and tools; the digest covers the architecture, so images of several
architectures live side by side.  ``images/current`` names the last x86_64
image, ``images/current-<arch>`` the last of another architecture.
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
from .targets import X86_64, Target, target_for

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
    #: the ``--arch`` name of the guest (images built before it was recorded: x86_64)
    arch: str = X86_64.name

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
    #: the ``--arch`` name the kernel is for
    arch: str = X86_64.name

    @property
    def target(self) -> Target:
        return target_for(self.arch)

    @property
    def vmlinuz(self) -> Path:
        boot = Path(self.root) / "boot"
        zipped = boot / f"vmlinuz-{self.release}"
        # some flavours (MIPS malta) ship an ELF vmlinux instead
        plain = boot / f"vmlinux-{self.release}"
        return plain if not zipped.exists() and plain.exists() else zipped

    @property
    def headers(self) -> Path:
        return Path(self.root) / "usr" / "src" / f"linux-headers-{self.release}"

    @property
    def modules(self) -> Path:
        return Path(self.root) / "lib" / "modules" / self.release / "kernel"

    @property
    def common_headers(self) -> Path:
        """The ``linux-headers-<abi>-common`` tree (the arch-independent sources)."""
        abi = self.release[: -len(self.target.kernel_flavour) - 1]
        return Path(self.root) / "usr" / "src" / f"linux-headers-{abi}-common"

    @property
    def unistd_64(self) -> Path:
        return self.headers / X86_64.unistd_header

    @property
    def unistd_32(self) -> Path:
        """The ia32 numbers (32-bit programs on the x86_64 kernel)."""
        return self.headers / "arch/x86/include/generated/uapi/asm/unistd_32.h"


def _apt_options() -> list[str]:
    # apt's download sandbox user cannot write into root's cache.
    return ["-o", "APT::Sandbox::User=root"] if os.geteuid() == 0 else []


def _package_version(package: str) -> str | None:
    """The candidate version of ``package`` (``name`` or ``name:debarch``) apt knows."""
    proc = subprocess.run(
        ["apt-cache", "show", "--no-all-versions", package],
        capture_output=True,
        text=True,
        check=False,
    )
    m = re.search(r"^Version: (\S+)", proc.stdout, re.M)
    return m.group(1) if m else None


def _qualified(package: str, target: Target) -> str:
    """``package`` of ``target``'s Debian architecture (``name:arm64``), as apt names it."""
    return f"{package}:{target.debian_arch}" if target.foreign else package


def _latest_release(target: Target = X86_64) -> str | None:
    """The release ``linux-image-<flavour>`` of ``target``'s architecture points to."""
    meta = _qualified(f"linux-image-{target.kernel_flavour}", target)
    proc = subprocess.run(
        ["apt-cache", "depends", meta], capture_output=True, text=True, check=False
    )
    flavour = re.escape(target.kernel_flavour)
    m = re.search(rf"Depends: linux-image-(\S+-{flavour})\b", proc.stdout)
    return m.group(1) if m else None


def _download(release: str, debs: Path, target: Target = X86_64) -> list[Path]:
    image = _qualified(f"linux-image-{release}", target)
    version = _package_version(image)
    if version is None:
        raise ImageBuildError(f"Debian has no package {image}")
    series = ".".join(release.split(".")[:2])
    abi = release[: -len(target.kernel_flavour) - 1]
    packages = [
        f"{image}={version}",
        f"{_qualified(f'linux-headers-{release}', target)}={version}",
        # the common headers are arch: all; the kbuild tools run on this host
        f"linux-headers-{abi}-common={version}",
        f"linux-kbuild-{series}={version}",
    ]
    debs.mkdir(parents=True, exist_ok=True)
    _run(["apt-get", *_apt_options(), "download", *packages], "downloading kernel packages", debs)
    names = [p.split("=")[0].split(":")[0] + "_" for p in packages]
    found = [d for d in debs.glob("*.deb") if any(d.name.startswith(n) for n in names)]
    if len(found) != len(packages):
        raise ImageBuildError(f"expected {len(packages)} packages in {debs}, found {found}")
    return found


def default_release(target: Target = X86_64, *, refresh: bool = False) -> str:
    """The kernel release a guest of ``target`` gets: x86_64 ``$SYSCALLS_ASYNC_KERNEL``
    or :data:`DEFAULT_KERNEL`; another architecture the one unpacked in the cache
    already, else (or with ``refresh``: ``syscalls-async setup``) the latest its
    Debian index names (``$SYSCALLS_ASYNC_KERNEL_<ARCH>`` overrides).  Asking apt
    about a foreign architecture takes seconds, so a cached kernel is not asked
    about on every boot."""
    if target is X86_64:
        return os.environ.get("SYSCALLS_ASYNC_KERNEL") or DEFAULT_KERNEL
    forced = os.environ.get(f"SYSCALLS_ASYNC_KERNEL_{target.name.upper()}")
    if forced:
        return forced
    cached = sorted(
        (cache_dir() / "kernel").glob(f"*-{target.kernel_flavour}/.complete"),
        key=lambda p: [int(n) if n.isdigit() else n for n in re.split(r"[.-]", p.parent.name)],
    )
    if cached and not refresh:
        return cached[-1].parent.name
    latest = _latest_release(target)
    if latest is None:
        if cached:  # offline: the newest one unpacked before
            return cached[-1].parent.name
        raise ImageBuildError(
            f"apt knows no linux-image-{target.kernel_flavour}:{target.debian_arch}; "
            f"run `syscalls-async setup --arch {target.name}` (it adds the dpkg "
            "architecture and updates the package lists)"
        )
    return latest


def fetch_kernel(
    release: str | None = None, *, update: bool = False, target: Target = X86_64
) -> KernelTree:
    """Return the unpacked kernel tree, downloading and unpacking it if needed.

    ``release`` defaults to :func:`default_release`.  The packages are fetched
    with ``apt-get download`` into the cache (nothing is installed); only
    with ``update`` (``syscalls-async setup``) may a failed download refresh
    the host's package lists and retry.
    """
    release = release or default_release(target, refresh=update)
    root = cache_dir() / "kernel" / release
    tree = KernelTree(release=release, root=str(root), arch=target.name)
    if (root / ".complete").exists():
        return tree
    with tempfile.TemporaryDirectory(prefix="debs-", dir=cache_dir()) as tmp:
        with step(f"fetching Debian kernel {release}"):
            try:
                debs = _download(release, Path(tmp), target)
            except ImageBuildError:
                if not update or os.geteuid() != 0:
                    raise
                try:
                    _run(["apt-get", "-q", "update"], "apt-get update")
                except ImageBuildError as exc:  # one unreachable index: exit 100
                    log.warning("apt-get update reported errors, going on: %s", exc)
                if _package_version(_qualified(f"linux-image-{release}", target)) is None:
                    latest = _latest_release(target)
                    if latest is None or latest == release:
                        raise
                    log.warning("kernel %s is gone from Debian, using %s", release, latest)
                    return fetch_kernel(latest, update=update, target=target)
                debs = _download(release, Path(tmp), target)
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


def fetch_busybox(target: Target) -> Path:
    """The static busybox for ``target``: the host's ``/bin/busybox`` for x86_64,
    else Debian's ``busybox-static:<debarch>`` unpacked into the cache (never
    installed: ``apt-get download`` and ``dpkg-deb -x``)."""
    if not target.busybox_package:
        return Path("/bin/busybox")
    root = cache_dir() / "busybox" / target.debian_arch
    binary = root / "bin" / "busybox"
    if (root / ".complete").exists() and binary.exists():
        return binary
    with (
        step(f"fetching {target.busybox_package}"),
        tempfile.TemporaryDirectory(prefix="debs-", dir=cache_dir()) as tmp,
    ):
        _run(
            ["apt-get", *_apt_options(), "download", target.busybox_package],
            f"downloading {target.busybox_package}",
            Path(tmp),
        )
        debs = list(Path(tmp).glob("busybox-static_*.deb"))
        if len(debs) != 1:
            raise ImageBuildError(f"apt-get download {target.busybox_package} gave {debs}")
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        _run(["dpkg-deb", "-x", str(debs[0]), str(root)], f"unpacking {debs[0].name}")
    if not binary.exists():
        raise ImageBuildError(f"{target.busybox_package} has no /bin/busybox")
    (root / ".complete").touch()
    return binary


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


def _digest(root: Path, tree: KernelTree, busybox: Path) -> str:
    target = tree.target
    h = hashlib.sha256()
    h.update(f"format={IMAGE_FORMAT} kernel={tree.release}\n".encode())
    if target is not X86_64:  # (x86_64 digests stay what they were)
        h.update(f"arch={target.name}\n".encode())
    h.update(_run([target.gcc, "--version"], f"{target.gcc} --version").splitlines()[0].encode())
    if target is X86_64:
        h.update(_run([IA32_CC, "--version"], f"{IA32_CC} --version").splitlines()[0].encode())
    h.update(busybox.read_bytes())
    for f in _sources(root):
        h.update(str(f.relative_to(root)).encode() + b"\0")
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _syscall_numbers(tree: KernelTree) -> list[tuple[str, int]]:
    """(name, number) of each syscall of the guest kernel, from its unistd header."""
    if tree.target is X86_64:
        pairs = re.findall(r"#define __NR_(\w+) (\d+)", tree.unistd_64.read_text())
        return [(name, int(nr)) for name, nr in pairs]
    return unistd_numbers(tree)


def unistd_numbers(tree: KernelTree) -> list[tuple[str, int]]:
    """The ``__NR_*`` values of a foreign kernel's ``asm/unistd.h``, as its cross
    compiler's preprocessor sees them (numbers there are expressions such as
    ``(__NR_Linux + 3)`` or ``__NR3264_fcntl``), evaluated here."""
    target = tree.target
    karch = target.kernel_arch
    includes = []
    for base in (tree.headers, tree.common_headers):
        includes += [
            f"-I{base}/arch/{karch}/include/generated/uapi",
            f"-I{base}/arch/{karch}/include/uapi",
            f"-I{base}/include/uapi",
            f"-I{base}/include/generated/uapi",
        ]
    proc = subprocess.run(
        [target.gcc, "-E", "-dM", "-nostdinc", *includes, "-x", "c", "-"],
        input=f"#include <{target.unistd_header}>\n",
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise ImageBuildError(
            f"preprocessing {target.unistd_header} failed:\n{proc.stderr[-2000:]}"
        )
    macros = dict(re.findall(r"^#define (\w+) (.+)$", proc.stdout, re.M))
    pairs = []
    for name in macros:
        if name.startswith("__NR_") and name != "__NR_syscalls":
            value = _evaluate(name, macros, 0)
            if value is not None:
                pairs.append((name[len("__NR_") :], value))
    return sorted(pairs, key=lambda p: p[1])


_TOKEN = re.compile(r"\s*(?:(\d+)|(\w+)|([()+]))")


def _evaluate(name: str, macros: dict[str, str], depth: int) -> int | None:
    """The integer a macro of sums of numbers and other macros stands for, or None."""
    text = macros.get(name)
    if text is None or depth > 8:
        return None
    total, pos, text = 0, 0, text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            return None
        pos = m.end()
        if m.group(1):
            total += int(m.group(1))
        elif m.group(2):
            value = _evaluate(m.group(2), macros, depth + 1)
            if value is None:
                return None
            total += value
    return total if text else None


def _syscall_names_header(
    tree: KernelTree, pairs: list[tuple[str, int]] | None = None, array: str = "syscall_names"
) -> str:
    pairs = _syscall_numbers(tree) if pairs is None else pairs
    if not pairs:
        raise ImageBuildError(f"no syscall numbers for {tree.release}")
    rows = "\n".join(f'\t{{ "{name}", {nr} }},' for name, nr in pairs)
    return (
        "/* generated by syscalls_async.machine.image from the guest kernel */\n"
        f"static const struct {{ const char *name; long nr; }} {array}[] = {{\n"
        f"{rows}\n}};\n"
    )


#: the compiler of the 32-bit guest tools (``guest/ia32/*.c``, x86_64 guests
#: only): static i386 programs that enter the kernel through its ia32 entry
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
    (out / "syscall_names.h").write_text(_syscall_names_header(tree))
    tools = {c.stem: _compile(tree.target.gcc, c, out, src) for c in sorted(src.glob("*.c"))}
    if tree.target is X86_64:
        # 32-bit programs, with the kernel's ia32 numbers
        pairs = re.findall(r"#define __NR_(\w+) (\d+)", tree.unistd_32.read_text())
        header = _syscall_names_header(tree, [(n, int(nr)) for n, nr in pairs], "syscall_names32")
        (out / "syscall_names32.h").write_text(header)
        for c in sorted((src / "ia32").glob("*.c")):
            tools[c.stem] = _compile(IA32_CC, c, out, src)
    return tools


def _build_module(src: Path, tree: KernelTree, out: Path) -> Path | None:
    if not (src / "Makefile").exists() and not (src / "Kbuild").exists():
        return None
    build = out / "kernel"
    shutil.copytree(src, build)
    jobs = str(os.cpu_count() or 1)
    target = tree.target
    cross = (
        []
        if target is X86_64
        else [f"ARCH={target.kernel_arch}", f"CROSS_COMPILE={target.cross_prefix}"]
    )
    _run(
        ["make", "-j", jobs, *cross, "-C", str(tree.headers), f"M={build}", "modules"],
        f"building the kernel module for {target.name}",
    )
    module = build / MODULE_NAME
    if not module.exists():
        raise ImageBuildError(f"the module build made no {MODULE_NAME}")
    return module


def _assemble(init: Path, tools: dict[str, Path], modules: dict[str, Path], busybox: Path) -> bytes:
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
    ar.file("bin/busybox", busybox.read_bytes(), 0o755)
    ar.symlink("bin/sh", "busybox")
    for name, path in tools.items():
        ar.file(f"bin/{name}", path.read_bytes(), 0o755)
    for name, path in modules.items():
        ar.file(f"lib/modules/{name}", path.read_bytes())
    ar.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
    ar.file("etc/group", b"root:x:0:\n")
    return ar.gzipped()


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on the file ``path`` (made if missing): one
    builder at a time per cache entry, across processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def images_dir() -> Path:
    return cache_dir() / "images"


#: the panic device's guest modules, loaded by init when present
_PANIC_MODULES: dict[str, tuple[str, ...]] = {
    "pvpanic": ("pvpanic.ko", "pvpanic-mmio.ko"),
    "pvpanic-pci": ("pvpanic.ko", "pvpanic-pci.ko"),
    "": (),
}


def _current_link(target: Target) -> Path:
    """``images/current`` (x86_64) or ``images/current-<arch>``."""
    return images_dir() / ("current" if target is X86_64 else f"current-{target.name}")


def build_image(*, force: bool = False, install: bool = False, arch: str | None = None) -> Image:
    """Build the guest image of ``arch`` (default x86_64), or return the cached
    one for the same inputs.

    Missing host packages raise :class:`SetupError` naming ``syscalls-async
    setup``; only ``install=True`` (what that command passes) runs
    ``apt-get install`` and ``apt-get update``.
    """
    target = target_for(arch)
    ensure_host_tools(install=install, targets=[target])
    root = source_root()
    with locked(cache_dir() / "build.lock"):
        tree = fetch_kernel(update=install, target=target)
        busybox = fetch_busybox(target)
        digest = _digest(root, tree, busybox)
        where = images_dir() / digest
        manifest = where / "manifest.json"
        if manifest.exists() and not force:
            # the image of these sources becomes "current" even when it was cached
            # (another checkout may have built and linked a different one since)
            _point_current(target, digest)
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
                for name in _PANIC_MODULES[target.panic_device]
                if (tree.modules / "drivers/misc/pvpanic" / name).exists()
            }
            if module:
                modules[MODULE_NAME] = module
            initramfs = _assemble(root / "guest" / "init", tools, modules, busybox)
            staging = images_dir() / f".{digest}.tmp"
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
            (staging / "initramfs.cpio.gz").write_bytes(initramfs)
            shutil.copy2(tree.vmlinuz, staging / "vmlinuz")
            image = Image(
                kernel=str(where / "vmlinuz"),
                initramfs=str(where / "initramfs.cpio.gz"),
                kernel_release=tree.release,
                digest=digest,
                has_module=module is not None,
                tools=sorted(tools),
                built_at=time.time(),
                arch=target.name,
            )
            (staging / "manifest.json").write_bytes(msgspec.json.format(msgspec.json.encode(image)))
            shutil.rmtree(where, ignore_errors=True)
            staging.rename(where)
        _point_current(target, digest)
        return image


def _point_current(target: Target, digest: str) -> None:
    """Point ``current`` (or ``current-<arch>``) at ``digest``, replacing it atomically."""
    link = _current_link(target)
    tmp = link.with_name(f".{link.name}.{os.getpid()}")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(digest)
    tmp.replace(link)


def current_image(arch: str | None = None) -> Image | None:
    """The image of ``arch`` (default x86_64) built last, if any, without building anything."""
    manifest = _current_link(target_for(arch)) / "manifest.json"
    if not manifest.exists():
        return None
    return msgspec.json.decode(manifest.read_bytes(), type=Image)
