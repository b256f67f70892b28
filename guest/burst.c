// SPDX-License-Identifier: GPL-2.0
/*
 * burst N NR [ARG...]: N processes issue the same raw system call at once.
 *
 * The children are forked first and wait on a pipe; closing it releases
 * them together, so up to N calls are in the kernel at the same time. Each
 * ARG is hex. Prints one line per distinct result, "burst: <value> x<count>"
 * (raw kernel values, e.g. -25 for ENOTTY), in increasing order of value:
 * what the program itself saw, to compare with what hooks saw.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "raw_syscall.h"

#define MAX_N 1000

static int cmp_long(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	static long results[MAX_N];
	long args[6] = { 0 }, nr;
	int n, go[2], out[2], i;

	if (argc < 3 || argc > 9 || (n = atoi(argv[1])) <= 0 || n > MAX_N) {
		fprintf(stderr, "usage: burst N NR [ARG...] (N <= %d, at most 6 args)\n", MAX_N);
		return 2;
	}
	nr = strtol(argv[2], NULL, 0);
	for (i = 3; i < argc; i++)
		args[i - 3] = (long)strtoul(argv[i], NULL, 16);
	if (pipe(go) || pipe(out)) {
		perror("burst");
		return 2;
	}
	for (i = 0; i < n; i++) {
		pid_t pid = fork();
		char c;

		if (pid < 0) {
			perror("burst: fork");
			return 2;
		}
		if (pid == 0) {
			long ret;

			close(go[1]);
			if (read(go[0], &c, 1) != 0)
				_exit(2);
			ret = raw_syscall(nr, args);
			_exit(write(out[1], &ret, sizeof(ret)) == sizeof(ret) ? 0 : 2);
		}
	}
	close(go[1]);
	close(out[1]);
	for (i = 0; i < n; i++)
		if (read(out[0], &results[i], sizeof(long)) != sizeof(long)) {
			fprintf(stderr, "burst: only %d results\n", i);
			return 2;
		}
	while (wait(NULL) > 0)
		;
	qsort(results, n, sizeof(long), cmp_long);
	for (i = 0; i < n; ) {
		int j = i;

		while (j < n && results[j] == results[i])
			j++;
		printf("burst: %ld x%d\n", results[i], j - i);
		i = j;
	}
	return 0;
}
