// SPDX-License-Identifier: GPL-2.0
/*
 * 32-bit ARM, EABI (Debian armmp). vector_swi saves the user registers in
 * the task's pt_regs, pushes r4/r5 (the fifth and sixth arguments) and calls
 * sys_call_table[r7] as a plain C function: arguments in r0-r3 and on the
 * stack, exactly as user space put them in r0-r5 (EABI lays out the syscall
 * registers like a C call, so a 64-bit argument sits in an even/odd pair in
 * both; the host joins the pair, see syscalls/abi32.py). The dispatched
 * number is thread_info->abi_syscall (r7, or what a tracer made of it).
 *
 * Redirect: gcc's mcount call comes after the function's prologue on ARM, so
 * an ftrace callback cannot move the pc to the wrapper (the prologue's pushes
 * would be left on the stack). A kprobe on the entry's first instruction can
 * (redirect_kprobe.c): sa_arch_kprobe_cb moves the pc to sa_arm_wrapper with
 * r0-r3, sp (the stacked r4/r5) and lr (the entry code's return) untouched.
 *
 * Table entries that are assembler stubs are hooked at the C function they
 * branch to (the stub has already run then, with lr and sp unchanged):
 * sys_sigreturn_wrapper / sys_rt_sigreturn_wrapper (r0 = the pt_regs, and
 * r8 = 0 so that no restart follows), sys_mmap2 (sys_mmap_pgoff; the page
 * offset is already in 4 KiB units), sys_statfs64_wrapper /
 * sys_fstatfs64_wrapper (sz 88 -> 84). The wrapper calls the same C
 * function, so the stub's work is not repeated and not lost.
 */
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/sched/task_stack.h>
#include <linux/kprobes.h>
#include <linux/uaccess.h>
#include <linux/ptrace.h>
#include <asm/unistd.h>
#include <asm/syscall.h>
#include <asm/ucontext.h>
#include "arch.h"
#include "sa.h"

const u32 sa_arch_id = SA_ARCH_ARMHF;

/* the entry pushes r4/r5 below the pt_regs before dispatching
 * (arch/arm/kernel/entry-header.S: S_OFF) */
#define SA_ARM_S_OFF 8
/* ARM-private numbers (cacheflush, set_tls, ...) go to arm_syscall() */
#define SA_ARM_PRIVATE_BASE 0x0f0000

typedef long (*sa_arm_fn6)(unsigned long, unsigned long, unsigned long,
			   unsigned long, unsigned long, unsigned long);
typedef long (*sa_arm_fn_regs)(struct pt_regs *);
typedef long (*sa_arm_fn_private)(int, struct pt_regs *);

/* how the wrapper calls the function of an entry */
enum sa_arm_kind {
	SA_ARM_PLAIN,       /* fn(r0..r5) */
	SA_ARM_REGS,        /* fn(pt_regs): sigreturn, rt_sigreturn */
	SA_ARM_STATFS64,    /* fn(r0..r5) with r1 88 -> 84, as the stub does */
};

static const unsigned long *sa_arm_table;
/* per nr: the address hooked and called, and how it is called */
static unsigned long sa_arm_fn[NR_syscalls];
static u8 sa_arm_kind[NR_syscalls];
static unsigned long sa_arm_ni;         /* sys_ni_syscall */
static unsigned long sa_arm_private;    /* arm_syscall */

struct sa_arm_stub {
	const char *stub, *target;
	enum sa_arm_kind kind;
};

static const struct sa_arm_stub sa_arm_stubs[] = {
	{ "sys_sigreturn_wrapper", "sys_sigreturn", SA_ARM_REGS },
	{ "sys_rt_sigreturn_wrapper", "sys_rt_sigreturn", SA_ARM_REGS },
	{ "sys_mmap2", "sys_mmap_pgoff", SA_ARM_PLAIN },
	{ "sys_statfs64_wrapper", "sys_statfs64", SA_ARM_STATFS64 },
	{ "sys_fstatfs64_wrapper", "sys_fstatfs64", SA_ARM_STATFS64 },
};

