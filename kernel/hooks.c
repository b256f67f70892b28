// SPDX-License-Identifier: GPL-2.0
/*
 * The hook table: copied once from shared memory into a private snapshot,
 * checked, put in force (exactly the table entries some hook needs are
 * redirected to the wrapper, see redirect.h), then acknowledged to the host.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/rcupdate.h>
#include <linux/uaccess.h>
#include <linux/sched.h>
#include "sa.h"
#include "arch.h"
#include "redirect.h"

static struct sa_snapshot __rcu *sa_current;
static DEFINE_MUTEX(sa_hooks_lock);

/* nrs whose table entry can be redirected (ftrace: some are notrace) */
static unsigned long *sa_traceable;
/* nrs caught by the arch's other way (sa_arch_ni_*) instead of ftrace */
static unsigned long *sa_ni;
static unsigned long *sa_ips;       /* sorted, what is hooked now */
static unsigned int sa_nips;

struct sa_snapshot *sa_snap_get(void)
{
	struct sa_snapshot *snap;

	rcu_read_lock();
	snap = rcu_dereference(sa_current);
	if (snap && !refcount_inc_not_zero(&snap->ref))
		snap = NULL;
	rcu_read_unlock();
	return snap;
}

static void sa_snap_free(struct sa_snapshot *snap)
{
	kvfree(snap->nr_flags);
	kvfree(snap);
}

void sa_snap_put(struct sa_snapshot *snap)
{
	/* Unpublished snapshots were retired after a grace period, so the
	 * last reference can free at once. */
	if (snap && refcount_dec_and_test(&snap->ref))
		sa_snap_free(snap);
}

/* ---- filters ---- */

static u64 sa_norm(u64 v, u8 cmp)
{
	if (!(cmp & SA_CMP_32))
		return v;
	return (cmp & SA_CMP_SIGNED) ? (u64)(s64)(s32)v : (u64)(u32)v;
}

static int sa_cmp(u64 a, u64 b, u8 cmp)
{
	if (cmp & SA_CMP_SIGNED)
		return (s64)a < (s64)b ? -1 : (s64)a > (s64)b;
	return a < b ? -1 : a > b;
}

static bool sa_value_match(const struct sa_filter *f, u64 raw)
{
	u64 v = sa_norm(raw, f->cmp), a = sa_norm(f->a, f->cmp), b = sa_norm(f->b, f->cmp);
	/* success/error are about the sign whatever the declared type */
	s64 sv = (f->cmp & SA_CMP_32) ? (s64)(s32)raw : (s64)raw;

	switch (f->kind) {
	case SA_F_NONE: return true;
	case SA_F_EXACT: return v == a;
	case SA_F_NOT_EQUAL: return v != a;
	case SA_F_GREATER: return sa_cmp(v, a, f->cmp) > 0;
	case SA_F_GREATER_EQUAL: return sa_cmp(v, a, f->cmp) >= 0;
	case SA_F_LESS: return sa_cmp(v, a, f->cmp) < 0;
	case SA_F_LESS_EQUAL: return sa_cmp(v, a, f->cmp) <= 0;
	case SA_F_RANGE: return sa_cmp(v, a, f->cmp) >= 0 && sa_cmp(v, b, f->cmp) <= 0;
	case SA_F_SUCCESS: return sv >= 0;
	case SA_F_ERROR: return sv < 0;
	case SA_F_BITMASK_SET: return (v & a) == a;
	case SA_F_BITMASK_CLEAR: return (v & a) == 0;
	}
	return false;
}

static bool sa_is_str_kind(u8 kind)
{
	return kind >= SA_F_STR_EXACT && kind <= SA_F_STR_ENDSWITH;
}

/* A user string read at most once per argument per call. */
struct sa_strcache {
	char *buf[SA_MAX_ARGS];
	long len[SA_MAX_ARGS];      /* < 0: could not read */
};

