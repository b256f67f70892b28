/* SPDX-License-Identifier: GPL-2.0 */
/* Declarations shared by the module's files. */
#ifndef SYSCALLS_ASYNC_SA_H
#define SYSCALLS_ASYNC_SA_H

#include <linux/types.h>
#include <linux/atomic.h>
#include <linux/refcount.h>
#include <linux/ptrace.h>
#include "portal_abi.h"

#define SA_DEFAULT_DEADLINE_MS 3000
#define SA_MIN_DEADLINE_MS 10
#define SA_MAX_DEADLINE_MS 600000

/* One trapped syscall as the generic code sees it. */
struct sa_call {
	struct pt_regs *regs;       /* the task's user registers */
	int nr;                     /* may lie beyond the table */
	bool compat;                /* the compat ABI's call (x86_64: ia32): nr
				     * indexes its table, args its registers */
	u32 eflags;                 /* SA_EV_* (SA_EV_COMPAT in both phases) */
	u64 args[SA_MAX_ARGS];
	long ret;
};

/* A private copy of the host's hook table, in force from one generation. */
/* Who some hook of a table could match at all: its pid and comm filters.
 * See sa_gate_rejects(). */
#define SA_GATE_MAX 8
struct sa_gate_who {
	u32 flags;                  /* SA_HOOK_PID | SA_HOOK_COMM */
	u32 pid;
	char comm[SA_COMM_LEN];
};

struct sa_snapshot {
	refcount_t ref;
	u32 gen;
	u32 count;
	u8 *nr_flags;               /* per nr: SA_HOOK_ENTER | SA_HOOK_RETURN */
	u8 *nr_flags32;             /* the same per compat nr (NULL: no compat ABI) */
	u8 oor_flags;               /* the same for numbers beyond the table */
	u8 gate_n;                  /* 0: no gate (some hook matches any task) */
	struct sa_gate_who gate[SA_GATE_MAX];
	struct sa_hook hooks[];
};

/* shm.c: the shared region */
extern void *sa_shm;
extern size_t sa_shm_size;
int sa_shm_map(void);
void sa_shm_unmap(void);

static inline struct sa_guest_header *sa_guest(void)
{
	return sa_shm + SA_GUEST_OFF;
}

static inline struct sa_host_header *sa_host(void)
{
	return sa_shm + SA_HOST_OFF;
}

static inline void *sa_slot_base(unsigned int i)
{
	return sa_shm + SA_SLOTS_OFF + (size_t)i * SA_SLOT_SIZE;
}

/* A message starts with no response fields set (events and responses alike). */
static inline void sa_resp_clear(struct sa_slot_guest *g)
{
	g->eflags = 0;
	g->status = 0;
	g->len = 0;
	g->count = 0;
	g->rflags = 0;
	g->fault_addr = 0;
	g->next = 0;
}

/* A user address from a 64-bit field. On a 32-bit kernel a value above
 * ULONG_MAX is no address of the task: it becomes one that always faults
 * (never a truncated one). */
static inline void __user *sa_uptr(u64 addr)
{
	return (void __user *)(unsigned long)(addr > ULONG_MAX ? ULONG_MAX : addr);
}

#define sa_count(field) \
	atomic64_inc((atomic64_t *)&sa_guest()->counters.field)

/* doorbell.c: call sa_doorbell() after publishing anything the host should
 * see (a slot message, a ring record): it wakes the host if, and only if, the
 * host said it sleeps. The host's last look before sleeping must cover what
 * the producer published (the doorbell counter for slot messages). */
void sa_doorbell(void);
void sa_doorbell_init(void);
void sa_doorbell_exit(void);

/* main.c */
extern unsigned long (*sa_lookup_name)(const char *name);
extern bool sa_host_alive;
extern u32 sa_deadline_ms;
void sa_inflight_exit(void);
extern atomic_t sa_inflight;

/* meta.c: per ABI (compat: the compat table, SA_META32_OFF) */
void sa_meta_write(void);
bool sa_meta_known(bool compat, int nr);
u8 sa_meta_strmask(bool compat, int nr);
struct sa_meta *sa_meta_entry(bool compat, unsigned int nr);

/* hooks.c */
int sa_hooks_init(void);
void sa_hooks_apply(u32 gen);
void sa_hooks_exit(void);
struct sa_snapshot *sa_snap_get(void);
void sa_snap_put(struct sa_snapshot *snap);
bool sa_hooks_match(struct sa_snapshot *snap, const struct sa_call *call,
		    u32 phase, u64 *matched, u64 *observed);
bool sa_gate_rejects(unsigned int nr);

/* sys_enter.c: attach (on) or detach the arch's sys_enter probe */
int sa_sys_enter_hook(bool on, void *probe);
bool sa_sys_enter_hooked(void);

/* ring.c: observe-only events */
void sa_ring_init(void);
void sa_ring_configure(void);
void sa_ring_write(const struct sa_call *call, u32 phase, const u64 *matched, u32 gen);
size_t sa_capture_strings(const struct sa_call *call, u8 mask, char *buf,
			  u16 *len, u8 *flags);

/* slots.c */
struct sa_verdict {
	u32 action;
	u32 args_mask;
	s64 retval;
	u64 args[SA_MAX_ARGS];
};
int sa_exchange(const struct sa_call *call, u32 phase, const u64 *matched,
		u32 gen, struct sa_verdict *verdict);

/* requests.c: serve one request; fills the response fields of g. */
void sa_serve(struct sa_slot_guest *g, void *g2h, const void *h2g,
	      const struct sa_slot_host *req);

/* wrapper.c */
long sa_syscall(struct sa_call *call);
bool sa_is_restart(long ret);
long sa_sanitize_ret(s64 v);
bool sa_ask(const struct sa_call *call, u32 phase, struct sa_verdict *v);
bool sa_wants(const struct sa_call *call, u8 want);
/* entries in the syscall table of the call's ABI */
unsigned int sa_table_size(bool compat);

/* restart.c: the return of a call a signal interrupted */
int sa_restart_init(void);
void sa_restart_exit(void);
void sa_restart_defer(const struct sa_call *call);
void sa_restart_reap(void);

#endif
