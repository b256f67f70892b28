"""Choosing a guest architecture: names, descriptors, refusals before any boot."""

from __future__ import annotations

import argparse
import asyncio
import struct
from pathlib import Path
from typing import Any

import msgspec
import pytest
from test_portal_hostile import FakeGuest, G

from syscalls_async import cli
from syscalls_async.api import Session
from syscalls_async.errors import InvalidValue, PortalVersionError, SetupError
from syscalls_async.machine import Machine, hosttools, image, qemu
from syscalls_async.machine.targets import TARGETS, target_for
from syscalls_async.portal import Portal
from syscalls_async.portal.abi import C, ffi
from syscalls_async.portal.arch import ARCH_NAMES, arch_by_name

BOOTING = ["exec", "run", "trace", "demo", "bench", "image"]


def test_every_target_has_an_arch_and_back() -> None:
    assert list(TARGETS) == list(ARCH_NAMES) == ["x86_64", "aarch64", "armhf", "mipsel"]
    for name, target in TARGETS.items():
        arch = arch_by_name(name)
        assert arch.name == target.name == name
        assert arch.word_size == (4 if name in ("armhf", "mipsel") else 8)
        assert arch.pair_align == (arch.word_size == 4)
        assert target.foreign == (name != "x86_64") == (not target.native)
        assert target.doorbell == (name == "x86_64")
    assert C.SA_MAX_REGS == 40 and C.SA_VERSION >= 5  # 6: the compat ABI (ia32) table
    assert [arch_by_name(n).id for n in TARGETS] == [
        C.SA_ARCH_X86_64, C.SA_ARCH_AARCH64, C.SA_ARCH_ARMHF, C.SA_ARCH_MIPSEL
    ]  # fmt: skip


def test_the_aarch64_descriptor() -> None:
    a = arch_by_name("aarch64")
    assert a.regs[:2] == ("x0", "x1") and a.regs[31:] == (
        "sp",
        "pc",
        "pstate",
        "orig_x0",
        "syscallno",
    )
    assert (a.symbol_prefix, a.ret_reg, a.nr_reg) == ("__arm64_sys_", "x0", "syscallno")
    t = target_for("aarch64")
    assert (t.debian_arch, t.kernel_flavour, t.kernel_arch) == ("arm64", "arm64", "arm64")
    assert (t.cross_prefix, t.console, t.agent_tty) == (
        "aarch64-linux-gnu-",
        "ttyAMA0",
        "/dev/ttyS0",
    )


@pytest.mark.parametrize("bad", ["arm", "x86-64", "", "AARCH64"])
def test_an_unknown_arch_name_is_refused_with_the_choices(bad: str) -> None:
    for lookup in (arch_by_name, target_for):
        with pytest.raises(InvalidValue, match="x86_64, aarch64, armhf, mipsel"):
            lookup(bad)
    with pytest.raises(InvalidValue, match="choose one of"):
        Machine(arch=bad)
    with pytest.raises(InvalidValue, match="choose one of"):
        Session(arch=bad)


def test_an_image_of_another_arch_is_refused_before_boot() -> None:
    built = image.Image(
        kernel="k", initramfs="i", kernel_release="r", digest="d", has_module=True,
        tools=[], built_at=0.0, arch="aarch64",
    )  # fmt: skip
    with pytest.raises(InvalidValue, match="is for aarch64"):
        Machine(built)
    assert Machine(built, arch="aarch64").arch == "aarch64"
    with pytest.raises(InvalidValue, match="kvm"):
        Machine(arch="armhf", accel="kvm")


@pytest.mark.parametrize("command", BOOTING)
def test_every_booting_command_takes_arch(command: str) -> None:
    argv = [command, "build"] if command == "image" else [command]
    if command in ("run",):
        argv.append("p.py")
    args = cli.parse([*argv, "--arch", "aarch64"])
    assert args.arch == "aarch64"
    assert cli.parse(argv).arch == "x86_64"


