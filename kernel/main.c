// SPDX-License-Identifier: GPL-2.0
/*
 * syscalls_async: hand a guest's syscalls to a host over ivshmem and apply
 * its verdicts. This file: load/unload and the control thread that follows
 * the host's hook table and heartbeat.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/kprobes.h>
#include <linux/kthread.h>
#include <linux/delay.h>
#include <linux/random.h>
#include <linux/wait.h>
#include "sa.h"
#include "arch.h"

unsigned long (*sa_lookup_name)(const char *name);
bool sa_host_alive;
u32 sa_deadline_ms = SA_DEFAULT_DEADLINE_MS;
atomic_t sa_inflight = ATOMIC_INIT(0);

static DECLARE_WAIT_QUEUE_HEAD(sa_inflight_wq);
static struct task_struct *sa_control;
static u32 sa_applied_gen;

void sa_inflight_exit(void)
{
	if (atomic_dec_and_test(&sa_inflight))
		wake_up(&sa_inflight_wq);
}

/* kallsyms_lookup_name is not exported; a kprobe on it reveals its address. */
static int sa_find_lookup(void)
{
	struct kprobe kp = { .symbol_name = "kallsyms_lookup_name" };
	int err = register_kprobe(&kp);

	if (err)
		return err;
	sa_lookup_name = (void *)kp.addr;
	unregister_kprobe(&kp);
	return sa_lookup_name ? 0 : -ENOENT;
}

static void sa_follow_host(u64 *last_hb, unsigned long *last_change)
{
	struct sa_host_header *h = sa_host();
	u64 hb = READ_ONCE(h->heartbeat);
	u32 dl = READ_ONCE(h->deadline_ms);
	u32 gen;

	dl = dl ? clamp_t(u32, dl, SA_MIN_DEADLINE_MS, SA_MAX_DEADLINE_MS)
		: SA_DEFAULT_DEADLINE_MS;
	WRITE_ONCE(sa_deadline_ms, dl);
	WRITE_ONCE(sa_guest()->deadline_ms, dl);

	if (hb != *last_hb) {
		*last_hb = hb;
		*last_change = jiffies;
		WRITE_ONCE(sa_host_alive, READ_ONCE(h->attached) != 0);
	} else if (time_after(jiffies, *last_change + msecs_to_jiffies(dl))) {
		WRITE_ONCE(sa_host_alive, false);
	}

	gen = READ_ONCE(h->hooks_gen);
	if (gen != sa_applied_gen) {
		smp_rmb();
		sa_hooks_apply(gen);
		sa_applied_gen = gen;
	}
}

static int sa_control_fn(void *unused)
{
	u64 last_hb = READ_ONCE(sa_host()->heartbeat);
	unsigned long last_change = jiffies;

	while (!kthread_should_stop()) {
		sa_follow_host(&last_hb, &last_change);
		sa_restart_reap();
		WRITE_ONCE(sa_guest()->heartbeat, sa_guest()->heartbeat + 1);
		usleep_range(500, 1000);
	}
	return 0;
}

static void sa_header_init(void)
{
	struct sa_guest_header *g = sa_guest();
	unsigned int i;

	WRITE_ONCE(g->magic, 0);
	smp_wmb();
	memset((void *)g + sizeof(g->magic), 0, sizeof(*g) - sizeof(g->magic));
	memset(sa_shm + SA_META_OFF, 0, SA_MAX_SYSCALLS * SA_META_SIZE);
	memset(sa_shm + SA_META32_OFF, 0, SA_MAX_SYSCALLS * SA_META_SIZE);
	/* Answers left in the slots by a host of an earlier load must never
	 * match a new message: clear them, and start every slot's epoch at a
	 * random value so that a late write from that host cannot match
	 * either. */
	for (i = 0; i < SA_SLOT_COUNT; i++) {
		struct sa_slot_guest *sg = sa_slot_base(i) + SA_SLOT_GUEST_OFF;

		memset(sa_slot_base(i), 0, SA_SLOT_GUEST_SIZE + SA_SLOT_HOST_SIZE);
		sg->epoch = get_random_u32();
	}
	g->version = SA_VERSION;
	g->arch = sa_arch_id;
	g->region_size = sa_shm_size;
	g->boot_id = get_random_u32() | 1;
	g->max_hooks = SA_MAX_HOOKS;
	g->slot_count = SA_SLOT_COUNT;
	g->slot_size = SA_SLOT_SIZE;
	g->deadline_ms = sa_deadline_ms;
	/* A table left by an earlier load is never applied: only a newer
	 * generation from a host that saw this boot_id is. */
	sa_applied_gen = READ_ONCE(sa_host()->hooks_gen);
	g->hooks_ack = sa_applied_gen;
}

static int __init sa_init(void)
{
	int err;

	err = sa_find_lookup();
	if (err)
		return err;
	err = sa_arch_init(sa_lookup_name);
	if (err)
		return err;
	err = sa_shm_map();
	if (err)
		return err;
	sa_header_init();
	sa_doorbell_init();
	sa_ring_init();
	sa_meta_write();
	err = sa_hooks_init();
	if (err)
		goto err_unmap;
	err = sa_restart_init();
	if (err)
		goto err_hooks;
	sa_control = kthread_run(sa_control_fn, NULL, "syscalls_async");
	if (IS_ERR(sa_control)) {
		err = PTR_ERR(sa_control);
		goto err_restart;
	}
	sa_guest()->state = SA_STATE_READY;
	smp_wmb();
	WRITE_ONCE(sa_guest()->magic, SA_MAGIC);
	pr_info("portal ready, %zu bytes, %u syscalls\n",
		sa_shm_size, sa_arch_nr_syscalls());
	return 0;

err_restart:
	sa_restart_exit();
err_hooks:
	sa_hooks_exit();
err_unmap:
	sa_doorbell_exit();
	sa_shm_unmap();
	return err;
}

static void __exit sa_exit(void)
{
	WRITE_ONCE(sa_guest()->state, SA_STATE_STOPPED);
	/* a sleeping host learns at once that the portal goes */
	atomic64_inc((atomic64_t *)&sa_guest()->doorbell);
	sa_doorbell();
	kthread_stop(sa_control);
	/* Unhook, then wait for tasks still between the ftrace trampoline and
	 * the wrapper's exit (those whose module reference failed while the
	 * module was going). */
	sa_hooks_exit();
	wait_event(sa_inflight_wq, atomic_read(&sa_inflight) == 0);
	/* no wrapper leaves notes any more; queued task work held the module */
	sa_restart_exit();
	synchronize_rcu_tasks();
	WRITE_ONCE(sa_guest()->magic, 0);
	sa_doorbell_exit();
	sa_shm_unmap();
	pr_info("unloaded\n");
}

module_init(sa_init);
module_exit(sa_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("syscalls-async guest agent: syscall interception over ivshmem");
