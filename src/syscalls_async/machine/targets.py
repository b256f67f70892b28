"""How to build and boot a guest of each architecture: one :class:`Target` each.

The host's view of a guest's registers and ABI is
:class:`~syscalls_async.portal.arch.ArchInfo`; this is the machine side: the
Debian architecture its kernel, headers and busybox come from, the cross
compiler that builds the module and the guest tools, the QEMU that runs it,
and how the console, the agent's serial line, the panic device and the
doorbell are wired.  A new architecture is one entry in :data:`TARGETS`::

    target = target_for("aarch64")
    target.qemu  # 'qemu-system-aarch64'

Design choices per board:

* x86_64 (``pc``): console ttyS0 and agent ttyS1 are the two ISA UARTs; the
  doorbell is QEMU's ``isa-debugcon`` on I/O port ``SA_BELL_PORT``.
* aarch64 and armhf (``virt``): the board has one PL011 (console ttyAMA0);
  the agent gets a ``pci-serial`` device, an 8250 the kernel names ttyS0
  (``CONFIG_SERIAL_8250_PCI=y`` in Debian's arm64 and armmp kernels).  There
  is no I/O port doorbell: the module writes ``bell_port`` 0 and the host
  polls (its sleeping phase is never entered).
* mipsel (``malta``): console ttyS0 and agent ttyS1 are the board's two
  UARTs; no doorbell either, and no ivshmem (QEMU builds it only for boards
  with MSI): the portal region is a range in the middle of the guest's RAM,
  whose backing file the host maps (``region_in_ram``).
"""

from __future__ import annotations

from typing import Literal

import msgspec

from ..errors import InvalidValue


class Target(msgspec.Struct, frozen=True):
    """What it takes to build and boot a guest of one architecture."""

    #: the ``--arch`` name, equal to :attr:`ArchInfo.name`
    name: str
    #: Debian's architecture name (``dpkg --print-architecture``)
    debian_arch: str
    #: Debian's kernel flavour: ``linux-image-<flavour>`` names the latest release
    kernel_flavour: str
    #: ``CROSS_COMPILE`` and the compiler prefix of the guest tools; "" on the host's arch
    cross_prefix: str
    #: the kernel's ``ARCH=`` for the module build
    kernel_arch: str
    #: the module's file behind ``kernel/arch.h`` for it (``kernel/Kbuild`` picks it)
    kernel_source: str
    #: where the syscall numbers are, relative to the arch headers tree
    #: (x86_64: parsed as is; others: run through the cross preprocessor)
    unistd_header: str
    qemu: str
    #: ``-machine`` and ``-cpu`` (and other board) arguments
    board_args: tuple[str, ...]
    #: the kernel's name of the console UART (``console=`` on the command line)
    console: str
    #: how the agent's serial line is attached: a second ``-serial`` or a device
    agent_serial: Literal["serial", "pci-serial"]
    #: the guest's device the agent talks on
    agent_tty: str
    #: QEMU device reporting panics (its guest module is loaded by init), or ""
    panic_device: str
    #: whether the doorbell (``isa-debugcon`` on an x86 I/O port) exists
    doorbell: bool
    #: whether KVM may run it (same architecture as the host)
    native: bool
    #: the busybox Debian package, downloaded and unpacked into the cache
    #: (never installed); "" takes the host's ``/bin/busybox``
    busybox_package: str
    #: host programs -> Debian package providing each
    tools: dict[str, str]
    #: host files -> Debian package providing each
    files: dict[str, str]
    #: guest RAM this board takes at most (MiB), 0: no limit of its own
    max_memory_mib: int = 0
    #: virtual CPUs this board boots with at most, 0: no limit of its own
    max_smp: int = 0
    #: the portal region is a range of the guest's own RAM, not an
    #: ivshmem-plain BAR (QEMU has no ivshmem for this board): the RAM is
    #: backed by the shared file, the kernel is told to leave the range
    #: alone (``mem=`` around it) and the module maps it (see
    #: :func:`syscalls_async.machine.qemu.ram_region`)
    region_in_ram: bool = False

    @property
    def gcc(self) -> str:
        return f"{self.cross_prefix}gcc"

    @property
    def foreign(self) -> bool:
        """Whether its Debian packages are of a foreign dpkg architecture."""
        return self.debian_arch != "amd64"


#: what every guest needs on the host, whatever its architecture
COMMON_TOOLS: dict[str, str] = {
    "gcc": "gcc",
    "make": "make",
    "cpio": "cpio",
    "apt-get": "apt",
    "dpkg-deb": "dpkg",
}
COMMON_FILES: dict[str, str] = {"/usr/bin/bc": "bc"}

