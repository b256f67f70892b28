// SPDX-License-Identifier: GPL-2.0
/* Syscall prototypes from the kernel's own ftrace syscall metadata. */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/string.h>
#include <trace/syscall.h>
#include "sa.h"
#include "arch.h"

static DECLARE_BITMAP(sa_known, SA_MAX_SYSCALLS);
/* per nr: which arguments are user strings (const char __user *; ftrace's
 * metadata spells it without __user) */
static u8 sa_strmask[SA_MAX_SYSCALLS];

u8 sa_meta_strmask(int nr)
{
	return nr >= 0 && nr < SA_MAX_SYSCALLS ? sa_strmask[nr] : 0;
}

bool sa_meta_known(int nr)
{
	return nr >= 0 && nr < SA_MAX_SYSCALLS && test_bit(nr, sa_known);
}

/* Copy a string, telling whether it was cut. */
static bool sa_copy_str(char *dst, const char *src, size_t size)
{
	return src && strscpy(dst, src, size) < 0;
}

static void sa_meta_one(struct sa_meta *out, int nr, const struct syscall_metadata *m)
{
	bool cut = false;
	int i;

	out->nr = nr;
	if (!m || !m->name || m->nb_args < 0 || m->nb_args > SA_MAX_ARGS)
		return;
	out->nargs = m->nb_args;
	cut |= sa_copy_str(out->name, m->name, sizeof(out->name));
	for (i = 0; i < m->nb_args; i++) {
		cut |= sa_copy_str(out->types[i], m->types ? m->types[i] : NULL,
				   sizeof(out->types[i]));
		cut |= sa_copy_str(out->names[i], m->args ? m->args[i] : NULL,
				   sizeof(out->names[i]));
		if (m->types && m->types[i] && !strcmp(m->types[i], "const char *"))
			sa_strmask[nr] |= BIT(i);
	}
	out->flags = SA_META_KNOWN | (cut ? SA_META_TRUNCATED : 0);
	set_bit(nr, sa_known);
}

void sa_meta_write(void)
{
	struct syscall_metadata ***tablep;
	struct syscall_metadata **table = NULL;
	unsigned int n = min_t(unsigned int, sa_arch_nr_syscalls(), SA_MAX_SYSCALLS);
	unsigned int nr;

	/* kernel/trace/trace_syscalls.c keeps a static array indexed by nr. */
	tablep = (void *)sa_lookup_name("syscalls_metadata");
	if (tablep)
		table = *tablep;
	if (!table)
		pr_info("no syscalls_metadata symbol: metadata from the syscall events\n");
	for (nr = 0; nr < n; nr++) {
		struct sa_meta *out = sa_shm + SA_META_OFF + nr * SA_META_SIZE;

		sa_meta_one(out, nr, table ? table[nr]
					   : sa_meta_by_entry(sa_arch_table_entry(nr)));
	}
	sa_guest()->nr_syscalls = n;
}
