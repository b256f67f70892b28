// SPDX-License-Identifier: GPL-2.0
/*
 * Event slots: claim one, publish the event, wait for the host, serve its
 * requests in the trapped task's own context, take its verdict.
 */
#include <linux/kernel.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/smp.h>
#include <linux/delay.h>
#include <linux/jiffies.h>
#include <linux/ktime.h>
#include <linux/sched/clock.h>
#include "sa.h"
#include "arch.h"

/* Waiting: spin briefly (a busy host answers in tens of microseconds), then
 * yield, then sleep in steps that grow with the wait, so a trap the host holds
 * for long (a slow handler) costs the guest little CPU. */
#define SA_SPIN_NS (20 * NSEC_PER_USEC)
#define SA_YIELD_NS (200 * NSEC_PER_USEC)
#define SA_SHORT_NS (5 * NSEC_PER_MSEC)
#define SA_MEDIUM_NS (100 * NSEC_PER_MSEC)

/* Sleep that a fatal signal ends and that does not count as load. */
static void sa_sleep_us(unsigned long min_us, unsigned long max_us)
{
	ktime_t t = ns_to_ktime(min_us * NSEC_PER_USEC);

	set_current_state(TASK_KILLABLE | TASK_NOLOAD);
	schedule_hrtimeout_range(&t, (max_us - min_us) * NSEC_PER_USEC, HRTIMER_MODE_REL);
}

struct sa_slot {
	unsigned int idx;
	struct sa_slot_guest *g;
	struct sa_slot_host *h;
	void *g2h;
	void *h2g;
	u32 epoch;
	u32 seq;                    /* even: last message published */
};

static void sa_slot_at(struct sa_slot *s, unsigned int i)
{
	void *base = sa_slot_base(i);

	s->idx = i;
	s->g = base + SA_SLOT_GUEST_OFF;
	s->h = base + SA_SLOT_HOST_OFF;
	s->g2h = base + SA_SLOT_G2H_OFF;
	s->h2g = base + SA_SLOT_H2G_OFF;
}

static bool sa_slot_try(struct sa_slot *s, unsigned int i)
{
	sa_slot_at(s, i);
	return cmpxchg(&s->g->owner, 0, 1) == 0;
}

/* Wait (killably) for a free slot: 0, -ETIMEDOUT if none came before the
 * deadline, -EINTR on a fatal signal. */
static int sa_slot_claim(struct sa_slot *s, unsigned long deadline)
{
	/* CPUs start their search at different places to claim without
	 * contention */
	unsigned int start = raw_smp_processor_id() * SA_SLOT_COUNT / nr_cpu_ids, i;

	for (;;) {
		for (i = 0; i < SA_SLOT_COUNT; i++)
			if (sa_slot_try(s, (start + i) % SA_SLOT_COUNT))
				goto claimed;
		if (fatal_signal_pending(current))
			return -EINTR;
		if (time_after(jiffies, deadline))
			return -ETIMEDOUT;
		sa_sleep_us(20, 50);
	}
claimed:
	s->epoch = READ_ONCE(s->g->epoch) + 1;
	s->seq = READ_ONCE(s->g->seq);
	if (s->seq & 1)
		s->seq++;
	return 0;
}

static void sa_slot_begin(struct sa_slot *s)
{
	WRITE_ONCE(s->g->seq, s->seq + 1);
	smp_wmb();
}

static void sa_slot_publish(struct sa_slot *s, u32 msg)
{
	WRITE_ONCE(s->g->msg, msg);
	smp_wmb();
	s->seq += 2;
	WRITE_ONCE(s->g->seq, s->seq);
	atomic64_inc((atomic64_t *)&sa_guest()->doorbell);
	sa_doorbell();
}

static void sa_slot_release(struct sa_slot *s)
{
	smp_store_release(&s->g->owner, 0);
}

static void sa_slot_abandon(struct sa_slot *s)
{
	sa_slot_begin(s);
	sa_slot_publish(s, SA_MSG_ABANDON);
	sa_slot_release(s);
}

