// SPDX-License-Identifier: GPL-2.0-or-later
/* log.c - owns where messages go: stderr in the foreground, syslog once daemonised. */
#include "rdmafsd.h"

#include <stdarg.h>
#include <syslog.h>

static enum log_level max_level = LOG_LVL_INFO;
static bool to_syslog;

void log_init(enum log_level level, bool use_syslog)
{
	max_level = level;
	to_syslog = use_syslog;
	if (use_syslog)
		openlog("rdmafs", LOG_PID, LOG_DAEMON);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	static const char *const tag[] = { "error", "warning", "notice", "info", "debug" };
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG };
	int saved = errno;
	va_list ap;

	if (level > max_level)
		return;
	va_start(ap, fmt);
	if (to_syslog) {
		vsyslog(prio[level], fmt, ap);
	} else {
		char buf[1024];

		vsnprintf(buf, sizeof(buf), fmt, ap);
		fprintf(stderr, "rdmafs: %s: %s\n", tag[level], buf);
	}
	va_end(ap);
	errno = saved;
}
