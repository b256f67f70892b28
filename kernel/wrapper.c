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
static bool sa_is_restart(long ret)
{
	return ret == -ERESTARTSYS || ret == -ERESTARTNOINTR ||
	       ret == -ERESTARTNOHAND || ret == -ERESTART_RESTARTBLOCK;
}

/* A verdict never hands a restart code to the task. */
static long sa_sanitize_ret(s64 v)
{
	return sa_is_restart(v) ? -EINTR : (long)v;
}

/* Ask the host about this call in this phase; false if nothing matched or
 * the host did not answer (the call then goes on as if unhooked). */
static bool sa_ask(const struct sa_call *call, u32 phase, struct sa_verdict *v)
{
	u8 want = phase == SA_PHASE_ENTER ? SA_HOOK_ENTER : SA_HOOK_RETURN;
	struct sa_snapshot *snap;
	u64 matched[SA_MATCH_WORDS];
	bool hit = false;
	u32 gen;

	snap = sa_snap_get();
	if (!snap)
		return false;
	if (call->nr >= 0 && call->nr < sa_arch_nr_syscalls() &&
	    (snap->nr_flags[call->nr] & want))
		hit = sa_hooks_match(snap, call, phase, matched);
	gen = snap->gen;
	sa_snap_put(snap);
	if (!hit)
		return false;
	if (!READ_ONCE(sa_host_alive)) {
		sa_count(host_dead_skips);
		return false;
	}
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
			call->args[i] = v->args[i];
	}
	sa_arch_write_args(call->regs, call->args, v->args_mask);
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
		if ((mask & BIT(i)) && sa_arch_get_arg(call->regs, i) == call->args[i])
			back |= BIT(i);
	sa_arch_write_args(call->regs, saved, back);
}

static long sa_run(struct sa_call *call, bool have_ref)
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
		if (sa_arch_noreturn(call->nr)) {
			/* Never comes back: leave nothing held. */
			if (have_ref)
				module_put(THIS_MODULE);
			sa_inflight_exit();
			return sa_arch_invoke(call);
		}
		call->ret = sa_arch_invoke(call);
		if (changed)
			sa_restore_args(call, changed, saved);
	}
	if (sa_is_restart(call->ret)) {
		/* The call will run again or become -EINTR after the signal:
		 * its result is not known yet. */
		sa_count(restarts_hidden);
		return call->ret;
	}
	memset(&v, 0, sizeof(v));
	if (sa_ask(call, SA_PHASE_RETURN, &v) && (v.action & SA_ACT_SET_RETVAL))
		call->ret = sa_sanitize_ret(v.retval);
	return call->ret;
}

long sa_syscall(struct sa_call *call)
{
	bool have_ref;
	long ret;

	/* The in-flight count lets unload wait for tasks that got here while
	 * the module was going; the module reference makes rmmod refuse while
	 * a task sleeps in a hooked call. */
	atomic_inc(&sa_inflight);
	have_ref = try_module_get(THIS_MODULE);
	if (!have_ref) {
		ret = sa_arch_invoke(call);
		sa_inflight_exit();
		return ret;
	}
	ret = sa_run(call, have_ref);
	module_put(THIS_MODULE);
	sa_inflight_exit();
	return ret;
}
