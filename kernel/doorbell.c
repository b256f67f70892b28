// SPDX-License-Identifier: GPL-2.0
/*
 * The doorbell: wake a host that sleeps in its event loop.
 *
 * The host sets its sleeping word (a nonzero token, new for every sleep),
 * makes that store visible before it looks at the region once more, and only
 * then waits for the bell. Every producer publishes its message and then calls
 * sa_doorbell(), which orders the message before its read of the sleeping
 * word: either the host's last look sees the message, or the producer sees
 * the token and rings. One ring per token is enough (the host looks at every
 * source once it wakes), so the CPU that wins the token rings and the others
 * do not; a busy host (sleeping word 0) is never interrupted.
 *
 * The bell is a byte written to an I/O port (QEMU's isa-debugcon, whose
 * writes go to a host socket): a port write exits to QEMU under TCG and under
 * KVM alike.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/io.h>
#include <linux/ioport.h>
#include "sa.h"

static u16 sa_bell_port;

void sa_doorbell(void)
{
	struct sa_guest_header *g = sa_guest();
	u32 token, rung;

	if (!sa_bell_port)
		return;
	smp_mb(); /* the published message before the host's sleeping word */
	token = READ_ONCE(sa_host()->sleeping);
	if (!token)
		return;
	rung = READ_ONCE(g->bell_rung);
	if (rung == token || cmpxchg(&g->bell_rung, rung, token) != rung)
		return;
	outb(1, sa_bell_port);
	sa_count(bells);
}

/* Without the device the module still works: the host sees bell_port 0 and
 * polls. */
void sa_doorbell_init(void)
{
	if (!IS_ENABLED(CONFIG_X86)) {
		/* isa-debugcon is an x86 I/O port device; elsewhere port numbers
		 * reach PCI or ISA I/O windows that are not ours to poke */
		pr_info("no doorbell on this architecture: the host will poll\n");
		return;
	}
	if (!request_region(SA_BELL_PORT, 1, "syscalls_async doorbell")) {
		pr_warn("doorbell port %#x is taken: the host will poll\n", SA_BELL_PORT);
		return;
	}
	if (inb(SA_BELL_PORT) != SA_BELL_READBACK) {
		pr_info("no doorbell device at port %#x: the host will poll\n", SA_BELL_PORT);
		release_region(SA_BELL_PORT, 1);
		return;
	}
	sa_bell_port = SA_BELL_PORT;
	WRITE_ONCE(sa_guest()->bell_port, SA_BELL_PORT);
}

void sa_doorbell_exit(void)
{
	if (!sa_bell_port)
		return;
	sa_bell_port = 0;
	release_region(SA_BELL_PORT, 1);
}
