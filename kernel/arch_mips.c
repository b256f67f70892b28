// SPDX-License-Identifier: GPL-2.0
/*
 * 32-bit MIPS, o32 ABI (Debian's 4kc-malta kernel). handle_sys calls the
 * entries of sys_call_table as plain C functions with the arguments in
 * a0-a3 and, for arguments 5-8, in the argument save area at the bottom of
 * the user pt_regs (the entry code copies them from the user stack), with
 * sp pointing at the user pt_regs. The number is in v0 (regs[2]), from
 * __NR_O32_Linux (4000); the module names table entry nr = number - 4000.
 * handle_sys turns the return value into v0 plus the a3 error flag itself.
 *
 * This kernel's ftrace cannot move the pc (no DYNAMIC_FTRACE_WITH_REGS),
 * so every hooked entry gets a kprobe on its first instruction whose
 * pre-handler moves the pc to the wrapper (redirect_kprobe.c keeps the
 * probes).
 */
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/sched/task_stack.h>
#include <linux/kprobes.h>
#include <linux/tracepoint.h>
#include <linux/uaccess.h>
#include <asm/unistd.h>
#include <asm/ucontext.h>
#include <asm/sigcontext.h>
#include "arch.h"
#include "sa.h"

#define SA_NR_BASE __NR_O32_Linux
#define SA_NSYS __NR_O32_Linux_syscalls

typedef long (*sa_mips_fn)(unsigned long, unsigned long, unsigned long, unsigned long,
			   unsigned long, unsigned long, unsigned long, unsigned long);

const u32 sa_arch_id = SA_ARCH_MIPSEL;

static const unsigned long *sa_mips_table;
static unsigned long sa_mips_ni;        /* sys_ni_syscall */
static unsigned long sa_mips_syscall;   /* sys_syscall: syscall(2) */

/*
 * Entries that are assembler stubs saving the callee-saved registers s0-s7
 * and fp into the pt_regs at sp (so a child starts with them) before they
 * jump to the C function. Called from the wrapper, sp is not the pt_regs:
 * the pre-handler saves those registers instead (they still hold the user's
 * values at the probe) and the wrapper calls the C function.
 */
static const char *const sa_mips_stub_names[][2] = {
	{ "__sys_fork", "sys_fork" },
	{ "__sys_clone", "sys_clone" },
	{ "__sys_clone3", "sys_clone3" },
	{ "__sys_sysmips", "sys_sysmips" },
};
#define SA_NSTUBS ARRAY_SIZE(sa_mips_stub_names)
static unsigned long sa_mips_stub[SA_NSTUBS], sa_mips_stub_c[SA_NSTUBS];

int sa_arch_init(unsigned long (*lookup)(const char *name))
{
	unsigned int i;

	sa_mips_table = (const unsigned long *)lookup("sys_call_table");
	if (!sa_mips_table)
		return -ENOENT;
	sa_mips_ni = lookup("sys_ni_syscall");
	sa_mips_syscall = lookup("sys_syscall");
	for (i = 0; i < SA_NSTUBS; i++) {
		sa_mips_stub[i] = lookup(sa_mips_stub_names[i][0]);
		sa_mips_stub_c[i] = lookup(sa_mips_stub_names[i][1]);
		if (!sa_mips_stub[i] != !sa_mips_stub_c[i])
			return -ENOENT;
	}
	return 0;
}

unsigned int sa_arch_nr_syscalls(void)
{
	return SA_NSYS;
}

unsigned long sa_arch_table_entry(unsigned int nr)
{
	return nr < SA_NSYS ? sa_mips_table[nr] : 0;
}

/* o32: a 64-bit argument starts at an even word (a0:a1, a2:a3, the stack pair) */
bool sa_arch_pairs_aligned(void)
{
	return true;
}