static bool sa_str_match(const struct sa_filter *f, struct sa_strcache *sc,
			 unsigned int i, u64 ptr)
{
	const char *s;
	size_t n, fl = f->str_len;

	if (!sc->buf[i]) {
		sc->buf[i] = kmalloc(SA_FILTER_STR_READ + 1, GFP_KERNEL);
		if (!sc->buf[i])
			return false;
		sc->len[i] = strncpy_from_user(sc->buf[i], sa_uptr(ptr),
					       SA_FILTER_STR_READ);
		if (sc->len[i] < 0)
			sa_count(filter_faults);
	}
	if (sc->len[i] < 0)
		return false;
	s = sc->buf[i];
	n = sc->len[i];
	switch (f->kind) {
	case SA_F_STR_EXACT:
		return n == fl && !memcmp(s, f->str, fl);
	case SA_F_STR_STARTSWITH:
		return n >= fl && !memcmp(s, f->str, fl);
	case SA_F_STR_ENDSWITH:
		return n >= fl && !memcmp(s + n - fl, f->str, fl);
	case SA_F_STR_CONTAINS:
		return fl == 0 || (n >= fl && strnstr(s, f->str, n));
	}
	return false;
}

static bool sa_hook_match(const struct sa_hook *h, const struct sa_call *call,
			  u32 phase, struct sa_strcache *sc)
{
	unsigned int i;

	if (h->nr == SA_NR_UNKNOWN ? sa_meta_known(call->nr)
				    : (h->nr != SA_NR_ALL && h->nr != call->nr))
		return false;
	if (!(h->flags & (phase == SA_PHASE_ENTER ? SA_HOOK_ENTER : SA_HOOK_RETURN)))
		return false;
	if ((h->flags & SA_HOOK_PID) && h->pid != current->tgid)
		return false;
	if ((h->flags & SA_HOOK_COMM) && strncmp(h->comm, current->comm, SA_COMM_LEN))
		return false;
	for (i = 0; i < SA_MAX_ARGS; i++) {
		const struct sa_filter *f = &h->args[i];

		if (f->kind == SA_F_NONE)
			continue;
		if (sa_is_str_kind(f->kind) ? !sa_str_match(f, sc, i, call->args[i])
					    : !sa_value_match(f, call->args[i]))
			return false;
	}
	if (phase == SA_PHASE_RETURN && h->ret.kind != SA_F_NONE &&
	    (sa_is_str_kind(h->ret.kind) || !sa_value_match(&h->ret, call->ret)))
		return false;
	return true;
}

/* Blocking hooks that matched into matched, observing ones into observed;
 * true if any hook matched. */
bool sa_hooks_match(struct sa_snapshot *snap, const struct sa_call *call,
		    u32 phase, u64 *matched, u64 *observed)
{
	struct sa_strcache sc = {};
	bool any = false;
	unsigned int i;

	memset(matched, 0, SA_MATCH_WORDS * sizeof(u64));
	memset(observed, 0, SA_MATCH_WORDS * sizeof(u64));
	for (i = 0; i < snap->count; i++) {
		const struct sa_hook *h = &snap->hooks[i];

		if ((h->flags & SA_HOOK_ENABLED) && sa_hook_match(h, call, phase, &sc)) {
			u64 *bits = (h->flags & SA_HOOK_OBSERVE) ? observed : matched;

			bits[i / 64] |= BIT_ULL(i % 64);
			any = true;
		}
	}
	for (i = 0; i < SA_MAX_ARGS; i++)
		kfree(sc.buf[i]);
	return any;
}

/* ---- the table ---- */

static bool sa_filter_valid(const struct sa_filter *f)
{
	return f->kind <= SA_F_MAX && f->str_len <= SA_FILTER_STR_MAX &&
	       !(f->cmp & ~(SA_CMP_SIGNED | SA_CMP_32));
}

static bool sa_hook_valid(struct sa_hook *h, unsigned int nsys)
{
	unsigned int i;

	if (h->nr != SA_NR_ALL && h->nr != SA_NR_UNKNOWN &&
	    (h->nr < 0 || h->nr >= nsys))
		return false;
	h->comm[SA_COMM_LEN - 1] = '\0';
	for (i = 0; i < SA_MAX_ARGS; i++) {
		if (!sa_filter_valid(&h->args[i]))
			return false;
		/* strnstr needs a terminated needle */
		if (h->args[i].str_len < SA_FILTER_STR_MAX)
			h->args[i].str[h->args[i].str_len] = '\0';
		else
			return false;
	}
	return sa_filter_valid(&h->ret);
}

