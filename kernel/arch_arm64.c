// SPDX-License-Identifier: GPL-2.0
/*
 * arm64: native (AArch64) syscalls enter through
 * __arm64_sys_*(const struct pt_regs *) via sys_call_table, called from
 * invoke_syscall(). The user pt_regs holds the number in syscallno, the
 * arguments in x0-x5 (orig_x0 keeps the first), the result goes to x0.
 *
 * Every table entry has an ftrace site, the shared __arm64_sys_ni_syscall
 * of unimplemented numbers included, so ftrace alone redirects them all:
 * the arch's "other way" (sa_arch_ni_*) is not needed. Numbers beyond the
 * table reach sys_ni_syscall() from invoke_syscall(); a second ftrace ops
 * on it, registered only while a hook wants them, sends them to the same
 * wrapper. Not hookable: AArch32 (compat) tasks' calls, which go through
 * compat_sys_call_table: the callbacks let them through.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/sched/task_stack.h>
#include <linux/uaccess.h>
#include <linux/compat.h>
#include <linux/tracepoint.h>
#include <asm/unistd.h>
#include <asm/ucontext.h>
#include "arch.h"
#include "sa.h"

typedef long (*sa_arm64_fn)(const struct pt_regs *regs);

const u32 sa_arch_id = SA_ARCH_AARCH64;
/* do_signal() is static and inlined into do_notify_resume(), whose return
 * comes too late (task work added then waits for the next kernel exit). Its
 * get_signal() returns inside do_notify_resume()'s loop, which then runs
 * the task work once do_signal() has set up the handler's frame or the
 * restart: the outcome is in place by the time the work reads it. */
const char *const sa_arch_signal_fn = "get_signal";

static const sa_arm64_fn *sa_arm64_table;
/* the first table entry that is __arm64_sys_ni_syscall (see sa_oor_probe) */
static int sa_arm64_ni_nr = -1;

/* The ftrace site of a function lies within its first instructions (two
 * patchable NOPs after an optional BTI landing pad). */
#define SA_FTRACE_SITE_MAX 12

int sa_arch_init(unsigned long (*lookup)(const char *name))
{
	/* the table's first entries (asm-generic numbering: io_setup is 0) */
	static const char *const first[] = {
		"__arm64_sys_io_setup", "__arm64_sys_io_destroy",
		"__arm64_sys_io_submit", "__arm64_sys_io_cancel",
	};
	unsigned long ni;
	unsigned int nr;

	sa_arm64_table = (const sa_arm64_fn *)lookup("sys_call_table");
	if (!sa_arm64_table)   /* no CONFIG_KALLSYMS_ALL: look in the read-only data */
		sa_arm64_table = sa_find_table(lookup, lookup("_etext"), lookup("__init_begin"),
					       first, ARRAY_SIZE(first));
	if (!sa_arm64_table) {
		pr_err("sys_call_table not found\n");
		return -ENOENT;
	}
	ni = lookup("__arm64_sys_ni_syscall");
	for (nr = 0; ni && nr < __NR_syscalls; nr++)
		if ((unsigned long)sa_arm64_table[nr] == ni) {
			sa_arm64_ni_nr = nr;
			break;
		}
	if ((unsigned long)sa_arm64_table[__NR_getpid] != lookup("__arm64_sys_getpid")) {
		pr_err("the table found is not sys_call_table\n");
		return -ENOENT;
	}
	return 0;
}

unsigned int sa_arch_nr_syscalls(void)
{
	return __NR_syscalls;
}

unsigned long sa_arch_table_entry(unsigned int nr)
{
	return nr < __NR_syscalls ? (unsigned long)sa_arm64_table[nr] : 0;
}

bool sa_arch_noreturn(int nr)
{
	return nr == __NR_exit || nr == __NR_exit_group;
}

u64 sa_arch_get_arg(const struct pt_regs *regs, unsigned int i)
{
	return i < SA_MAX_ARGS ? regs->regs[i] : 0;
}

static int sa_oor_number(const struct pt_regs *regs);

void sa_arch_read_call(struct sa_call *call)
{
	struct pt_regs *regs = call->regs;
	int oor = sa_oor_number(regs);
	unsigned int i;

	if (oor >= 0) {
		regs->syscallno = oor;
		regs->orig_x0 = regs->regs[0];
	}
	call->nr = regs->syscallno;
	for (i = 0; i < SA_MAX_ARGS; i++)
		call->args[i] = sa_arch_get_arg(call->regs, i);
}

void sa_arch_write_args(struct pt_regs *regs, const u64 *args, u32 mask)
{
	unsigned int i;

	for (i = 0; i < SA_MAX_ARGS; i++)
		if (mask & BIT(i)) {
			regs->regs[i] = args[i];
			if (i == 0) /* what a restart would run with */
				regs->orig_x0 = args[0];
		}
}

unsigned long sa_arch_pc(const struct pt_regs *regs)
{
	return regs->pc;
}

unsigned long sa_arch_sp(const struct pt_regs *regs)
{
	return regs->sp;
}

/* x0-x30, sp, pc, pstate, orig_x0, syscallno: portal/arch.py's order */
unsigned int sa_arch_copy_regs(const struct pt_regs *regs, u64 *out, unsigned int max)
{
	u64 all[36];
	unsigned int n = min_t(unsigned int, max, ARRAY_SIZE(all));

	memcpy(all, regs->regs, sizeof(regs->regs));
	all[31] = regs->sp;
	all[32] = regs->pc;
	all[33] = regs->pstate;
	all[34] = regs->orig_x0;
	all[35] = (u64)(s64)regs->syscallno;
	memcpy(out, all, n * sizeof(u64));
	return n;
}

