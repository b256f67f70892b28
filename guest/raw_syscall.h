/* SPDX-License-Identifier: GPL-2.0 */
/*
 * raw_syscall(): one x86_64 system call with six arguments, straight into the
 * kernel (no libc errno handling), returning the raw kernel value.
 */
#ifndef SA_GUEST_RAW_SYSCALL_H
#define SA_GUEST_RAW_SYSCALL_H

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

#endif