static struct sa_snapshot *sa_snap_build(u32 gen, int *err)
{
	unsigned int nsys = sa_arch_nr_syscalls();
	u32 count = READ_ONCE(sa_host()->hook_count);
	struct sa_snapshot *snap;
	unsigned int i, nr;

	*err = -EINVAL;
	if (count > SA_MAX_HOOKS)
		return NULL;
	*err = -ENOMEM;
	snap = kvzalloc(struct_size(snap, hooks, count), GFP_KERNEL);
	if (!snap)
		return NULL;
	snap->nr_flags = kvzalloc(nsys, GFP_KERNEL);
	if (!snap->nr_flags) {
		kvfree(snap);
		return NULL;
	}
	refcount_set(&snap->ref, 1);
	snap->gen = gen;
	snap->count = count;
	memcpy(snap->hooks, sa_shm + SA_HOOKS_OFF, count * sizeof(struct sa_hook));

	*err = -EINVAL;
	for (i = 0; i < count; i++) {
		struct sa_hook *h = &snap->hooks[i];
		u8 want = h->flags & (SA_HOOK_ENTER | SA_HOOK_RETURN);

		if (!sa_hook_valid(h, nsys))
			goto bad;
		if (!(h->flags & SA_HOOK_ENABLED) || !want)
			continue;
		if (h->nr == SA_NR_ALL || h->nr == SA_NR_UNKNOWN)
			snap->oor_flags |= want;
		for (nr = 0; nr < nsys; nr++)
			if (h->nr == nr || h->nr == SA_NR_ALL ||
			    (h->nr == SA_NR_UNKNOWN && !sa_meta_known(nr)))
				snap->nr_flags[nr] |= want;
	}
	*err = 0;
	return snap;
bad:
	sa_snap_free(snap);
	return NULL;
}

static int sa_cmp_ulong(const void *a, const void *b)
{
	unsigned long x = *(const unsigned long *)a, y = *(const unsigned long *)b;

	return x < y ? -1 : x > y;
}

/* The distinct table entries the snapshot needs redirected, sorted; *ni:
 * whether it needs an entry caught the other way. */
static unsigned long *sa_snap_ips(const struct sa_snapshot *snap, unsigned int *n,
				  bool *ni)
{
	unsigned int nsys = sa_arch_nr_syscalls(), nr, k = 0, j;
	unsigned long *ips = kvmalloc_array(nsys, sizeof(*ips), GFP_KERNEL);

	*ni = false;
	if (!ips)
		return NULL;
	for (nr = 0; nr < nsys; nr++) {
		if (!snap->nr_flags[nr])
			continue;
		if (test_bit(nr, sa_ni))
			*ni = true;
		else if (test_bit(nr, sa_traceable))
			ips[k++] = sa_arch_table_entry(nr);
	}
	sort(ips, k, sizeof(*ips), sa_cmp_ulong, NULL);
	for (j = 0, nr = 0; nr < k; nr++)
		if (!j || ips[j - 1] != ips[nr])
			ips[j++] = ips[nr];
	*n = j;
	return ips;
}

/* Elements of a not in b (both sorted) into out; returns how many. */
static unsigned int sa_minus(const unsigned long *a, unsigned int na,
			     const unsigned long *b, unsigned int nb, unsigned long *out)
{
	unsigned int i = 0, j = 0, k = 0;

	for (; i < na; i++) {
		while (j < nb && b[j] < a[i])
			j++;
		if (j >= nb || b[j] != a[i])
			out[k++] = a[i];
	}
	return k;
}

/* Redirect exactly ips (sorted, distinct): add the new entries before
 * removing the old ones. */
static int sa_entries_set(unsigned long *ips, unsigned int n)
{
	unsigned long *tmp;
	unsigned int k;
	int err;

	tmp = kvmalloc_array(max3(n, sa_nips, 1U), sizeof(*tmp), GFP_KERNEL);
	if (!tmp)
		return -ENOMEM;
	k = sa_minus(ips, n, sa_ips, sa_nips, tmp);
	err = sa_redirect_add(tmp, k);
	k = sa_minus(sa_ips, sa_nips, ips, n, tmp);
	if (!err)
		err = sa_redirect_del(tmp, k, n == 0);
	kvfree(tmp);
	if (err)
		return err;
	kvfree(sa_ips);
	sa_ips = ips;
	sa_nips = n;
	return 0;
}

