/* SPDX-License-Identifier: GPL-2.0 */
/*
 * raw_syscall(): one system call with six arguments, straight into the
 * kernel (no libc errno handling), returning the raw kernel value: -errno on
 * failure on every architecture (MIPS flags errors in a3 and returns a
 * positive errno; that is turned into -errno here).
 */
#ifndef SA_GUEST_RAW_SYSCALL_H
#define SA_GUEST_RAW_SYSCALL_H

#if defined(__x86_64__)
static inline long raw_syscall(long nr, const long a[6])
{
	register long r10 __asm__("r10") = a[3];
	register long r8 __asm__("r8") = a[4];
	register long r9 __asm__("r9") = a[5];
	long ret;

	__asm__ volatile ("syscall"
			  : "=a"(ret)
			  : "0"(nr), "D"(a[0]), "S"(a[1]), "d"(a[2]),
			    "r"(r10), "r"(r8), "r"(r9)
			  : "rcx", "r11", "memory");
	return ret;
}
#elif defined(__i386__)
/* int 0x80 (the ia32 entry): number in eax, arguments in ebx, ecx, edx, esi,
 * edi, ebp; ebp is the frame pointer, so it is saved around the call by hand */
static inline long raw_syscall(long nr, const long a[6])
{
	long ret;

	__asm__ volatile ("push %%ebp\n\t"
			  "mov %7, %%ebp\n\t"
			  "int $0x80\n\t"
			  "pop %%ebp"
			  : "=a"(ret)
			  : "0"(nr), "b"(a[0]), "c"(a[1]), "d"(a[2]), "S"(a[3]),
			    "D"(a[4]), "m"(a[5])
			  : "memory");
	return ret;
}
#elif defined(__aarch64__)
/* number in x8, arguments in x0-x5, result in x0 */
static inline long raw_syscall(long nr, const long a[6])
{
	register long x8 __asm__("x8") = nr;
	register long x0 __asm__("x0") = a[0];
	register long x1 __asm__("x1") = a[1];
	register long x2 __asm__("x2") = a[2];
	register long x3 __asm__("x3") = a[3];
	register long x4 __asm__("x4") = a[4];
	register long x5 __asm__("x5") = a[5];

	__asm__ volatile ("svc #0"
			  : "+r"(x0)
			  : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
			  : "memory");
	return x0;
}
#elif defined(__arm__)
/* EABI: number in r7, arguments in r0-r5, result in r0 */
static inline long raw_syscall(long nr, const long a[6])
{
	register long r7 __asm__("r7") = nr;
	register long r0 __asm__("r0") = a[0];
	register long r1 __asm__("r1") = a[1];
	register long r2 __asm__("r2") = a[2];
	register long r3 __asm__("r3") = a[3];
	register long r4 __asm__("r4") = a[4];
	register long r5 __asm__("r5") = a[5];

	__asm__ volatile ("svc #0"
			  : "+r"(r0)
			  : "r"(r7), "r"(r1), "r"(r2), "r"(r3), "r"(r4), "r"(r5)
			  : "memory");
	return r0;
}
#elif defined(__mips__) && _MIPS_SIM == _ABIO32
/*
 * o32: number in v0, arguments 1-4 in a0-a3, 5 and 6 on the caller's stack
 * at sp+16 and sp+20 (above the 16 bytes reserved for a0-a3); result in v0,
 * a3 nonzero when v0 is an errno.
 */
static inline long raw_syscall(long nr, const long a[6])
{
	register long v0 __asm__("$2");
	register long a0 __asm__("$4") = a[0];
	register long a1 __asm__("$5") = a[1];
	register long a2 __asm__("$6") = a[2];
	register long a3 __asm__("$7") = a[3];
	long stack5 = a[4], stack6 = a[5];

	__asm__ volatile (".set push\n\t.set noreorder\n\t"
			  "addiu $sp, $sp, -32\n\t"
			  "sw %6, 16($sp)\n\t"
			  "sw %7, 20($sp)\n\t"
			  "move $2, %2\n\t"
			  "syscall\n\t"
			  "addiu $sp, $sp, 32\n\t"
			  ".set pop"
			  : "=&r"(v0), "+r"(a3)
			  : "r"(nr), "r"(a0), "r"(a1), "r"(a2), "r"(stack5), "r"(stack6)
			  : "$1", "$3", "$8", "$9", "$10", "$11", "$12", "$13",
			    "$14", "$15", "$24", "$25", "hi", "lo", "memory");
	return a3 ? -v0 : v0;
}
#else
#error "raw_syscall: no system call sequence for this architecture"
#endif

#endif
