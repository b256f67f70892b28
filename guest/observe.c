// SPDX-License-Identifier: GPL-2.0
/*
 * observe N COUNT [stall]: N processes, pinned to the CPUs in turn, each
 * call openat(AT_FDCWD, "/nonexistent/sa-observe/<pid>/<k>", O_RDONLY)
 * COUNT times (k = 0 .. COUNT-1; every call fails with ENOENT). The first
 * call of the first process uses a path of 300 bytes instead, ending in
 * "/long/" and 'x's. The children start together once all are forked; with
 * "stall" the parent then calls getppid once (a test hooks it with a host
 * handler that holds the host's event loop, so the children's observed
 * events pile up in the guest's rings meanwhile).
 *
 * Prints one line per child, "observe: pid <pid> cpu <cpu> calls <n> enoent
 * <m>" (the CPU it ended on), then "observe: total <calls>": what the
 * program itself did, to compare with what the hooks saw.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_N 64
#define LONG_PATH 300

static void child(int index, int count)
{
	char path[LONG_PATH + 1];
	int k, enoent = 0;

	for (k = 0; k < count; k++) {
		if (index == 0 && k == 0) {
			int n = snprintf(path, sizeof(path), "/nonexistent/sa-observe/%d/long/",
					 getpid());

			memset(path + n, 'x', LONG_PATH - n);
			path[LONG_PATH] = '\0';
		} else {
			snprintf(path, sizeof(path), "/nonexistent/sa-observe/%d/%d", getpid(), k);
		}
		if (syscall(SYS_openat, AT_FDCWD, path, O_RDONLY) < 0 && errno == ENOENT)
			enoent++;
	}
	printf("observe: pid %d cpu %d calls %d enoent %d\n", getpid(), sched_getcpu(), count,
	       enoent);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	int n, count, go[2], i, cpus = sysconf(_SC_NPROCESSORS_ONLN), status, bad = 0;
	int stall = argc == 4 && !strcmp(argv[3], "stall");

	if (argc < 3 || argc > 4 || (argc == 4 && !stall) || (n = atoi(argv[1])) <= 0 ||
	    n > MAX_N || (count = atoi(argv[2])) <= 0) {
		fprintf(stderr, "usage: observe N COUNT [stall] (N <= %d)\n", MAX_N);
		return 2;
	}
	if (pipe(go)) {
		perror("observe");
		return 2;
	}
	fflush(stdout);
	for (i = 0; i < n; i++) {
		pid_t pid = fork();
		char c;

		if (pid < 0) {
			perror("observe: fork");
			return 2;
		}
		if (pid == 0) {
			cpu_set_t set;

			CPU_ZERO(&set);
			CPU_SET(i % (cpus > 0 ? cpus : 1), &set);
			sched_setaffinity(0, sizeof(set), &set);
			close(go[1]);
			if (read(go[0], &c, 1) != 0)
				_exit(2);
			child(i, count);
			_exit(0);
		}
	}
	close(go[1]);
	if (stall)
		syscall(SYS_getppid);
	for (i = 0; i < n; i++)
		if (wait(&status) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
			bad++;
	printf("observe: total %d\n", n * count);
	return bad ? 1 : 0;
}
