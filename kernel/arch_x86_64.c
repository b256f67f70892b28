// SPDX-License-Identifier: GPL-2.0
/*
 * x86_64: native syscalls enter through __x64_sys_*(const struct pt_regs *)
 * via sys_call_table. The user pt_regs holds the number in orig_ax and the
 * arguments in di, si, dx, r10, r8, r9.
 *
 * The compat ABI (IA32_EMULATION): 32-bit programs enter through int 0x80 or
 * the vDSO's sysenter/syscall (do_int80_syscall_32, do_fast_syscall_32),
 * which call the ia32 function for orig_ax (__ia32_sys_*,
 * __ia32_compat_sys_*, also taking the user pt_regs) with TS_COMPAT set; the
 * arguments are in bx, cx, dx, si, di, bp, 32 bits each.
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

static void sa_ia32_init(unsigned long (*lookup)(const char *name));
/* the first ia32 entry that is the stub (see sa_oor_probe), -1: none */
static int sa_ia32_ni_nr = -1;

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
	sa_ia32_init(lookup);
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
	if (call->compat) {
		call->eflags |= SA_EV_COMPAT;
		if (call->nr == sa_ia32_ni_nr && (regs->ax & SA_OOR_MASK) == SA_OOR_TAG) {
			call->nr = (int)(u32)regs->ax;
			regs->orig_ax = call->nr;
			regs->ax = -ENOSYS;
		}
		for (i = 0; i < SA_MAX_ARGS; i++)
			call->args[i] = sa_arch_compat_get_arg(regs, i);
		return;
	}
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

static long sa_ia32_invoke(struct sa_call *call);