@pytest.mark.parametrize("command", BOOTING)
def test_an_unknown_arch_on_the_command_line_is_refused(
    command: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "Session", None)  # nothing may boot
    monkeypatch.setattr(cli, "Machine", None)
    argv = [command, "build"] if command == "image" else [command]
    with pytest.raises(SystemExit) as exit_:
        cli.main([*argv, "--arch", "sparc", "--", "true"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'sparc'" in err and "'aarch64'" in err and "'mipsel'" in err


def test_setup_takes_all(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[str | None] = []

    def fake_build(**kw: Any) -> Any:
        built.append(kw["arch"])
        return argparse.Namespace(directory=Path("/x"))

    monkeypatch.setattr(cli, "build_image", fake_build)
    assert cli.main(["setup", "--arch", "all"]) == 0
    assert built == list(TARGETS)


def test_setup_tools_only_installs_for_the_archs_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[list[str]] = []
    monkeypatch.setattr(
        cli, "ensure_host_tools", lambda install, targets: asked.append([t.name for t in targets])
    )
    monkeypatch.setattr(cli, "build_image", None)  # no image is built
    assert cli.main(["setup", "--arch", "mipsel", "--tools-only"]) == 0
    assert asked == [["mipsel"]]


def test_cli_passes_the_arch_to_the_machine() -> None:
    args = cli.parse(["exec", "--arch", "armhf", "--", "true"])
    assert cli._machine_options(args)["arch"] == "armhf"


def test_the_qemu_line_of_each_board() -> None:
    for name in TARGETS:
        m = Machine(arch=name)
        m._tmp, m._shm = Path("/t"), Path("/dev/shm/x")
        m.image = image.Image(
            kernel="k", initramfs="i", kernel_release="r", digest="d", has_module=True,
            tools=[], built_at=0.0, arch=name,
        )  # fmt: skip
        line = " ".join(m._qemu_args("tcg", Path("/t/i")))
        target = target_for(name)
        assert line.startswith(f"{target.qemu} -accel tcg")
        assert f"console={target.console}" in line
        assert ("isa-debugcon" in line) == (name == "x86_64")
        assert ("pci-serial,chardev=agent" in line) == (name in ("aarch64", "armhf"))
        assert ("sa_agent=" in line) == (target.agent_tty != "/dev/ttyS1")
    assert qemu.kernel_args(target_for("x86_64")) == qemu.KERNEL_ARGS


def test_a_foreign_arch_names_the_exact_setup_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hosttools, "missing_packages", lambda target=None: ["qemu-system-arm"])
    monkeypatch.setattr(hosttools, "foreign_architectures", lambda: {"i386"})
    with pytest.raises(SetupError) as info:
        hosttools.ensure_host_tools(targets=[target_for("aarch64")])
    text = str(info.value)
    assert "setup --arch aarch64" in text
    assert (
        "dpkg --add-architecture arm64; apt-get update; apt-get install -y qemu-system-arm" in text
    )


def test_the_host_packages_of_each_target_are_its_own() -> None:
    assert "gcc-aarch64-linux-gnu" in target_for("aarch64").tools.values()
    assert "qemu-system-mips" in target_for("mipsel").tools.values()
    assert "qemu-system-x86" not in target_for("armhf").tools.values()
    assert target_for("aarch64").busybox_package == "busybox-static:arm64"


def test_syscall_number_macros_are_evaluated() -> None:
    macros = {
        "__NR_Linux": "4000",
        "__NR_read": "(__NR_Linux + 3)",
        "__NR3264_fcntl": "25",
        "__NR_fcntl": "__NR3264_fcntl",
        "__NR_bad": "__NR_undefined",
    }
    assert image._evaluate("__NR_read", macros, 0) == 4003
    assert image._evaluate("__NR_fcntl", macros, 0) == 25
    assert image._evaluate("__NR_bad", macros, 0) is None


async def test_a_region_of_another_arch_than_the_machines_is_refused(tmp_path: Path) -> None:
    g = FakeGuest(tmp_path / "shm")
    acks = asyncio.create_task(g.ack_hooks())
    try:
        with pytest.raises(PortalVersionError, match=r"runs on x86_64.*booted as aarch64"):
            async with Portal(g.path, attach_timeout=1.0, arch=arch_by_name("aarch64")):
                pass
        g.write(ffi.offsetof(G, "arch"), struct.pack("<I", C.SA_ARCH_AARCH64))
        async with Portal(g.path, attach_timeout=1.0, arch=arch_by_name("aarch64")) as p:
            assert p.arch.name == "aarch64"
    finally:
        acks.cancel()
        g.f.close()


def test_old_manifests_read_as_x86_64() -> None:
    old = b'{"kernel":"k","initramfs":"i","kernel_release":"r","digest":"d",'
    old += b'"has_module":true,"tools":[],"built_at":0.0}'
    assert msgspec.json.decode(old, type=image.Image).arch == "x86_64"


def test_mipsel_keeps_its_portal_in_the_middle_of_its_ram() -> None:
    # malta's QEMU has no ivshmem: the RAM is the shared file, the kernel
    # leaves the region alone and init hands its place to the module
    m = Machine(arch="mipsel", memory_mib=4096, smp=4)
    assert (m.memory_mib, m.smp) == (256, 1)  # the board's limits
    assert (m.shm_offset, m.shm_region_size) == (128 << 20, 16 << 20)
    m._tmp, m._shm = Path("/t"), Path("/dev/shm/x")
    m.image = image.Image(
        kernel="k", initramfs="i", kernel_release="r", digest="d", has_module=True,
        tools=[], built_at=0.0, arch="mipsel",
    )  # fmt: skip
    line = " ".join(m._qemu_args("tcg", Path("/t/i")))
    assert "ivshmem" not in line
    assert "memory-backend-file,id=ram,mem-path=/dev/shm/x,size=256M,share=on" in line
    assert "-machine memory-backend=ram" in line
    assert "mem=128M@0 mem=112M@144M sa_portal_phys=0x8000000 sa_portal_size=0x1000000" in line
    x86 = Machine()
    assert (x86.shm_offset, x86.shm_region_size) == (0, None)


def test_a_region_too_big_for_mipsels_ram_is_refused_before_boot() -> None:
    with pytest.raises(InvalidValue, match="too big for 256 MiB"):
        Machine(arch="mipsel", shm_size=128 << 20)


def test_a_foreign_kernel_in_the_cache_is_used_without_asking_apt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYSCALLS_ASYNC_CACHE", str(tmp_path))
    monkeypatch.delenv("SYSCALLS_ASYNC_KERNEL_AARCH64", raising=False)
    asked: list[str] = []

    def latest(target: Any) -> str:
        asked.append(target.name)
        return "6.1.0-60-arm64"

    monkeypatch.setattr(image, "_latest_release", latest)
    aarch64 = target_for("aarch64")
    # nothing cached: apt names the release
    assert image.default_release(aarch64) == "6.1.0-60-arm64" and asked == ["aarch64"]
    for release in ("6.1.0-9-arm64", "6.1.0-50-arm64", "6.1.0-50-amd64"):
        (tmp_path / "kernel" / release).mkdir(parents=True)
        (tmp_path / "kernel" / release / ".complete").touch()
    # the newest cached one of that flavour (50 > 9), apt not asked; setup asks again
    assert image.default_release(aarch64) == "6.1.0-50-arm64" and asked == ["aarch64"]
    assert image.default_release(aarch64, refresh=True) == "6.1.0-60-arm64"
    assert image.default_release(target_for("x86_64")) == image.DEFAULT_KERNEL