long sa_arch_invoke(struct sa_call *call)
{
	if (call->nr < 0 || call->nr >= __NR_syscalls)
		return -ENOSYS;
	/* Not a tail call (-fno-optimize-sibling-calls): the return address
	 * must stay inside this module so the ftrace callback lets it through. */
	return sa_arm64_table[call->nr](call->regs);
}

static long sa_arm64_wrapper(const struct pt_regs *regs)
{
	struct sa_call call = { .regs = (struct pt_regs *)regs };

	sa_arch_read_call(&call);
	return sa_syscall(&call);
}

void notrace sa_arch_ftrace_cb(unsigned long ip, unsigned long parent_ip,
			       struct ftrace_ops *ops, struct ftrace_regs *fregs)
{
	struct pt_regs *regs = ftrace_get_regs(fregs);
	const struct pt_regs *user;
	unsigned long nr, entry;

	if (!regs || within_module(parent_ip, THIS_MODULE))
		return;
	/* Only the real entry from the syscall path: the argument is this
	 * task's own user pt_regs, the task is AArch64, and the table entry
	 * for its number is the function being entered. */
	user = (const struct pt_regs *)regs->regs[0];
	if (user != task_pt_regs(current) || is_compat_task())
		return;
	nr = (unsigned long)(long)user->syscallno;
	if (nr >= __NR_syscalls)
		return;
	entry = (unsigned long)sa_arm64_table[nr];
	if (ip < entry || ip - entry > SA_FTRACE_SITE_MAX)
		return;
	/* ftrace_regs_caller returns to regs->pc with the caller's lr: the
	 * wrapper runs as if invoke_syscall had called it */
	instruction_pointer_set(regs, (unsigned long)sa_arm64_wrapper);
}

/*
 * Numbers beyond the table: invoke_syscall() answers them itself (its
 * inlined do_ni_syscall()), where nothing can redirect them. The sys_enter
 * tracepoint, which runs just before in syscall_trace_enter(), may change
 * the number: it sends such a call to the table's first unimplemented
 * entry, hooked by ftrace like any other, with the real number tagged in
 * orig_x0 (at entry always a copy of x0, so a tag that differs from x0
 * cannot come from the task); the wrapper puts both back
 * (sa_arch_read_call). Registering the tracepoint moves every syscall to
 * the slow path, so it is armed only while a hook needs these numbers.
 */
#define SA_OOR_TAG 0x5341000000000000UL
#define SA_OOR_MASK 0xffffffff00000000UL


static void notrace sa_oor_probe(void *data, struct pt_regs *regs, long id)
{
	u32 nr = (u32)id;

	if ((int)nr < 0 || nr < __NR_syscalls || regs != task_pt_regs(current) ||
	    is_compat_task())
		return;
	regs->orig_x0 = SA_OOR_TAG | nr;
	regs->syscallno = sa_arm64_ni_nr;
}

/* A call sa_oor_probe sent to the ni entry: its real number, or -1. */
static int sa_oor_number(const struct pt_regs *regs)
{
	if (regs->syscallno != sa_arm64_ni_nr || regs->orig_x0 == regs->regs[0] ||
	    (regs->orig_x0 & SA_OOR_MASK) != SA_OOR_TAG)
		return -1;
	return (int)(u32)regs->orig_x0;
}

int sa_arch_oor_arm(bool on)
{
	if (on == sa_sys_enter_hooked())
		return 0;
	if (on && sa_arm64_ni_nr < 0)
		return -ENOENT;
	return sa_sys_enter_hook(on, sa_oor_probe);
}

bool sa_arch_oor_armed(void)
{
	return sa_sys_enter_hooked();
}

/*
 * What became of an interrupted call (arch/arm64/kernel/signal.c,
 * do_signal): a restart moves pc back over the 4-byte svc and puts orig_x0
 * back in x0; with a handler to run, the registers the call returns with
 * are in the handler's frame, which starts at the handler's sp.
 */
struct sa_arm64_sigframe {
	struct siginfo info;
	struct ucontext uc;
};

static struct sigcontext __user *sa_arm64_signal_mc(const struct pt_regs *now)
{
	struct sa_arm64_sigframe __user *f = (struct sa_arm64_sigframe __user *)now->sp;

	return &f->uc.uc_mcontext;
}

int sa_arch_signal_outcome(const struct pt_regs *then, long *ret)
{
	const struct pt_regs *now = task_pt_regs(current);
	struct sigcontext __user *mc;
	u64 pc, x0;

	if (now->pc == then->pc - 4)
		return SA_OUTCOME_RESTART;
	if (now->pc == then->pc) {
		*ret = now->regs[0];
		return SA_OUTCOME_DONE;
	}
	mc = sa_arm64_signal_mc(now);
	if (get_user(pc, &mc->pc) || get_user(x0, &mc->regs[0]))
		return -EFAULT;
	if (pc == then->pc - 4)
		return SA_OUTCOME_RESTART;
	if (pc != then->pc)
		return -ESRCH;
	*ret = x0;
	return SA_OUTCOME_DONE;
}

void sa_arch_set_signal_ret(const struct pt_regs *then, long ret)
{
	struct pt_regs *now = task_pt_regs(current);

	if (now->pc == then->pc)
		now->regs[0] = ret;
	else if (put_user((u64)ret, &sa_arm64_signal_mc(now)->regs[0]))
		sa_count(restart_lost);
}
