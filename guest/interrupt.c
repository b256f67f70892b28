// SPDX-License-Identifier: GPL-2.0
/*
 * interrupt read|read-restart|nanosleep: one blocking system call that a
 * SIGALRM (a handler, 200 ms later) interrupts.
 *
 *   read          read(2) on an empty pipe, handler without SA_RESTART: EINTR
 *   read-restart  the same with SA_RESTART; the handler writes one byte into
 *                 the pipe, so the restarted read returns 1
 *   nanosleep     a 10 s nanosleep(2) (which a handler always ends): EINTR
 *
 * Prints "interrupt: <call> returned <raw kernel value>" (-4 for EINTR) and
 * how many signals the handler saw, the program's own view to compare with
 * what hooks saw.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int pipefd[2];
static volatile sig_atomic_t signals;
static int refill;

static void on_alarm(int sig)
{
	(void)sig;
	signals++;
	if (refill && write(pipefd[1], "x", 1) != 1)
		_exit(3);
}

/* The raw value: -errno on failure, as the kernel returns it. */
static long raw(long ret)
{
	return ret < 0 ? -(long)errno : ret;
}

int main(int argc, char **argv)
{
	struct itimerval once = { .it_value = { .tv_usec = 200000 } };
	struct sigaction sa;
	const char *what = argc == 2 ? argv[1] : "";
	long ret;
	char c;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	if (!strcmp(what, "read-restart")) {
		sa.sa_flags = SA_RESTART;
		refill = 1;
	} else if (strcmp(what, "read") && strcmp(what, "nanosleep")) {
		fprintf(stderr, "usage: interrupt read|read-restart|nanosleep\n");
		return 2;
	}
	if (pipe(pipefd) || sigaction(SIGALRM, &sa, NULL) || setitimer(ITIMER_REAL, &once, NULL)) {
		perror("interrupt");
		return 2;
	}
	if (!strcmp(what, "nanosleep")) {
		struct timespec ts = { .tv_sec = 10 };

		ret = raw(syscall(SYS_nanosleep, &ts, NULL));
	} else {
		ret = raw(syscall(SYS_read, pipefd[0], &c, 1));
	}
	printf("interrupt: %s returned %ld, signals %d\n", what, ret, (int)signals);
	return 0;
}
