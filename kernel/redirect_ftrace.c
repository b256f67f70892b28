// SPDX-License-Identifier: GPL-2.0
/*
 * Redirect by ftrace: one ftrace_ops (SAVE_REGS | RECURSION | IPMODIFY) on
 * exactly the hooked entry addresses; its callback (the arch's) moves the ip
 * to the wrapper. For architectures whose ftrace call is the function's
 * first instruction (x86_64, aarch64).
 */
#include <linux/kernel.h>
#include <linux/ftrace.h>
#include "arch.h"
#include "redirect.h"

static struct ftrace_ops sa_ops = {
	.func = sa_arch_ftrace_cb,
	.flags = FTRACE_OPS_FL_SAVE_REGS | FTRACE_OPS_FL_RECURSION |
		 FTRACE_OPS_FL_IPMODIFY,
};
static bool sa_ops_registered;
/* a scratch ops asked at load which entries ftrace can hook (some are
 * notrace): a little cost at load keeps one such entry from failing a whole
 * table */
static struct ftrace_ops sa_probe;

bool sa_redirect_possible(unsigned long ip)
{
	return ip && !ftrace_set_filter_ip(&sa_probe, ip, 0, 0);
}

void sa_redirect_probed(void)
{
	ftrace_free_filter(&sa_probe);
}

int sa_redirect_add(const unsigned long *ips, unsigned int n)
{
	int err;

	if (!n)
		return 0;
	if (sa_ops_registered)
		return ftrace_set_filter_ips(&sa_ops, (unsigned long *)ips, n, 0, 0);
	err = ftrace_set_filter_ips(&sa_ops, (unsigned long *)ips, n, 0, 1);
	if (!err)
		err = register_ftrace_function(&sa_ops);
	if (!err)
		sa_ops_registered = true;
	return err;
}

int sa_redirect_del(const unsigned long *ips, unsigned int n, bool none_left)
{
	int err;

	if (!n)
		return 0;
	/* An ops with an empty filter would trace all: unregister instead.
	 * The stale filter stays until the next add resets it: freeing it
	 * here would leave the ops pointing at freed hashes. */
	if (none_left) {
		if (!sa_ops_registered)
			return 0;
		err = unregister_ftrace_function(&sa_ops);
		if (!err)
			sa_ops_registered = false;
		return err;
	}
	return ftrace_set_filter_ips(&sa_ops, (unsigned long *)ips, n, 1, 0);
}

void sa_redirect_exit(void)
{
	if (sa_ops_registered) {
		unregister_ftrace_function(&sa_ops);
		sa_ops_registered = false;
	}
	ftrace_free_filter(&sa_ops);
}
