"""Network send monitoring: what one program sends with sendto, and a warning on passwords.

Run:  syscalls-async run examples/network_monitor.py -- udp_send 'user=admin password=hunter2'

``udp_send`` (guest/udp_send.c, in the default guest) sends its argument in one
UDP datagram to a socket of its own on 127.0.0.1.  The hook only sees
``sendto`` calls of tasks named ``udp_send`` (``comm_filter``); it reads the
first 100 bytes of the buffer from guest memory, prints their size and a
preview, and prints ``WARNING: Potential password transmission detected``
when they contain "password".  The datagram is not changed: ``udp_send``
prints what it received.
"""

from syscalls_async import plugins


@plugins.syscalls.syscall("on_sys_sendto_enter", comm_filter="udp_send")
async def monitor_network_send(
    regs, proto, syscall, sockfd, buf, length, flags, dest_addr, addrlen
):
    """Monitor network sends from one application."""
    try:
        data = await plugins.mem.read_bytes(buf, min(length, 100))  # first 100 bytes
    except Exception as e:
        print(f"Error reading network data: {e}", flush=True)
        return
    print(f"Network send: {len(data)} bytes on fd {sockfd}", flush=True)
    print(f"Data preview: {data[:50]!r}", flush=True)
    if b"password" in data.lower():
        print("WARNING: Potential password transmission detected", flush=True)
