// SPDX-License-Identifier: GPL-2.0
/* Syscall prototypes from the kernel's own ftrace syscall metadata. */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/string.h>
#include <linux/kallsyms.h>
#include <trace/syscall.h>
#include "sa.h"
#include "arch.h"

/* [0]: the native table, [1]: the compat ABI's */
static DECLARE_BITMAP(sa_known[2], SA_MAX_SYSCALLS);
/* per nr: which argument register words hold user strings (const char
 * __user *; ftrace's metadata spells it without __user). A word index is the
 * argument index on a 64-bit ABI; on a 32-bit one, arguments after a 64-bit
 * one move up (sa_arg_word). */
static u8 sa_strmask[2][SA_MAX_SYSCALLS];

u8 sa_meta_strmask(bool compat, int nr)
{
	return nr >= 0 && nr < SA_MAX_SYSCALLS ? sa_strmask[compat][nr] : 0;
}

bool sa_meta_known(bool compat, int nr)
{
	return nr >= 0 && nr < SA_MAX_SYSCALLS && test_bit(nr, sa_known[compat]);
}

struct sa_meta *sa_meta_entry(bool compat, unsigned int nr)
{
	return sa_shm + (compat ? SA_META32_OFF : SA_META_OFF) + nr * SA_META_SIZE;
}

/* Copy a string, telling whether it was cut. */
static bool sa_copy_str(char *dst, const char *src, size_t size)
{
	return src && strscpy(dst, src, size) < 0;
}

/* The 64-bit types, as syscalls/abi32.py lists them (is_wide). */
static const char *const sa_wide_types[] = {
	"loff_t", "long long", "signed long long", "long long int", "s64", "__s64",
	"__kernel_loff_t", "off64_t", "int64_t", "unsigned long long",
	"unsigned long long int", "u64", "__u64", "__aligned_u64", "uint64_t",
};

static bool sa_type_wide(const char *t)
{
	if (!t || strchr(t, '*'))
		return false;
	for (;;) {
		if (!strncmp(t, "const ", 6))
			t += 6;
		else if (!strncmp(t, "volatile ", 9))
			t += 9;
		else
			break;
	}
	return match_string(sa_wide_types, ARRAY_SIZE(sa_wide_types), t) >= 0;
}

/*
 * The register word of an argument of type t when the arguments before it
 * end at word *next; moves *next past it. On a 32-bit ABI a 64-bit type
 * takes two words, on an even one where the ABI aligns pairs.
 */
static unsigned int sa_arg_word(bool compat, const char *t, unsigned int *next)
{
	unsigned int word = *next;

	if ((compat || BITS_PER_LONG == 32) && sa_type_wide(t)) {
		if (!compat && sa_arch_pairs_aligned() && word % 2)
			word++;
		*next = word + 2;
	} else {
		*next = word + 1;
	}
	return word;
}

/* name: what the entry is called (NULL: the metadata's own name) */
static void sa_meta_one(bool compat, int nr, const struct syscall_metadata *m,
			const char *name)
{
	struct sa_meta *out = sa_meta_entry(compat, nr);
	bool cut = false;
	unsigned int next = 0;
	int i;

	out->nr = nr;
	if (!m || !m->name || m->nb_args < 0 || m->nb_args > SA_MAX_ARGS)
		return;
	out->nargs = m->nb_args;
	cut |= sa_copy_str(out->name, name ?: m->name, sizeof(out->name));
	for (i = 0; i < m->nb_args; i++) {
		const char *t = m->types ? m->types[i] : NULL;
		unsigned int word = sa_arg_word(compat, t, &next);

		cut |= sa_copy_str(out->types[i], t,
				   sizeof(out->types[i]));
		cut |= sa_copy_str(out->names[i], m->args ? m->args[i] : NULL,
				   sizeof(out->names[i]));
		if (t && !strcmp(t, "const char *") && word < SA_MAX_ARGS)
			sa_strmask[compat][nr] |= BIT(word);
	}
	out->flags = SA_META_KNOWN | (cut ? SA_META_TRUNCATED : 0);
	set_bit(nr, sa_known[compat]);
}

/* The metadata of a SYSCALL_DEFINE, whatever table calls it, by its
 * function's name ("sys_openat"): each is a static __syscall_meta__openat
 * (the array that lists them all is init data, gone after boot). */
static const struct syscall_metadata *sa_meta_by_name(const char *fn)
{
	char sym[KSYM_NAME_LEN];

	if (strncmp(fn, "sys_", 4) ||
	    snprintf(sym, sizeof(sym), "__syscall_meta__%s", fn + 4) >= sizeof(sym))
		return NULL;
	return (const struct syscall_metadata *)sa_lookup_name(sym);
}

/*
 * The compat ABI's table. Its entries are named after the kernel function
 * the table lists ("sys_openat"; "sys_ia32_pread64" becomes "sys_pread64"),
 * so that one name hooks the same syscall in both ABIs. The prototype is
 * that function's SYSCALL_DEFINE metadata (the compat wrapper the ABI calls,
 * compat_sys_*, takes the same arguments); a function without metadata
 * (built for 32-bit kernels only, e.g. sys_old_mmap, sys_stat64) is named
 * without a prototype (SA_META_NOPROTO).
 */
static void sa_meta_write_compat(void)
{
	unsigned int n = min_t(unsigned int, sa_arch_compat_nr_syscalls(), SA_MAX_SYSCALLS);
	unsigned int nr, named = 0, protos = 0;

	for (nr = 0; nr < n; nr++) {
		struct sa_meta *out = sa_meta_entry(true, nr);
		const char *fn = sa_arch_compat_name(nr);
		const struct syscall_metadata *m;
		char name[sizeof(out->name)];
		bool cut;

		out->nr = nr;
		if (!fn)
			continue;
		named++;
		if (!strncmp(fn, "sys_ia32_", 9))
			cut = snprintf(name, sizeof(name), "sys_%s", fn + 9) >= sizeof(name);
		else
			cut = sa_copy_str(name, fn, sizeof(name));
		m = sa_meta_by_name(fn);
		if (m && m->nb_args >= 0 && m->nb_args <= SA_MAX_ARGS) {
			sa_meta_one(true, nr, m, name);
			out->flags |= cut ? SA_META_TRUNCATED : 0;
			protos++;
			continue;
		}
		memcpy(out->name, name, sizeof(out->name));
		out->flags = SA_META_KNOWN | SA_META_NOPROTO | (cut ? SA_META_TRUNCATED : 0);
		set_bit(nr, sa_known[true]);
	}
	sa_guest()->nr_syscalls32 = n;
	if (n)
		pr_info("compat ABI: %u entries, %u syscalls, %u with a prototype\n",
			n, named, protos);
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
	for (nr = 0; nr < n; nr++)
		sa_meta_one(false, nr, table ? table[nr]
					     : sa_meta_by_entry(sa_arch_table_entry(nr)), NULL);
	sa_guest()->nr_syscalls = n;
	sa_meta_write_compat();
}