int sa_arch_init(unsigned long (*lookup)(const char *name))
{
	unsigned int nr, i;

	sa_arm_table = (const unsigned long *)lookup("sys_call_table");
	if (!sa_arm_table)
		return -ENOENT;
	sa_arm_ni = lookup("sys_ni_syscall");
	sa_arm_private = lookup("arm_syscall");
	for (nr = 0; nr < NR_syscalls; nr++) {
		sa_arm_fn[nr] = sa_arm_table[nr];
		sa_arm_kind[nr] = SA_ARM_PLAIN;
	}
	for (i = 0; i < ARRAY_SIZE(sa_arm_stubs); i++) {
		unsigned long stub = lookup(sa_arm_stubs[i].stub);
		unsigned long target = lookup(sa_arm_stubs[i].target);

		for (nr = 0; stub && nr < NR_syscalls; nr++) {
			if (sa_arm_table[nr] != stub)
				continue;
			/* without its target the stub stays unhookable: it
			 * cannot be called from C (its work depends on sp) */
			sa_arm_fn[nr] = target;
			sa_arm_kind[nr] = sa_arm_stubs[i].kind;
		}
	}
	return 0;
}

unsigned int sa_arch_nr_syscalls(void)
{
	return NR_syscalls;
}

unsigned long sa_arch_table_entry(unsigned int nr)
{
	return nr < NR_syscalls ? sa_arm_fn[nr] : 0;
}

/* EABI: a 64-bit argument starts at an even register (r0:r1, r2:r3, r4:r5) */
bool sa_arch_pairs_aligned(void)
{
	return true;
}

bool sa_arch_noreturn(int nr)
{
	return nr == __NR_exit || nr == __NR_exit_group;
}

u64 sa_arch_get_arg(const struct pt_regs *regs, unsigned int i)
{
	return i < SA_MAX_ARGS ? (u32)regs->uregs[i] : 0;
}

void sa_arch_read_call(struct sa_call *call)
{
	unsigned int i;

	call->nr = (int)current_thread_info()->abi_syscall;
	for (i = 0; i < SA_MAX_ARGS; i++)
		call->args[i] = sa_arch_get_arg(call->regs, i);
}

void sa_arch_write_args(struct pt_regs *regs, const u64 *args, u32 mask)
{
	unsigned int i;

	for (i = 0; i < SA_MAX_ARGS; i++)
		if (mask & BIT(i))
			regs->uregs[i] = (u32)args[i];
}

unsigned long sa_arch_pc(const struct pt_regs *regs)
{
	return regs->ARM_pc;
}

unsigned long sa_arch_sp(const struct pt_regs *regs)
{
	return regs->ARM_sp;
}

/* uregs[18]: r0-r15, cpsr, orig_r0 (portal/arch.py: ARMHF.regs) */
unsigned int sa_arch_copy_regs(const struct pt_regs *regs, u64 *out, unsigned int max)
{
	unsigned int n = min_t(unsigned int, max, ARRAY_SIZE(regs->uregs));
	unsigned int i;

	for (i = 0; i < n; i++)
		out[i] = (u32)regs->uregs[i];
	return n;
}

long sa_arch_invoke(struct sa_call *call)
{
	const u64 *a = call->args;
	unsigned long fn;
	unsigned long a1;

	if (call->nr < 0 || call->nr >= NR_syscalls) {
		/* what the entry code does with these (entry-common.S) */
		if ((u32)call->nr >= SA_ARM_PRIVATE_BASE && sa_arm_private)
			return ((sa_arm_fn_private)sa_arm_private)(call->nr, call->regs);
		return -ENOSYS;
	}
	fn = sa_arm_fn[call->nr];
	/* The ni entry does nothing but this; calling it would also meet its
	 * probe again. */
	if (!fn || fn == sa_arm_ni)
		return -ENOSYS;
	/* Not tail calls (-fno-optimize-sibling-calls): sp stays below the
	 * entry's frame, so the probe lets the call through. */
	switch (sa_arm_kind[call->nr]) {
	case SA_ARM_REGS:
		return ((sa_arm_fn_regs)fn)(call->regs);
	case SA_ARM_STATFS64:
		a1 = (u32)a[1] == 88 ? 84 : (u32)a[1];
		return ((sa_arm_fn6)fn)(a[0], a1, a[2], a[3], a[4], a[5]);
	}
	return ((sa_arm_fn6)fn)(a[0], a[1], a[2], a[3], a[4], a[5]);
}

