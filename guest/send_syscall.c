// SPDX-License-Identifier: GPL-2.0
/*
 * send_syscall NAME|NR [ARG...]: issue one raw system call.
 *
 * Each ARG that parses completely as hex is passed as that number; any other
 * ARG is passed as a pointer to its own string.  Prints the raw kernel return
 * value (e.g. -9 for EBADF, not libc's -1/errno) and exits with it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raw_syscall.h"

/* send_syscall32 (guest/ia32/) builds this file with its own program name
 * and the kernel's 32-bit numbers (syscall_names32.h, unistd_32.h). */
#ifndef SA_PROG
#define SA_PROG "send_syscall"
#define SA_NAMES syscall_names
#include "syscall_names.h"	/* generated from the guest kernel's unistd_64.h */
#endif

static long lookup(const char *name)
{
	char *end;
	long nr = strtol(name, &end, 0);

	if (*name && !*end)
		return nr;
	if (!strncmp(name, "sys_", 4))
		name += 4;
	for (size_t i = 0; i < sizeof(SA_NAMES) / sizeof(SA_NAMES[0]); i++)
		if (!strcmp(SA_NAMES[i].name, name))
			return SA_NAMES[i].nr;
	return -1;
}

int main(int argc, char **argv)
{
	long args[6] = { 0 };
	long nr, ret;

	if (argc < 2 || argc > 8) {
		fprintf(stderr, "usage: " SA_PROG " NAME|NR [ARG...] (at most 6 args)\n");
		return 2;
	}
	nr = lookup(argv[1]);
	if (nr < 0) {
		fprintf(stderr, SA_PROG ": unknown syscall '%s'\n", argv[1]);
		return 2;
	}
	for (int i = 2; i < argc; i++) {
		char *end;
		unsigned long v = strtoul(argv[i], &end, 16);

		args[i - 2] = (*argv[i] && !*end) ? (long)v : (long)argv[i];
	}
	ret = raw_syscall(nr, args);
	printf(SA_PROG ": syscall returned %ld\n", ret);
	fflush(stdout);
	return (int)(ret & 0xff);
}
