// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * lease.c - owns leases of pin holders on staged files: the lease table and the
 * break/wait/expire policy. An operation that would free staged pages breaks them first.
 */
#include "rdmafsd.h"

int lease_break(struct staged *st, const char *why)
{
	if (!st->nleases)
		return 0;
	log_notice("lease break ino=%lu for %s: no lease table yet, denying",
		   (unsigned long)st->ino->src_ino, why);
	return -EBUSY;
}