bool sa_arch_noreturn(int nr)
{
	/* sigreturn and rt_sigreturn leave through syscall_exit with sp moved
	 * back to the pt_regs: they never return to their caller either. */
	switch (nr + SA_NR_BASE) {
	case __NR_exit:
	case __NR_exit_group:
	case __NR_sigreturn:
	case __NR_rt_sigreturn:
		return true;
	}
	return false;
}

/* Arguments 5-8 as handle_sys left them (pad0 is the o32 argument save
 * area at the bottom of the pt_regs). */
u64 sa_arch_get_arg(const struct pt_regs *regs, unsigned int i)
{
	if (i < 4)
		return (u32)regs->regs[4 + i];
	if (i < 8)
		return (u32)regs->pad0[i];
	return 0;
}

static bool sa_mips_untag(struct pt_regs *regs);

void sa_arch_read_call(struct sa_call *call)
{
	struct pt_regs *regs = call->regs;
	unsigned int i;

	sa_mips_untag(regs);
	call->nr = (int)((u32)regs->regs[2] - SA_NR_BASE);
	for (i = 0; i < SA_MAX_ARGS; i++)
		call->args[i] = sa_arch_get_arg(regs, i);
}

void sa_arch_write_args(struct pt_regs *regs, const u64 *args, u32 mask)
{
	unsigned int i;

	for (i = 0; i < SA_MAX_ARGS; i++) {
		if (!(mask & BIT(i)))
			continue;
		if (i < 4)
			regs->regs[4 + i] = (u32)args[i];
		else
			regs->pad0[i] = (u32)args[i];
	}
}

unsigned long sa_arch_pc(const struct pt_regs *regs)
{
	return regs->cp0_epc;
}

unsigned long sa_arch_sp(const struct pt_regs *regs)
{
	return regs->regs[29];
}

/* regs[0..31], then lo, hi, epc, badvaddr, status, cause and the stack
 * arguments 5 and 6 (portal/arch.py names them in this order). */
unsigned int sa_arch_copy_regs(const struct pt_regs *regs, u64 *out, unsigned int max)
{
	const unsigned long extra[] = {
		regs->lo, regs->hi, regs->cp0_epc, regs->cp0_badvaddr,
		regs->cp0_status, regs->cp0_cause, regs->pad0[4], regs->pad0[5],
	};
	unsigned int n = 0, i;

	for (i = 0; i < 32 && n < max; i++)
		out[n++] = (u32)regs->regs[i];
	for (i = 0; i < ARRAY_SIZE(extra) && n < max; i++)
		out[n++] = (u32)extra[i];
	return n;
}

static int sa_mips_stub_index(unsigned long fn)
{
	unsigned int i;

	for (i = 0; i < SA_NSTUBS; i++)
		if (sa_mips_stub[i] && fn == sa_mips_stub[i])
			return i;
	return -1;
}

/* The function to call for an entry, args shifted for syscall(2); 0 for
 * -ENOSYS. */
static unsigned long sa_mips_target(unsigned int nr, unsigned long *a)
{
	unsigned long fn = sa_mips_table[nr];
	int stub;

	if (fn == sa_mips_syscall) {
		/* syscall(2): what sys_syscall does, without its sp games */
		u32 inner = (u32)a[0] - SA_NR_BASE;
		unsigned int i;

		if (inner >= SA_NSYS || sa_mips_table[inner] == sa_mips_syscall)
			return 0;
		for (i = 0; i < 7; i++)
			a[i] = a[i + 1];
		fn = sa_mips_table[inner];
	}
	if (fn == sa_mips_ni || !fn)
		return 0;
	stub = sa_mips_stub_index(fn);
	return stub < 0 ? fn : sa_mips_stub_c[stub];
}

