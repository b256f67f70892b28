// SPDX-License-Identifier: GPL-2.0
/*
 * sa_bench: the guest side of `syscalls-async bench`.
 *
 *   sa_bench time COUNT getppid        time COUNT getppid calls one by one
 *   sa_bench time COUNT access PATH    the same with access(PATH, F_OK)
 *                                      (faccessat where there is no access)
 *   sa_bench idle COUNT MS getppid     sleep MS before each call, time the call
 *
 * Each call is timed alone with CLOCK_MONOTONIC (vDSO). Prints one line,
 * "COUNT P50 P90 P99 MIN MAX ELAPSED", in nanoseconds; ELAPSED is the wall
 * time of the timed loop (for calls per second). "time" makes a few untimed
 * calls first so that a first call after start-up is not in the figures;
 * "idle" measures exactly that first call, COUNT times. Times are 64-bit
 * (long long) on every architecture: a 32-bit long holds 2.1 s of ns.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>

#define WARM_UP 10

static int cmp(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return (x > y) - (x < y);
}

static long long now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long nr;
static const char *path;

static void call(void)
{
	if (!path)
		syscall(nr);
#ifdef SYS_access
	else
		syscall(nr, path, F_OK);
#else
	else	/* no access(2) on this architecture (aarch64): the same by faccessat */
		syscall(nr, AT_FDCWD, path, F_OK);
#endif
}

static int usage(void)
{
	fputs("usage: sa_bench time|idle COUNT [MS] getppid|access [PATH]\n", stderr);
	return 2;
}

int main(int argc, char **argv)
{
	struct timespec pause = { 0 };
	long long *t, start, elapsed;
	long n, i;
	int idle, a = 3;

	if (argc < 4)
		return usage();
	idle = !strcmp(argv[1], "idle");
	if (!idle && strcmp(argv[1], "time"))
		return usage();
	n = strtol(argv[2], NULL, 0);
	if (idle) {
		long ms = strtol(argv[a++], NULL, 0);

		pause.tv_sec = ms / 1000;
		pause.tv_nsec = ms % 1000 * 1000000L;
	}
	if (a >= argc)
		return usage();
	if (!strcmp(argv[a], "getppid") && a + 1 == argc) {
		nr = SYS_getppid;
	} else if (!strcmp(argv[a], "access") && a + 2 == argc) {
#ifdef SYS_access
		nr = SYS_access;
#else
		nr = SYS_faccessat;
#endif
		path = argv[a + 1];
	} else {
		return usage();
	}
	t = n > 0 ? malloc(n * sizeof(*t)) : NULL;
	if (!t)
		return usage();
	for (i = 0; !idle && i < WARM_UP; i++)
		call();
	start = now();
	for (i = 0; i < n; i++) {
		long long t0;

		if (idle)
			nanosleep(&pause, NULL);
		t0 = now();
		call();
		t[i] = now() - t0;
	}
	elapsed = now() - start;
	qsort(t, n, sizeof(*t), cmp);
	printf("%ld %lld %lld %lld %lld %lld %lld\n", n, t[n / 2], t[n * 90 / 100],
	       t[n * 99 / 100], t[0], t[n - 1], elapsed);
	return 0;
}
