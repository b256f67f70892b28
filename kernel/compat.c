// SPDX-License-Identifier: GPL-2.0
/*
 * Architectures without a compat syscall ABI (see arch.h): there is none to
 * hook. x86_64 with IA32_EMULATION has one (arch_x86_64.c).
 */
#include <linux/kernel.h>
#include <linux/errno.h>
#include "arch.h"
#include "sa.h"

#if !(defined(CONFIG_X86_64) && defined(CONFIG_IA32_EMULATION))

unsigned int sa_arch_compat_nr_syscalls(void)
{
	return 0;
}

unsigned long sa_arch_compat_entry(unsigned int nr)
{
	return 0;
}

const char *sa_arch_compat_name(unsigned int nr)
{
	return NULL;
}

bool sa_arch_compat_noreturn(int nr)
{
	return false;
}

bool sa_arch_compat_ni_entry(unsigned int nr)
{
	return false;
}

void sa_arch_compat_write_args(struct pt_regs *regs, const u64 *args, u32 mask)
{
}

u64 sa_arch_compat_get_arg(const struct pt_regs *regs, unsigned int i)
{
	return 0;
}

int sa_arch_compat_signal_outcome(const struct pt_regs *then, long *ret)
{
	return -ESRCH;
}

void sa_arch_compat_set_signal_ret(const struct pt_regs *then, long ret)
{
}

#endif
