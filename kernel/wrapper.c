// SPDX-License-Identifier: GPL-2.0
/*
 * The wrapper every hooked syscall entry is redirected to: enter hooks, the
 * original call (or not), return hooks. Runs in the task's process context.
 */
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/errno.h>
#include "sa.h"
#include "arch.h"

/* include/linux/errno.h: kernel-internal restart codes */
bool sa_is_restart(long ret)
{
	return ret == -ERESTARTSYS || ret == -ERESTARTNOINTR ||
	       ret == -ERESTARTNOHAND || ret == -ERESTART_RESTARTBLOCK;
}

/* A verdict never hands a restart code to the task. */
long sa_sanitize_ret(s64 v)
{
	return sa_is_restart(v) ? -EINTR : (long)v;
}

unsigned int sa_table_size(bool compat)
{
	return compat ? sa_arch_compat_nr_syscalls() : sa_arch_nr_syscalls();
}

static u8 sa_snap_wants(const struct sa_snapshot *snap, const struct sa_call *call)
{
	int nr = call->nr;

	if (call->compat)
		return nr >= 0 && nr < sa_arch_compat_nr_syscalls() && snap->nr_flags32 ?
		       snap->nr_flags32[nr] : snap->oor_flags;
	if (nr >= 0 && nr < sa_arch_nr_syscalls())
		return snap->nr_flags[nr];
	return snap->oor_flags;
}

/* Does any enabled hook of this phase (SA_HOOK_ENTER / _RETURN) exist for the call? */
bool sa_wants(const struct sa_call *call, u8 want)
{
	struct sa_snapshot *snap = sa_snap_get();
	bool any;

	if (!snap)
		return false;
	any = sa_snap_wants(snap, call) & want;
	sa_snap_put(snap);
	return any;
}

static void sa_write_args(struct sa_call *call, const u64 *args, u32 mask)
{
	if (call->compat)
		sa_arch_compat_write_args(call->regs, args, mask);
	else
		sa_arch_write_args(call->regs, args, mask);
}

static u64 sa_get_arg(const struct sa_call *call, unsigned int i)
{
	return call->compat ? sa_arch_compat_get_arg(call->regs, i)
			    : sa_arch_get_arg(call->regs, i);
}

/* Ask the host about this call in this phase; false if nothing matched or
 * the host did not answer (the call then goes on as if unhooked). */
bool sa_ask(const struct sa_call *call, u32 phase, struct sa_verdict *v)
{
	u8 want = phase == SA_PHASE_ENTER ? SA_HOOK_ENTER : SA_HOOK_RETURN;
	struct sa_snapshot *snap;
	u64 matched[SA_MATCH_WORDS], observed[SA_MATCH_WORDS];
	bool hit = false, blocking = false;
	unsigned int i;
	u32 gen;

	snap = sa_snap_get();
	if (!snap)
		return false;
	if (sa_snap_wants(snap, call) & want)
		hit = sa_hooks_match(snap, call, phase, matched, observed);
	gen = snap->gen;
	sa_snap_put(snap);
	if (!hit)
		return false;
	if (!READ_ONCE(sa_host_alive)) {
		sa_count(host_dead_skips);
		return false;
	}
	if (call->nr < 0 || call->nr >= sa_table_size(call->compat))
		sa_count(out_of_range);
	for (i = 0; i < SA_MATCH_WORDS; i++)
		blocking |= matched[i] != 0;
	/* Observers always get the ring's record, written before any blocking
	 * hook's verdict: they see the call as the task made it. */
	for (i = 0; i < SA_MATCH_WORDS; i++)
		if (observed[i]) {
			sa_ring_write(call, phase, observed, gen);
			break;
		}
	if (!blocking)
		return false;
	return sa_exchange(call, phase, matched, gen, v) == 0;
}

/* Change argument registers for the call; remember what to put back. */
static u32 sa_set_args(struct sa_call *call, const struct sa_verdict *v, u64 *saved)
{
	unsigned int i;

	if (!(v->action & SA_ACT_SET_ARGS) || !v->args_mask)
		return 0;
	for (i = 0; i < SA_MAX_ARGS; i++) {
		saved[i] = call->args[i];
		if (v->args_mask & BIT(i))
			/* a compat ABI's registers are 32 bits wide */
			call->args[i] = call->compat ? (u32)v->args[i] : v->args[i];
	}
	sa_write_args(call, call->args, v->args_mask);
	return v->args_mask;
}

/* Argument registers are preserved across a syscall for user space: put
 * back the ones we changed unless the call replaced them (execve,
 * rt_sigreturn). */
static void sa_restore_args(struct sa_call *call, u32 mask, const u64 *saved)
{
	unsigned int i;
	u32 back = 0;

	for (i = 0; i < SA_MAX_ARGS; i++)
		if ((mask & BIT(i)) && sa_get_arg(call, i) == call->args[i])
			back |= BIT(i);
	sa_write_args(call, saved, back);
}

static long sa_run(struct sa_call *call)
{
	struct sa_verdict v = {};
	u64 saved[SA_MAX_ARGS];
	u32 changed = 0;
	bool skipped = false;

	if (sa_ask(call, SA_PHASE_ENTER, &v)) {
		if (v.action & SA_ACT_SKIP) {
			call->ret = sa_sanitize_ret(v.retval);
			skipped = true;
		} else {
			changed = sa_set_args(call, &v, saved);
		}
	}
	if (!skipped) {
		if (call->compat ? sa_arch_compat_noreturn(call->nr)
				 : sa_arch_noreturn(call->nr)) {
			/* Never comes back: leave nothing held. */
			module_put(THIS_MODULE);
			sa_inflight_exit();
			return sa_arch_invoke(call);
		}
		call->ret = sa_arch_invoke(call);
		if (changed)
			sa_restore_args(call, changed, saved);
	}
	if (sa_is_restart(call->ret)) {
		/* The call will run again or become -EINTR once the signal is
		 * delivered: its return goes to the host after that. */
		if (sa_wants(call, SA_HOOK_RETURN))
			sa_restart_defer(call);
		return call->ret;
	}
	memset(&v, 0, sizeof(v));
	if (sa_ask(call, SA_PHASE_RETURN, &v) && (v.action & SA_ACT_SET_RETVAL))
		call->ret = sa_sanitize_ret(v.retval);
	return call->ret;
}

long sa_syscall(struct sa_call *call)
{
	long ret;

	/* The in-flight count lets unload wait for tasks that got here while
	 * the module was going; the module reference makes rmmod refuse while
	 * a task sleeps in a hooked call. */
	atomic_inc(&sa_inflight);
	if (!try_module_get(THIS_MODULE)) {
		ret = sa_arch_invoke(call);
		sa_inflight_exit();
		return ret;
	}
	ret = sa_run(call);
	module_put(THIS_MODULE);
	sa_inflight_exit();
	return ret;
}
