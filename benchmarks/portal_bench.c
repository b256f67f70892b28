// SPDX-License-Identifier: GPL-2.0
/*
 * sa_bench NR COUNT: time COUNT raw syscalls NR (no arguments) one by one and
 * print "p50 p90 p99 min max" in nanoseconds (CLOCK_MONOTONIC, vDSO).
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>

static int cmp(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;

	return (x > y) - (x < y);
}

static long now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	long nr, n, i, *t;

	if (argc != 3)
		return 2;
	nr = strtol(argv[1], NULL, 0);
	n = strtol(argv[2], NULL, 0);
	t = malloc(n * sizeof(*t));
	if (!t || n < 1)
		return 2;
	for (i = 0; i < n; i++) {
		long t0 = now();

		syscall(nr);
		t[i] = now() - t0;
	}
	qsort(t, n, sizeof(*t), cmp);
	printf("%ld %ld %ld %ld %ld\n", t[n / 2], t[n * 90 / 100], t[n * 99 / 100], t[0], t[n - 1]);
	return 0;
}