/* Entered in place of the entry's function, with the entry's lr and sp:
 * its own arguments are not used (the call's are read from pt_regs). */
static long sa_arm_wrapper(void)
{
	struct sa_call call = { .regs = task_pt_regs(current) };

	sa_arch_read_call(&call);
	return sa_syscall(&call);
}

/* Is this probe hit the entry code's own call of the function hooked for
 * the task's syscall? sp says the function was entered from the syscall
 * dispatch itself (anything else, the wrapper's own call included, runs
 * deeper on the stack). */
static bool sa_arm_from_entry(const struct pt_regs *regs)
{
	const struct pt_regs *user = task_pt_regs(current);

	return regs->ARM_sp == (unsigned long)user - SA_ARM_S_OFF && user_mode(user);
}

static void sa_arm_redirect(struct pt_regs *regs)
{
	regs->ARM_pc = (unsigned long)sa_arm_wrapper;
}

int notrace sa_arch_kprobe_cb(struct kprobe *p, struct pt_regs *regs)
{
	u32 nr = current_thread_info()->abi_syscall;

	if (!sa_arm_from_entry(regs))
		return 0;
	if (nr >= NR_syscalls || sa_arm_fn[nr] != (unsigned long)p->addr)
		return 0;
	sa_arm_redirect(regs);
	return 1;               /* resume at the new pc, no single-step */
}

/*
 * Unimplemented syscalls: their entries all hold sys_ni_syscall, and the
 * entry code also branches there for numbers beyond the table (below the
 * ARM-private range), so one probe there catches both; numbers of the
 * private range (0x0f0000 and up: cacheflush, set_tls, ...) go to
 * arm_syscall, a second probe. Both are registered disarmed at load; the ni
 * probe is armed while a hook needs an unimplemented entry or numbers
 * beyond the table, the private one only for the latter.
 */
static struct kprobe sa_ni_kp, sa_private_kp;
static bool sa_ni_registered, sa_ni_on, sa_private_registered, sa_oor_on;

static int notrace sa_ni_pre(struct kprobe *p, struct pt_regs *regs)
{
	u32 nr = current_thread_info()->abi_syscall;

	if (!sa_arm_from_entry(regs))
		return 0;
	if (nr < NR_syscalls ? sa_arm_fn[nr] != sa_arm_ni : !READ_ONCE(sa_oor_on))
		return 0;
	sa_arm_redirect(regs);
	return 1;
}

static int notrace sa_private_pre(struct kprobe *p, struct pt_regs *regs)
{
	if (!sa_arm_from_entry(regs) || !READ_ONCE(sa_oor_on))
		return 0;
	sa_arm_redirect(regs);
	return 1;
}

/* Its presence keeps a probe from being jump-optimized. */
static void notrace sa_kp_post(struct kprobe *p, struct pt_regs *regs,
			       unsigned long flags)
{
}

static int sa_kp_register(struct kprobe *kp, unsigned long addr,
			  kprobe_pre_handler_t pre)
{
	kp->addr = (kprobe_opcode_t *)addr;
	kp->pre_handler = pre;
	kp->post_handler = sa_kp_post;
	kp->flags = KPROBE_FLAG_DISABLED;
	return register_kprobe(kp);
}

int sa_arch_ni_init(void)
{
	int err;

	if (!sa_arm_ni)
		return -ENOENT;
	err = sa_kp_register(&sa_ni_kp, sa_arm_ni, sa_ni_pre);
	if (err)
		return err;
	sa_ni_registered = true;
	if (sa_arm_private && !sa_kp_register(&sa_private_kp, sa_arm_private,
					      sa_private_pre))
		sa_private_registered = true;
	else
		pr_warn("syscalls_async: ARM-private syscall numbers cannot be caught\n");
	return 0;
}

bool sa_arch_ni_entry(unsigned int nr)
{
	return sa_ni_registered && nr < NR_syscalls && sa_arm_fn[nr] == sa_arm_ni;
}

int sa_arch_ni_arm(bool on)
{
	int err;

	if (!sa_ni_registered)
		return on ? -ENOENT : 0;
	if (on == sa_ni_on)
		return 0;
	err = on ? enable_kprobe(&sa_ni_kp) : disable_kprobe(&sa_ni_kp);
	if (!err)
		sa_ni_on = on;
	return err;
}

