/* SPDX-License-Identifier: MIT */
/*
 * The poller's hot loop in C: the slot scan (the seqlock protocol) and the
 * cheap checks of each poller pass, over the shared region the host mapped.
 *
 * Built by portal/cscan.py into the user's cache as a plain shared object and
 * loaded with cffi's dlopen (no Python.h needed); the Python code in
 * slots.py / portal.py is the reference and the fallback, and a differential
 * test feeds both the same (random, hostile) region states.
 *
 * The guest is hostile. Nothing here takes an offset, a length or an index
 * from the region: every read is at a fixed offset of portal_abi.h's layout,
 * checked once against the region's size, and the work of a call is bounded
 * by SA_SLOT_COUNT and SA_RING_COUNT. Guest words are read once each
 * (acquire loads); a slot's guest part is copied once into host memory and
 * kept only if its seq was even and the same before and after the copy.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "portal_abi.h"

/* the ABI version this object was built against: the loader compares it */
uint32_t sa_cscan_abi(void)
{
	return SA_VERSION;
}

/* One slot message found by sa_scan_slots: its words from the copy. */
struct sa_scan_msg {
	uint32_t slot;
	uint32_t seq;
	uint32_t epoch;
	uint32_t msg;
	uint32_t hooks_gen;
	uint32_t pad;
};

/*
 * The slot channel's state and output (host memory, one per channel). One
 * pointer per call: cffi's ABI-mode calls cost about 0.1-0.3 µs per argument.
 */
struct sa_slot_scan {
	const uint8_t *region;
	uint64_t size;
	int32_t mid_write;          /* out: a slot was caught mid-write */
	uint32_t last_seq[SA_SLOT_COUNT];
	struct sa_scan_msg out[SA_SLOT_COUNT];
	uint8_t data[SA_SLOT_COUNT][SA_SLOT_GUEST_SIZE];
};

/* What the poller's passes track between them (host memory). */
struct sa_pass_state {
	uint8_t *region;
	uint64_t size;
	uint64_t last_bell;
	uint64_t ring_seen[SA_RING_COUNT];
	uint32_t boot_id;
	uint32_t pad;
};

/* sizeof of this file's structs (0: scan, 1: pass), checked by the loader
 * against cffi's layout of the same declarations */
uint64_t sa_cscan_size(uint32_t which)
{
	return which ? sizeof(struct sa_pass_state) : sizeof(struct sa_slot_scan);
}

#define SA_PASS_BELL 1u
#define SA_PASS_RINGS 2u
#define SA_PASS_GONE 4u

#define SA_SLOTS_END ((uint64_t)SA_SLOTS_OFF + (uint64_t)SA_SLOT_COUNT * SA_SLOT_SIZE)
#define SA_RINGS_END ((uint64_t)SA_RINGS_OFF + (uint64_t)SA_RING_COUNT * SA_RING_STRIDE)

static inline uint32_t load32(const uint8_t *p)
{
	return __atomic_load_n((const uint32_t *)p, __ATOMIC_ACQUIRE);
}

static inline uint64_t load64(const uint8_t *p)
{
	return __atomic_load_n((const uint64_t *)p, __ATOMIC_ACQUIRE);
}

static inline uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/*
 * Every slot whose guest seq moved since s->last_seq: a whole message (seq
 * even, unchanged across the copy, equal to the copy's own seq word) is copied
 * to s->data[n], described in s->out[n], and last_seq updated; a slot caught
 * mid-write sets s->mid_write and is looked at again next time. Returns the
 * number of messages (at most SA_SLOT_COUNT), -1 if the region is too small
 * to hold the slots.
 */
