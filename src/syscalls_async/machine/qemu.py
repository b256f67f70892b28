"""One QEMU guest, owned by an ``async with`` block.

Example::

    async with Machine() as machine:
        result = await machine.run("uname -r")
        print(result.output)

Lifetime: ``__aenter__`` returns once the guest agent reports ready (the
portal module, when the image has it, is loaded before that).  On leaving the
block -- normally, by an exception or by cancellation -- QEMU is stopped, and
the temporary directory and the shared-memory file are removed.  If the
process dies without leaving the block (SIGKILL), QEMU gets SIGKILL from the
kernel and a reaper removes the files (see :mod:`.reaper`).

Background work (console, command channel, QMP events, process watch) runs
in one anyio task group owned by the machine's supervisor task (see
:class:`~syscalls_async._aio.Supervisor`), so the machine may be entered
and closed by different tasks.  Closing stops QEMU first, then cancels the
group and waits for every background task: none outlives the block.
Cancelling the task that closes the machine still leaves QEMU killed and
the group cancelled.

Failure: a kernel panic, QEMU exiting, or the command channel closing turns
every pending and later :meth:`run` into the same :class:`MachineError`
(:class:`GuestPanic` for a panic); ``machine.failure`` holds it.  A
background task that raises does the same (``MachineError("internal
error: ...")``): it neither cancels its siblings nor the task that owns the
machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import posixpath
import secrets
import shlex
import shutil
import signal
import socket
import stat
import tempfile
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import msgspec
from qemu.qmp import QMPClient

from .._aio import Interrupted, Supervisor, unless_set
from .._text import printable
from ..errors import BootTimeout, CommandFailed, GuestPanic, InvalidValue, MachineError
from .accel import choose_accel
from .agent import MAX_INPUT, AgentChannel, CommandResult
from .console import LOG_LIMIT, Console
from .files import (
    MAX_COLLECT_BYTES,
    MAX_COLLECT_ENTRIES,
    AddSpec,
    Collected,
    overlay,
    parse_add,
    unpack,
)
from .files import guest_path as guest_path_checked
from .image import Image, build_image
from .reaper import Reaper, die_with_parent
from .targets import DEFAULT_TARGET, Target, target_for

log = logging.getLogger("syscalls.machine")
T = TypeVar("T")

QEMU = "qemu-system-x86_64"
SHM_DIR = Path("/dev/shm")
DEFAULT_SHM_SIZE = 16 * 1024 * 1024
KERNEL_ARGS = "console=ttyS0 panic=-1 mitigations=off"


def kernel_args(target: Target) -> str:
    """The kernel command line of ``target``'s guests: its console, and (on a
    board whose agent line is not ttyS1) ``sa_agent=``, which the kernel hands
    to init as an environment variable (guest/init reads it)."""
    if target.console == "ttyS0" and target.agent_tty == "/dev/ttyS1":
        return KERNEL_ARGS.replace("ttyS0", target.console)
    return KERNEL_ARGS.replace("ttyS0", target.console) + f" sa_agent={target.agent_tty}"


class RamRegion(msgspec.Struct, frozen=True):
    """Where the portal lies in a guest's RAM (boards without ivshmem)."""

    #: guest physical address, equal to the offset in the RAM's backing file
    offset: int
    size: int

    def kernel_args(self, memory_mib: int) -> str:
        """``mem=`` ranges around the region (the kernel never uses it; QEMU
        puts the initrd at the top of RAM, so the region sits in the middle),
        and where it is for the module (init passes ``sa_portal_*`` on)."""
        mib = 2**20
        below, above = self.offset // mib, memory_mib - (self.offset + self.size) // mib
        return (
            f"mem={below}M@0 mem={above}M@{(self.offset + self.size) // mib}M "
            f"sa_portal_phys={self.offset:#x} sa_portal_size={self.size:#x}"
        )