long sa_arch_invoke(struct sa_call *call)
{
	sa_x64_fn fn;

	if (call->compat)
		return sa_ia32_invoke(call);
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

static bool sa_ia32_redirect(unsigned long ip, unsigned long nr, struct pt_regs *regs);

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
	 * function being entered (x32 numbers carry a high bit and fail this).
	 * A 32-bit program's number indexes the ia32 table. */
	user = (const struct pt_regs *)regs->di;
	if (user != task_pt_regs(current))
		return;
	nr = user->orig_ax;
	if (in_ia32_syscall()) {
		sa_ia32_redirect(ip, nr, regs);
		return;
	}
	if (nr >= NR_syscalls || (unsigned long)sa_x64_table[nr] != ip)
		return;
	if (sa_gate_rejects(nr))
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

static bool sa_ia32_ni_redirect(unsigned long nr, struct pt_regs *regs);

static int notrace sa_ni_pre(struct kprobe *p, struct pt_regs *regs)
{
	const struct pt_regs *user = (const struct pt_regs *)regs->di;
	unsigned long nr;

	/* The same tests as the ftrace callback, plus: the caller's return
	 * address is on the stack at the first instruction. ia32 syscalls
	 * share the stub: their unimplemented numbers and those beyond their
	 * table come here too, by their own numbering. */
	if (user != task_pt_regs(current))
		return 0;
	if (within_module(*(unsigned long *)regs->sp, THIS_MODULE))
		return 0;
	nr = user->orig_ax;
	if (in_ia32_syscall())
		return sa_ia32_ni_redirect(nr, regs);
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
 * while a hook needs these numbers. x32 numbers (bit 30) are let through,
 * and negative numbers (-1 is a call skipped by seccomp or a tracer); ia32
 * numbers beyond the ia32 list go the same way to its first unimplemented
 * entry (the ia32 entry code inlines the stub too).
 */

static void sa_ia32_oor(struct pt_regs *regs, u32 nr);

static void notrace sa_oor_probe(void *data, struct pt_regs *regs, long id)
{
	u32 nr = (u32)id;

	if ((int)nr < 0 || regs != task_pt_regs(current))
		return;
	if (in_ia32_syscall()) {
		sa_ia32_oor(regs, nr);
		return;
	}
	if (nr < NR_syscalls)
		return;
	if ((nr & __X32_SYSCALL_BIT) && nr - __X32_SYSCALL_BIT < X32_NR_syscalls)
		return;
	regs->ax = SA_OOR_TAG | nr;
	regs->orig_ax = sa_x64_ni_nr;
}

int sa_arch_oor_arm(bool on)
{
	if (on == sa_sys_enter_hooked())
		return 0;
	if (on && (!sa_ni_registered || sa_x64_ni_nr < 0))
		return -ENOENT;
	return sa_sys_enter_hook(on, sa_oor_probe);
}

bool sa_arch_oor_armed(void)
{
	return sa_sys_enter_hooked();
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

/* ---- the ia32 ABI ---- */

#ifdef CONFIG_IA32_EMULATION
/*
 * The kernel dispatches ia32 calls with a switch on the number
 * (ia32_sys_call, since the branch history injection fixes); there is no
 * table to read. The list it is built from, asm/syscalls_32.h, gives per
 * number the function that names the syscall (syscall_32.tbl's native
 * column) and the one called (__ia32_ + the compat column, if any): the
 * latter's address is found by name at load.
 */
struct sa_ia32_sym {
	const char *name;       /* sys_openat, sys_ia32_pread64 */
	const char *entry;      /* what __ia32_ prefixes: compat_sys_open */
};

#undef __SYSCALL
#undef __SYSCALL_WITH_COMPAT
#define __SYSCALL(nr, sym) [nr] = { #sym, #sym },
#define __SYSCALL_WITH_COMPAT(nr, native, compat) [nr] = { #native, #compat },
static const struct sa_ia32_sym sa_ia32_syms[] = {
#include <asm/syscalls_32.h>
};
#undef __SYSCALL
#undef __SYSCALL_WITH_COMPAT

#define SA_IA32_NR min_t(unsigned int, IA32_NR_syscalls, ARRAY_SIZE(sa_ia32_syms))

/* per number: the entry function's address (0: not found) */
static unsigned long sa_ia32_entries[ARRAY_SIZE(sa_ia32_syms)];
static unsigned int sa_ia32_nr;         /* 0 until the entries are found */
static unsigned long sa_ia32_ni;        /* __ia32_sys_ni_syscall */

static void sa_ia32_init(unsigned long (*lookup)(const char *name))
{
	char sym[KSYM_NAME_LEN];
	unsigned int nr, found = 0;
	u64 t0 = ktime_get_ns();

	sa_ia32_ni = lookup("__ia32_sys_ni_syscall");
	for (nr = 0; nr < SA_IA32_NR; nr++) {
		const char *entry = sa_ia32_syms[nr].entry;

		if (!entry || !strcmp(entry, "sys_ni_syscall")) {
			sa_ia32_entries[nr] = sa_ia32_ni;
			continue;
		}
		snprintf(sym, sizeof(sym), "__ia32_%s", entry);
		sa_ia32_entries[nr] = lookup(sym);
		found += sa_ia32_entries[nr] != 0;
	}
	sa_ia32_nr = SA_IA32_NR;
	for (nr = 0; sa_x64_ni && nr < sa_ia32_nr; nr++)
		if (sa_ia32_entries[nr] == sa_x64_ni) {
			sa_ia32_ni_nr = nr;
			break;
		}
	pr_info("syscalls_async: ia32: %u entries, %u functions found in %llu us\n",
		sa_ia32_nr, found, (ktime_get_ns() - t0) / 1000);
}

unsigned int sa_arch_compat_nr_syscalls(void)
{
	return sa_ia32_nr;
}

unsigned long sa_arch_compat_entry(unsigned int nr)
{
	return nr < sa_ia32_nr ? sa_ia32_entries[nr] : 0;
}

const char *sa_arch_compat_name(unsigned int nr)
{
	const char *name;

	if (nr >= sa_ia32_nr || !sa_ia32_entries[nr] || sa_ia32_entries[nr] == sa_ia32_ni)
		return NULL;
	name = sa_ia32_syms[nr].name;
	return name && strcmp(name, "sys_ni_syscall") ? name : NULL;
}

bool sa_arch_compat_noreturn(int nr)
{
	return nr == __NR_ia32_exit || nr == __NR_ia32_exit_group;
}

u64 sa_arch_compat_get_arg(const struct pt_regs *regs, unsigned int i)
{
	switch (i) {
	case 0: return (u32)regs->bx;
	case 1: return (u32)regs->cx;
	case 2: return (u32)regs->dx;
	case 3: return (u32)regs->si;
	case 4: return (u32)regs->di;
	case 5: return (u32)regs->bp;
	}
	return 0;
}

void sa_arch_compat_write_args(struct pt_regs *regs, const u64 *args, u32 mask)
{
	unsigned long *slot[SA_MAX_ARGS] = {
		&regs->bx, &regs->cx, &regs->dx, &regs->si, &regs->di, &regs->bp,
	};
	unsigned int i;

	for (i = 0; i < SA_MAX_ARGS; i++)
		if (mask & BIT(i))
			*slot[i] = (u32)args[i];
}

static long sa_ia32_invoke(struct sa_call *call)
{
	sa_x64_fn fn;

	/* the ni stub does nothing but this (and calling it would meet its
	 * probe again) */
	if (call->nr < 0 || call->nr >= sa_ia32_nr || !sa_ia32_entries[call->nr] ||
	    sa_ia32_entries[call->nr] == sa_x64_ni)
		return -ENOSYS;
	fn = (sa_x64_fn)sa_ia32_entries[call->nr];
	/* not a tail call, as for the native table */
	return fn(call->regs);
}

static long sa_ia32_wrapper(const struct pt_regs *regs)
{
	struct sa_call call = { .regs = (struct pt_regs *)regs, .compat = true };

	sa_arch_read_call(&call);
	return sa_syscall(&call);
}

/* The ni stub's probe, for an ia32 call: an unimplemented entry of the
 * ia32 list or a number beyond it (the entry code calls the same stub for
 * those, and for -1 nothing). */
static bool notrace sa_ia32_ni_redirect(unsigned long nr, struct pt_regs *regs)
{
	u32 unr = nr;

	if (!sa_ia32_nr || (unr < sa_ia32_nr && sa_ia32_entries[unr] != sa_x64_ni))
		return false;
	regs->ip = (unsigned long)sa_ia32_wrapper;
	return true;
}

bool sa_arch_compat_ni_entry(unsigned int nr)
{
	return sa_ni_registered && nr < sa_ia32_nr && sa_ia32_entries[nr] == sa_x64_ni;
}

/* sa_oor_probe for an ia32 call */
static void notrace sa_ia32_oor(struct pt_regs *regs, u32 nr)
{
	if (nr < sa_ia32_nr || sa_ia32_ni_nr < 0)
		return;
	regs->ax = SA_OOR_TAG | nr;
	regs->orig_ax = sa_ia32_ni_nr;
}

static bool notrace sa_ia32_redirect(unsigned long ip, unsigned long nr, struct pt_regs *regs)
{
	if (nr >= sa_ia32_nr || sa_ia32_entries[nr] != ip)
		return false;
	regs->ip = (unsigned long)sa_ia32_wrapper;
	return true;
}

/*
 * The frame a signal handler of a 32-bit program was started with: an
 * rt_sigframe_ia32 (SA_SIGINFO; its pinfo and puc point into itself) or a
 * sigframe_ia32. NULL if neither can be read.
 */
static struct sigcontext_32 __user *sa_ia32_signal_mc(const struct pt_regs *now)
{
	u32 sp = now->sp, pinfo, puc;

	if (get_user(pinfo, (u32 __user *)(unsigned long)(sp + 8)) ||
	    get_user(puc, (u32 __user *)(unsigned long)(sp + 12)))
		return NULL;
	if (pinfo == sp + offsetof(struct rt_sigframe_ia32, info) &&
	    puc == sp + offsetof(struct rt_sigframe_ia32, uc))
		return &((struct rt_sigframe_ia32 __user *)(unsigned long)sp)->uc.uc_mcontext;
	return &((struct sigframe_ia32 __user *)(unsigned long)sp)->sc;
}

/* arch/x86/kernel/signal.c: a restart moves ip back over the 2-byte int
 * 0x80 (the vDSO's fast path comes back there too), in the registers (no
 * handler) or in the handler's 32-bit frame. */
int sa_arch_compat_signal_outcome(const struct pt_regs *then, long *ret)
{
	const struct pt_regs *now = task_pt_regs(current);
	struct sigcontext_32 __user *mc;
	u32 ip, ax;

	if (now->ip == then->ip - 2)
		return SA_OUTCOME_RESTART;
	if (now->ip == then->ip) {
		*ret = (s32)now->ax;
		return SA_OUTCOME_DONE;
	}
	mc = sa_ia32_signal_mc(now);
	if (!mc || get_user(ip, &mc->ip) || get_user(ax, &mc->ax))
		return -EFAULT;
	if (ip == (u32)(then->ip - 2))
		return SA_OUTCOME_RESTART;
	if (ip != (u32)then->ip)
		return -ESRCH;
	*ret = (s32)ax;
	return SA_OUTCOME_DONE;
}

void sa_arch_compat_set_signal_ret(const struct pt_regs *then, long ret)
{
	struct pt_regs *now = task_pt_regs(current);
	struct sigcontext_32 __user *mc;

	if (now->ip == then->ip) {
		now->ax = (u32)ret;
		return;
	}
	mc = sa_ia32_signal_mc(now);
	if (!mc || put_user((u32)ret, &mc->ax))
		sa_count(restart_lost);
}
#else
static void sa_ia32_init(unsigned long (*lookup)(const char *name))
{
}

static long sa_ia32_invoke(struct sa_call *call)
{
	return -ENOSYS;
}

static bool sa_ia32_redirect(unsigned long ip, unsigned long nr, struct pt_regs *regs)
{
	return false;
}

static bool sa_ia32_ni_redirect(unsigned long nr, struct pt_regs *regs)
{
	return false;
}

static void sa_ia32_oor(struct pt_regs *regs, u32 nr)
{
}

bool sa_arch_compat_ni_entry(unsigned int nr)
{
	return false;
}
#endif
