/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * log.h - leveled messages to stderr (foreground) or syslog (log.c).
 */
#ifndef RDMAFS_LOG_H
#define RDMAFS_LOG_H

#include "conf.h"

void log_init(enum log_level level, bool use_syslog);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Each keeps errno intact so callers can log and then return -errno. */
#define log_err(...) log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_LVL_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

#endif
