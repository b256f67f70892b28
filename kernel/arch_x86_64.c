// SPDX-License-Identifier: GPL-2.0
/*
 * x86_64: native syscalls enter through __x64_sys_*(const struct pt_regs *)
 * via sys_call_table. The user pt_regs holds the number in orig_ax and the
 * arguments in di, si, dx, r10, r8, r9.
 */
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/sched/task_stack.h>
#include <asm/unistd.h>
#include "arch.h"
#include "sa.h"

typedef long (*sa_x64_fn)(const struct pt_regs *regs);

const u32 sa_arch_id = SA_ARCH_X86_64;
static const sa_x64_fn *sa_x64_table;

int sa_arch_init(unsigned long (*lookup)(const char *name))
{
	sa_x64_table = (const sa_x64_fn *)lookup("sys_call_table");
	return sa_x64_table ? 0 : -ENOENT;
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

void sa_arch_read_call(struct sa_call *call)
{
	unsigned int i;

	call->nr = (int)call->regs->orig_ax;
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
	sa_x64_fn fn = sa_x64_table[call->nr];

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