long sa_arch_invoke(struct sa_call *call)
{
	const struct pt_regs *regs = call->regs;
	unsigned long a[8], fn;
	unsigned int i;

	if (call->nr < 0 || call->nr >= SA_NSYS)
		return -ENOSYS;
	for (i = 0; i < 8; i++)
		a[i] = i < SA_MAX_ARGS ? (unsigned long)call->args[i] : regs->pad0[i];
	fn = sa_mips_target(call->nr, a);
	if (!fn)
		return -ENOSYS;         /* as sys_ni_syscall and sys_syscall answer */
	/* Not a tail call (-fno-optimize-sibling-calls): the probe's
	 * pre-handler lets calls returning into this module through. */
	return ((sa_mips_fn)fn)(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]);
}

/* Where the kprobe sends a hooked entry: the same frame the entry would
 * have had (sp at the pt_regs, ra back into handle_sys). */
static long sa_mips_wrapper(void)
{
	struct sa_call call = { .regs = task_pt_regs(current) };

	sa_arch_read_call(&call);
	return sa_syscall(&call);
}

/*
 * The pre-handler of every entry's kprobe (redirect_kprobe.c). Only the real entry
 * from handle_sys: sp is this task's user pt_regs and the table entry for
 * the number in v0 is the probed function (syscall(2) jumps to its target
 * with v0 = 4000, calls from this module return into it).
 */
int notrace sa_arch_kprobe_cb(struct kprobe *p, struct pt_regs *regs)
{
	struct pt_regs *user = task_pt_regs(current);
	u32 nr;

	if (regs->regs[29] != (unsigned long)user)
		return 0;
	if (within_module(regs->regs[31], THIS_MODULE))
		return 0;
	nr = (u32)user->regs[2] - SA_NR_BASE;
	if (nr >= SA_NSYS || sa_mips_table[nr] != (unsigned long)p->addr)
		return 0;
	if (sa_mips_stub_index((unsigned long)p->addr) >= 0) {
		unsigned int i;

		/* what the stub would have saved, still the user's values */
		for (i = 16; i <= 23; i++)
			user->regs[i] = regs->regs[i];
		user->regs[30] = regs->regs[30];
	}
	regs->cp0_epc = (unsigned long)sa_mips_wrapper;
	return 1;               /* resume at the new pc, no single-step */
}

/*
 * Numbers outside the table: handle_sys answers them -ENOSYS itself
 * (illegal_syscall, assembler), so no probe sees them there. The sys_enter
 * tracepoint, which syscall_trace_enter runs before handle_sys reloads the
 * number from the registers, may change it: it sends such a call to the
 * first table entry of sys_ni_syscall, whose probe redirects it like any
 * other, and leaves the real number in the argument save area's words 2
 * and 3 (unused by the entry path: arguments 5-8 are words 4-7) for
 * sa_arch_read_call. Registering the tracepoint moves every syscall to the
 * entry's slow path, so it is armed only while a hook needs these numbers.
 * Negative numbers are let through (syscall_trace_enter skips them anyway).
 */
#define SA_OOR_TAG 0x524f4153UL         /* "SAOR" */

static int sa_mips_ni_nr = -1;          /* first entry holding sys_ni_syscall */

static bool sa_mips_beyond(u32 nr)
{
	return nr - SA_NR_BASE >= SA_NSYS;
}

static void notrace sa_oor_probe(void *data, struct pt_regs *regs, long id)
{
	u32 nr = (u32)id;

	if (regs != task_pt_regs(current))
		return;
	if (!sa_mips_beyond(nr) || (int)nr < 0) {
		regs->pad0[2] = 0;      /* no stale tag for a later ni call */
		return;
	}
	regs->pad0[2] = SA_OOR_TAG;
	regs->pad0[3] = nr;
	regs->regs[2] = SA_NR_BASE + sa_mips_ni_nr;
}

int sa_arch_oor_arm(bool on)
{
	unsigned int nr;

	if (on == sa_sys_enter_hooked())
		return 0;
	for (nr = 0; sa_mips_ni_nr < 0 && nr < SA_NSYS; nr++)
		if (sa_mips_ni && sa_mips_table[nr] == sa_mips_ni)
			sa_mips_ni_nr = nr;
	if (on && sa_mips_ni_nr < 0)
		return -ENOENT;
	return sa_sys_enter_hook(on, sa_oor_probe);
}

