// SPDX-License-Identifier: GPL-2.0
/*
 * Finding data the kernel does not list. Without CONFIG_KALLSYMS_ALL
 * (Debian's arm64 and armmp kernels) kallsyms names functions only: no
 * sys_call_table, no syscalls_metadata. The table is then found by its
 * contents (the addresses of its first entries, which are functions), and
 * a syscall's metadata through its ftrace event (sys_enter_<name>), whose
 * data is that metadata.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/kallsyms.h>
#include <linux/uaccess.h>
#include <linux/trace_events.h>
#include <trace/syscall.h>
#include "sa.h"
#include "arch.h"

const void *sa_find_table(unsigned long (*lookup)(const char *name),
			  unsigned long start, unsigned long end,
			  const char *const first[], unsigned int n)
{
	unsigned long want[4], addr, v;
	unsigned int i;

	if (!n || n > ARRAY_SIZE(want) || !start || end <= start)
		return NULL;
	for (i = 0; i < n; i++) {
		want[i] = lookup(first[i]);
		if (!want[i])
			return NULL;
	}
	start = ALIGN(start, sizeof(long));
	for (addr = start; addr + n * sizeof(long) <= end; addr += sizeof(long)) {
		if (get_kernel_nofault(v, (unsigned long *)addr) || v != want[0])
			continue;
		for (i = 1; i < n; i++)
			if (get_kernel_nofault(v, (unsigned long *)addr + i) || v != want[i])
				break;
		if (i == n)
			return (const void *)addr;
	}
	return NULL;
}

/* The metadata of the syscall whose table entry is fn, or NULL. The event
 * file is put back at once: the metadata is static kernel data. */
const struct syscall_metadata *sa_meta_by_entry(unsigned long fn)
{
	/* at load only, one caller: too big for the stack of a 32-bit kernel */
	static char sym[KSYM_SYMBOL_LEN], event[KSYM_SYMBOL_LEN + 16];
	const struct syscall_metadata *m;
	struct trace_event_file *file;
	const char *name;

	if (!fn)
		return NULL;
	sprint_symbol_no_offset(sym, fn);
	/* __arm64_sys_openat, sys_openat: the name follows "sys_" */
	name = strstr(sym, "sys_");
	if (!name || !strcmp(name, "sys_ni_syscall"))
		return NULL;
	name += 4;
	/* ARM's arm_fadvise64_64 has fadvise64_64's event (the kernel's
	 * arch_syscall_match_sym_name) */
	if (!strncmp(name, "arm_", 4))
		name += 4;
	snprintf(event, sizeof(event), "sys_enter_%s", name);
	file = trace_get_event_file(NULL, "syscalls", event);
	if (IS_ERR_OR_NULL(file))
		return NULL;
	m = file->event_call->data;
	trace_put_event_file(file);
	return m;
}
