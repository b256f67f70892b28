// SPDX-License-Identifier: GPL-2.0
/*
 * Redirect by kprobes: one kprobe on the first instruction of each distinct
 * table entry that can be hooked, registered disarmed at load and armed
 * while some hook needs its entry. The arch's pre-handler moves the pc to
 * the wrapper (returning 1: no single-step, resume at the new pc). Each
 * probe has an empty post-handler so it is never jump-optimized: an
 * optimized probe ignores the pc its pre-handler sets. For architectures
 * where ftrace's call comes after the prologue (ARM).
 *
 * Registering costs no text patching (disabled probes are not armed), and
 * the probes are unregistered together at unload (one RCU grace period).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/kprobes.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include "arch.h"
#include "redirect.h"

/* sorted by address once probing is done (sa_redirect_probed) */
static struct kprobe **sa_kps;
static unsigned int sa_nkps, sa_cap;

static void notrace sa_kp_post(struct kprobe *p, struct pt_regs *regs,
			       unsigned long flags)
{
}

static struct kprobe *sa_kp_find(unsigned long ip)
{
	unsigned int lo = 0, hi = sa_nkps;

	while (lo < hi) {
		unsigned int mid = (lo + hi) / 2;
		unsigned long at = (unsigned long)sa_kps[mid]->addr;

		if (at == ip)
			return sa_kps[mid];
		if (at < ip)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Before sorting: one address is asked about once per table entry that
 * holds it (a few hundred entries at load, a linear look is enough). */
static struct kprobe *sa_kp_seen(unsigned long ip)
{
	unsigned int i;

	for (i = 0; i < sa_nkps; i++)
		if ((unsigned long)sa_kps[i]->addr == ip)
			return sa_kps[i];
	return NULL;
}

bool sa_redirect_possible(unsigned long ip)
{
	struct kprobe *kp;
	int err;

	if (!ip)
		return false;
	if (sa_kp_seen(ip))
		return true;
	if (sa_nkps == sa_cap) {
		unsigned int cap = sa_cap ? 2 * sa_cap : 256;
		struct kprobe **more = krealloc_array(sa_kps, cap, sizeof(*more),
						      GFP_KERNEL);

		if (!more)
			return false;
		sa_kps = more;
		sa_cap = cap;
	}
	kp = kzalloc(sizeof(*kp), GFP_KERNEL);
	if (!kp)
		return false;
	kp->addr = (kprobe_opcode_t *)ip;
	kp->pre_handler = sa_arch_kprobe_cb;
	kp->post_handler = sa_kp_post;
	kp->flags = KPROBE_FLAG_DISABLED;
	err = register_kprobe(kp);
	if (err) {
		pr_debug("entry %ps cannot be probed: %d\n", (void *)ip, err);
		kfree(kp);
		return false;
	}
	sa_kps[sa_nkps++] = kp;
	return true;
}

static int sa_kp_cmp(const void *a, const void *b)
{
	unsigned long x = (unsigned long)(*(struct kprobe * const *)a)->addr;
	unsigned long y = (unsigned long)(*(struct kprobe * const *)b)->addr;

	return x < y ? -1 : x > y;
}

void sa_redirect_probed(void)
{
	sort(sa_kps, sa_nkps, sizeof(*sa_kps), sa_kp_cmp, NULL);
}

static int sa_kp_arm(const unsigned long *ips, unsigned int n, bool on)
{
	unsigned int i;
	int err = 0;

	for (i = 0; i < n && !err; i++) {
		struct kprobe *kp = sa_kp_find(ips[i]);

		if (!kp)
			err = -ENOENT;
		else
			err = on ? enable_kprobe(kp) : disable_kprobe(kp);
	}
	return err;
}

int sa_redirect_add(const unsigned long *ips, unsigned int n)
{
	return sa_kp_arm(ips, n, true);
}

int sa_redirect_del(const unsigned long *ips, unsigned int n, bool none_left)
{
	return sa_kp_arm(ips, n, false);
}

void sa_redirect_exit(void)
{
	unsigned int i;

	if (sa_nkps)
		unregister_kprobes(sa_kps, sa_nkps);   /* waits for handlers */
	for (i = 0; i < sa_nkps; i++)
		kfree(sa_kps[i]);
	kfree(sa_kps);
	sa_kps = NULL;
	sa_nkps = sa_cap = 0;
}
