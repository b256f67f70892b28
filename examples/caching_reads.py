"""Caching reads: read a guest string once, answer repeats from a host-side cache.

Run:  syscalls-async run examples/caching_reads.py -- reopen /etc/passwd 5

``reopen`` (guest/reopen.c, in the default guest) opens the same path five
times, always passing the same pointer.  The plugin hooks ``openat`` of
``reopen`` and reads the path through ``cached_read_string``: the first call
reads guest memory (a portal round trip), the next four are served from the
cache.  Each event prints ``openat(<path>): cache miss|hit (hits=H,
misses=M)``.

The cache key is ``(process, address)``, not the address alone as in the
reference: two processes (or one process after ``execve``) can hold different
strings at the same address.  Entries of a process are dropped when it execs
or exits.  Even so, a process may rewrite its own buffer between calls: cache
only what the program does not change (here, its argv).
"""

from syscalls_async import Plugin, plugins


class CachedPathReader(Plugin):
    def __init__(self):
        self._path_cache = {}
        self.hits = 0
        self.misses = 0
        plugins.syscalls.syscall("on_sys_openat_enter", comm_filter="reopen")(self.on_openat)
        plugins.syscalls.syscall("on_sys_execve_enter")(self.forget)
        plugins.syscalls.syscall("on_sys_exit_group_enter")(self.forget)

    async def cached_read_string(self, pid, addr):
        key = (pid, addr)
        if key in self._path_cache:
            self.hits += 1
            return self._path_cache[key], "hit"
        path = await plugins.mem.read_str(addr)
        self.misses += 1
        self._path_cache[key] = path
        return path, "miss"

    async def on_openat(self, regs, proto, syscall, dirfd, pathname, flags, mode):
        path, how = await self.cached_read_string(syscall.pid, pathname)
        print(f"openat({path}): cache {how} (hits={self.hits}, misses={self.misses})", flush=True)

    def forget(self, regs, proto, syscall, *args):
        """A process that execs or exits gets a new address space: drop its entries."""
        for key in [k for k in self._path_cache if k[0] == syscall.pid]:
            del self._path_cache[key]
