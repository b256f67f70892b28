// SPDX-License-Identifier: GPL-2.0
/*
 * cat32 FILE...: a 32-bit (i386) static cat through the C library, whose
 * calls take the vDSO's fast path into the ia32 entry (do_fast_syscall_32):
 * open() is an openat there. Prints each file's bytes, then
 * "cat32: FILE: fd N" or "cat32: FILE: error E" per file on stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char buf[4096];
	int status = 0;

	for (int i = 1; i < argc; i++) {
		int fd = open(argv[i], O_RDONLY);
		ssize_t n;

		if (fd < 0) {
			fprintf(stderr, "cat32: %s: error %d\n", argv[i], errno);
			status = 1;
			continue;
		}
		fprintf(stderr, "cat32: %s: fd %d\n", argv[i], fd);
		while ((n = read(fd, buf, sizeof(buf))) > 0)
			fwrite(buf, 1, n, stdout);
		fflush(stdout);
		close(fd);
	}
	return status;
}