static void sa_publish(struct sa_snapshot *snap)
{
	struct sa_snapshot *old;

	old = rcu_replace_pointer(sa_current, snap, lockdep_is_held(&sa_hooks_lock));
	synchronize_rcu();
	sa_snap_put(old);
}

/* The stub's probe and, on top of it, the redirection of numbers beyond
 * the table to the stub: armed probe first, disarmed redirection first, so
 * that a redirected call always meets the probe. The redirection is
 * optional: without it those numbers stay unseen. */
static int sa_oor_apply(bool ni, bool oor)
{
	int err;

	if (!oor)
		sa_arch_oor_arm(false);
	err = sa_arch_ni_arm(ni || oor);
	if (!err && oor && sa_arch_oor_arm(true))
		pr_warn_once("syscall numbers beyond the table cannot be caught\n");
	return err;
}

void sa_hooks_apply(u32 gen)
{
	struct sa_guest_header *g = sa_guest();
	struct sa_snapshot *snap;
	unsigned long *ips = NULL;
	unsigned int n = 0;
	bool ni = false;
	int err;

	mutex_lock(&sa_hooks_lock);
	sa_ring_configure();
	snap = sa_snap_build(gen, &err);
	if (snap) {
		ips = sa_snap_ips(snap, &n, &ni);
		err = ips ? 0 : -ENOMEM;
	}
	if (!err) {
		bool oor = snap->oor_flags;

		/* In force for the wrapper first, then the entries hooked. */
		sa_publish(snap);
		err = sa_entries_set(ips, n);
		if (err)
			kvfree(ips);
		else
			err = sa_oor_apply(ni, oor);
	} else {
		if (snap)
			sa_snap_free(snap);
		sa_count(table_rejects);
	}
	if (!err)
		sa_count(table_updates);
	else
		pr_warn("hook table %u refused: %d\n", gen, err);
	WRITE_ONCE(g->hooks_status, err);
	/* the ni stub is one more distinct entry when it is caught */
	WRITE_ONCE(g->hooked_entries, sa_nips + sa_arch_ni_armed());
	smp_wmb();
	WRITE_ONCE(g->hooks_ack, gen);
	mutex_unlock(&sa_hooks_lock);
}

/* Which table entries can be redirected? Entries the arch catches another
 * way (the ni stub) never go to the redirect backend. */
int sa_hooks_init(void)
{
	unsigned int nsys = sa_arch_nr_syscalls(), nr, bad = 0, ni = 0;
	int err;

	sa_traceable = bitmap_zalloc(nsys, GFP_KERNEL);
	sa_ni = bitmap_zalloc(nsys, GFP_KERNEL);
	if (!sa_traceable || !sa_ni) {
		bitmap_free(sa_traceable);
		bitmap_free(sa_ni);
		return -ENOMEM;
	}
	err = sa_arch_ni_init();
	if (err && err != -ENOENT)
		pr_warn("unimplemented syscalls cannot be caught: %d\n", err);
	for (nr = 0; nr < nsys; nr++) {
		unsigned long ip = sa_arch_table_entry(nr);

		if (sa_arch_ni_entry(nr)) {
			set_bit(nr, sa_ni);
			ni++;
			continue;
		}
		if (ip && sa_redirect_possible(ip)) {
			set_bit(nr, sa_traceable);
			continue;
		}
		bad++;
		if (nr < SA_MAX_SYSCALLS) {
			struct sa_meta *m = sa_shm + SA_META_OFF + nr * SA_META_SIZE;

			m->flags |= SA_META_UNHOOKABLE;
		}
	}
	sa_redirect_probed();
	sa_guest()->untraceable = bad;
	if (bad)
		pr_info("%u syscall entries cannot be hooked\n", bad);
	if (ni)
		pr_info("%u unimplemented syscall entries caught at their shared stub\n",
			ni);
	return 0;
}

void sa_hooks_exit(void)
{
	mutex_lock(&sa_hooks_lock);
	sa_redirect_exit();
	sa_arch_ni_exit();
	kvfree(sa_ips);
	sa_ips = NULL;
	sa_nips = 0;
	sa_publish(NULL);
	mutex_unlock(&sa_hooks_lock);
	bitmap_free(sa_traceable);
	bitmap_free(sa_ni);
}
