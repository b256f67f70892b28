/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Redirecting syscall table entries to the wrapper: one backend per build
 * (redirect_ftrace.c or redirect_kprobe.c, chosen by Kbuild per
 * architecture). hooks.c decides which entry addresses are hooked; the
 * backend makes exactly those reach the arch's callback.
 */
#ifndef SYSCALLS_ASYNC_REDIRECT_H
#define SYSCALLS_ASYNC_REDIRECT_H

#include <linux/types.h>

/* At load: can the entry at ip be redirected? (may prepare it, disarmed) */
bool sa_redirect_possible(unsigned long ip);
/* Done asking sa_redirect_possible. */
void sa_redirect_probed(void);
/* Redirect these entries too (distinct, sorted, all possible). */
int sa_redirect_add(const unsigned long *ips, unsigned int n);
/* Stop redirecting these; none_left: no entry stays redirected. */
int sa_redirect_del(const unsigned long *ips, unsigned int n, bool none_left);
/* Unload: nothing redirected, everything freed. */
void sa_redirect_exit(void);

#endif
