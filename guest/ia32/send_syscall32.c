// SPDX-License-Identifier: GPL-2.0
/*
 * send_syscall32 NAME|NR [ARG...]: guest/send_syscall.c built as a static
 * 32-bit (i386) program: one raw system call through int 0x80, the ia32
 * entry of an x86_64 kernel. NAME is looked up in the kernel's 32-bit table
 * (unistd_32.h), so numbers are the ia32 ones (openat is 295).
 */
#define SA_PROG "send_syscall32"
#define SA_NAMES syscall_names32
#include "syscall_names32.h"
#include "send_syscall.c"