int sa_scan_slots(struct sa_slot_scan *s)
{
	const uint8_t *region = s->region;
	int n = 0;

	s->mid_write = 0;
	if (s->size < SA_SLOTS_END)
		return -1;
	for (uint32_t i = 0; i < SA_SLOT_COUNT; i++) {
		const uint8_t *slot = region + SA_SLOTS_OFF + (uint64_t)i * SA_SLOT_SIZE;
		const uint8_t *seqp = slot + offsetof(struct sa_slot_guest, seq);
		uint8_t *copy = s->data[n];
		uint32_t seq = load32(seqp);

		if (seq == s->last_seq[i])
			continue;
		if (seq & 1) {
			s->mid_write = 1;
			continue;
		}
		memcpy(copy, slot + SA_SLOT_GUEST_OFF, SA_SLOT_GUEST_SIZE);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (load32(seqp) != seq ||
		    get32(copy + offsetof(struct sa_slot_guest, seq)) != seq) {
			s->mid_write = 1;
			continue;
		}
		s->last_seq[i] = seq;
		s->out[n].slot = i;
		s->out[n].seq = seq;
		s->out[n].epoch = get32(copy + offsetof(struct sa_slot_guest, epoch));
		s->out[n].msg = get32(copy + offsetof(struct sa_slot_guest, msg));
		s->out[n].hooks_gen = get32(copy + offsetof(struct sa_slot_guest, hooks_gen));
		s->out[n].pad = 0;
		n++;
	}
	return n;
}

/* The ring heads and the doorbell word against what the last pass saw. */
static uint32_t sa_news(const uint8_t *region, struct sa_pass_state *st)
{
	uint32_t flags = 0;
	uint64_t bell;

	for (uint32_t i = 0; i < SA_RING_COUNT; i++) {
		const uint8_t *hdr = region + SA_RINGS_OFF + (uint64_t)i * SA_RING_STRIDE;
		uint64_t head = load64(hdr + offsetof(struct sa_ring_header, head));

		if (head != st->ring_seen[i]) {
			st->ring_seen[i] = head;
			flags |= SA_PASS_RINGS;
		}
	}
	bell = load64(region + SA_GUEST_OFF + offsetof(struct sa_guest_header, doorbell));
	if (bell != st->last_bell) {
		st->last_bell = bell;
		flags |= SA_PASS_BELL;
	}
	return flags;
}

/*
 * The checks of one poller pass: move the host's heartbeat, say whether a
 * ring's head or the doorbell word moved since the last pass, and whether
 * the region still holds the module attached to (magic, boot id, state).
 * Returns SA_PASS_* flags; SA_PASS_GONE alone if the region is too small.
 */
uint32_t sa_pass(struct sa_pass_state *st)
{
	uint8_t *region = st->region;
	uint8_t *beat = region + SA_HOST_OFF + offsetof(struct sa_host_header, heartbeat);
	const uint8_t *g = region + SA_GUEST_OFF;
	uint32_t flags;

	if (st->size < SA_RINGS_END || st->size < SA_SLOTS_END)
		return SA_PASS_GONE;
	__atomic_store_n((uint64_t *)beat, load64(beat) + 1, __ATOMIC_RELEASE);
	flags = sa_news(region, st);
	if (load64(g + offsetof(struct sa_guest_header, magic)) != SA_MAGIC ||
	    load32(g + offsetof(struct sa_guest_header, boot_id)) != st->boot_id ||
	    load32(g + offsetof(struct sa_guest_header, state)) != SA_STATE_READY)
		flags |= SA_PASS_GONE;
	return flags;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}

/*
 * Spin up to max_ns for news (a ring head or the doorbell word moving, as
 * sa_pass sees them); returns the SA_PASS_* flags found (0: none in time).
 * The caller (the poller) calls it only while the event loop has nothing
 * else to run; cffi releases the GIL around the call.
 */
uint32_t sa_wait_news(struct sa_pass_state *st, uint64_t max_ns)
{
	const uint8_t *region = st->region;
	uint64_t end;
	uint32_t flags;

	if (st->size < SA_RINGS_END)
		return 0;
	end = now_ns() + max_ns;
	for (;;) {
		for (int k = 0; k < 16; k++) {
			flags = sa_news(region, st);
			if (flags)
				return flags;
			relax();
		}
		if (now_ns() >= end)
			return 0;
	}
}
