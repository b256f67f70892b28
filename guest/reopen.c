// SPDX-License-Identifier: GPL-2.0
/*
 * reopen PATH COUNT: open and close PATH COUNT times, always passing the same
 * pointer (argv[1]) to openat(2).  Prints how many opens succeeded.
 *
 * The workload of examples/caching_reads.py: the same guest string at the
 * same address, read by a handler again and again.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int count, ok = 0;

	if (argc != 3 || (count = atoi(argv[2])) <= 0) {
		fprintf(stderr, "usage: reopen PATH COUNT\n");
		return 2;
	}
	for (int i = 0; i < count; i++) {
		int fd = openat(AT_FDCWD, argv[1], O_RDONLY);

		if (fd >= 0) {
			ok++;
			close(fd);
		}
	}
	printf("reopen: opened %s %d of %d times\n", argv[1], ok, count);
	return ok == count ? 0 : 1;
}
