// SPDX-License-Identifier: GPL-2.0
/*
 * interrupt32: guest/interrupt.c built as a static 32-bit (i386) program: its
 * blocking read is an ia32 call that a signal interrupts (same modes, same
 * output).
 */
#include "interrupt.c"
