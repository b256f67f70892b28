// SPDX-License-Identifier: GPL-2.0
/*
 * x86_64: native syscalls enter through __x64_sys_*(const struct pt_regs *)
 * via sys_call_table. The user pt_regs holds the number in orig_ax and the
 * arguments in di, si, dx, r10, r8, r9.
 */
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/sched/task_stack.h>
#include <linux/kprobes.h>
#include <linux/tracepoint.h>
#include <linux/uaccess.h>
#include <asm/unistd.h>
#include <asm/sigframe.h>
#include "arch.h"
#include "sa.h"

typedef long (*sa_x64_fn)(const struct pt_regs *regs);

const u32 sa_arch_id = SA_ARCH_X86_64;
const char *const sa_arch_signal_fn = "arch_do_signal_or_restart";
static const sa_x64_fn *sa_x64_table;
/* The stub every unimplemented entry points at (it is just "return
 * -ENOSYS"; the ia32 table shares it). 0 if not found in the table. */
static unsigned long sa_x64_ni;
/* the first table entry that is the stub: numbers beyond the table are
 * sent there (see sa_oor_probe) */
static int sa_x64_ni_nr = -1;

int sa_arch_init(unsigned long (*lookup)(const char *name))
{
	unsigned int nr;
	unsigned long ni;

	sa_x64_table = (const sa_x64_fn *)lookup("sys_call_table");
	if (!sa_x64_table)
		return -ENOENT;
	ni = lookup("__x64_sys_ni_syscall");
	for (nr = 0; ni && nr < NR_syscalls; nr++)
		if ((unsigned long)sa_x64_table[nr] == ni) {
			sa_x64_ni = ni;
			sa_x64_ni_nr = nr;
			break;
		}
	return 0;
}

unsigned int sa_arch_nr_syscalls(void)
{
	return NR_syscalls;
}

unsigned long sa_arch_table_entry(unsigned int nr)
{
	return nr < NR_syscalls ? (unsigned long)sa_x64_table[nr] : 0;
}

bool sa_arch_noreturn(int nr)
{
	return nr == __NR_exit || nr == __NR_exit_group;
}

u64 sa_arch_get_arg(const struct pt_regs *regs, unsigned int i)
{
	switch (i) {
	case 0: return regs->di;
	case 1: return regs->si;
	case 2: return regs->dx;
	case 3: return regs->r10;
	case 4: return regs->r8;
	case 5: return regs->r9;
	}
	return 0;
}

/* A number beyond the table, sent to the stub's entry by sa_oor_probe: the
 * upper half of ax (always -ENOSYS at entry) carries this tag, the lower
 * half the number. */
#define SA_OOR_TAG 0x5341000000000000UL
#define SA_OOR_MASK 0xffffffff00000000UL

void sa_arch_read_call(struct sa_call *call)
{
	struct pt_regs *regs = call->regs;
	unsigned int i;

	call->nr = (int)regs->orig_ax;
	if (call->nr == sa_x64_ni_nr && (regs->ax & SA_OOR_MASK) == SA_OOR_TAG) {
		call->nr = (int)(u32)regs->ax;
		regs->orig_ax = call->nr;
		regs->ax = -ENOSYS;
	}
	for (i = 0; i < SA_MAX_ARGS; i++)
		call->args[i] = sa_arch_get_arg(call->regs, i);
}

void sa_arch_write_args(struct pt_regs *regs, const u64 *args, u32 mask)
{
	unsigned long *slot[SA_MAX_ARGS] = {
		&regs->di, &regs->si, &regs->dx, &regs->r10, &regs->r8, &regs->r9,
	};
	unsigned int i;

	for (i = 0; i < SA_MAX_ARGS; i++)
		if (mask & BIT(i))
			*slot[i] = args[i];
}

unsigned long sa_arch_pc(const struct pt_regs *regs)
{
	return regs->ip;
}

unsigned long sa_arch_sp(const struct pt_regs *regs)
{
	return regs->sp;
}

unsigned int sa_arch_copy_regs(const struct pt_regs *regs, u64 *out, unsigned int max)
{
	unsigned int n = min_t(unsigned int, max, sizeof(*regs) / sizeof(u64));

	memcpy(out, regs, n * sizeof(u64));
	return n;
}

