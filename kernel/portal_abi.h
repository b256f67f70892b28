/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * syscalls-async portal ABI: the layout of the ivshmem-plain shared region.
 *
 * One source of truth for the guest module (C) and the host (cffi). The host
 * hands cffi only the text between the SA_CDEF_BEGIN and SA_CDEF_END marker
 * lines; that part therefore holds nothing but "#define NAME <integer literal>"
 * lines and plain structs of fixed-width types with explicit padding (cffi
 * computes the same natural-alignment layout as the compiler). Everything else
 * (includes, static assertions) lives outside the markers.
 *
 * Ownership: each field is written by exactly one side. "g_" structs are
 * written by the guest only, "h_" structs by the host only. Whoever reads a
 * field written by the other side copies it once into private memory and
 * validates the copy.
 *
 * Region map (offsets from the start of BAR 2 / the host's shm file):
 *   SA_GUEST_OFF   struct sa_guest_header   guest: layout, state, counters
 *   SA_HOST_OFF    struct sa_host_header    host: hook generation, heartbeat
 *   SA_HOOKS_OFF   struct sa_hook[SA_MAX_HOOKS]            host
 *   SA_META_OFF    struct sa_meta[SA_MAX_SYSCALLS]         guest, at load
 *   SA_META32_OFF  struct sa_meta[SA_MAX_SYSCALLS]         guest, at load: the
 *                  compat ABI's table (x86_64: ia32), nr_syscalls32 entries
 *   SA_SLOTS_OFF   SA_SLOT_COUNT slots of SA_SLOT_SIZE     both, see below
 *   SA_HOOK_DROPS_OFF uint64_t[SA_MAX_HOOKS]               guest: ring drops per hook
 *   SA_RINGS_OFF   SA_RING_COUNT rings of SA_RING_STRIDE   both, see sa_ring_header
 *
 * Slot protocol. A slot carries one trapped syscall at a time. The guest part
 * (struct sa_slot_guest) is a seqlock: the guest makes g.seq odd, writes the
 * message (event, response or abandon) and then makes g.seq even. The host
 * copies the guest part, re-reads g.seq and uses the copy only if both reads
 * are equal and even. The host answers a message by writing its part
 * (struct sa_slot_host: a request or a verdict) and, last, h.epoch and then
 * h.seq = the g.seq it answers. The guest takes an answer only when h.seq and
 * h.epoch match its own; a late answer to an abandoned event therefore never
 * reaches the next user of the slot. g.epoch changes on every claim.
 */
#ifndef SYSCALLS_ASYNC_PORTAL_ABI_H
#define SYSCALLS_ASYNC_PORTAL_ABI_H

#ifdef __KERNEL__
#include <linux/types.h>
#include <linux/build_bug.h>
#define SA_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#else
#include <stdint.h>
#define SA_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#endif

/* SA_CDEF_BEGIN */
#define SA_MAGIC 0x54524f5043535953
#define SA_VERSION 7

/* sa_guest_header.arch: the guest's architecture (host: portal/arch.py) */
#define SA_ARCH_X86_64 1
#define SA_ARCH_AARCH64 2
#define SA_ARCH_ARMHF 3
#define SA_ARCH_MIPSEL 4

/* the doorbell: an I/O port whose writes reach the host (QEMU's
 * isa-debugcon on a host socket); reading it returns SA_BELL_READBACK when the
 * device is there. The guest rings only while the host's sleeping word is set. */
#define SA_BELL_PORT 0xe9
#define SA_BELL_READBACK 0xe9

/* region layout */
#define SA_REGION_MIN_SIZE 10485760
#define SA_GUEST_OFF 0
#define SA_GUEST_SIZE 2048
#define SA_HOST_OFF 2048
#define SA_HOST_SIZE 2048
#define SA_HOOKS_OFF 8192
#define SA_MAX_HOOKS 256
#define SA_HOOK_SIZE 1024
#define SA_META_OFF 270336
#define SA_MAX_SYSCALLS 512
#define SA_META_SIZE 512
#define SA_META32_OFF 532480
#define SA_SLOTS_OFF 1048576
#define SA_SLOT_COUNT 64
#define SA_SLOT_SIZE 65536
/* observe-only events: per-hook drop counters, then SA_RING_COUNT rings,
 * each a header page followed by up to SA_RING_DATA_MAX data bytes */
#define SA_HOOK_DROPS_OFF 5242880
#define SA_RINGS_OFF 5246976
#define SA_RING_COUNT 8
#define SA_RING_HDR_SIZE 4096
#define SA_RING_DATA_MAX 524288
#define SA_RING_DATA_MIN 4096
#define SA_RING_STRIDE 528384

/* inside a slot */
#define SA_SLOT_GUEST_OFF 0
#define SA_SLOT_GUEST_SIZE 1024
#define SA_SLOT_HOST_OFF 1024
#define SA_SLOT_HOST_SIZE 512
#define SA_SLOT_G2H_OFF 1536
#define SA_SLOT_G2H_SIZE 32768
#define SA_SLOT_H2G_OFF 34304
#define SA_SLOT_H2G_SIZE 31232

#define SA_MAX_ARGS 6
/* the register block fits the largest pt_regs copy: aarch64 x0-x30, sp, pc,
 * pstate, orig_x0, syscallno (36); MIPS 32 GPRs + lo, hi, epc, badvaddr,
 * status, cause (38); ARM r0-r15, cpsr, orig_r0 (18); x86_64 (21) */
#define SA_MAX_REGS 40
#define SA_COMM_LEN 16
#define SA_MATCH_WORDS 4
#define SA_FILTER_STR_MAX 104
/* how many bytes of a user string a guest-side string filter looks at */
#define SA_FILTER_STR_READ 512

/* sa_guest_header.state */
#define SA_STATE_INIT 0
#define SA_STATE_READY 1
#define SA_STATE_STOPPED 2

/* hook numbers that are not syscall numbers */
#define SA_NR_ALL -1
#define SA_NR_UNKNOWN -2
/* sa_hook.nr / nr32: the syscall has no number in that ABI's table */
#define SA_NR_NONE -3

/* sa_hook.flags */
#define SA_HOOK_ENABLED 1
#define SA_HOOK_ENTER 2
#define SA_HOOK_RETURN 4
#define SA_HOOK_PID 8
#define SA_HOOK_COMM 16
/* observe only: the task does not wait, the event goes into a ring */
#define SA_HOOK_OBSERVE 32

/* ring records: sa_ring_rec.type */
#define SA_REC_PAD 1
#define SA_REC_EVENT 2
#define SA_REC_SIZE 176
/* bytes of a user string an observed event captures (per argument) */
#define SA_STR_CAP 256
/* sa_ring_rec.str_flags[i] */
#define SA_STR_CAPTURED 1
#define SA_STR_TRUNCATED 2
#define SA_STR_FAULT 4

/* sa_filter.kind */
#define SA_F_NONE 0
#define SA_F_EXACT 1
#define SA_F_NOT_EQUAL 2
#define SA_F_GREATER 3
#define SA_F_GREATER_EQUAL 4
#define SA_F_LESS 5
#define SA_F_LESS_EQUAL 6
#define SA_F_RANGE 7
#define SA_F_SUCCESS 8
#define SA_F_ERROR 9
#define SA_F_BITMASK_SET 10
#define SA_F_BITMASK_CLEAR 11
#define SA_F_STR_EXACT 12
#define SA_F_STR_CONTAINS 13
#define SA_F_STR_STARTSWITH 14
#define SA_F_STR_ENDSWITH 15
#define SA_F_MAX 15

/* sa_filter.cmp: how the value is compared (default: unsigned 64-bit) */
#define SA_CMP_SIGNED 1
#define SA_CMP_32 2

/* sa_meta.flags */
#define SA_META_KNOWN 1
#define SA_META_TRUNCATED 2
#define SA_META_UNHOOKABLE 4
/* named, but the kernel has no prototype for it (nargs 0, no types) */
#define SA_META_NOPROTO 8

/* messages: sa_slot_guest.msg */
#define SA_MSG_NONE 0
#define SA_MSG_EVENT 1
#define SA_MSG_RESPONSE 2
#define SA_MSG_ABANDON 3
/* messages: sa_slot_host.msg */
#define SA_MSG_REQUEST 4
#define SA_MSG_VERDICT 5

/* sa_slot_guest.phase */
#define SA_PHASE_ENTER 1
#define SA_PHASE_RETURN 2

/* sa_slot_guest.eflags (event flags) */
/* a return phase: a signal interrupted the call and the kernel runs it
 * again (retval is the kernel's -ERESTART* code, not a result) */
#define SA_EV_RESTARTED 1
/* any phase: the call came through the compat ABI (x86_64: ia32, a 32-bit
 * program): nr indexes that ABI's table (SA_META32_OFF), args are its
 * argument registers */
#define SA_EV_COMPAT 2

/* sa_slot_host.action bits */
#define SA_ACT_SKIP 1
#define SA_ACT_SET_ARGS 2
#define SA_ACT_SET_RETVAL 4

/* sa_slot_host.req */
#define SA_REQ_READ 1
#define SA_REQ_READ_STR 2
#define SA_REQ_READ_PTRLIST 3
#define SA_REQ_WRITE 4
#define SA_REQ_PROC 5
#define SA_REQ_MAPS 6
#define SA_REQ_FDS 7
#define SA_REQ_PROCS 8
#define SA_REQ_MAX 8

/* sa_slot_guest.rflags (response flags) */
#define SA_RF_TRUNCATED 1
#define SA_RF_MORE 2

/* sa_map_entry.flags */
#define SA_MAP_READ 1
#define SA_MAP_WRITE 2
#define SA_MAP_EXEC 4
#define SA_MAP_SHARED 8
#define SA_MAP_PATH_TRUNCATED 16

#define SA_PATH_MAX_MAP 216
#define SA_PATH_MAX_FD 248
#define SA_MAP_ENTRY_SIZE 256
#define SA_FD_ENTRY_SIZE 256
#define SA_TASK_ENTRY_SIZE 32
#define SA_PROC_INFO_SIZE 64

struct sa_counters {
	uint64_t events;            /* events published to the host */
	uint64_t verdicts;          /* verdicts applied */
	uint64_t requests;          /* portal requests served */
	uint64_t deadline_expired;  /* no answer within the deadline */
	uint64_t fatal_signal;      /* waits ended by a fatal signal */
	uint64_t no_slot;           /* no free slot before the deadline */
	uint64_t bad_host_msg;      /* host messages refused */
	uint64_t host_dead_skips;   /* hooked calls passed while the host was gone */
	uint64_t table_updates;     /* hook tables put in force */
	uint64_t table_rejects;     /* hook tables refused as invalid */
	uint64_t restart_lost;      /* interrupted calls whose outcome went unseen */
	uint64_t filter_faults;     /* string filters that could not read */
	uint64_t host_lost;         /* waits ended because the host stopped beating */
	uint64_t signal_returns;    /* returns sent once a signal decided the outcome */
	uint64_t out_of_range;      /* calls of numbers beyond the table sent */
	uint64_t observed;          /* observe-only records written to a ring */
	uint64_t ring_drops;        /* observe-only records that did not fit */
	uint64_t bells;             /* times the guest rang the host's doorbell */
};

struct sa_guest_header {
	uint64_t magic;             /* written last at load */
	uint32_t version;
	uint32_t arch;
	uint64_t region_size;
	uint32_t boot_id;           /* changes on every module load */
	uint32_t state;             /* SA_STATE_* */
	uint32_t nr_syscalls;       /* meta entries in use */
	uint32_t max_hooks;
	uint32_t slot_count;
	uint32_t slot_size;
	uint32_t hooks_ack;         /* last host generation in force */
	int32_t hooks_status;       /* 0, or -errno for that generation */
	uint32_t hooked_entries;    /* distinct syscall entries hooked */
	uint32_t deadline_ms;       /* deadline in force */
	uint32_t untraceable;       /* table entries that cannot be hooked */
	uint32_t bell_port;         /* I/O port the guest rings, 0: it cannot */
	uint64_t doorbell;          /* bumped on every slot message (and every
				     * message of another source) before ringing */
	uint64_t heartbeat;         /* bumped by the guest's control thread */
	struct sa_counters counters;
	uint32_t bell_rung;         /* the host's sleeping token last rung for */
	uint32_t nr_syscalls32;     /* compat meta entries in use (0: no compat ABI) */
	uint8_t pad[1808];
};

struct sa_host_header {
	uint32_t hooks_gen;         /* written after the table, guest acks it */
	uint32_t hook_count;        /* entries in use at SA_HOOKS_OFF */
	uint64_t heartbeat;         /* bumped by the host poller */
	uint32_t deadline_ms;       /* 0: guest default */
	uint32_t attached;          /* nonzero while a host is attached */
	uint32_t ring_size;         /* wanted ring data bytes (0: default), read
	                               when a hook table is applied */
	uint32_t sleeping;          /* nonzero token: the host waits for the bell */
	uint8_t pad[2016];
};

struct sa_filter {
	uint8_t kind;               /* SA_F_* */
	uint8_t cmp;                /* SA_CMP_* bits */
	uint16_t str_len;           /* bytes used in str, string kinds */
	uint32_t pad;
	uint64_t a;                 /* value, range low, mask */
	uint64_t b;                 /* range high */
	char str[104];
};

struct sa_hook {
	uint32_t id;                /* host's id, echoed nowhere: index matters */
	int32_t nr;                 /* syscall number or SA_NR_ALL / SA_NR_UNKNOWN / _NONE */
	uint32_t flags;             /* SA_HOOK_* */
	uint32_t pid;               /* tgid, if SA_HOOK_PID */
	char comm[16];              /* exact, if SA_HOOK_COMM */
	struct sa_filter args[6];
	struct sa_filter ret;
	int32_t nr32;               /* the compat ABI's number of that syscall, or
				     * SA_NR_NONE (unused with SA_NR_ALL / _UNKNOWN,
				     * which match calls of every ABI) */
	uint32_t pad1;
	uint8_t pad[88];
};

struct sa_meta {
	int32_t nr;
	uint8_t nargs;
	uint8_t flags;              /* SA_META_* */
	uint16_t pad;
	char name[40];
	char types[6][48];
	char names[6][24];
	uint8_t pad2[32];
};

struct sa_slot_guest {
	uint32_t owner;             /* guest-internal claim word, host ignores */
	uint32_t seq;               /* seqlock, odd while the guest writes */
	uint32_t epoch;             /* changes on every claim */
	uint32_t msg;               /* SA_MSG_EVENT / RESPONSE / ABANDON */
	/* event */
	uint32_t phase;             /* SA_PHASE_* */
	int32_t nr;                 /* may lie beyond the table (no metadata) */
	uint32_t pid;               /* thread id */
	uint32_t tgid;
	char comm[16];
	uint64_t args[6];
	int64_t retval;             /* return phase */
	uint64_t pc;
	uint64_t sp;
	uint64_t matched[4];        /* bitmap of hook table indices */
	uint32_t nregs;
	uint32_t hooks_gen;         /* table generation the hooks matched in */
	uint64_t regs[40];          /* arch user registers, SA_MAX_REGS words, in
				     * the order of portal/arch.py's ArchInfo.regs */
	/* response */
	int32_t status;             /* 0 or -errno */
	uint32_t len;               /* bytes in the g2h data area */
	uint32_t count;             /* entries in the g2h data area */
	uint32_t rflags;            /* SA_RF_* */
	uint64_t fault_addr;
	uint64_t next;              /* where to continue a chunked request */
	uint32_t eflags;            /* SA_EV_*, events */
	uint32_t pad1;
	/* event: the user strings the prototype marks, captured when the event
	 * was written (as a ring record's, per register word, SA_STR_*): their
	 * bytes follow each other from the start of the g2h area, which the
	 * guest writes before the event and not again until the host's first
	 * request. The host reads them with the event. */
	uint16_t str_len[6];
	uint8_t str_flags[6];
	uint8_t pad2[2];
	uint8_t pad[484];
};

struct sa_slot_host {
	uint32_t seq;               /* g.seq answered, written last */
	uint32_t epoch;             /* g.epoch answered */
	uint32_t msg;               /* SA_MSG_REQUEST / VERDICT */
	uint32_t req;               /* SA_REQ_* */
	uint64_t addr;
	uint64_t len;               /* bytes; for WRITE the h2g payload length */
	uint64_t arg;               /* start index / fd / pid of a chunked request */
	uint32_t action;            /* SA_ACT_* bits */
	uint32_t args_mask;         /* which args SA_ACT_SET_ARGS changes */
	int64_t retval;
	uint64_t args[6];
	uint8_t pad[408];
};

/*
 * Observe-only rings, one per CPU (CPU n uses ring n % SA_RING_COUNT).
 * Positions are free-running byte counts; a record starts at pos % size,
 * is 8-byte aligned and never wraps: the guest fills the end with a PAD
 * record first. The guest writes records in [head, tail + size) only,
 * then publishes head; the host copies [tail, head) once, then writes tail.
 * A record that does not fit is dropped and counted (drops, and the
 * per-hook counters at SA_HOOK_DROPS_OFF, indexed like the hook table).
 * The guest changes size only while the ring is empty, before the records
 * written with the new size are published.
 */
struct sa_ring_header {
	/* guest */
	uint64_t head;              /* producer position */
	uint64_t drops;             /* records that did not fit */
	uint64_t records;           /* records written */
	uint32_t size;              /* data bytes, a power of two */
	uint32_t cpu;               /* ring index */
	uint8_t pad0[32];
	/* host */
	uint64_t tail;              /* consumer position */
	uint8_t pad1[4024];
};

/* followed by the captured strings, in register word order, str_len[i]
 * bytes each (no NUL), then padding to a multiple of 8 */
struct sa_ring_rec {
	uint32_t len;               /* bytes of the whole record, multiple of 8 */
	uint32_t type;              /* SA_REC_* */
	uint32_t phase;             /* SA_PHASE_* */
	int32_t nr;
	uint32_t pid;
	uint32_t tgid;
	char comm[16];
	uint64_t args[6];           /* the enter's arguments, in both phases */
	int64_t retval;             /* return phase */
	uint64_t pc;
	uint64_t sp;
	uint64_t matched[4];        /* observing hooks matched (table indices) */
	uint32_t hooks_gen;
	uint32_t eflags;            /* SA_EV_* */
	uint16_t str_len[6];
	uint8_t str_flags[6];       /* SA_STR_* */
	uint8_t pad[6];
};

struct sa_map_entry {
	uint64_t start;
	uint64_t end;
	uint64_t offset;            /* file offset in bytes */
	uint64_t inode;
	uint32_t flags;             /* SA_MAP_* */
	uint32_t path_len;
	char path[216];
};

struct sa_fd_entry {
	int32_t fd;
	uint32_t path_len;
	char path[248];
};

struct sa_task_entry {
	uint32_t pid;               /* tgid */
	uint32_t ppid;
	uint32_t uid;
	uint32_t pad;
	char comm[16];
};

/* followed in the data area by exe (exe_len), cwd (cwd_len), argv (argv_len,
 * NUL-separated as in the process's own memory) */
struct sa_proc_info {
	uint32_t pid;
	uint32_t tgid;
	uint32_t ppid;
	uint32_t uid;
	char comm[16];
	uint32_t exe_len;
	uint32_t cwd_len;
	uint32_t argv_len;
	uint32_t flags;             /* SA_RF_TRUNCATED if a string was cut */
	uint64_t pad[2];
};
/* SA_CDEF_END */

SA_STATIC_ASSERT(sizeof(struct sa_guest_header) == SA_GUEST_SIZE, "guest header");
SA_STATIC_ASSERT(sizeof(struct sa_host_header) == SA_HOST_SIZE, "host header");
SA_STATIC_ASSERT(SA_HOST_OFF + SA_HOST_SIZE <= SA_HOOKS_OFF, "headers overlap hooks");
SA_STATIC_ASSERT(sizeof(struct sa_filter) == 128, "filter");
SA_STATIC_ASSERT(sizeof(((struct sa_filter *)0)->str) == SA_FILTER_STR_MAX, "filter str");
SA_STATIC_ASSERT(sizeof(struct sa_hook) == SA_HOOK_SIZE, "hook");
SA_STATIC_ASSERT(SA_HOOKS_OFF + SA_MAX_HOOKS * SA_HOOK_SIZE <= SA_META_OFF, "hooks overlap meta");
SA_STATIC_ASSERT(sizeof(struct sa_meta) == SA_META_SIZE, "meta");
SA_STATIC_ASSERT(SA_META_OFF + SA_MAX_SYSCALLS * SA_META_SIZE <= SA_META32_OFF, "meta overlaps meta32");
SA_STATIC_ASSERT(SA_META32_OFF + SA_MAX_SYSCALLS * SA_META_SIZE <= SA_SLOTS_OFF, "meta32 overlaps slots");
SA_STATIC_ASSERT(sizeof(struct sa_slot_guest) == SA_SLOT_GUEST_SIZE, "slot guest part");
SA_STATIC_ASSERT(sizeof(struct sa_slot_host) == SA_SLOT_HOST_SIZE, "slot host part");
SA_STATIC_ASSERT(SA_SLOT_HOST_OFF == SA_SLOT_GUEST_OFF + SA_SLOT_GUEST_SIZE, "slot host off");
SA_STATIC_ASSERT(SA_SLOT_G2H_OFF == SA_SLOT_HOST_OFF + SA_SLOT_HOST_SIZE, "slot g2h off");
SA_STATIC_ASSERT(SA_SLOT_H2G_OFF == SA_SLOT_G2H_OFF + SA_SLOT_G2H_SIZE, "slot h2g off");
SA_STATIC_ASSERT(SA_SLOT_H2G_OFF + SA_SLOT_H2G_SIZE == SA_SLOT_SIZE, "slot size");
SA_STATIC_ASSERT(SA_MAX_ARGS * SA_STR_CAP <= SA_SLOT_G2H_SIZE, "an event's strings fit in g2h");
SA_STATIC_ASSERT(SA_SLOTS_OFF + SA_SLOT_COUNT * SA_SLOT_SIZE <= SA_HOOK_DROPS_OFF, "slots overlap drops");
SA_STATIC_ASSERT(SA_HOOK_DROPS_OFF + SA_MAX_HOOKS * 8 <= SA_RINGS_OFF, "drops overlap rings");
SA_STATIC_ASSERT(SA_RING_STRIDE == SA_RING_HDR_SIZE + SA_RING_DATA_MAX, "ring stride");
SA_STATIC_ASSERT(SA_RINGS_OFF + SA_RING_COUNT * SA_RING_STRIDE <= SA_REGION_MIN_SIZE, "region");
SA_STATIC_ASSERT(sizeof(struct sa_ring_header) == SA_RING_HDR_SIZE, "ring header");
SA_STATIC_ASSERT(sizeof(struct sa_ring_rec) == SA_REC_SIZE, "ring record");
SA_STATIC_ASSERT(SA_STR_CAP < 65536, "str_len is 16 bits");
SA_STATIC_ASSERT(SA_MAX_HOOKS == SA_MATCH_WORDS * 64, "match bitmap covers hooks");
SA_STATIC_ASSERT(sizeof(struct sa_map_entry) == SA_MAP_ENTRY_SIZE, "map entry");
SA_STATIC_ASSERT(sizeof(((struct sa_map_entry *)0)->path) == SA_PATH_MAX_MAP, "map path");
SA_STATIC_ASSERT(sizeof(struct sa_fd_entry) == SA_FD_ENTRY_SIZE, "fd entry");
SA_STATIC_ASSERT(sizeof(((struct sa_fd_entry *)0)->path) == SA_PATH_MAX_FD, "fd path");
SA_STATIC_ASSERT(sizeof(struct sa_task_entry) == SA_TASK_ENTRY_SIZE, "task entry");
SA_STATIC_ASSERT(sizeof(struct sa_proc_info) == SA_PROC_INFO_SIZE, "proc info");
SA_STATIC_ASSERT(sizeof(((struct sa_slot_guest *)0)->regs) == SA_MAX_REGS * 8, "regs");

#endif /* SYSCALLS_ASYNC_PORTAL_ABI_H */
