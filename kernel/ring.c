// SPDX-License-Identifier: GPL-2.0
/*
 * Observe-only events: the task does not wait. What a watcher needs is
 * captured now (arguments, the user strings the prototype marks, the task)
 * and written as one record into the ring of this CPU; a record that does
 * not fit is dropped and counted, per ring and per hook.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/slab.h>
#include <linux/sched.h>
#include <linux/smp.h>
#include <linux/spinlock.h>
#include <linux/uaccess.h>
#include <linux/log2.h>
#include "sa.h"
#include "arch.h"

/* The guest's own view of each ring: positions in shared memory are
 * written from here and never read back (the host could change them). */
struct sa_ring {
	spinlock_t lock;            /* CPUs beyond SA_RING_COUNT share rings */
	u64 head;
	u64 drops;
	u64 records;
	u32 size;
};

static struct sa_ring sa_rings[SA_RING_COUNT];

static struct sa_ring_header *sa_ring_hdr(unsigned int i)
{
	return sa_shm + SA_RINGS_OFF + (size_t)i * SA_RING_STRIDE;
}

static u8 *sa_ring_data(unsigned int i)
{
	return (u8 *)sa_ring_hdr(i) + SA_RING_HDR_SIZE;
}

static u32 sa_ring_size_wanted(void)
{
	u32 want = READ_ONCE(sa_host()->ring_size);

	if (!want)
		return SA_RING_DATA_MAX;
	if (want < SA_RING_DATA_MIN || want > SA_RING_DATA_MAX || !is_power_of_2(want))
		return 0;
	return want;
}

void sa_ring_init(void)
{
	unsigned int i;

	memset(sa_shm + SA_HOOK_DROPS_OFF, 0, SA_MAX_HOOKS * sizeof(u64));
	for (i = 0; i < SA_RING_COUNT; i++) {
		struct sa_ring_header *h = sa_ring_hdr(i);

		spin_lock_init(&sa_rings[i].lock);
		sa_rings[i].size = SA_RING_DATA_MAX;
		memset(h, 0, sizeof(*h));
		h->size = SA_RING_DATA_MAX;
		h->cpu = i;
	}
}

/* Take the size the host asks for, ring by ring, while the ring is empty
 * (a ring with unread records keeps its size until a later table). */
void sa_ring_configure(void)
{
	u32 want = sa_ring_size_wanted();
	unsigned int i;

	if (!want)
		return;
	for (i = 0; i < SA_RING_COUNT; i++) {
		struct sa_ring *r = &sa_rings[i];
		struct sa_ring_header *h = sa_ring_hdr(i);

		spin_lock(&r->lock);
		if (r->size != want && READ_ONCE(h->tail) == r->head) {
			r->size = want;
			WRITE_ONCE(h->size, want);
			smp_wmb();
		}
		spin_unlock(&r->lock);
	}
}

/*
 * Capture the strings of the argument words in mask into buf (room for
 * SA_MAX_ARGS * SA_STR_CAP bytes; NULL: none could be had), one after the
 * other, with their lengths and SA_STR_* flags; returns the bytes used.
 * May fault pages in: task context, nothing held.
 */
size_t sa_capture_strings(const struct sa_call *call, u8 mask, char *buf,
			  u16 *len, u8 *flags)
{
	size_t used = 0;
	unsigned int i;

	for (i = 0; i < SA_MAX_ARGS; i++) {
		long n;

		if (!(mask & BIT(i)))
			continue;
		if (!buf) {
			flags[i] = SA_STR_FAULT;
			continue;
		}
		n = strncpy_from_user(buf + used, sa_uptr(call->args[i]),
				      SA_STR_CAP);
		if (n < 0) {
			flags[i] = SA_STR_FAULT;
			continue;
		}
		len[i] = n;
		/* no NUL within the bound: the string is longer (or exactly
		 * SA_STR_CAP bytes, which the capture cannot tell apart) */
		flags[i] = SA_STR_CAPTURED | (n == SA_STR_CAP ? SA_STR_TRUNCATED : 0);
		used += n;
	}
	return used;
}

static void sa_ring_drop(struct sa_ring *r, struct sa_ring_header *h, const u64 *matched)
{
	atomic64_t *per_hook = sa_shm + SA_HOOK_DROPS_OFF;
	unsigned int i;

	WRITE_ONCE(h->drops, ++r->drops);
	sa_count(ring_drops);
	for (i = 0; i < SA_MAX_HOOKS; i++)
		if (matched[i / 64] & BIT_ULL(i % 64))
			atomic64_inc(&per_hook[i]);
}

/* Put one record (header + strings) into ring i, or drop it. */
static void sa_ring_put(unsigned int i, struct sa_ring_rec *rec, const char *strs,
			size_t slen, const u64 *matched)
{
	struct sa_ring *r = &sa_rings[i];
	struct sa_ring_header *h = sa_ring_hdr(i);
	u8 *data = sa_ring_data(i);
	u64 tail, used, off, to_end, need;

	spin_lock(&r->lock);
	tail = READ_ONCE(h->tail);
	/* the host's copy is done before it moves tail */
	smp_mb();
	used = r->head - tail;
	if (used > r->size)         /* a tail the host never wrote: full */
		used = r->size;
	off = r->head & (r->size - 1);
	to_end = r->size - off;
	need = rec->len + (rec->len > to_end ? to_end : 0);
	if (used + need > r->size) {
		sa_ring_drop(r, h, matched);
		spin_unlock(&r->lock);
		return;
	}
	if (rec->len > to_end) {
		struct sa_ring_rec *pad = (struct sa_ring_rec *)(data + off);

		pad->len = to_end;
		pad->type = SA_REC_PAD;
		r->head += to_end;
		off = 0;
	}
	memcpy(data + off, rec, sizeof(*rec));
	memcpy(data + off + sizeof(*rec), strs, slen);
	smp_wmb();
	r->head += rec->len;
	WRITE_ONCE(h->head, r->head);
	WRITE_ONCE(h->records, ++r->records);
	spin_unlock(&r->lock);
	sa_count(observed);
	sa_doorbell();
}

void sa_ring_write(const struct sa_call *call, u32 phase, const u64 *matched, u32 gen)
{
	struct sa_ring_rec rec = {};
	u8 mask = sa_meta_strmask(call->compat, call->nr);
	char *strs = NULL;
	size_t slen = 0;

	if (mask)
		strs = kmalloc(SA_MAX_ARGS * SA_STR_CAP, GFP_KERNEL);
	if (mask)
		slen = sa_capture_strings(call, mask, strs, rec.str_len, rec.str_flags);
	rec.len = ALIGN(sizeof(rec) + slen, 8);
	rec.type = SA_REC_EVENT;
	rec.phase = phase;
	rec.nr = call->nr;
	rec.pid = current->pid;
	rec.tgid = current->tgid;
	memcpy(rec.comm, current->comm, SA_COMM_LEN);
	memcpy(rec.args, call->args, sizeof(rec.args));
	rec.retval = phase == SA_PHASE_RETURN ? call->ret : 0;
	rec.pc = sa_arch_pc(call->regs);
	rec.sp = sa_arch_sp(call->regs);
	memcpy(rec.matched, matched, sizeof(rec.matched));
	rec.hooks_gen = gen;
	rec.eflags = phase == SA_PHASE_RETURN ? call->eflags : call->eflags & SA_EV_COMPAT;
	sa_ring_put(raw_smp_processor_id() % SA_RING_COUNT, &rec, strs, slen, matched);
	kfree(strs);
}
