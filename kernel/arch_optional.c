// SPDX-License-Identifier: GPL-2.0
/*
 * The optional parts of arch.h, as an architecture without them has them:
 * weak definitions its arch_*.c overrides where it has the part.
 */
#include <linux/kernel.h>
#include <linux/errno.h>
#include "arch.h"

/* No other way for entries ftrace or the probes cannot hook: every entry is
 * hooked like the others (arm64, mips). */
int __weak sa_arch_ni_init(void)
{
	return -ENOENT;
}

bool __weak sa_arch_ni_entry(unsigned int nr)
{
	return false;
}

/* nothing to arm: no entry is caught that way */
int __weak sa_arch_ni_arm(bool on)
{
	return 0;
}

bool __weak sa_arch_ni_armed(void)
{
	return false;
}

/* at unload: only the catch of numbers beyond the table to disarm */
void __weak sa_arch_ni_exit(void)
{
	sa_arch_oor_arm(false);
}

/* 64-bit ABIs, and ia32: no padding before a 64-bit argument */
bool __weak sa_arch_pairs_aligned(void)
{
	return false;
}
