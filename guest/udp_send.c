// SPDX-License-Identifier: GPL-2.0
/*
 * udp_send MESSAGE: send MESSAGE in one UDP datagram to a socket of our own
 * on 127.0.0.1 with sendto(2), receive it back and print what arrived.
 *
 * The workload of examples/network_monitor.py (a process that sends data
 * over the network without needing anything outside the guest).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_in addr = { .sin_family = AF_INET };
	socklen_t len = sizeof(addr);
	char buf[2048];
	int rx, tx;
	ssize_t n;

	if (argc != 2) {
		fprintf(stderr, "usage: udp_send MESSAGE\n");
		return 2;
	}
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	rx = socket(AF_INET, SOCK_DGRAM, 0);
	tx = socket(AF_INET, SOCK_DGRAM, 0);
	if (rx < 0 || tx < 0 || bind(rx, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
	    getsockname(rx, (struct sockaddr *)&addr, &len) < 0) {
		perror("udp_send: socket");
		return 1;
	}
	n = sendto(tx, argv[1], strlen(argv[1]), 0, (struct sockaddr *)&addr, sizeof(addr));
	if (n < 0) {
		perror("udp_send: sendto");
		return 1;
	}
	printf("udp_send: sent %zd bytes to 127.0.0.1:%d\n", n, ntohs(addr.sin_port));
	n = recv(rx, buf, sizeof(buf) - 1, 0);
	if (n < 0) {
		perror("udp_send: recv");
		return 1;
	}
	buf[n] = '\0';
	printf("udp_send: received %zd bytes: %s\n", n, buf);
	return 0;
}
