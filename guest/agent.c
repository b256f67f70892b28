// SPDX-License-Identifier: GPL-2.0
/*
 * Guest command agent: the far end of the host's command channel.
 *
 * Runs as PID 1 once the init script has set the guest up, so it also reaps
 * orphans.  It speaks length-prefixed frames over a raw serial line (see
 * agent_proto.h) and can run several commands at once: each command is
 * `/bin/sh -c CMD` in its own session with its stdout and stderr on pipes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "agent_proto.h"

#define MAX_CHILDREN 64

struct child {
	uint32_t id;
	pid_t pid;		/* 0: slot free */
	int out, err;		/* -1 once at EOF */
	int exited;
	int status;
};

static struct child children[MAX_CHILDREN];
static int chan;

static void write_all(const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(chan, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(3);	/* the channel is gone: nothing to report to */
		p += n;
		len -= (size_t)n;
	}
}

static void send_frame(uint8_t type, uint32_t id, const void *data, uint32_t len)
{
	struct agent_frame_header h = { .type = type, .id = id, .len = len };

	write_all(&h, sizeof(h));
	if (len)
		write_all(data, len);
}

static int read_all(void *buf, size_t len)
{
	char *p = buf;

	while (len) {
		ssize_t n = read(chan, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static struct child *find_child(uint32_t id)
{
	for (int i = 0; i < MAX_CHILDREN; i++)
		if (children[i].pid && children[i].id == id)
			return &children[i];
	return NULL;
}

static void start_command(uint32_t id, char *payload, uint32_t len)
{
	struct child *c = NULL;
	int out[2], err[2], in[2];
	uint32_t input_len;
	pid_t pid;

	for (int i = 0; i < MAX_CHILDREN && !c; i++)
		if (!children[i].pid)
			c = &children[i];
	if (!c || len < sizeof(input_len)) {
		const char *why = c ? "malformed request" : "too many commands";

		send_frame(AGENT_FAILED, id, why, (uint32_t)strlen(why));
		return;
	}
	memcpy(&input_len, payload, sizeof(input_len));
	if (input_len > len - sizeof(input_len)) {
		send_frame(AGENT_FAILED, id, "bad input length", 16);
		return;
	}
	/* payload: u32 input length, input bytes, command (NUL added here) */
	payload[len] = '\0';
	if (pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC) || pipe2(in, O_CLOEXEC)) {
		send_frame(AGENT_FAILED, id, "pipe failed", 11);
		return;
	}
	pid = fork();
	if (pid == 0) {
		setsid();
		dup2(in[0], 0);
		dup2(out[1], 1);
		dup2(err[1], 2);
		execl("/bin/sh", "sh", "-c", payload + sizeof(input_len) + input_len,
		      (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	close(err[1]);
	if (pid < 0) {
		close(in[1]);
		close(out[0]);
		close(err[0]);
		send_frame(AGENT_FAILED, id, "fork failed", 11);
		return;
	}
	/* Small inputs fit in the pipe buffer; larger ones are refused by the host. */
	if (input_len && write(in[1], payload + sizeof(input_len), input_len) < 0)
		perror("agent: stdin");
	close(in[1]);
	*c = (struct child){ .id = id, .pid = pid, .out = out[0], .err = err[0] };
}

static void finish_if_done(struct child *c)
{
	int32_t status = c->status;

	if (!c->exited || c->out >= 0 || c->err >= 0)
		return;
	send_frame(AGENT_EXIT, c->id, &status, sizeof(status));
	c->pid = 0;
}

static void reap(void)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (int i = 0; i < MAX_CHILDREN; i++) {
			struct child *c = &children[i];

			if (c->pid == pid && !c->exited) {
				c->exited = 1;
				c->status = status;
				finish_if_done(c);
			}
		}
	}
}

static void drain(struct child *c, int *fd, uint8_t type)
{
	char buf[AGENT_MAX_PAYLOAD];
	ssize_t n = read(*fd, buf, sizeof(buf));

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n > 0) {
		send_frame(type, c->id, buf, (uint32_t)n);
		return;
	}
	close(*fd);
	*fd = -1;
	finish_if_done(c);
}

static void handle_request(void)
{
	static char payload[AGENT_MAX_PAYLOAD + 1];
	struct agent_frame_header h;
	struct child *c;

	if (read_all(&h, sizeof(h)) || h.len > AGENT_MAX_PAYLOAD)
		_exit(4);	/* lost framing: the host treats the channel as dead */
	if (h.len && read_all(payload, h.len))
		_exit(4);
	switch (h.type) {
	case AGENT_RUN:
		start_command(h.id, payload, h.len);
		break;
	case AGENT_KILL:
		c = find_child(h.id);
		if (c && !c->exited)
			kill(-c->pid, SIGKILL);
		break;
	default:
		send_frame(AGENT_FAILED, h.id, "unknown request", 15);
	}
}

static void serve(void)
{
	struct pollfd fds[1 + 2 * MAX_CHILDREN];
	struct child *owner[1 + 2 * MAX_CHILDREN];

	for (;;) {
		int n = 0;

		fds[n++] = (struct pollfd){ .fd = chan, .events = POLLIN };
		for (int i = 0; i < MAX_CHILDREN; i++) {
			struct child *c = &children[i];

			if (!c->pid)
				continue;
			if (c->out >= 0) {
				owner[n] = c;
				fds[n++] = (struct pollfd){ .fd = c->out, .events = POLLIN };
			}
			if (c->err >= 0) {
				owner[n] = c;
				fds[n++] = (struct pollfd){ .fd = c->err, .events = POLLIN };
			}
		}
		/* A timeout keeps orphans reaped even when nothing else happens. */
		if (poll(fds, (nfds_t)n, 200) < 0 && errno != EINTR)
			_exit(5);
		for (int i = 1; i < n; i++) {
			struct child *c = owner[i];

			if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			if (fds[i].fd == c->out)
				drain(c, &c->out, AGENT_STDOUT);
			else if (fds[i].fd == c->err)
				drain(c, &c->err, AGENT_STDERR);
		}
		reap();
		if (fds[0].revents & POLLIN)
			handle_request();
		else if (fds[0].revents & (POLLHUP | POLLERR))
			_exit(6);
	}
}

int main(int argc, char **argv)
{
	struct termios tio;
	struct utsname uts;

	if (argc != 2) {
		fprintf(stderr, "usage: agent TTY\n");
		return 2;
	}
	chan = open(argv[1], O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (chan < 0 || tcgetattr(chan, &tio)) {
		perror("agent: channel");
		return 1;
	}
	cfmakeraw(&tio);
	tcsetattr(chan, TCSANOW, &tio);
	signal(SIGPIPE, SIG_IGN);
	uname(&uts);
	send_frame(AGENT_READY, 0, uts.release, (uint32_t)strlen(uts.release));
	serve();
	return 0;
}
