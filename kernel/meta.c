// SPDX-License-Identifier: GPL-2.0
/* Syscall prototypes from the kernel's own ftrace syscall metadata. */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/kallsyms.h>
#include <linux/string.h>
#include <linux/trace_events.h>
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

/*
 * Without syscalls_metadata (a data symbol: kallsyms lists it only with
 * CONFIG_KALLSYMS_ALL, which Debian's armmp kernel does not set), each
 * syscall's metadata is reached through its ftrace event, whose data it is:
 * syscalls/sys_enter_<name>, the name being the entry's symbol without its
 * "sys_" prefix (ARM's arm_fadvise64_64 also without "arm_", as the kernel
 * matches it). Entries without an event (sys_ni_syscall) stay unknown.
 */
static const struct syscall_metadata *sa_meta_by_event(unsigned int nr)
{
	/* at load only, one caller: too big for the stack */
	static char sym[KSYM_SYMBOL_LEN], event[KSYM_SYMBOL_LEN + 16];
	unsigned long addr = sa_arch_table_entry(nr);
	const struct syscall_metadata *m = NULL;
	struct trace_event_file *file;
	const char *name;

	if (!addr)
		return NULL;
	sprint_symbol_no_offset(sym, addr);
	name = strstr(sym, "sys_");
	if (!name)
		return NULL;
	name += 4;
	if (!strncmp(name, "arm_", 4))
		name += 4;
	snprintf(event, sizeof(event), "sys_enter_%s", name);
	file = trace_get_event_file(NULL, "syscalls", event);
	if (IS_ERR_OR_NULL(file))
		return NULL;
	if (file->event_call)
		m = file->event_call->data;
	trace_put_event_file(file);
	return m;
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

		sa_meta_one(out, nr, table ? table[nr] : sa_meta_by_event(nr));
	}
	sa_guest()->nr_syscalls = n;
}
