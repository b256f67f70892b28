/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What each architecture provides: where the syscall table is, how the user
 * registers hold the number and arguments, how the original entry is called.
 * Generic code never touches struct pt_regs fields directly.
 */
#ifndef SYSCALLS_ASYNC_ARCH_H
#define SYSCALLS_ASYNC_ARCH_H

#include <linux/ftrace.h>
#include <linux/ptrace.h>
#include "portal_abi.h"

struct sa_call;

/* SA_ARCH_* value written to the portal header */
extern const u32 sa_arch_id;
/* The function that delivers a signal on the way back to user mode; a
 * kretprobe on it learns what became of an interrupted call (restart.c).
 * NULL, or a name kallsyms lacks: interrupted calls get no return event
 * (counted in restart_lost). */
extern const char *const sa_arch_signal_fn;

struct syscall_metadata;

/*
 * For kernels whose kallsyms lists functions only (no CONFIG_KALLSYMS_ALL),
 * in symbols.c: the array of n function pointers in [start, end) that
 * starts with the functions named first[] (n <= 4), and the ftrace
 * metadata of the syscall whose entry is fn (through its sys_enter event).
 */
const void *sa_find_table(unsigned long (*lookup)(const char *name),
			  unsigned long start, unsigned long end,
			  const char *const first[], unsigned int n);
const struct syscall_metadata *sa_meta_by_entry(unsigned long fn);

/*
 * On a 32-bit ABI a 64-bit argument (loff_t, u64) takes two argument
 * registers; true if the native ABI starts such a pair at an even register
 * (ARM EABI, MIPS o32), leaving one unused before it. Optional
 * (arch_optional.c: false). The compat ABI (ia32) never aligns. Mirrors
 * syscalls/abi32.py on the host, which reads the words the same way.
 */
bool sa_arch_pairs_aligned(void);

/* Find the syscall table; lookup is kallsyms_lookup_name. */
int sa_arch_init(unsigned long (*lookup)(const char *name));
unsigned int sa_arch_nr_syscalls(void);
unsigned long sa_arch_table_entry(unsigned int nr);

/* Syscalls that never return to their caller (exit, exit_group). */
bool sa_arch_noreturn(int nr);

/* Fill call->nr, call->args from call->regs. */
void sa_arch_read_call(struct sa_call *call);
/* Put args[i] for each bit i of mask into the user registers. */
void sa_arch_write_args(struct pt_regs *regs, const u64 *args, u32 mask);
/* Read back argument i from the user registers. */
u64 sa_arch_get_arg(const struct pt_regs *regs, unsigned int i);
unsigned long sa_arch_pc(const struct pt_regs *regs);
unsigned long sa_arch_sp(const struct pt_regs *regs);
/* Copy the user registers as u64 words; returns how many. */
unsigned int sa_arch_copy_regs(const struct pt_regs *regs, u64 *out, unsigned int max);

/* Call the original syscall entry for call->nr. */
long sa_arch_invoke(struct sa_call *call);

/*
 * How a hooked table entry reaches the wrapper (redirect.h): the ftrace
 * callback (x86_64, aarch64: ftrace's call is the function's first
 * instruction, so moving the ip there enters the wrapper as if the entry code
 * had called it) or a kprobe's pre-handler on the entry's first instruction
 * (ARM: gcc puts the mcount call after the prologue, which has already
 * pushed registers and moved sp, so ftrace cannot redirect there). Kbuild
 * picks redirect_ftrace.o or redirect_kprobe.o; the arch provides the
 * callback that backend calls.
 */
/* The ftrace callback: redirect a hooked syscall entry to the wrapper. */
void sa_arch_ftrace_cb(unsigned long ip, unsigned long parent_ip,
		       struct ftrace_ops *ops, struct ftrace_regs *fregs);
struct kprobe;
/* The kprobe pre-handler's test: 1 if it moved the pc to the wrapper. */
int sa_arch_kprobe_cb(struct kprobe *p, struct pt_regs *regs);

/*
 * Table entries ftrace cannot hook that the arch catches another way
 * (x86_64: the shared stub of unimplemented syscalls, by a kprobe that
 * redirects to the same wrapper). Optional (arch_optional.c: there is no
 * other way; every entry is hooked like the others).
 */
int sa_arch_ni_init(void);                 /* 0 if the other way exists */
bool sa_arch_ni_entry(unsigned int nr);    /* entry nr is caught that way */
int sa_arch_ni_arm(bool on);               /* catch them or not */
bool sa_arch_ni_armed(void);
void sa_arch_ni_exit(void);                /* disarm for good */

/*
 * Numbers beyond the table (x86_64: the entry code answers them -ENOSYS
 * itself, calling nothing). Optional: when armed they reach the wrapper
 * with call->nr set to the number the task asked for.
 */
int sa_arch_oor_arm(bool on);
bool sa_arch_oor_armed(void);

/*
 * What became of a call that returned a restart code, asked in the task's
 * context once the kernel delivered the signal; "then" holds the user
 * registers the call returned with. SA_OUTCOME_RESTART: it runs again;
 * SA_OUTCOME_DONE: it ends with *ret; -errno: the registers say neither.
 */
#define SA_OUTCOME_DONE 0
#define SA_OUTCOME_RESTART 1
int sa_arch_signal_outcome(const struct pt_regs *then, long *ret);
/* Change what such a call ends with (SA_OUTCOME_DONE only). */
void sa_arch_set_signal_ret(const struct pt_regs *then, long ret);

/*
 * At the return of sa_arch_signal_fn: SA_OUTCOME_RESTART if the kernel
 * restarts the call before any task work could run (ARM restarts a call
 * without a handler inside the kernel), else -1: sa_arch_signal_outcome
 * decides in the task work. Optional (restart.c's weak default: -1).
 */
int sa_arch_deliver_ret(struct pt_regs *kregs);

/*
 * A second syscall ABI the architecture also runs (x86_64: ia32, the
 * 32-bit programs). Optional: compat.c says there is none on the others.
 * Its calls reach the wrapper with call->compat set; call->nr indexes the
 * compat table, call->args are its argument registers; sa_arch_read_call
 * and sa_arch_invoke know the ABI from call->compat.
 */
unsigned int sa_arch_compat_nr_syscalls(void);     /* 0: no compat ABI */
unsigned long sa_arch_compat_entry(unsigned int nr);
/* The kernel's function name for compat entry nr ("sys_openat",
 * "sys_ia32_pread64"), NULL if the entry is unimplemented. */
const char *sa_arch_compat_name(unsigned int nr);
bool sa_arch_compat_noreturn(int nr);
/* Compat entry nr is caught the arch's other way (see sa_arch_ni_*), as are
 * compat numbers beyond the table while that way is armed. */
bool sa_arch_compat_ni_entry(unsigned int nr);
void sa_arch_compat_write_args(struct pt_regs *regs, const u64 *args, u32 mask);
u64 sa_arch_compat_get_arg(const struct pt_regs *regs, unsigned int i);
int sa_arch_compat_signal_outcome(const struct pt_regs *then, long *ret);
void sa_arch_compat_set_signal_ret(const struct pt_regs *then, long ret);

#endif
