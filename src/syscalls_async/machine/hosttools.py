"""The host programs each guest architecture needs, and installing them when missing.

What a target needs is in :mod:`.targets` (its QEMU, cross compiler, cross
libc); a foreign target also needs dpkg to know its architecture, so that
``apt-get download`` can fetch its kernel and busybox.  The library never
installs anything on its own: only ``syscalls-async setup`` and
``bootstrap.sh`` do; otherwise the error shows the exact commands.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Iterable

from ..errors import SetupError
from .targets import COMMON_FILES, COMMON_TOOLS, X86_64, Target

log = logging.getLogger("syscalls.machine")

#: program on PATH (or file) -> the Debian package that provides it (x86_64 guests)
REQUIRED_TOOLS: dict[str, str] = {**X86_64.tools, **COMMON_TOOLS}
#: needed to link the static guest tools and to build the module (x86_64 guests)
REQUIRED_FILES: dict[str, str] = {**X86_64.files, **COMMON_FILES}


def _present(tool: str) -> bool:
    if tool.startswith("/"):
        return os.path.exists(tool)
    return shutil.which(tool) is not None


def _needs_interpreter(path: str) -> bool:
    # Debian's dynamic busybox would need a libc inside the initramfs.
    with open(path, "rb") as f:
        head = f.read(4096)
    return b"/lib64/ld-linux" in head


def missing_packages(target: Target = X86_64) -> list[str]:
    """Debian packages whose programs or files ``target`` needs and this host lacks."""
    tools = {**target.tools, **COMMON_TOOLS}
    files = {**target.files, **COMMON_FILES}
    wanted = {pkg for tool, pkg in tools.items() if not _present(tool)}
    wanted |= {pkg for path, pkg in files.items() if not os.path.exists(path)}
    busybox = "/bin/busybox"
    if busybox in tools and os.path.exists(busybox) and _needs_interpreter(busybox):
        wanted.add("busybox-static")
    return sorted(wanted)


def foreign_architectures() -> set[str]:
    """The dpkg architectures besides the native one this host knows."""
    proc = subprocess.run(
        ["dpkg", "--print-foreign-architectures"], capture_output=True, text=True, check=False
    )
    return set(proc.stdout.split())


def missing_architectures(targets: Iterable[Target]) -> list[str]:
    """Foreign dpkg architectures ``targets`` need that dpkg does not know yet."""
    wanted = {t.debian_arch for t in targets if t.foreign}
    return sorted(wanted - foreign_architectures()) if wanted else []


def install_line(archs: list[str], packages: list[str]) -> str:
    """The shell line that provides ``archs`` and ``packages`` (as root)."""
    parts = [f"dpkg --add-architecture {a}" for a in archs]
    if archs or packages:
        parts.append("apt-get update")
    if packages:
        parts.append("apt-get install -y " + " ".join(packages))
    return "; ".join(parts)


def ensure_host_tools(install: bool = False, targets: Iterable[Target] = (X86_64,)) -> None:
    """Say what to install for ``targets``, or with ``install`` (``syscalls-async
    setup``) install it.

    Idempotent: does nothing when everything is present.
    """
    targets = list(targets)
    archs = missing_architectures(targets)
    missing = sorted({pkg for t in targets for pkg in missing_packages(t)})
    if not missing and not archs:
        return
    names = ", ".join(t.name for t in targets)
    if not install or os.geteuid() != 0:
        what = " ".join(missing + [f"(dpkg architecture {a})" for a in archs])
        raise SetupError(
            f"missing host packages for {names}: {what}\n"
            f"install them with `sudo syscalls-async setup --arch {targets[0].name}`, "
            f"or as root with: {install_line(archs, missing)}"
        )
    for arch in archs:
        log.info("adding dpkg architecture %s", arch)
        _run(["dpkg", "--add-architecture", arch])
    log.info("installing host packages for %s: %s", names, " ".join(missing))
    try:
        _apt(["update"])
    except SetupError as exc:
        # apt-get update fails (exit 100) when any one index could not be
        # fetched (a mirror syncing, a security index of a foreign arch) while
        # the lists it needs may well be there: let the install decide
        log.warning("apt-get update reported errors, installing anyway: %s", exc)
    if missing:
        _apt(["install", "-y", "--no-install-recommends", *missing])
    still = sorted({pkg for t in targets for pkg in missing_packages(t)})
    if still:
        raise SetupError("apt-get could not provide: " + " ".join(still))


def _apt(args: Iterable[str]) -> None:
    _run(["apt-get", "-q", *args])


def _run(cmd: list[str]) -> None:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SetupError(f"{' '.join(cmd)} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