static void sa_write_event(struct sa_slot *s, const struct sa_call *call,
			   u32 phase, const u64 *matched, u32 gen)
{
	struct sa_slot_guest *g = s->g;
	u8 mask = sa_meta_strmask(call->compat, call->nr);
	u16 str_len[SA_MAX_ARGS] = {};
	u8 str_flags[SA_MAX_ARGS] = {};

	/* the strings first, into the g2h area the host reads only once the
	 * event is published: a page fault may sleep here, never inside the
	 * seqlock's write (the host would see the slot mid-write meanwhile) */
	if (mask)
		sa_capture_strings(call, mask, s->g2h, str_len, str_flags);

	sa_slot_begin(s);
	g->epoch = s->epoch;
	g->phase = phase;
	g->nr = call->nr;
	g->pid = current->pid;
	g->tgid = current->tgid;
	memcpy(g->comm, current->comm, SA_COMM_LEN);
	memcpy(g->args, call->args, sizeof(g->args));
	g->retval = phase == SA_PHASE_RETURN ? call->ret : 0;
	g->pc = sa_arch_pc(call->regs);
	g->sp = sa_arch_sp(call->regs);
	memcpy(g->matched, matched, sizeof(g->matched));
	g->hooks_gen = gen;
	g->nregs = sa_arch_copy_regs(call->regs, g->regs, SA_MAX_REGS);
	sa_resp_clear(g);
	g->eflags = phase == SA_PHASE_RETURN ? call->eflags : call->eflags & SA_EV_COMPAT;
	memcpy(g->str_len, str_len, sizeof(g->str_len));
	memcpy(g->str_flags, str_flags, sizeof(g->str_flags));
	sa_slot_publish(s, SA_MSG_EVENT);
	sa_count(events);
}

/* The wait's clock is local_clock() (the TSC on x86), not ktime_get(): the
 * guest's clocksource may be an emulated device (HPET under TCG, where every
 * read is an exit to QEMU that takes its global lock), and the wait reads it
 * once per spin step. A task that migrates while asleep may see a small step
 * between CPUs' clocks: only the choice of phase depends on it. */
static void sa_pause(u64 since)
{
	s64 waited = (s64)(local_clock() - since);

	if (waited < SA_SPIN_NS)
		cpu_relax();
	else if (waited < SA_YIELD_NS)
		cond_resched();
	else if (waited < SA_SHORT_NS)
		sa_sleep_us(20, 50);
	else if (waited < SA_MEDIUM_NS)
		sa_sleep_us(200, 400);
	else
		sa_sleep_us(1000, 2000);
}

/*
 * Wait for the host's answer to our last message. Returns 0 with a private
 * copy of the answer, or -ETIMEDOUT / -EINTR / -EPIPE (host gone).
 */
static int sa_wait_answer(struct sa_slot *s, struct sa_slot_host *ans)
{
	unsigned long deadline = jiffies + msecs_to_jiffies(READ_ONCE(sa_deadline_ms));
	u64 since = local_clock();

	for (;;) {
		if (READ_ONCE(s->h->seq) == s->seq && READ_ONCE(s->h->epoch) == s->epoch) {
			smp_rmb();
			memcpy(ans, s->h, sizeof(*ans));
			if (ans->seq == s->seq && ans->epoch == s->epoch)
				return 0;
		}
		if (fatal_signal_pending(current)) {
			sa_count(fatal_signal);
			return -EINTR;
		}
		if (time_after(jiffies, deadline)) {
			sa_count(deadline_expired);
			return -ETIMEDOUT;
		}
		if (!READ_ONCE(sa_host_alive)) {
			sa_count(host_lost);
			return -EPIPE;
		}
		sa_pause(since);
	}
}

static bool sa_verdict_take(const struct sa_slot_host *ans, u32 phase,
			    struct sa_verdict *v)
{
	u32 allowed = phase == SA_PHASE_ENTER ? (SA_ACT_SKIP | SA_ACT_SET_ARGS)
					      : SA_ACT_SET_RETVAL;

	if ((ans->action & ~allowed) || (ans->args_mask >> SA_MAX_ARGS))
		return false;
	v->action = ans->action;
	v->args_mask = ans->args_mask;
	v->retval = ans->retval;
	memcpy(v->args, ans->args, sizeof(v->args));
	return true;
}

int sa_exchange(const struct sa_call *call, u32 phase, const u64 *matched,
		u32 gen, struct sa_verdict *verdict)
{
	unsigned long deadline = jiffies + msecs_to_jiffies(READ_ONCE(sa_deadline_ms));
	struct sa_slot_host ans;
	struct sa_slot s;
	int err;

	err = sa_slot_claim(&s, deadline);
	if (err) {
		if (err == -EINTR)
			sa_count(fatal_signal);
		else
			sa_count(no_slot);
		return err;
	}
	sa_write_event(&s, call, phase, matched, gen);
	for (;;) {
		err = sa_wait_answer(&s, &ans);
		if (err)
			break;
		if (ans.msg == SA_MSG_VERDICT) {
			err = sa_verdict_take(&ans, phase, verdict) ? 0 : -EPROTO;
			if (err)
				sa_count(bad_host_msg);
			else
				sa_count(verdicts);
			break;
		}
		if (ans.msg != SA_MSG_REQUEST) {
			sa_count(bad_host_msg);
			err = -EPROTO;
			break;
		}
		sa_slot_begin(&s);
		sa_serve(s.g, s.g2h, s.h2g, &ans);
		sa_slot_publish(&s, SA_MSG_RESPONSE);
		sa_count(requests);
	}
	if (err)
		sa_slot_abandon(&s);
	else
		sa_slot_release(&s);
	return err;
}
