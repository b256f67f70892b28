// SPDX-License-Identifier: GPL-2.0
/*
 * bigoff PATH: 64-bit file offsets above 4 GiB. Makes PATH a sparse file
 * with "low." at 5 GiB (BIGOFF_A) and "high" at 6 GiB (BIGOFF_B), then reads
 * 4 bytes with pread64 at BIGOFF_A and, after an lseek to BIGOFF_A (_llseek
 * on 32-bit ARM and MIPS, lseek on 64-bit), with read. Prints
 *   pread <offset asked> <bytes read>
 *   lseek <offset the kernel returned> <bytes read>
 * so a test that rewrites the offset (to BIGOFF_B) sees "high" instead of
 * "low.", and the offset the kernel really used.
 *
 * The workload of the 64-bit-argument test: on a 32-bit guest the offset of
 * pread64 is a register pair, the one of _llseek two explicit halves.
 */
#define _FILE_OFFSET_BITS 64
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define BIGOFF_A 0x140000000LL
#define BIGOFF_B 0x180000000LL

static int put(int fd, const char *what, long long off)
{
	return pwrite(fd, what, 4, (off_t)off) == 4 ? 0 : -1;
}

int main(int argc, char **argv)
{
	char buf[5] = "";
	long long got;
	ssize_t n;
	int fd;

	if (argc != 2) {
		fprintf(stderr, "usage: bigoff PATH\n");
		return 2;
	}
	fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || put(fd, "low.", BIGOFF_A) || put(fd, "high", BIGOFF_B)) {
		perror("bigoff: setting up");
		return 1;
	}
	n = pread(fd, buf, 4, (off_t)BIGOFF_A);
	printf("pread %#llx %s\n", (unsigned long long)BIGOFF_A, n == 4 ? buf : "?");
	memset(buf, 0, sizeof(buf));
	got = (long long)lseek(fd, (off_t)BIGOFF_A, SEEK_SET);
	n = got < 0 ? -1 : read(fd, buf, 4);
	printf("lseek %#llx %s\n", (unsigned long long)got, n == 4 ? buf : "?");
	fflush(stdout);
	close(fd);
	unlink(argv[1]);
	return 0;
}
