"""Portal and OSI integration: who made this syscall, as the guest kernel sees it.

Run:  syscalls-async run examples/portal_osi.py -- send_syscall close 9

Two handlers on the same ``close`` call of ``send_syscall`` (they run in
registration order):

- ``combined_handler`` asks the portal for the calling process
  (``plugins.portal.get_proc()``: pid, ppid, uid, comm, exe, cwd, argv), its
  memory mappings (``get_mappings()``), its open file descriptors
  (``get_fds()``) and the guest's process list (``get_proc_list()``);
- ``osi_enhanced_handler`` asks ``plugins.OSI.get_proc()`` for the same
  process in OS-introspection terms (name, pid, ppid, args, exe).

The call itself is not changed: ``send_syscall`` prints ``syscall returned
-9`` (EBADF).
"""

from syscalls_async import Plugin, plugins


class ProcessContext(Plugin):
    def __init__(self):
        hook = plugins.syscalls.syscall("on_sys_close_enter", comm_filter="send_syscall")
        hook(self.combined_handler)
        hook(self.osi_enhanced_handler)

    async def combined_handler(self, regs, proto, syscall, fd):
        proc = await plugins.portal.get_proc()
        mappings = await plugins.portal.get_mappings()
        fds = await plugins.portal.get_fds()
        procs = await plugins.portal.get_proc_list()
        print(f"Syscall by PID {proc.pid}: {proto.name}(fd={fd})", flush=True)
        print(
            f"  portal: comm={proc.comm} exe={proc.exe} ppid={proc.ppid} uid={proc.uid} "
            f"cwd={proc.cwd} argv={list(proc.argv)}",
            flush=True,
        )
        image = [m for m in mappings if m.path == proc.exe]
        print(
            f"  portal: {len(mappings)} mappings, {len(image)} of {proc.exe}, first "
            f"{mappings[0].start:#x}-{mappings[0].end:#x} {mappings[0].perms}",
            flush=True,
        )
        print(f"  portal: open fds {[f.fd for f in fds]}", flush=True)
        print(f"  portal: {len(procs)} processes in the guest", flush=True)

    async def osi_enhanced_handler(self, regs, proto, syscall, *args):
        current_proc = await plugins.OSI.get_proc()
        if current_proc:
            print(
                f"  OSI: Process: {current_proc.name} (PID: {current_proc.pid}, "
                f"PPID: {current_proc.ppid}) args={list(current_proc.args)} "
                f"exe={current_proc.exe}",
                flush=True,
            )