def ram_region(memory_mib: int, shm_size: int) -> RamRegion:
    """The region in the middle of ``memory_mib`` MiB of RAM, or
    :class:`InvalidValue` if it does not leave the kernel half of it."""
    ram = memory_mib * 2**20
    if shm_size > ram // 4:
        raise InvalidValue(
            f"shm_size {shm_size} is too big for {memory_mib} MiB of guest RAM holding the "
            f"portal region: at most {ram // 4} (a quarter of it)"
        )
    return RamRegion(offset=ram // 2, size=shm_size)


#: seconds a guest has to be ready: x86_64, and another architecture under TCG
BOOT_TIMEOUT = 120.0
FOREIGN_BOOT_TIMEOUT = 600.0
#: how long a closed command channel waits for QEMU's exit to explain it
CHANNEL_CLOSE_GRACE = 2.0
#: the I/O port of the doorbell device (QEMU's isa-debugcon): the guest module
#: writes a byte there to wake a sleeping host; it must equal SA_BELL_PORT in
#: kernel/portal_abi.h (a unit test checks)
BELL_PORT = 0xE9


class Machine:
    """A guest under QEMU with a portal region, a console and a command channel.

    :param image: the guest image; built (or taken from the cache) if omitted.
    :param smp: number of virtual CPUs.
    :param memory_mib: guest RAM.
    :param shm_size: size of the ivshmem-plain portal region, a power of two.
    :param accel: ``"kvm"``, ``"tcg"`` or ``None`` to detect.
    :param boot_timeout: seconds until the guest must be ready (default 120,
        :data:`FOREIGN_BOOT_TIMEOUT` for an architecture emulated by TCG).
    :param console_log: keep the console log here (else in the temp dir).
    :param console_log_limit: bytes of console output the log keeps (the
        first ones; a note at the end says how many were dropped).
    :param kernel_args: appended to the kernel command line.
    :param add: files and folders to put into the guest before it boots, each
        ``"HOST_PATH[:GUEST_PATH]"`` or a ``(host_path, guest_path)`` pair;
        without a guest path a file goes to ``/root/NAME`` (the commands'
        working folder).  Modes are kept.  See :mod:`.files`.
    :param arch: the guest's architecture (``x86_64``, ``aarch64``, ``armhf``,
        ``mipsel``; see :mod:`.targets`); other than x86_64 it runs under TCG.
        An unknown name, or an ``image`` of another architecture, is refused
        here, before anything boots.
    """

    def __init__(
        self,
        image: Image | None = None,
        *,
        smp: int = 2,
        memory_mib: int = 1024,
        shm_size: int = DEFAULT_SHM_SIZE,
        accel: str | None = None,
        boot_timeout: float | None = None,
        console_log: str | os.PathLike[str] | None = None,
        console_log_limit: int = LOG_LIMIT,
        kernel_args: str = "",
        add: Sequence[AddSpec] = (),
        arch: str = DEFAULT_TARGET,
    ) -> None:
        if shm_size <= 0 or shm_size & (shm_size - 1):
            raise InvalidValue(f"shm_size must be a power of two, not {shm_size}")
        self.target = target_for(arch)
        #: the guest's architecture, by its ``--arch`` name
        self.arch = self.target.name
        if image is not None and image.arch != self.arch:
            raise InvalidValue(
                f"the image {image.digest} is for {image.arch}, not for arch={self.arch!r}"
            )
        if accel == "kvm" and not self.target.native:
            raise InvalidValue(f"accel='kvm' runs x86_64 guests only, not {self.arch}")
        limit = self.target.max_memory_mib
        if limit and memory_mib > limit:
            log.warning("%s guests take at most %d MiB of RAM: using that", self.arch, limit)
            memory_mib = limit
        if self.target.max_smp and smp > self.target.max_smp:
            log.info("%s guests boot with at most %d CPUs", self.arch, self.target.max_smp)
            smp = self.target.max_smp
        self.image = image
        self.smp = smp
        self.memory_mib = memory_mib
        self.shm_size = shm_size
        #: where the portal lies in guest RAM (boards without ivshmem), or None
        self.ram_region = ram_region(memory_mib, shm_size) if self.target.region_in_ram else None
        self.accel = accel
        if boot_timeout is None:
            boot_timeout = BOOT_TIMEOUT if self.target.native else FOREIGN_BOOT_TIMEOUT
        self.boot_timeout = boot_timeout
        self._console_log = Path(console_log) if console_log else None
        self._console_log_limit = console_log_limit
        self._kernel_args = kernel_args
        self._add = list(add)
        for spec in self._add:
            parse_add(spec)  # a bad path is refused before anything starts
        self.kernel_release = ""
        self.failure: MachineError | None = None
        self._tmp: Path | None = None
        self._shm: Path | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._reaper: Reaper | None = None
        self._qmp: QMPClient | None = None
        self._supervisor: Supervisor | None = None
        self._failed = asyncio.Event()
        self._servers: list[asyncio.Server] = []
        self._writers: list[asyncio.StreamWriter] = []
        self._bell_listener: socket.socket | None = None
        self._bell: socket.socket | None = None
        self._agent: AgentChannel | None = None
        self._console: Console | None = None
        self._stopping = False
        self._stderr = bytearray()

    # -- public surface ---------------------------------------------------

    @property
    def shm_path(self) -> Path:
        """Host path of the portal's shared-memory file (mode 0600)."""
        if self._shm is None:
            raise MachineError("the machine is not running")
        return self._shm

    @property
    def shm_offset(self) -> int:
        """Where the portal region starts in :attr:`shm_path` (0 but on
        boards whose region is a range of guest RAM: then that file is the RAM)."""
        return self.ram_region.offset if self.ram_region else 0

    @property
    def shm_region_size(self) -> int | None:
        """The portal region's size in :attr:`shm_path`, or None: the whole file."""
        return self.ram_region.size if self.ram_region else None

    @property
    def doorbell_fd(self) -> int | None:
        """The host end of the guest's doorbell: a connected stream socket on
        which each byte the guest module writes to its doorbell port arrives;
        None on an architecture without one (the host then polls).

        The machine owns it (closed when the machine stops); a portal reads it
        through a duplicate of its own (``Portal(..., doorbell=fd)``).
        """
        if self._shm is None:
            raise MachineError("the machine is not running")
        if not self.target.doorbell:
            return None
        if self._bell is None:
            raise MachineError("the machine is not running")
        return self._bell.fileno()

    @property
    def console(self) -> Console:
        """The serial console: ``tail()``, ``subscribe()``, ``log_path``."""
        if self._console is None:
            raise MachineError("the machine is not running")
        return self._console

    @property
    def pid(self) -> int | None:
        """QEMU's process id while it runs."""
        return self._proc.pid if self._proc and self._proc.returncode is None else None

    @property
    def qmp(self) -> QMPClient:
        """The QMP connection, for commands the machine does not wrap."""
        if self._qmp is None:
            raise MachineError("the machine is not running")
        return self._qmp

    async def run(
        self,
        command: str | Sequence[str],
        *,
        timeout: float = 60.0,
        input: bytes = b"",
        max_output: int | None = None,
    ) -> CommandResult:
        """Run ``command`` with ``/bin/sh -c`` in the guest and wait for it.

        A sequence is quoted into one shell command.  On timeout the command's
        whole session is killed and :class:`CommandTimeout` raised (with what
        it printed so far).  ``input`` is its stdin (at most about 60 KiB).
        With ``max_output``, a command printing more bytes is killed and
        :class:`CommandFailed` raised.  Several ``run`` calls may be in
        flight at once.
        """
        if not isinstance(command, str):
            command = shlex.join(command)
        if self.failure is not None:
            raise self.failure
        if self._agent is None:
            raise MachineError("the machine is not running")
        return await self._agent.run(command, timeout=timeout, input=input, max_output=max_output)

    async def collect(
        self,
        guest_path: str,
        host_dir: str | os.PathLike[str],
        *,
        timeout: float = 600.0,
        max_bytes: int = MAX_COLLECT_BYTES,
        max_entries: int = MAX_COLLECT_ENTRIES,
    ) -> Collected:
        """Copy the guest file or folder ``guest_path`` into ``host_dir``.

        ``guest:/a/b/out.txt`` becomes ``host_dir/out.txt``, a folder
        ``guest:/a/b/results`` becomes ``host_dir/results/...``.  Only regular
        files and folders are written, never outside ``host_dir`` nor through
        a symlink; everything else is refused and listed in the result's
        ``refused`` (the guest is not trusted).  A guest that sends more than
        ``max_bytes`` is stopped (:class:`CommandFailed`); a missing path
        raises :class:`CommandFailed` too.

        Example::

            await machine.run("./analyse > /root/report.txt")
            got = await machine.collect("/root/report.txt", "out")
            print(got.files)  # [PosixPath('out/report.txt')]
        """
        path = guest_path_checked(guest_path)
        folder, name = posixpath.split(path)
        # tar's own headers and padding come on top of the contents
        limit = max_bytes + 1024 * (max_entries + 2) + 10240
        result = await self.run(
            ["tar", "-cf", "-", "-C", folder, "--", name], timeout=timeout, max_output=limit
        )
        if result.exit_status != 0:
            why = printable(result.stderr.decode(errors="replace").strip())
            raise CommandFailed(f"collecting {path!r} failed: {why or result.exit_status}")
        return await asyncio.to_thread(
            unpack, result.stdout, host_dir, max_bytes=max_bytes, max_entries=max_entries
        )

    async def copy_in(
        self, host_path: str | os.PathLike[str], guest_path: str, *, timeout: float = 600.0
    ) -> None:
        """Copy one host file into the running guest (its mode kept), over the command channel.

        Missing parent folders are made.  The channel moves about 170 KB/s:
        for large files or many, prefer ``Machine(add=...)``, which puts them
        in place before boot.
        """
        path = guest_path_checked(guest_path)
        data = await asyncio.to_thread(Path(host_path).read_bytes)
        mode = stat.S_IMODE((await asyncio.to_thread(os.stat, host_path)).st_mode)
        quoted = shlex.quote(path)
        chunks = [data[i : i + MAX_INPUT] for i in range(0, len(data), MAX_INPUT)] or [b""]
        for i, chunk in enumerate(chunks):
            first = f"mkdir -p {shlex.quote(posixpath.dirname(path))} && cat >"
            command = f"{first if i == 0 else 'cat >>'} {quoted}"
            result = await self.run(command, timeout=timeout, input=chunk)
            if result.exit_status != 0:
                why = printable(result.stderr.decode(errors="replace").strip())
                raise CommandFailed(f"copying to {path!r} failed: {why or result.exit_status}")
        await self.run(f"chmod {mode:o} {quoted}", timeout=timeout)

    async def wait_failure(self) -> MachineError:
        """Wait until the machine fails (panic, QEMU death) and return why."""
        await self._failed.wait()
        assert self.failure is not None
        return self.failure

    # -- lifetime -------------------------------------------------------------

    async def __aenter__(self) -> Machine:
        try:
            await self._start()
        except BaseException:
            await self._cleanup(graceful=False)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._cleanup(graceful=exc is None)

    async def aclose(self) -> None:
        """Stop the guest and remove everything it left on the host."""
        await self._cleanup(graceful=True)

    async def _start(self) -> None:
        start = asyncio.get_running_loop().time()
        if self.image is None:
            self.image = await asyncio.to_thread(build_image, arch=self.arch)
        if not self.target.native:
            accel = "tcg"  # KVM runs the host's architecture only
        else:
            accel = self.accel or await choose_accel(self.target.qemu, self.image.kernel)
        self._tmp = Path(tempfile.mkdtemp(prefix="syscalls-async-"))
        self._shm = self._shm_name()
        self._reaper = await Reaper.start([self._tmp, self._shm])
        self._create_shm(self._shm)
        console_log = self._console_log or self._tmp / "console.log"
        self._console = Console(console_log, self._on_panic, log_limit=self._console_log_limit)
        self._supervisor = Supervisor("machine")
        await self._supervisor.start()

        console_conn = await self._listen("console.sock")
        agent_conn = await self._listen("agent.sock")
        if self.target.doorbell:
            self._bell_listener = self._listen_raw("bell.sock")
        self._qmp = QMPClient("syscalls-async")
        await self._qmp.start_server(str(self._tmp / "qmp.sock"))

        initrd = Path(self.image.initramfs)
        if self._add:
            initrd = self._tmp / "initramfs-with-added-files"
            await asyncio.to_thread(self._write_initrd, initrd)
        args = self._qemu_args(accel, initrd)
        log.info(
            "booting the %s guest (%s, %d CPUs, %d MiB) ...",
            self.arch,
            accel,
            self.smp,
            self.memory_mib,
        )
        log.debug("starting %s", shlex.join(args))
        self._proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # a terminal's ^C reaches us, not QEMU directly
            preexec_fn=die_with_parent(),  # even SIGKILL of this process ends QEMU
        )
        self._spawn(self._watch_process)
        async with self._boot_deadline():
            await self._unless_failed(self._qmp.accept())
            self._spawn(self._watch_qmp_events)
            reader, _ = await self._unless_failed(console_conn)
            self._spawn(self._console.pump, reader)
            if self._bell_listener is not None:
                self._bell = await self._unless_failed(self._accept_raw(self._bell_listener))
            agent_reader, agent_writer = await self._unless_failed(agent_conn)
            self._agent = AgentChannel(agent_reader, agent_writer, closed=self._channel_closed)
            self._spawn(self._agent.serve)
            self.kernel_release = await self._unless_failed(self._agent.ready)
        took = asyncio.get_running_loop().time() - start
        log.info("guest ready in %.1f s (kernel %s)", took, self.kernel_release)

    async def _unless_failed(self, aw: Awaitable[T]) -> T:
        """Await ``aw`` but raise the machine's failure as soon as there is one."""
        try:
            return await unless_set(aw, self._failed)
        except Interrupted:
            assert self.failure is not None
            raise self.failure from None

    @contextlib.asynccontextmanager
    async def _boot_deadline(self) -> Any:
        try:
            async with asyncio.timeout(self.boot_timeout):
                yield
        except TimeoutError:
            if self.failure is not None:
                raise self.failure from None
            raise BootTimeout(
                f"the guest was not ready within {self.boot_timeout:g} s", self._tail()
            ) from None
        except MachineError as exc:
            raise self.failure or exc from None
        except Exception as exc:
            # e.g. QMP's ConnectError when QEMU exits at once: give the process
            # watcher a moment to say why, and report that instead.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await self._failed.wait()
            raise self.failure or MachineError(
                f"the guest failed during boot: {exc!r}", self._tail()
            ) from exc

    def _write_initrd(self, path: Path) -> None:
        """The image's initramfs followed by an archive of the added files."""
        assert self.image is not None
        extra = overlay(self._add)
        with open(path, "wb") as out, open(self.image.initramfs, "rb") as base:
            shutil.copyfileobj(base, out)
            out.write(b"\0" * (-out.tell() % 4))  # each archive starts 4-byte aligned
            out.write(extra)

    def _qemu_args(self, accel: str, initrd: Path) -> list[str]:
        assert self.image is not None and self._tmp is not None and self._shm is not None
        sock = self._tmp
        target = self.target
        board = list(target.board_args)
        if accel == "kvm":
            board += ["-cpu", "host"]
        return [
            target.qemu,
            "-accel",
            accel,
            *board,
            "-m",
            str(self.memory_mib),
            "-smp",
            str(self.smp),
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-no-reboot",
            "-kernel",
            self.image.kernel,
            "-initrd",
            str(initrd),
            "-append",
            " ".join(a for a in (kernel_args(target), self._region_args(), self._kernel_args) if a),
            "-chardev",
            f"socket,id=console,path={sock / 'console.sock'}",
            "-serial",
            "chardev:console",
            "-chardev",
            f"socket,id=agent,path={sock / 'agent.sock'}",
            *self._agent_serial(),
            "-chardev",
            f"socket,id=qmp,path={sock / 'qmp.sock'}",
            "-mon",
            "chardev=qmp,mode=control",
            *self._portal_args(),
            *(["-device", target.panic_device] if target.panic_device else []),
            *self._doorbell_args(),
        ]

    def _portal_args(self) -> list[str]:
        """The shared file as an ivshmem-plain BAR, or as the guest's RAM."""
        if self.ram_region is not None:
            return [
                "-object",
                f"memory-backend-file,id=ram,mem-path={self._shm},size={self.memory_mib}M,share=on",
                "-machine",
                "memory-backend=ram",
            ]
        return [
            "-object",
            f"memory-backend-file,id=portal,mem-path={self._shm},size={self.shm_size},share=on",
            "-device",
            "ivshmem-plain,memdev=portal",
        ]

    def _region_args(self) -> str:
        return self.ram_region.kernel_args(self.memory_mib) if self.ram_region else ""

    def _agent_serial(self) -> list[str]:
        """The agent's serial line: the board's second UART, or an 8250 on PCI."""
        if self.target.agent_serial == "serial":
            return ["-serial", "chardev:agent"]
        return ["-device", "pci-serial,chardev=agent"]

    def _doorbell_args(self) -> list[str]:
        """x86_64: an ``isa-debugcon`` on ``BELL_PORT``; other boards have none."""
        if not self.target.doorbell:
            return []
        assert self._tmp is not None
        return [
            "-chardev",
            f"socket,id=bell,path={self._tmp / 'bell.sock'}",
            "-device",
            f"isa-debugcon,iobase={BELL_PORT:#x},chardev=bell",
        ]

    @staticmethod
    def _shm_name() -> Path:
        return SHM_DIR / f"syscalls-async-{os.getpid()}-{secrets.token_hex(6)}"

    def _create_shm(self, path: Path) -> None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        size = self.memory_mib * 2**20 if self.ram_region else self.shm_size
        try:
            os.ftruncate(fd, size)
        finally:
            os.close(fd)

    async def _listen(
        self, name: str
    ) -> asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
        assert self._tmp is not None
        conn: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]]
        conn = asyncio.get_running_loop().create_future()

        def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self._writers.append(writer)
            if conn.done():
                writer.close()  # only QEMU may connect, and only once
            else:
                conn.set_result((reader, writer))

        server = await asyncio.start_unix_server(
            accepted, path=str(self._tmp / name), limit=1 << 20
        )
        self._servers.append(server)
        return conn

    def _listen_raw(self, name: str) -> socket.socket:
        """A listening socket whose one connection is read by its user with
        its own reader (the doorbell), not through a stream."""
        assert self._tmp is not None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(str(self._tmp / name))
            sock.listen(1)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        return sock

    async def _accept_raw(self, listener: socket.socket) -> socket.socket:
        # only QEMU may connect, and only once
        conn, _ = await asyncio.get_running_loop().sock_accept(listener)
        listener.close()
        conn.setblocking(False)
        return conn

    def _spawn(self, func: Callable[..., Coroutine[Any, Any, None]], *args: Any) -> None:
        assert self._supervisor is not None
        self._supervisor.start_soon(self._guarded, func, *args)

    async def _guarded(self, func: Callable[..., Coroutine[Any, Any, None]], *args: Any) -> None:
        # A background failure must reach callers as a MachineError, never
        # cancel the task that owns the machine nor its siblings.
        try:
            await func(*args)
        except Exception as exc:
            if self._stopping:
                log.debug("machine background task ended while stopping: %r", exc)
                return
            log.exception("machine background task failed")
            self._fail(MachineError(f"internal error: {exc!r}", self._tail()))

    # -- failure detection --------------------------------------------------

    def _tail(self) -> str:
        return self._console.tail() if self._console else ""

    def _fail(self, exc: MachineError) -> None:
        if self.failure is None and not self._stopping:
            self.failure = exc
            log.error("%s", str(exc).splitlines()[0])
            self._failed.set()
        if self._agent is not None and self.failure is not None:
            self._agent.fail(self.failure)

    def _on_panic(self, line: str) -> None:
        self._fail(GuestPanic(f"guest kernel panic: {line.strip()}", self._tail()))

    async def _watch_process(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        while chunk := await self._proc.stderr.read(4096):
            self._stderr += chunk
            del self._stderr[:-8192]
        code = await self._proc.wait()
        if self._console is not None and self._console._panicked:
            return
        err = printable(self._stderr.decode(errors="replace").strip(), multiline=True)
        how = _exit_reason("QEMU", code)
        self._fail(MachineError(f"{how}: {err}" if err else how, self._tail()))

    async def _channel_closed(self) -> MachineError:
        # QEMU closing the channel usually means QEMU is ending: say why it ended.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CHANNEL_CLOSE_GRACE):
                await self._failed.wait()
        return self.failure or MachineError("the guest's command channel closed", self._tail())

    async def _watch_qmp_events(self) -> None:
        assert self._qmp is not None
        async for event in self._qmp.events:
            name = event["event"]
            if name == "GUEST_PANICKED":
                self._fail(GuestPanic("guest kernel panic (reported by pvpanic)", self._tail()))
            elif name in ("SHUTDOWN", "RESET") and not self._stopping:
                data = event.get("data") or {}
                reason = data.get("reason", "unknown") if isinstance(data, dict) else "unknown"
                if self._console is not None and self._console._panicked:
                    continue
                self._fail(MachineError(f"guest {name.lower()} ({reason})", self._tail()))

    # -- teardown -----------------------------------------------------------

    async def _cleanup(self, graceful: bool) -> None:
        self._stopping = True
        try:
            await self._stop_qemu(graceful)
        finally:
            await self._release()

    async def _stop_qemu(self, graceful: bool) -> None:
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        if graceful and self._qmp is not None and self.failure is None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(3):
                    await self._qmp.execute("quit")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await proc.wait()
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()

    async def _release(self) -> None:
        if self._agent is not None:
            self._agent.fail(self.failure or MachineError("the machine was stopped"))
        for writer in self._writers:
            writer.close()
        for server in self._servers:
            server.close()
        for sock in (self._bell_listener, self._bell):
            if sock is not None:
                sock.close()
        self._bell_listener = self._bell = None
        if self._qmp is not None:
            with contextlib.suppress(Exception):
                await self._qmp.disconnect()
        if self._supervisor is not None:
            supervisor, self._supervisor = self._supervisor, None
            await supervisor.aclose()
        if self._console is not None:
            self._console.close()
        if self._shm is not None:
            self._shm.unlink(missing_ok=True)
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
        if self._reaper is not None:
            reaper, self._reaper = self._reaper, None
            await reaper.aclose()


def _exit_reason(what: str, code: int) -> str:
    """``returncode`` in words: a negative one is the signal that killed the process."""
    if code >= 0:
        return f"{what} exited with status {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = "a real-time signal"
    return f"{what} was killed by signal {-code} ({name})"