bool sa_arch_oor_armed(void)
{
	return sa_sys_enter_hooked();
}

/* A number beyond the table that sa_oor_probe sent to the ni entry: put
 * it back in v0 (the entry saves it for a restart from there). */
static bool sa_mips_untag(struct pt_regs *regs)
{
	u32 nr = regs->pad0[3];

	if (regs->pad0[2] != SA_OOR_TAG)
		return false;
	regs->pad0[2] = 0;
	if ((int)(regs->regs[2] - SA_NR_BASE) != sa_mips_ni_nr || !sa_mips_beyond(nr))
		return false;
	regs->regs[2] = nr;
	return true;
}

/* The pc of a signal handler's frame: a handler starts with a0 = signal,
 * a1 = &info (rt frame) or 0, a2 = &ucontext (rt) or &sigcontext. */
static struct sigcontext __user *sa_mips_signal_sc(const struct pt_regs *now)
{
	if (now->regs[5])
		return (struct sigcontext __user *)
			(now->regs[6] + offsetof(struct ucontext, uc_mcontext));
	return (struct sigcontext __user *)now->regs[6];
}

/* handle_sys's convention: v0 holds the value, or the positive errno with
 * the a3 flag set. */
static long sa_mips_ret(unsigned long v0, unsigned long a3)
{
	return a3 ? -(long)v0 : (long)v0;
}

/* arch/mips/kernel/signal.c: a restart moves epc back over the 4-byte
 * syscall instruction, in the registers (no handler) or in the frame. The
 * registers "then" are the ones the wrapper saw (epc already past it). */
int sa_arch_signal_outcome(const struct pt_regs *then, long *ret)
{
	const struct pt_regs *now = task_pt_regs(current);
	struct sigcontext __user *sc;
	u64 pc, v0, a3;

	if (now->cp0_epc == then->cp0_epc - 4)
		return SA_OUTCOME_RESTART;
	if (now->cp0_epc == then->cp0_epc) {
		*ret = sa_mips_ret(now->regs[2], now->regs[7]);
		return SA_OUTCOME_DONE;
	}
	sc = sa_mips_signal_sc(now);
	if (get_user(pc, &sc->sc_pc) || get_user(v0, &sc->sc_regs[2]) ||
	    get_user(a3, &sc->sc_regs[7]))
		return -EFAULT;
	if ((u32)pc == (u32)(then->cp0_epc - 4))
		return SA_OUTCOME_RESTART;
	if ((u32)pc != (u32)then->cp0_epc)
		return -ESRCH;
	*ret = sa_mips_ret((unsigned long)v0, (unsigned long)a3);
	return SA_OUTCOME_DONE;
}

void sa_arch_set_signal_ret(const struct pt_regs *then, long ret)
{
	struct pt_regs *now = task_pt_regs(current);
	bool err = (unsigned long)ret >= (unsigned long)-EMAXERRNO;
	unsigned long v0 = err ? -ret : ret;
	struct sigcontext __user *sc;

	if (now->cp0_epc == then->cp0_epc) {
		now->regs[2] = v0;
		now->regs[7] = err;
		return;
	}
	sc = sa_mips_signal_sc(now);
	if (put_user((u64)v0, &sc->sc_regs[2]) || put_user((u64)err, &sc->sc_regs[7]))
		sa_count(restart_lost);
}

/*
 * restart.c's kretprobe (sa_arch_signal_fn): none on MIPS. A kretprobe
 * single-steps the probed function's first instruction in a kprobe slot,
 * and on this kernel under load that single-step lost its kprobe (kprobe_running() NULL at the
 * step's break: "Break instruction in kernel code", init killed) whether
 * the function was do_notify_resume or get_signal; without the kretprobe
 * the same load ran clean. So the return of a call a signal interrupted
 * is not reported on mipsel: counted in restart_lost.
 */
const char *const sa_arch_signal_fn = NULL;
