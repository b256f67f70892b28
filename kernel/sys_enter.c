// SPDX-License-Identifier: GPL-2.0
/*
 * The sys_enter tracepoint, for the architectures that send numbers beyond
 * their table to an unimplemented entry from there (arch_*.c's
 * sa_arch_oor_arm): finding it, attaching and detaching their probe, and
 * whether it is attached. One probe at a time.
 */
#include <linux/string.h>
#include <linux/tracepoint.h>
#include "sa.h"

static struct tracepoint *sa_sys_enter;
static bool sa_sys_enter_on;

static void sa_find_sys_enter(struct tracepoint *tp, void *priv)
{
	if (!strcmp(tp->name, "sys_enter"))
		sa_sys_enter = tp;
}

int sa_sys_enter_hook(bool on, void *probe)
{
	int err;

	if (on == sa_sys_enter_on)
		return 0;
	if (!sa_sys_enter)
		for_each_kernel_tracepoint(sa_find_sys_enter, NULL);
	if (!sa_sys_enter)
		return on ? -ENOENT : 0;
	if (on) {
		err = tracepoint_probe_register(sa_sys_enter, probe, NULL);
	} else {
		err = tracepoint_probe_unregister(sa_sys_enter, probe, NULL);
		tracepoint_synchronize_unregister();
	}
	if (!err)
		sa_sys_enter_on = on;
	return err;
}

bool sa_sys_enter_hooked(void)
{
	return sa_sys_enter_on;
}
