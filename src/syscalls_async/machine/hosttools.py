"""The host programs the framework needs, and installing them when missing."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Iterable

from ..errors import SetupError

log = logging.getLogger("syscalls.machine")

#: program on PATH (or file) -> the Debian package that provides it
REQUIRED_TOOLS: dict[str, str] = {
    "qemu-system-x86_64": "qemu-system-x86",
    "/bin/busybox": "busybox-static",
    "gcc": "gcc",
    # the 32-bit guest tools (guest/ia32/), for the ia32 entry of the x86_64 guest
    "i686-linux-gnu-gcc": "gcc-i686-linux-gnu",
    "make": "make",
    "cpio": "cpio",
    "apt-get": "apt",
    "dpkg-deb": "dpkg",
}
#: needed to link the static guest tools and to build the module
REQUIRED_FILES: dict[str, str] = {
    "/usr/lib/x86_64-linux-gnu/libc.a": "libc6-dev",
    "/usr/i686-linux-gnu/lib/libc.a": "libc6-dev-i386-cross",
    "/usr/bin/bc": "bc",
}


def _present(tool: str) -> bool:
    if tool.startswith("/"):
        return os.path.exists(tool)
    return shutil.which(tool) is not None


def _needs_interpreter(path: str) -> bool:
    # Debian's dynamic busybox would need a libc inside the initramfs.
    with open(path, "rb") as f:
        head = f.read(4096)
    return b"/lib64/ld-linux" in head


def missing_packages() -> list[str]:
    """Debian packages whose programs or files are not on this host."""
    wanted = {pkg for tool, pkg in REQUIRED_TOOLS.items() if not _present(tool)}
    wanted |= {pkg for path, pkg in REQUIRED_FILES.items() if not os.path.exists(path)}
    if os.path.exists("/bin/busybox") and _needs_interpreter("/bin/busybox"):
        wanted.add("busybox-static")
    return sorted(wanted)


def ensure_host_tools(install: bool = False) -> None:
    """Say what to install, or with ``install`` (``syscalls-async setup``) install it.

    Idempotent: does nothing when everything is present.  The library never
    installs anything on its own: only the setup command and ``bootstrap.sh`` do.
    """
    missing = missing_packages()
    if not missing:
        return
    if not install or os.geteuid() != 0:
        raise SetupError(
            "missing host packages: "
            + " ".join(missing)
            + "\ninstall them with `sudo syscalls-async setup`, or as root with: "
            + "apt-get install -y "
            + " ".join(missing)
        )
    log.info("installing host packages: %s", " ".join(missing))
    _apt(["update"])
    _apt(["install", "-y", "--no-install-recommends", *missing])
    still = missing_packages()
    if still:
        raise SetupError("apt-get could not provide: " + " ".join(still))


def _apt(args: Iterable[str]) -> None:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "-q", *args]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SetupError(f"{' '.join(cmd)} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
