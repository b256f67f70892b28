// SPDX-License-Identifier: GPL-2.0
/*
 * The return of a call a signal interrupted. Such a call comes back to the
 * wrapper with a -ERESTART* code; what it becomes is decided only when the
 * kernel delivers the signal on the way out to user mode: the call runs
 * again (no handler, SA_RESTART, ERESTARTNOINTR) or ends with -EINTR. So
 * the wrapper leaves a note for the task, a kretprobe on the function that
 * delivers signals turns the note into task work once the decision is made,
 * and that work (process context, before the task sees user mode) sends the
 * return event with the outcome.
 *
 * Notes hold a reference on their task and none on the module, so a task
 * killed before the decision never keeps rmmod waiting (the control thread
 * reaps its note); queued work holds a module reference and always runs (at
 * the latest when the task exits).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/kprobes.h>
#include <linux/list.h>
#include <linux/sched.h>
#include <linux/sched/task.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/task_work.h>
#include "sa.h"
#include "arch.h"

/* at most this many notes at once; more are counted as lost */
#define SA_NOTES_MAX 1024

struct sa_note {
	struct list_head node;
	struct callback_head work;
	struct task_struct *task;   /* referenced */
	struct sa_call call;        /* call.regs points at regs */
	struct pt_regs regs;        /* the user registers the call returned with */
	int outcome;                /* decided at delivery, or -1 */
};

static LIST_HEAD(sa_notes);
static DEFINE_SPINLOCK(sa_notes_lock);
static unsigned int sa_nnotes;
static bool sa_restart_ready;

static void sa_note_free(struct sa_note *n)
{
	put_task_struct(n->task);
	kfree(n);
}

/* Take current's note off the list; NULL if it has none. */
static struct sa_note *sa_note_take(struct task_struct *task)
{
	struct sa_note *n, *found = NULL;
	unsigned long flags;

	if (!READ_ONCE(sa_nnotes))
		return NULL;
	spin_lock_irqsave(&sa_notes_lock, flags);
	list_for_each_entry(n, &sa_notes, node)
		if (n->task == task) {
			list_del(&n->node);
			sa_nnotes--;
			found = n;
			break;
		}
	spin_unlock_irqrestore(&sa_notes_lock, flags);
	return found;
}

static bool sa_note_exists(struct task_struct *task)
{
	struct sa_note *n;
	unsigned long flags;
	bool found = false;

	if (!READ_ONCE(sa_nnotes))
		return false;
	spin_lock_irqsave(&sa_notes_lock, flags);
	list_for_each_entry(n, &sa_notes, node)
		if (n->task == task) {
			found = true;
			break;
		}
	spin_unlock_irqrestore(&sa_notes_lock, flags);
	return found;
}

/* Called by the wrapper on a restart code, with a return hook in force. */
void sa_restart_defer(const struct sa_call *call)
{
	struct sa_note *n, *old;
	unsigned long flags;

	if (!READ_ONCE(sa_restart_ready)) {
		sa_count(restart_lost);
		return;
	}
	/* a note never taken (no signal delivery followed) is stale */
	old = sa_note_take(current);
	if (old) {
		sa_count(restart_lost);
		sa_note_free(old);
	}
	n = kzalloc(sizeof(*n), GFP_KERNEL);
	if (!n) {
		sa_count(restart_lost);
		return;
	}
	n->call = *call;
	n->outcome = -1;
	n->regs = *call->regs;
	n->call.regs = &n->regs;
	get_task_struct(current);
	n->task = current;
	spin_lock_irqsave(&sa_notes_lock, flags);
	if (sa_nnotes < SA_NOTES_MAX) {
		list_add(&n->node, &sa_notes);
		sa_nnotes++;
		n = NULL;
	}
	spin_unlock_irqrestore(&sa_notes_lock, flags);
	if (n) {
		sa_count(restart_lost);
		sa_note_free(n);
	}
}

