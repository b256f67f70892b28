/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Command channel frames between the host and the guest agent.
 *
 * Every frame is a packed little-endian header followed by `len` payload
 * bytes.  The host mirrors these numbers in machine/agent.py.
 */
#ifndef AGENT_PROTO_H
#define AGENT_PROTO_H

#include <stdint.h>

#define AGENT_MAX_PAYLOAD 65536

enum agent_frame_type {
	/* host -> guest */
	AGENT_RUN = 1,		/* payload: u32 stdin length, stdin, command */
	AGENT_KILL = 2,		/* kill the command's whole session */
	/* guest -> host */
	AGENT_READY = 16,	/* payload: kernel release */
	AGENT_STDOUT = 17,
	AGENT_STDERR = 18,
	AGENT_EXIT = 19,	/* payload: i32 wait status */
	AGENT_FAILED = 20,	/* payload: reason; the command never ran */
};

struct agent_frame_header {
	uint8_t type;
	uint32_t id;
	uint32_t len;
} __attribute__((packed));

_Static_assert(sizeof(struct agent_frame_header) == 9, "agent frame header is 9 bytes");

#endif
