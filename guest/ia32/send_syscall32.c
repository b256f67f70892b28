// SPDX-License-Identifier: GPL-2.0
/*
 * send_syscall32 NAME|NR [ARG...]: issue one raw system call from a 32-bit
 * (i386) program, through int 0x80: the ia32 entry of an x86_64 kernel.
 *
 * NAME is looked up in the guest kernel's 32-bit table (unistd_32.h), so
 * numbers are the ia32 ones (openat is 295). Each ARG that parses completely
 * as hex is passed as that number; any other ARG is passed as a pointer to
 * its own string. Prints the raw kernel return value (e.g. -9 for EBADF) and
 * exits with it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "syscall_names32.h"	/* generated from the guest kernel's unistd_32.h */

static long raw_syscall32(long nr, const long a[6])
{
	long ret;

	/* ebp is the frame pointer: save it around the call by hand */
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

static long lookup(const char *name)
{
	char *end;
	long nr = strtol(name, &end, 0);

	if (*name && !*end)
		return nr;
	if (!strncmp(name, "sys_", 4))
		name += 4;
	for (size_t i = 0; i < sizeof(syscall_names32) / sizeof(syscall_names32[0]); i++)
		if (!strcmp(syscall_names32[i].name, name))
			return syscall_names32[i].nr;
	return -1;
}

int main(int argc, char **argv)
{
	long args[6] = { 0 };
	long nr, ret;

	if (argc < 2 || argc > 8) {
		fprintf(stderr, "usage: send_syscall32 NAME|NR [ARG...] (at most 6 args)\n");
		return 2;
	}
	nr = lookup(argv[1]);
	if (nr < 0) {
		fprintf(stderr, "send_syscall32: unknown syscall '%s'\n", argv[1]);
		return 2;
	}
	for (int i = 2; i < argc; i++) {
		char *end;
		unsigned long v = strtoul(argv[i], &end, 16);

		args[i - 2] = (*argv[i] && !*end) ? (long)v : (long)argv[i];
	}
	ret = raw_syscall32(nr, args);
	printf("send_syscall32: syscall returned %ld\n", ret);
	fflush(stdout);
	return (int)(ret & 0xff);
}
