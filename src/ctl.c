// SPDX-License-Identifier: GPL-2.0-or-later
/* ctl.c - owns the control socket of a mount (placeholder until the control plane lands). */
#include "rdmafsd.h"

int ctl_init(const char *mountpoint, const char *source)
{
	return 0;
}

void ctl_exit(void)
{
}