long sa_arch_invoke(struct sa_call *call)
{
	sa_x64_fn fn;

	if (call->nr < 0 || call->nr >= NR_syscalls)
		return -ENOSYS;
	fn = sa_x64_table[call->nr];

	/* The ni stub does nothing but this; calling it would also meet the
	 * kprobe again. */
	if (sa_x64_ni && (unsigned long)fn == sa_x64_ni)
		return -ENOSYS;

	/* Not a tail call (-fno-optimize-sibling-calls): the return address
	 * must stay inside this module so the ftrace callback lets it through. */
	return fn(call->regs);
}

static long sa_x64_wrapper(const struct pt_regs *regs)
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
	unsigned long nr;

	if (within_module(parent_ip, THIS_MODULE))
		return;
	/* Only the real entry from the syscall path: the argument is this
	 * task's own user pt_regs and the table entry for its number is the
	 * function being entered (x32 numbers carry a high bit and fail this). */
	user = (const struct pt_regs *)regs->di;
	if (user != task_pt_regs(current))
		return;
	nr = user->orig_ax;
	if (nr >= NR_syscalls || (unsigned long)sa_x64_table[nr] != ip)
		return;
	regs->ip = (unsigned long)sa_x64_wrapper;
}

/*
 * Entries of the ni stub. The stub is built notrace (arch/x86/entry) and
 * does not call sys_ni_syscall (the compiler folded it into
 * "mov $-ENOSYS, %rax; ret"), so ftrace cannot see these syscalls at all.
 * A kprobe on the stub's first instruction can: its pre-handler does what
 * the ftrace callback does, moving ip to the same wrapper. The probe is
 * registered disabled at load and armed only while some enabled hook needs
 * one of these entries.
 */
static struct kprobe sa_ni_kp;
static bool sa_ni_registered, sa_ni_armed;

static int notrace sa_ni_pre(struct kprobe *p, struct pt_regs *regs)
{
	const struct pt_regs *user = (const struct pt_regs *)regs->di;
	unsigned long nr;

	/* The same tests as the ftrace callback, plus: ia32 syscalls share
	 * the stub (their numbers index another table), and the caller's
	 * return address is on the stack at the first instruction. */
	if (user != task_pt_regs(current) || in_ia32_syscall())
		return 0;
	if (within_module(*(unsigned long *)regs->sp, THIS_MODULE))
		return 0;
	nr = user->orig_ax;
	if (nr >= NR_syscalls || (unsigned long)sa_x64_table[nr] != sa_x64_ni)
		return 0;
	regs->ip = (unsigned long)sa_x64_wrapper;
	return 1;               /* resume at regs->ip, no single-step */
}

/* Its presence keeps the probe from being jump-optimized: an optimized
 * probe ignores the ip its pre-handler sets. Never called for a redirect. */
static void notrace sa_ni_post(struct kprobe *p, struct pt_regs *regs,
			       unsigned long flags)
{
}

int sa_arch_ni_init(void)
{
	int err;

	if (!sa_x64_ni)
		return -ENOENT;
	sa_ni_kp.addr = (kprobe_opcode_t *)sa_x64_ni;
	sa_ni_kp.pre_handler = sa_ni_pre;
	sa_ni_kp.post_handler = sa_ni_post;
	sa_ni_kp.flags = KPROBE_FLAG_DISABLED;
	err = register_kprobe(&sa_ni_kp);
	if (err)
		return err;
	sa_ni_registered = true;
	return 0;
}

bool sa_arch_ni_entry(unsigned int nr)
{
	return sa_ni_registered && nr < NR_syscalls &&
	       (unsigned long)sa_x64_table[nr] == sa_x64_ni;
}

int sa_arch_ni_arm(bool on)
{
	int err;

	if (!sa_ni_registered)
		return on ? -ENOENT : 0;
	if (on == sa_ni_armed)
		return 0;
	err = on ? enable_kprobe(&sa_ni_kp) : disable_kprobe(&sa_ni_kp);
	if (!err)
		sa_ni_armed = on;
	return err;
}

bool sa_arch_ni_armed(void)
{
	return sa_ni_armed;
}