X86_64 = Target(
    name="x86_64",
    debian_arch="amd64",
    kernel_flavour="amd64",
    cross_prefix="",
    kernel_arch="x86",
    kernel_source="arch_x86_64.c",
    unistd_header="arch/x86/include/generated/uapi/asm/unistd_64.h",
    qemu="qemu-system-x86_64",
    board_args=("-machine", "pc"),
    console="ttyS0",
    agent_serial="serial",
    agent_tty="/dev/ttyS1",
    panic_device="pvpanic",
    doorbell=True,
    native=True,
    busybox_package="",
    tools={
        "qemu-system-x86_64": "qemu-system-x86",
        "/bin/busybox": "busybox-static",
        # the 32-bit guest tools (guest/ia32/), for the guest's ia32 entry
        "i686-linux-gnu-gcc": "gcc-i686-linux-gnu",
    },
    files={
        "/usr/lib/x86_64-linux-gnu/libc.a": "libc6-dev",
        "/usr/i686-linux-gnu/lib/libc.a": "libc6-dev-i386-cross",
    },
)

AARCH64 = Target(
    name="aarch64",
    debian_arch="arm64",
    kernel_flavour="arm64",
    cross_prefix="aarch64-linux-gnu-",
    kernel_arch="arm64",
    kernel_source="arch_arm64.c",
    unistd_header="asm/unistd.h",
    qemu="qemu-system-aarch64",
    # cortex-a57: no pointer authentication, which TCG emulates slowly
    board_args=("-machine", "virt", "-cpu", "cortex-a57"),
    console="ttyAMA0",
    agent_serial="pci-serial",
    agent_tty="/dev/ttyS0",
    panic_device="",  # Debian's arm64 kernel has no pvpanic driver
    doorbell=False,
    native=False,
    busybox_package="busybox-static:arm64",
    tools={
        "qemu-system-aarch64": "qemu-system-arm",
        "aarch64-linux-gnu-gcc": "gcc-aarch64-linux-gnu",
    },
    files={"/usr/aarch64-linux-gnu/lib/libc.a": "libc6-dev-arm64-cross"},
)

ARMHF = Target(
    name="armhf",
    debian_arch="armhf",
    kernel_flavour="armmp",
    cross_prefix="arm-linux-gnueabihf-",
    kernel_arch="arm",
    kernel_source="arch_arm.c",
    unistd_header="asm/unistd.h",
    qemu="qemu-system-arm",
    # highmem=off: the non-LPAE armmp kernel reaches PCI memory below 4 GiB only
    board_args=("-machine", "virt,highmem=off", "-cpu", "cortex-a15"),
    console="ttyAMA0",
    agent_serial="pci-serial",
    agent_tty="/dev/ttyS0",
    panic_device="",
    doorbell=False,
    native=False,
    busybox_package="busybox-static:armhf",
    tools={
        "qemu-system-arm": "qemu-system-arm",
        "arm-linux-gnueabihf-gcc": "gcc-arm-linux-gnueabihf",
    },
    files={"/usr/arm-linux-gnueabihf/lib/libc.a": "libc6-dev-armhf-cross"},
)

MIPSEL = Target(
    name="mipsel",
    debian_arch="mipsel",
    kernel_flavour="4kc-malta",
    cross_prefix="mipsel-linux-gnu-",
    kernel_arch="mips",
    kernel_source="arch_mips.c",
    unistd_header="asm/unistd.h",
    qemu="qemu-system-mipsel",
    board_args=("-machine", "malta", "-cpu", "24Kf"),
    console="ttyS0",
    agent_serial="serial",
    agent_tty="/dev/ttyS1",
    panic_device="",
    doorbell=False,
    native=False,
    busybox_package="busybox-static:mipsel",
    tools={
        "qemu-system-mipsel": "qemu-system-mips",
        "mipsel-linux-gnu-gcc": "gcc-mipsel-linux-gnu",
    },
    files={"/usr/mipsel-linux-gnu/lib/libc.a": "libc6-dev-mipsel-cross"},
    max_memory_mib=256,
    # Debian's 4kc-malta kernel hangs early on QEMU's malta with -smp 2
    max_smp=1,
    region_in_ram=True,
)

#: every architecture a machine can boot, by ``--arch`` name, the default first
TARGETS: dict[str, Target] = {t.name: t for t in (X86_64, AARCH64, ARMHF, MIPSEL)}
DEFAULT_TARGET = X86_64.name


def target_for(name: str | None) -> Target:
    """The target called ``name`` (``None``: x86_64), or :class:`InvalidValue`
    naming the choices -- raised before anything is built or booted."""
    if name is None:
        return X86_64
    try:
        return TARGETS[name]
    except (KeyError, TypeError):
        raise InvalidValue(
            f"unknown architecture {name!r}: choose one of {', '.join(TARGETS)}"
        ) from None