bool sa_arch_ni_armed(void)
{
	return sa_ni_on;
}

void sa_arch_ni_exit(void)
{
	sa_arch_oor_arm(false);
	if (sa_private_registered)
		unregister_kprobe(&sa_private_kp);
	sa_private_registered = false;
	if (sa_ni_registered)
		unregister_kprobe(&sa_ni_kp);   /* waits for running handlers */
	sa_ni_registered = false;
	sa_ni_on = false;
}

/* Numbers beyond the table: the ni probe (armed by the caller first, see
 * sa_oor_apply) lets them through once this is on; the private probe is
 * armed with it. */
int sa_arch_oor_arm(bool on)
{
	int err = 0;

	if (on == sa_oor_on)
		return 0;
	if (on && !sa_ni_registered)
		return -ENOENT;
	if (sa_private_registered)
		err = on ? enable_kprobe(&sa_private_kp) : disable_kprobe(&sa_private_kp);
	if (err)
		return err;
	WRITE_ONCE(sa_oor_on, on);
	return 0;
}

bool sa_arch_oor_armed(void)
{
	return sa_oor_on;
}

/*
 * Signals (arch/arm/kernel/signal.c, do_signal): a restart moves pc back over
 * the svc instruction (4 bytes, 2 in Thumb) and puts ORIG_r0 back into r0;
 * with a handler and no restart, r0 becomes -EINTR; a handler's frame holds
 * the registers the call returns with after sigreturn. A restart without a
 * handler is done inside the kernel (do_work_pending returns to local_restart)
 * before any task work runs: sa_arch_deliver_ret decides that one.
 */
static bool sa_arm_thumb(const struct pt_regs *regs)
{
	return regs->ARM_cpsr & PSR_T_BIT;
}

/* The frame setup_frame / setup_rt_frame built at sp: an rt frame starts
 * with the siginfo, and the kernel points r1 at it and r2 at the ucontext. */
static struct sigcontext __user *sa_arm_signal_mc(const struct pt_regs *now)
{
	unsigned long sp = now->ARM_sp;
	unsigned long uc = sp;

	if (now->ARM_r1 == sp && now->ARM_r2 == sp + sizeof(struct siginfo))
		uc = now->ARM_r2;
	return (struct sigcontext __user *)(uc + offsetof(struct ucontext, uc_mcontext));
}

int sa_arch_signal_outcome(const struct pt_regs *then, long *ret)
{
	const struct pt_regs *now = task_pt_regs(current);
	unsigned long back = then->ARM_pc - (sa_arm_thumb(then) ? 2 : 4);
	struct sigcontext __user *mc;
	unsigned long pc, r0;

	if (now->ARM_pc == back)
		return SA_OUTCOME_RESTART;
	if (now->ARM_pc == then->ARM_pc) {
		*ret = now->ARM_r0;
		return SA_OUTCOME_DONE;
	}
	mc = sa_arm_signal_mc(now);
	if (get_user(pc, &mc->arm_pc) || get_user(r0, &mc->arm_r0))
		return -EFAULT;
	if (pc == back)
		return SA_OUTCOME_RESTART;
	if (pc != then->ARM_pc)
		return -ESRCH;
	*ret = (long)r0;
	return SA_OUTCOME_DONE;
}

/*
 * ARM delivers signals in do_work_pending (do_signal is inlined there), which
 * returns straight to a restart inside the kernel when no handler runs,
 * before any task work. get_signal, called inside its loop, tells: 0 is no
 * handler, so any restart code restarts at once (do_signal: pc back, r0 =
 * ORIG_r0, local_restart); with a handler the loop runs the task work after
 * the frame is set up, and sa_arch_signal_outcome reads the outcome there.
 */
const char *const sa_arch_signal_fn = "get_signal";

int sa_arch_deliver_ret(struct pt_regs *kregs)
{
	return regs_return_value(kregs) ? -1 : SA_OUTCOME_RESTART;
}

void sa_arch_set_signal_ret(const struct pt_regs *then, long ret)
{
	struct pt_regs *now = task_pt_regs(current);

	if (now->ARM_pc == then->ARM_pc)
		now->ARM_r0 = ret;
	else if (put_user((unsigned long)ret, &sa_arm_signal_mc(now)->arm_r0))
		sa_count(restart_lost);
}