void sa_arch_ni_exit(void)
{
	sa_arch_oor_arm(false);
	if (!sa_ni_registered)
		return;
	unregister_kprobe(&sa_ni_kp);   /* waits for running handlers */
	sa_ni_registered = false;
	sa_ni_armed = false;
}

/*
 * Numbers beyond the table. do_syscall_64 answers them -ENOSYS itself (it
 * inlines the stub here) and is noinstr, so neither ftrace nor a kprobe can
 * see them there. The sys_enter tracepoint, which runs just before, may
 * change the number the entry code dispatches on: it sends such a call to
 * the stub's first entry, where the stub's probe catches it, and the wrapper
 * puts the real number back (sa_arch_read_call). Registering the tracepoint
 * moves every syscall to the entry code's slow path, so it is armed only
 * while a hook needs these numbers. x32 numbers (bit 30) and ia32 calls are
 * let through, and negative numbers (-1 is a call skipped by seccomp or a
 * tracer).
 */
static struct tracepoint *sa_sys_enter;
static bool sa_oor_on;

static void notrace sa_oor_probe(void *data, struct pt_regs *regs, long id)
{
	u32 nr = (u32)id;

	if ((int)nr < 0 || nr < NR_syscalls || regs != task_pt_regs(current) ||
	    in_ia32_syscall())
		return;
	if ((nr & __X32_SYSCALL_BIT) && nr - __X32_SYSCALL_BIT < X32_NR_syscalls)
		return;
	regs->ax = SA_OOR_TAG | nr;
	regs->orig_ax = sa_x64_ni_nr;
}

static void sa_find_sys_enter(struct tracepoint *tp, void *priv)
{
	if (!strcmp(tp->name, "sys_enter"))
		sa_sys_enter = tp;
}

int sa_arch_oor_arm(bool on)
{
	int err;

	if (on == sa_oor_on)
		return 0;
	if (on && (!sa_ni_registered || sa_x64_ni_nr < 0))
		return -ENOENT;
	if (!sa_sys_enter)
		for_each_kernel_tracepoint(sa_find_sys_enter, NULL);
	if (!sa_sys_enter)
		return on ? -ENOENT : 0;
	if (on) {
		err = tracepoint_probe_register(sa_sys_enter, sa_oor_probe, NULL);
	} else {
		err = tracepoint_probe_unregister(sa_sys_enter, sa_oor_probe, NULL);
		tracepoint_synchronize_unregister();
	}
	if (!err)
		sa_oor_on = on;
	return err;
}

bool sa_arch_oor_armed(void)
{
	return sa_oor_on;
}

/* The frame a signal handler was started with holds the registers the
 * interrupted call returns with (after rt_sigreturn). */
static struct sigcontext_64 __user *sa_x64_signal_mc(const struct pt_regs *now)
{
	struct rt_sigframe __user *f = (struct rt_sigframe __user *)now->sp;

	return (struct sigcontext_64 __user *)&f->uc.uc_mcontext;
}

/* arch/x86/kernel/signal.c: a restart moves ip back over the 2-byte
 * syscall instruction, in the registers (no handler) or in the frame. */
int sa_arch_signal_outcome(const struct pt_regs *then, long *ret)
{
	const struct pt_regs *now = task_pt_regs(current);
	struct sigcontext_64 __user *mc;
	u64 ip, ax;

	if (now->ip == then->ip - 2)
		return SA_OUTCOME_RESTART;
	if (now->ip == then->ip) {
		*ret = now->ax;
		return SA_OUTCOME_DONE;
	}
	mc = sa_x64_signal_mc(now);
	if (get_user(ip, &mc->ip) || get_user(ax, &mc->ax))
		return -EFAULT;
	if (ip == then->ip - 2)
		return SA_OUTCOME_RESTART;
	if (ip != then->ip)
		return -ESRCH;
	*ret = ax;
	return SA_OUTCOME_DONE;
}

void sa_arch_set_signal_ret(const struct pt_regs *then, long ret)
{
	struct pt_regs *now = task_pt_regs(current);

	if (now->ip == then->ip)
		now->ax = ret;
	else if (put_user((u64)ret, &sa_x64_signal_mc(now)->ax))
		sa_count(restart_lost);
}