/* Task work: the signal is delivered, the outcome is in the registers (or
 * in the handler's signal frame). */
static void sa_note_run(struct callback_head *work)
{
	struct sa_note *n = container_of(work, struct sa_note, work);
	struct sa_verdict v = {};
	int outcome;

	atomic_inc(&sa_inflight);
	if (current->flags & PF_EXITING)
		outcome = -ESRCH;
	else if (n->outcome >= 0)
		outcome = n->outcome;
	else
		outcome = sa_arch_signal_outcome(&n->regs, &n->call.ret);
	if (outcome < 0) {
		sa_count(restart_lost);
	} else {
		if (outcome == SA_OUTCOME_RESTART)
			n->call.eflags |= SA_EV_RESTARTED;
		sa_count(signal_returns);
		/* a restarted call has no result to replace */
		if (sa_ask(&n->call, SA_PHASE_RETURN, &v) && outcome == SA_OUTCOME_DONE &&
		    (v.action & SA_ACT_SET_RETVAL))
			sa_arch_set_signal_ret(&n->regs, sa_sanitize_ret(v.retval));
	}
	sa_note_free(n);
	module_put(THIS_MODULE);
	sa_inflight_exit();
}

/* The arch's default: the outcome is read in the work. */
int __weak sa_arch_deliver_ret(struct pt_regs *kregs)
{
	return -1;
}

/* kretprobe on the function that delivers signals on the way to user mode:
 * only tasks with a note take the return probe. */
static int sa_deliver_entry(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	return sa_note_exists(current) ? 0 : 1;
}

static int sa_deliver_ret(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	int outcome = sa_arch_deliver_ret(regs);
	struct sa_note *n = sa_note_take(current);

	if (!n)
		return 0;
	n->outcome = outcome;
	if (!try_module_get(THIS_MODULE)) {
		sa_count(restart_lost);
		sa_note_free(n);
		return 0;
	}
	init_task_work(&n->work, sa_note_run);
	if (task_work_add(current, &n->work, TWA_RESUME)) {
		sa_count(restart_lost);
		sa_note_free(n);
		module_put(THIS_MODULE);
	}
	return 0;
}

static struct kretprobe sa_deliver_krp = {
	.entry_handler = sa_deliver_entry,
	.handler = sa_deliver_ret,
	.maxactive = 256,
};

int sa_restart_init(void)
{
	int err = -ENOENT;

	sa_deliver_krp.kp.symbol_name = sa_arch_signal_fn;
	if (sa_arch_signal_fn)
		err = register_kretprobe(&sa_deliver_krp);
	if (err) {
		pr_warn("interrupted calls get no return event: %d\n", err);
		return 0;
	}
	WRITE_ONCE(sa_restart_ready, true);
	return 0;
}

/* Notes of tasks that died before their signal was delivered. */
void sa_restart_reap(void)
{
	struct sa_note *n, *tmp;
	unsigned long flags;
	LIST_HEAD(dead);

	if (!READ_ONCE(sa_nnotes))
		return;
	spin_lock_irqsave(&sa_notes_lock, flags);
	list_for_each_entry_safe(n, tmp, &sa_notes, node)
		if (n->task->flags & PF_EXITING) {
			list_move(&n->node, &dead);
			sa_nnotes--;
		}
	spin_unlock_irqrestore(&sa_notes_lock, flags);
	list_for_each_entry_safe(n, tmp, &dead, node) {
		sa_count(restart_lost);
		sa_note_free(n);
	}
}

void sa_restart_exit(void)
{
	struct sa_note *n, *tmp;

	if (READ_ONCE(sa_restart_ready)) {
		unregister_kretprobe(&sa_deliver_krp);  /* waits for handlers */
		WRITE_ONCE(sa_restart_ready, false);
	}
	/* nothing moves notes to task work any more */
	list_for_each_entry_safe(n, tmp, &sa_notes, node) {
		list_del(&n->node);
		sa_note_free(n);
	}
	sa_nnotes = 0;
}
