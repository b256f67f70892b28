// SPDX-License-Identifier: GPL-2.0
/*
 * Hooked entries by kprobe, for kernels whose ftrace cannot move the pc
 * (SA_ENTRY_KPROBES, see arch.h). Every distinct table entry gets a kprobe
 * on its first instruction at load, registered disabled; a table update
 * arms the ones some hook needs and disarms the rest. The arch's
 * pre-handler moves the pc to the wrapper.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/kprobes.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/bsearch.h>
#include "sa.h"
#include "arch.h"

#ifdef SA_ENTRY_KPROBES

struct sa_entry {
	struct kprobe kp;
	unsigned long ip;
	bool registered;
	bool armed;
};

static struct sa_entry *sa_entries;
static unsigned int sa_nentries;

/* Never called for a redirect; its presence keeps a probe from being
 * optimized into a jump that would ignore the pc the pre-handler sets. */
static void notrace sa_entry_post(struct kprobe *p, struct pt_regs *regs,
				  unsigned long flags)
{
}

static int sa_cmp_ip(const void *a, const void *b)
{
	unsigned long x = *(const unsigned long *)a, y = *(const unsigned long *)b;

	return x < y ? -1 : x > y;
}

static int sa_entry_key(const void *key, const void *elt)
{
	unsigned long ip = *(const unsigned long *)key;
	const struct sa_entry *e = elt;

	return ip < e->ip ? -1 : ip > e->ip;
}

static struct sa_entry *sa_entry_find(unsigned long ip)
{
	return bsearch(&ip, sa_entries, sa_nentries, sizeof(*sa_entries), sa_entry_key);
}

/* Register a disabled probe on every distinct entry; returns how many could
 * not be (those entries stay unhookable). */
int sa_entries_init(unsigned int *failed)
{
	unsigned int nsys = sa_arch_nr_syscalls(), nr, n = 0, i;
	unsigned long *ips;

	*failed = 0;
	ips = kvmalloc_array(nsys, sizeof(*ips), GFP_KERNEL);
	if (!ips)
		return -ENOMEM;
	for (nr = 0; nr < nsys; nr++)
		if (sa_arch_table_entry(nr))
			ips[n++] = sa_arch_table_entry(nr);
	sort(ips, n, sizeof(*ips), sa_cmp_ip, NULL);
	sa_entries = kvcalloc(n, sizeof(*sa_entries), GFP_KERNEL);
	if (!sa_entries) {
		kvfree(ips);
		return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		struct sa_entry *e;
		int err;

		if (sa_nentries && sa_entries[sa_nentries - 1].ip == ips[i])
			continue;
		e = &sa_entries[sa_nentries++];
		e->ip = ips[i];
		e->kp.addr = (kprobe_opcode_t *)ips[i];
		e->kp.pre_handler = sa_arch_entry_pre;
		e->kp.post_handler = sa_entry_post;
		e->kp.flags = KPROBE_FLAG_DISABLED;
		err = register_kprobe(&e->kp);
		if (err) {
			pr_info("entry %pS cannot be probed: %d\n", (void *)ips[i], err);
			(*failed)++;
			continue;
		}
		e->registered = true;
	}
	kvfree(ips);
	return 0;
}

bool sa_entry_hookable(unsigned long ip)
{
	struct sa_entry *e = sa_entry_find(ip);

	return e && e->registered;
}

int sa_entry_arm(unsigned long ip, bool on)
{
	struct sa_entry *e = sa_entry_find(ip);
	int err;

	if (!e || !e->registered)
		return on ? -ENOENT : 0;
	if (e->armed == on)
		return 0;
	err = on ? enable_kprobe(&e->kp) : disable_kprobe(&e->kp);
	if (!err)
		e->armed = on;
	return err;
}

void sa_entries_exit(void)
{
	struct kprobe **kps;
	unsigned int i, n = 0;

	/* one batch: a single wait for running handlers, not one per probe */
	kps = kvmalloc_array(sa_nentries ?: 1, sizeof(*kps), GFP_KERNEL);
	for (i = 0; i < sa_nentries; i++) {
		if (!sa_entries[i].registered)
			continue;
		if (kps)
			kps[n++] = &sa_entries[i].kp;
		else
			unregister_kprobe(&sa_entries[i].kp);
	}
	if (kps) {
		unregister_kprobes(kps, n);     /* waits for handlers */
		kvfree(kps);
	}
	kvfree(sa_entries);
	sa_entries = NULL;
	sa_nentries = 0;
}

#endif
