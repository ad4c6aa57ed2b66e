// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * rdmafsctl - control client of rdmafs mounts, built on librdmafs: flush, stat, evict,
 * leases, and replay of rescue folders the daemon wrote when it could not commit.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <libmount.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/openat2.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "rdmafs.h"
#include "rdmafs/manifest.h"

static const char *prog = "rdmafsctl";

static void usage(FILE *f)
{
	fprintf(f,
		"usage: %s COMMAND [ARGS]\n"
		"\n"
		"Commands:\n"
		"  flush [-q] [--all [PATH] | PATH...]\n"
		"                                  commit files (or every staged file of the mount\n"
		"                                  of PATH, default .) and wait until durable;\n"
		"                                  progress on a terminal unless -q\n"
		"  stat [--json] [--no-scan] [PATH...]\n"
		"                                  staging state of files, or of the mount when\n"
		"                                  PATH is a directory (default .)\n"
		"  stat --prometheus [--no-scan] [PATH...], metrics [--no-scan] [PATH...]\n"
		"                                  counters of the mounts of PATHs (default: every\n"
		"                                  rdmafs mount) in the Prometheus text format\n"
		"  top [-b] [-n COUNT] [-d SECONDS] [--no-scan] [PATH]\n"
		"                                  busiest staged files of a mount, refreshed\n"
		"  evict [PATH]                    commit and drop staging nobody uses\n"
		"  lease list [PATH]               leases of a file, or of the whole mount\n"
		"  lease break PATH                break the leases on a file\n"
		"  lease hold [-s SIGNAL] PATH     hold a lease until it is broken or killed\n"
		"  replay RESCUE_DIR               copy a rescue folder back over its backing files\n"
		"  restart [PATH]                  restart the daemon of the mount of PATH from the\n"
		"                                  binary now installed; files, mappings, pins and\n"
		"                                  leases stay (the user the daemon runs as)\n"
		"\n"
		"  -h, --help                      this text\n"
		"  -V, --version                   version\n"
		"\n"
		"Exit status: 0 success, 1 an operation failed, 2 bad usage. See rdmafsctl(8).\n",
		prog);
}

static int fail(const char *what, const char *path, int err)
{
	const char *msg = err == -EXDEV ? "not on an rdmafs mount" :
			  err == -ENOTCONN ? "no control socket for this mount (daemon gone?)" :
			  err == -ECONNRESET ? "the daemon went away before it answered (died or "
					       "restarted): the request may or may not have been done" :
			  err == -EOPNOTSUPP ? "never staged (staging_paths mode none): its "
					       "mappings are the backing file's and cannot be pinned" :
			  strerror(-err);

	fprintf(stderr, "%s: %s%s%s: %s\n", prog, what, path ? " " : "", path ? path : "", msg);
	return 1;
}

static void human(uint64_t v, char *buf, size_t size)
{
	static const char units[] = "BKMGTP";
	double d = (double)v;
	int u = 0;

	while (d >= 1024 && u < 5) {
		d /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, size, "%" PRIu64 "B", v);
	else
		snprintf(buf, size, d < 10 ? "%.1f%c" : "%.0f%c", d, units[u]);
}

/* ---- flush ---- */

static bool on_tty;

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* What a progress line is about, and since when. */
struct flush_view {
	const char *what;
	double t0;
};

static void progress(const struct rdmafs_report *p, void *arg)
{
	struct flush_view *v = arg;
	char done[16], total[16], rate[16], eta[32] = "";
	double dt = mono_s() - v->t0, bps;
	uint64_t bytes = p->bytes;

	if (p->bytes_total && bytes > p->bytes_total)
		bytes = p->bytes_total;	/* chunk rounding, or a concurrent commit of the file */
	bps = dt > 0 ? bytes / dt : 0;
	human(bytes, done, sizeof(done));
	human((uint64_t)bps, rate, sizeof(rate));
	if (!p->bytes_total) {	/* a daemon without byte totals: files only */
		fprintf(stderr, "\r\033[K%s: %" PRIu64 "/%" PRIu64 " files, %s committed",
			v->what, p->files_done, p->files_total, done);
		return;
	}
	human(p->bytes_total, total, sizeof(total));
	if (bps > 0) {
		unsigned long s = (unsigned long)((p->bytes_total - bytes) / bps + 0.5);

		snprintf(eta, sizeof(eta), ", ETA %lu:%02lu", s / 60, s % 60);
	}
	fprintf(stderr, "\r\033[K%s: %s of %s (%.0f%%), %s/s%s", v->what, done, total,
		100.0 * bytes / p->bytes_total, rate, eta);
	if (p->files_total > 1)
		fprintf(stderr, ", %" PRIu64 "/%" PRIu64 " files", p->files_done, p->files_total);
}

/*
 * Open @path to prove access. Read-only first (enough for root, and a writable open would
 * stage an unstaged file); the caller retries writable when the daemon asks for it.
 */
static int open_for_flush(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd >= 0 || errno != EACCES)
		return fd < 0 ? -errno : fd;
	fd = open(path, O_WRONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* Flush one open file, with progress on a terminal. */
static int flush_fd(int fd, const char *path)
{
	struct flush_view v = { .what = path, .t0 = mono_s() };
	int r;

	if (!on_tty)
		return rdmafs_flush(fd);
	r = rdmafs_flush_progress(fd, NULL, NULL, progress, &v);
	fprintf(stderr, "\r\033[K");
	return r;
}

static int cmd_flush(int argc, char **argv)
{
	static const struct option opts[] = { { "all", no_argument, NULL, 'a' },
					      { "quiet", no_argument, NULL, 'q' },
					      { "help", no_argument, NULL, 'h' }, { 0 } };
	bool all = false, quiet = false;
	int c, ret = 0;

	while ((c = getopt_long(argc, argv, "aqh", opts, NULL)) != -1) {
		if (c == 'a')
			all = true;
		else if (c == 'q')
			quiet = true;
		else if (c == 'h')
			return usage(stdout), 0;
		else
			return 2;
	}
	/* Progress only for a person watching: both outputs on a terminal. */
	on_tty = !quiet && isatty(STDERR_FILENO) && isatty(STDOUT_FILENO);
	if (all) {
		const char *path = optind < argc ? argv[optind] : ".";
		struct flush_view v = { .what = "flushing", .t0 = mono_s() };
		struct rdmafs_report rep;
		char b[16];
		int r;

		if (argc - optind > 1)
			return fprintf(stderr, "%s: flush --all takes one PATH\n", prog), 2;
		if (on_tty)
			r = rdmafs_flush_progress(-1, path, &rep, progress, &v);
		else
			r = rdmafs_flush_all_report(path, &rep, NULL, NULL);
		if (on_tty)
			fprintf(stderr, "\r\033[K");
		if (r && !rep.files_total)
			return fail("flush --all", path, r);
		human(rep.bytes, b, sizeof(b));
		printf("flushed %" PRIu64 " files, %s committed", rep.files_done - rep.files_failed, b);
		if (rep.files_failed)
			printf(", %u failed (%s)", rep.files_failed, strerror(-rep.first_error));
		printf("\n");
		return r ? 1 : 0;
	}
	if (optind >= argc)
		return fprintf(stderr, "%s: flush needs PATH... or --all\n", prog), 2;
	for (int i = optind; i < argc; i++) {
		int fd = open_for_flush(argv[i]), r;

		if (fd < 0) {
			ret = fail("open", argv[i], fd);
			continue;
		}
		r = flush_fd(fd, argv[i]);
		close(fd);
		if (r == -EBADF) {	/* not root: the daemon wants a writable open */
			fd = open(argv[i], O_WRONLY | O_CLOEXEC);
			r = fd < 0 ? -errno : flush_fd(fd, argv[i]);
			if (fd >= 0)
				close(fd);
		}
		if (r)
			ret = fail("flush", argv[i], r);
	}
	return ret;
}

/* ---- stat ---- */

static const char *mode_name(unsigned m)
{
	static const char *const names[] = { "shmem", "thp", "hugetlb", "none" };

	return m < 4 ? names[m] : "?";
}

static void fmt_time(const struct timespec *ts, char *buf, size_t size)
{
	struct tm tm;
	time_t t = ts->tv_sec;

	if (!t) {
		snprintf(buf, size, "never");
		return;
	}
	localtime_r(&t, &tm);
	strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm);
}

static double bandwidth(const struct rdmafs_stat *s)
{
	return s->commit_ns ? s->committed_bytes * 1e9 / s->commit_ns : 0;
}

/* How the generation before the serving one ended (struct rdmafs_stat prev_exit). */
static const char *prev_exit_name(int prev, char *buf, size_t size)
{
	if (prev >= 256)
		snprintf(buf, size, "killed by SIG%s", sigabbrev_np(prev - 256) ?
			 sigabbrev_np(prev - 256) : "?");
	else if (prev == 77)	/* SUP_EXIT_INCOMPAT (src/supervisor.h) */
		snprintf(buf, size, "incompatible (exit 77)");
	else
		snprintf(buf, size, "exit %d", prev);
	return buf;
}

static json_object *stat_json(const char *path, bool mount, const struct rdmafs_stat *s)
{
	json_object *o = json_object_new_object();
	char t[64];

	json_object_object_add(o, "path", json_object_new_string(path));
	json_object_object_add(o, "type", json_object_new_string(mount ? "mount" : "file"));
	json_object_object_add(o, "staged", json_object_new_boolean(s->flags & RDMAFS_STAT_STAGED));
	json_object_object_add(o, "size", json_object_new_uint64(s->size));
	json_object_object_add(o, "staged_bytes", json_object_new_uint64(s->staged_bytes));
	if (s->flags & RDMAFS_STAT_CHANGED_KNOWN)
		json_object_object_add(o, "changed_bytes", json_object_new_uint64(s->changed_bytes));
	else
		json_object_object_add(o, "changed_bytes", NULL);
	json_object_object_add(o, "opens", json_object_new_int64(s->opens));
	json_object_object_add(o, "opens_writable", json_object_new_int64(s->opens_w));
	json_object_object_add(o, "leases", json_object_new_int64(s->leases));
	if (mount) {
		json_object_object_add(o, "files", json_object_new_int64(s->files));
		json_object_object_add(o, "staging_budget", json_object_new_uint64(s->budget));
		json_object *l = json_object_new_object();

		json_object_object_add(l, "granted", json_object_new_uint64(s->lease_granted));
		json_object_object_add(l, "breaks", json_object_new_uint64(s->lease_breaks));
		json_object_object_add(l, "denies", json_object_new_uint64(s->lease_denies));
		json_object_object_add(l, "revokes", json_object_new_uint64(s->lease_revokes));
		json_object_object_add(l, "deaths", json_object_new_uint64(s->lease_deaths));
		json_object_object_add(o, "lease_stats", l);
		json_object_object_add(o, "generation", json_object_new_int64(s->generation));
		json_object_object_add(o, "restarts", json_object_new_int64(s->restarts));
		json_object_object_add(o, "supervisor_pid",
				       json_object_new_int64(s->supervisor_pid));
		json_object_object_add(o, "last_blackout_ms",
				       s->restarts ? json_object_new_double(s->last_blackout_us / 1e3)
						   : NULL);
		json_object_object_add(o, "restartable", json_object_new_boolean(s->restartable));
		json_object_object_add(o, "previous_generation",
				       s->prev_exit < 0 ? NULL :
				       json_object_new_string(prev_exit_name(s->prev_exit, t,
									     sizeof(t))));
		json_object_object_add(o, "version", json_object_new_string(s->version));
	} else {
		json_object_object_add(o, "ino", json_object_new_uint64(s->ino));
		json_object_object_add(o, "sealed",
				       json_object_new_boolean(s->flags & RDMAFS_STAT_SEALED));
	}
	json_object_object_add(o, "commits", json_object_new_uint64(s->commits));
	json_object_object_add(o, "failures", json_object_new_uint64(s->failures));
	json_object_object_add(o, "committed_bytes", json_object_new_uint64(s->committed_bytes));
	json_object_object_add(o, "scanned_bytes", json_object_new_uint64(s->scanned_bytes));
	json_object_object_add(o, "lost_pages", json_object_new_uint64(s->lost_pages));
	json_object_object_add(o, "syncs", json_object_new_uint64(s->syncs));
	json_object_object_add(o, "budget_refusals", json_object_new_uint64(s->budget_refusals));
	json_object_object_add(o, "commit_bandwidth", json_object_new_double(bandwidth(s)));
	if (s->last_commit.tv_sec) {
		snprintf(t, sizeof(t), "%lld.%09ld", (long long)s->last_commit.tv_sec,
			 s->last_commit.tv_nsec);
		json_object_object_add(o, "last_commit", json_object_new_double(strtod(t, NULL)));
	} else {
		json_object_object_add(o, "last_commit", NULL);
	}
	json_object_object_add(o, "last_error", s->last_error ?
			       json_object_new_string(strerror(-s->last_error)) : NULL);
	json_object_object_add(o, "last_errno", json_object_new_int(-s->last_error));
	json_object_object_add(o, "last_error_time", s->last_error_time ?
			       json_object_new_int64(s->last_error_time) : NULL);
	json_object_object_add(o, "pending_error", s->pending_error ?
			       json_object_new_string(strerror(-s->pending_error)) : NULL);
	json_object_object_add(o, "staging", json_object_new_string(mode_name(s->staging_mode)));
	json_object_object_add(o, "page_size", json_object_new_uint64(s->page_size));
	json_object_object_add(o, "chunk_size", json_object_new_uint64(s->chunk_size));
	json_object_object_add(o, "flush_interval", json_object_new_int64(s->flush_interval));
	json_object_object_add(o, "passthrough",
			       json_object_new_boolean(s->flags & RDMAFS_STAT_PASSTHROUGH));
	return o;
}

static void stat_human(const char *path, bool mount, const struct rdmafs_stat *s, bool header)
{
	char size[16], staged[16], changed[16], bw[24], when[32], err[48];

	if (header)
		printf("%-6s %7s %7s %7s %5s %6s %-19s %10s %-16s %s\n", "Type", "Size", "Staged",
		       "Changed", "Opens", "Leases", "Last commit", "Bandwidth", "Error",
		       "Path");
	human(s->size, size, sizeof(size));
	human(s->staged_bytes, staged, sizeof(staged));
	if (s->flags & RDMAFS_STAT_CHANGED_KNOWN)
		human(s->changed_bytes, changed, sizeof(changed));
	else
		snprintf(changed, sizeof(changed), "?");
	human((uint64_t)bandwidth(s), bw, sizeof(bw));
	strcat(bw, "/s");
	fmt_time(&s->last_commit, when, sizeof(when));
	snprintf(err, sizeof(err), "%s", s->lost_pages ? "staged pages lost" :
		 s->pending_error ? strerror(-s->pending_error) :
		 s->last_error ? strerror(-s->last_error) : "-");
	printf("%-6s %7s %7s %7s %5u %6u %-19s %10s %-16.16s %s\n",
	       mount ? "mount" : (s->flags & RDMAFS_STAT_STAGED) ? "file" : "file-",
	       size, mount || (s->flags & RDMAFS_STAT_STAGED) ? staged : "-", changed, s->opens,
	       s->leases, when, bw, err, path);
}

static int cmd_metrics(int npaths, char **paths, unsigned flags);

static int cmd_stat(int argc, char **argv)
{
	static const struct option opts[] = { { "json", no_argument, NULL, 'j' },
					      { "prometheus", no_argument, NULL, 'p' },
					      { "no-scan", no_argument, NULL, 'S' },
					      { "help", no_argument, NULL, 'h' }, { 0 } };
	json_object *arr = NULL;
	bool json = false, prom = false;
	unsigned flags = 0;
	char *dot[] = { ".", NULL };
	char **paths;
	int c, n, ret = 0;

	while ((c = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
		if (c == 'j')
			json = true;
		else if (c == 'p')
			prom = true;
		else if (c == 'S')
			flags |= RDMAFS_NO_SCAN;
		else if (c == 'h')
			return usage(stdout), 0;
		else
			return 2;
	}
	if (prom && json)
		return fprintf(stderr, "%s: stat: --json or --prometheus\n", prog), 2;
	if (prom)
		return cmd_metrics(argc - optind, argv + optind, flags);
	paths = optind < argc ? argv + optind : dot;
	n = optind < argc ? argc - optind : 1;
	if (json)
		arr = json_object_new_array();
	for (int i = 0; i < n; i++) {
		struct rdmafs_stat s;
		struct stat sb;
		bool mount;
		int r;

		if (stat(paths[i], &sb) < 0) {
			ret = fail("stat", paths[i], -errno);
			continue;
		}
		mount = S_ISDIR(sb.st_mode);
		if (mount) {
			r = rdmafs_mount_stat_flags(paths[i], &s, flags);
		} else {
			int fd = open(paths[i], O_RDONLY | O_CLOEXEC);

			r = fd < 0 ? -errno : rdmafs_stat_flags(fd, &s, flags);
			if (fd >= 0)
				close(fd);
		}
		if (r) {
			ret = fail("stat", paths[i], r);
			continue;
		}
		if (json)
			json_object_array_add(arr, stat_json(paths[i], mount, &s));
		else
			stat_human(paths[i], mount, &s, i == 0);
	}
	if (json) {
		printf("%s\n", json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PRETTY |
							     JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(arr);
	}
	return ret;
}

/* ---- metrics (Prometheus text format) ---- */

struct mount_info {
	char mnt[PATH_MAX];
	char source[PATH_MAX];
	dev_t dev;
};

/* rdmafs mounts from /proc/self/mountinfo (all, or the one of device @dev if not 0). */
static int list_mounts(dev_t dev, struct mount_info **out)
{
	struct libmnt_table *tb = mnt_new_table();
	struct libmnt_iter *it = mnt_new_iter(MNT_ITER_FORWARD);
	struct mount_info *v = NULL;
	struct libmnt_fs *fs;
	int n = 0, r;

	*out = NULL;
	r = tb && it ? mnt_table_parse_file(tb, "/proc/self/mountinfo") : -ENOMEM;
	while (!r && mnt_table_next_fs(tb, it, &fs) == 0) {
		const char *fstype = mnt_fs_get_fstype(fs), *mp = mnt_fs_get_target(fs);
		const char *src = mnt_fs_get_source(fs);
		struct mount_info *nv;

		if (!fstype || !mp || strcmp(fstype, "fuse.rdmafs"))
			continue;
		if (dev && mnt_fs_get_devno(fs) != dev)
			continue;
		nv = realloc(v, (n + 1) * sizeof(*v));
		if (!nv)
			break;
		v = nv;
		snprintf(v[n].mnt, sizeof(v[n].mnt), "%s", mp);
		snprintf(v[n].source, sizeof(v[n].source), "%s", src ? src : "");
		v[n].dev = mnt_fs_get_devno(fs);
		n++;
	}
	mnt_free_iter(it);
	mnt_unref_table(tb);
	if (r) {
		free(v);
		return r < 0 ? r : -EINVAL;
	}
	*out = v;
	return n;
}

/* A label value: backslash, double quote and newline escaped. */
static void prom_label(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fprintf(f, "\\%c", *s);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

struct scrape {
	const struct mount_info *mi;
	int err;			/* 0, or why this mount could not be read */
	struct rdmafs_metrics m;
};

static void prom_labels(FILE *f, const struct scrape *s, const char *extra)
{
	fputs("{mountpoint=\"", f);
	prom_label(f, s->mi->mnt);
	fputs("\",source=\"", f);
	prom_label(f, s->mi->source);
	fprintf(f, "\"%s%s}", extra ? "," : "", extra ? extra : "");
}

/* One metric (HELP, TYPE, a sample per mount) read from struct rdmafs_metrics. */
struct prom_metric {
	const char *name, *type, *help;
	size_t off;			/* of a uint64_t in struct rdmafs_metrics */
};

#define PM(name, type, field, help) { name, type, help, offsetof(struct rdmafs_metrics, field) }
static const struct prom_metric prom_metrics[] = {
	PM("rdmafs_staged_bytes", "gauge", staged_bytes,
	   "Staging memory held (charged to staging_budget)."),
	PM("rdmafs_staging_budget_bytes", "gauge", budget_bytes, "The staging_budget."),
	PM("rdmafs_dirty_bytes", "gauge", dirty_bytes,
	   "Staged bytes not yet committed (a scan; files in a commit are not counted)."),
	PM("rdmafs_staged_files", "gauge", files, "Files staged now."),
	PM("rdmafs_committing_files", "gauge", files_committing, "Commits running now."),
	PM("rdmafs_failing_files", "gauge", files_failing,
	   "Staged files whose last commit failed (their next flush returns the error)."),
	PM("rdmafs_open_handles", "gauge", opens, "Open handles of staged files."),
	PM("rdmafs_writable_handles", "gauge", opens_w, "Writable open handles of staged files."),
	PM("rdmafs_leases", "gauge", leases, "Leases held now."),
	PM("rdmafs_files_staged_total", "counter", files_staged_total,
	   "Files staged (filled from the backing file)."),
	PM("rdmafs_files_released_total", "counter", files_dropped_total,
	   "Staging released (idle and clean, or evicted)."),
	PM("rdmafs_evictions_total", "counter", evictions_total,
	   "Staged files evicted for staging_budget or by rdmafsctl evict."),
	PM("rdmafs_evicted_bytes_total", "counter", evicted_bytes_total,
	   "Staging memory freed by evictions."),
	PM("rdmafs_committed_bytes_total", "counter", committed_bytes_total,
	   "Bytes written to backing files and fdatasynced."),
	PM("rdmafs_written_bytes_total", "counter", written_bytes_total,
	   "Bytes written by commits (before their fdatasync)."),
	PM("rdmafs_scanned_bytes_total", "counter", scanned_bytes_total,
	   "Staged bytes hashed by commit passes."),
	PM("rdmafs_commits_total", "counter", commits_total,
	   "Commits that wrote data (= rdmafs_commit_duration_seconds_count)."),
	PM("rdmafs_lease_grants_total", "counter", lease_granted, "Leases granted."),
	PM("rdmafs_lease_breaks_total", "counter", lease_breaks, "Lease breaks that found leases."),
	PM("rdmafs_lease_denies_total", "counter", lease_denies,
	   "Lease breaks that timed out and failed with EBUSY (lease_expire = deny)."),
	PM("rdmafs_lease_revokes_total", "counter", lease_revokes,
	   "Leases revoked with SIGBUS (lease_expire = revoke, or shutdown)."),
	PM("rdmafs_lease_holder_deaths_total", "counter", lease_deaths,
	   "Leases dropped because their holder died."),
};

static void prom_le(char *buf, size_t size, uint64_t ns)
{
	if (ns == UINT64_MAX)
		snprintf(buf, size, "le=\"+Inf\"");
	else
		snprintf(buf, size, "le=\"%g\"", ns / 1e9);
}

static void prom_print(FILE *f, const struct scrape *v, int n)
{
	fputs("# HELP rdmafs_up 1 if the mount's daemon answered, 0 if not.\n"
	      "# TYPE rdmafs_up gauge\n", f);
	for (int i = 0; i < n; i++) {
		fputs("rdmafs_up", f);
		prom_labels(f, &v[i], NULL);
		fprintf(f, " %d\n", !v[i].err);
	}
	for (size_t k = 0; k < sizeof(prom_metrics) / sizeof(prom_metrics[0]); k++) {
		const struct prom_metric *pm = &prom_metrics[k];

		fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", pm->name, pm->help, pm->name, pm->type);
		for (int i = 0; i < n; i++) {
			uint64_t val;

			memcpy(&val, (const char *)&v[i].m + pm->off, sizeof(val));
			if (v[i].err || (pm->off == offsetof(struct rdmafs_metrics, dirty_bytes) &&
					 val == RDMAFS_DIRTY_NOT_KNOWN))
				continue;
			fputs(pm->name, f);
			prom_labels(f, &v[i], NULL);
			fprintf(f, " %" PRIu64 "\n", val);
		}
	}
	fputs("# HELP rdmafs_commit_failures_total Failed commits, by errno (the data stays "
	      "staged and is retried).\n# TYPE rdmafs_commit_failures_total counter\n", f);
	for (int i = 0; i < n; i++) {
		for (unsigned e = 0; !v[i].err && e < v[i].m.nerrnos; e++) {
			const char *name = v[i].m.failures[e].error ?
					   strerrorname_np(-v[i].m.failures[e].error) : NULL;
			char extra[64];

			snprintf(extra, sizeof(extra), "errno=\"%s\"", name ? name : "other");
			fputs("rdmafs_commit_failures_total", f);
			prom_labels(f, &v[i], extra);
			fprintf(f, " %" PRIu64 "\n", v[i].m.failures[e].count);
		}
	}
	fputs("# HELP rdmafs_commit_duration_seconds Time a commit took: scan, writes and "
	      "fdatasync.\n# TYPE rdmafs_commit_duration_seconds histogram\n", f);
	for (int i = 0; i < n; i++) {
		const struct rdmafs_metrics *m = &v[i].m;
		uint64_t cum = 0;
		bool inf = false;
		char le[48];

		if (v[i].err)
			continue;
		for (unsigned b = 0; b < m->nbuckets; b++) {
			cum += m->bucket_count[b];
			inf |= m->bucket_le_ns[b] == UINT64_MAX;
			prom_le(le, sizeof(le), m->bucket_le_ns[b]);
			fputs("rdmafs_commit_duration_seconds_bucket", f);
			prom_labels(f, &v[i], le);
			fprintf(f, " %" PRIu64 "\n", cum);
		}
		if (!inf) {
			fputs("rdmafs_commit_duration_seconds_bucket", f);
			prom_labels(f, &v[i], "le=\"+Inf\"");
			fprintf(f, " %" PRIu64 "\n", cum);
		}
		fputs("rdmafs_commit_duration_seconds_sum", f);
		prom_labels(f, &v[i], NULL);
		fprintf(f, " %.9f\n", m->commit_ns_total / 1e9);
		fputs("rdmafs_commit_duration_seconds_count", f);
		prom_labels(f, &v[i], NULL);
		fprintf(f, " %" PRIu64 "\n", cum);
	}
}

/* `stat --prometheus` and `metrics`: every mount of @paths (none: all rdmafs mounts). */
static int cmd_metrics(int npaths, char **paths, unsigned flags)
{
	struct mount_info *mounts = NULL;
	struct scrape *v;
	int n = 0, ret = 0;

	if (!npaths) {
		n = list_mounts(0, &mounts);
		if (n < 0)
			return fail("read", "/proc/self/mountinfo", n);
	}
	for (int i = 0; i < npaths; i++) {
		struct mount_info *one, *nv;
		struct stat sb;
		int k;

		if (stat(paths[i], &sb) < 0) {
			ret = fail("stat", paths[i], -errno);
			continue;
		}
		k = list_mounts(sb.st_dev, &one);
		if (k <= 0) {
			ret = fail("metrics", paths[i], k < 0 ? k : -EXDEV);
			continue;
		}
		nv = realloc(mounts, (n + 1) * sizeof(*mounts));
		if (nv) {
			mounts = nv;
			mounts[n++] = one[k - 1];	/* the last is the mount on top */
		}
		free(one);
	}
	v = calloc(n ? n : 1, sizeof(*v));
	if (!v) {
		free(mounts);
		return fail("metrics", NULL, -ENOMEM);
	}
	for (int i = 0; i < n; i++) {
		v[i].mi = &mounts[i];
		v[i].err = rdmafs_metrics(mounts[i].mnt, flags, &v[i].m);
		if (v[i].err) {
			fail("metrics", mounts[i].mnt, v[i].err);
			ret = 1;
		}
	}
	prom_print(stdout, v, n);
	free(v);
	free(mounts);
	if (fflush(stdout) || ferror(stdout))
		return fail("write", "stdout", -EIO);
	return ret;
}

static int cmd_metrics_main(int argc, char **argv)
{
	static const struct option opts[] = { { "no-scan", no_argument, NULL, 'S' },
					      { "prometheus", no_argument, NULL, 'p' },
					      { "help", no_argument, NULL, 'h' }, { 0 } };
	unsigned flags = 0;
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'S')
			flags |= RDMAFS_NO_SCAN;
		else if (c == 'h')
			return usage(stdout), 0;
		else if (c != 'p')
			return 2;
	}
	return cmd_metrics(argc - optind, argv + optind, flags);
}

/* ---- top ---- */

struct top_row {
	struct rdmafs_file_info f;
	double rate;			/* committed bytes per second since the last refresh */
};

/* Previous sample of a file, to turn committed_bytes into a rate. */
struct top_prev {
	uint64_t ino, committed;
};

static int top_cmp(const void *a, const void *b)
{
	const struct top_row *x = a, *y = b;
	uint64_t dx = x->f.dirty_bytes == RDMAFS_DIRTY_NOT_KNOWN ? 0 : x->f.dirty_bytes;
	uint64_t dy = y->f.dirty_bytes == RDMAFS_DIRTY_NOT_KNOWN ? 0 : y->f.dirty_bytes;
	bool cx = x->f.flags & RDMAFS_M_COMMITTING, cy = y->f.flags & RDMAFS_M_COMMITTING;

	if (x->rate != y->rate)
		return x->rate < y->rate ? 1 : -1;
	if (cx != cy)
		return cx ? -1 : 1;
	if (dx != dy)
		return dx < dy ? 1 : -1;
	if (x->f.opens_w != y->f.opens_w)
		return x->f.opens_w < y->f.opens_w ? 1 : -1;
	if (x->f.leases != y->f.leases)
		return x->f.leases < y->f.leases ? 1 : -1;
	return strcmp(x->f.path, y->f.path);
}

static int cmd_top(int argc, char **argv)
{
	static const struct option opts[] = { { "batch", no_argument, NULL, 'b' },
					      { "iterations", required_argument, NULL, 'n' },
					      { "delay", required_argument, NULL, 'd' },
					      { "no-scan", no_argument, NULL, 'S' },
					      { "help", no_argument, NULL, 'h' }, { 0 } };
	struct top_prev *prev = NULL;
	size_t nprev = 0;
	double delay = 2, last = 0;
	long count = -1;
	unsigned flags = 0;
	bool batch = !isatty(STDOUT_FILENO);
	const char *path;
	char *end;
	int c;

	while ((c = getopt_long(argc, argv, "bn:d:h", opts, NULL)) != -1) {
		switch (c) {
		case 'b':
			batch = true;
			break;
		case 'n':
			count = strtol(optarg, &end, 10);
			if (*end || count < 1)
				return fprintf(stderr, "%s: top: bad -n %s\n", prog, optarg), 2;
			break;
		case 'd':
			delay = strtod(optarg, &end);
			if (*end || !(delay >= 0.1 && delay <= 86400))
				return fprintf(stderr, "%s: top: bad -d %s\n", prog, optarg), 2;
			break;
		case 'S':
			flags |= RDMAFS_NO_SCAN;
			break;
		case 'h':
			return usage(stdout), 0;
		default:
			return 2;
		}
	}
	if (argc - optind > 1)
		return fprintf(stderr, "%s: top takes one PATH\n", prog), 2;
	path = optind < argc ? argv[optind] : ".";
	for (long iter = 0; count < 0 || iter < count; iter++) {
		struct rdmafs_file_info *files;
		struct rdmafs_metrics m;
		struct top_row *rows;
		struct top_prev *np;
		struct winsize ws = { 0 };
		char t1[16], t2[16], t3[16], when[32];
		double now;
		time_t wall;
		int n, r, lines;

		if (iter) {
			struct timespec ts = { (time_t)delay,
					       (long)((delay - (time_t)delay) * 1e9) };

			while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
				;
		}
		r = rdmafs_metrics(path, RDMAFS_NO_SCAN, &m);
		n = r ? r : rdmafs_files(path, flags, &files);
		if (n < 0)
			return fail("top", path, n);
		now = mono_s();
		rows = calloc(n ? n : 1, sizeof(*rows));
		np = calloc(n ? n : 1, sizeof(*np));
		if (!rows || !np) {
			free(files);
			free(rows);
			free(np);
			return fail("top", path, -ENOMEM);
		}
		for (int i = 0; i < n; i++) {
			rows[i].f = files[i];
			np[i].ino = files[i].ino;
			np[i].committed = files[i].committed_bytes;
			for (size_t k = 0; k < nprev; k++)
				if (prev[k].ino == files[i].ino &&
				    files[i].committed_bytes >= prev[k].committed)
					rows[i].rate = (files[i].committed_bytes - prev[k].committed) /
						       (now - last);
		}
		free(files);
		free(prev);
		prev = np;
		nprev = n;
		last = now;
		qsort(rows, n, sizeof(*rows), top_cmp);
		wall = time(NULL);
		strftime(when, sizeof(when), "%H:%M:%S", localtime(&wall));
		human(m.staged_bytes, t1, sizeof(t1));
		human(m.committed_bytes_total, t2, sizeof(t2));
		human(m.written_bytes_total, t3, sizeof(t3));
		if (!batch) {
			ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws);
			printf("\033[H\033[2J");
		} else if (iter) {
			printf("\n");
		}
		printf("rdmafsctl top - %s  %s: %" PRIu64 " staged files, %s staged, %" PRIu64
		       " committing, %" PRIu64 " failing, %" PRIu64 " leases\n", when, path,
		       m.files, t1, m.files_committing, m.files_failing, m.leases);
		printf("commits %" PRIu64 " (%s committed, %s written), %" PRIu64 " failed, %" PRIu64
		       " evictions\n\n", m.commits_total, t2, t3, m.failures_total, m.evictions_total);
		printf("%-10s %7s %7s %9s %9s %7s %5s %6s %-6s %s\n", "INO", "SIZE", "DIRTY",
		       "COMMIT/s", "COMMITTED", "COMMITS", "OPENS", "LEASES", "STATE", "PATH");
		lines = ws.ws_row > 5 ? ws.ws_row - 5 : n;
		for (int i = 0; i < n && i < lines; i++) {
			const struct rdmafs_file_info *f = &rows[i].f;
			char size[16], dirty[16], rate[16], done[16];
			const char *state = f->pending_error ? "error" :
					    (f->flags & RDMAFS_M_COMMITTING) ? "commit" :
					    (f->flags & RDMAFS_M_SEALED) ? "sealed" : "-";

			human(f->size, size, sizeof(size));
			if (f->dirty_bytes == RDMAFS_DIRTY_NOT_KNOWN)
				snprintf(dirty, sizeof(dirty), "?");
			else
				human(f->dirty_bytes, dirty, sizeof(dirty));
			human((uint64_t)rows[i].rate, rate, sizeof(rate));
			human(f->committed_bytes, done, sizeof(done));
			printf("%-10" PRIu64 " %7s %7s %7s/s %9s %7" PRIu64 " %5u %6u %-6s %s\n",
			       f->ino, size, dirty, rate, done, f->commits, f->opens, f->leases,
			       state, f->path[0] ? f->path : "?");
		}
		free(rows);
		if (fflush(stdout) || ferror(stdout)) {
			free(prev);
			return 1;
		}
	}
	free(prev);
	return 0;
}

/* ---- evict ---- */

static int cmd_evict(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : ".";
	struct rdmafs_report rep;
	char b[16];
	int r;

	if (argc > 2)
		return fprintf(stderr, "%s: evict takes one PATH\n", prog), 2;
	r = rdmafs_evict(path, &rep);
	if (r)
		return fail("evict", path, r);
	human(rep.bytes, b, sizeof(b));
	printf("evicted %" PRIu64 " of %" PRIu64 " staged files, %s freed\n", rep.files_done,
	       rep.files_total, b);
	return 0;
}

/* ---- leases ---- */

static int cmd_lease(int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : "";

	if (!strcmp(sub, "list")) {
		const char *path = argc > 2 ? argv[2] : ".";
		struct rdmafs_lease_info *v;
		struct stat sb;
		int fd = -1, n;

		if (stat(path, &sb) < 0)
			return fail("stat", path, -errno);
		if (!S_ISDIR(sb.st_mode)) {
			fd = open(path, O_RDONLY | O_CLOEXEC);
			if (fd < 0)
				return fail("open", path, -errno);
		}
		n = rdmafs_lease_list(path, fd, &v);
		if (fd >= 0)
			close(fd);
		if (n < 0)
			return fail("lease list", path, n);
		printf("%-8s %-6s %-8s %-12s %s\n", "Pid", "Signal", "State", "Inode", "Path");
		for (int i = 0; i < n; i++)
			printf("%-8d %-6d %-8s %-12" PRIu64 " %s\n", v[i].pid, v[i].signo,
			       v[i].breaking ? "breaking" : "held", v[i].ino, v[i].path);
		free(v);
		return 0;
	}
	if (!strcmp(sub, "break")) {
		int fd, r;

		if (argc != 3)
			return fprintf(stderr, "%s: lease break PATH\n", prog), 2;
		fd = open(argv[2], O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return fail("open", argv[2], -errno);
		r = rdmafs_lease_break(fd);
		close(fd);
		if (r)
			return fail("lease break", argv[2], r);
		return 0;
	}
	if (!strcmp(sub, "hold")) {
		int signo = 0, fd, lfd, i = 2;
		char buf[64];

		if (argc > 3 && !strcmp(argv[2], "-s")) {
			signo = atoi(argv[3]);
			i = 4;
		}
		if (argc != i + 1)
			return fprintf(stderr, "%s: lease hold [-s SIGNO] PATH\n", prog), 2;
		/* A lease needs a writable open (or to own the file): read-write if we may. */
		fd = open(argv[i], O_RDWR | O_CLOEXEC);
		if (fd < 0 && errno == EACCES)
			fd = open(argv[i], O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return fail("open", argv[i], -errno);
		lfd = rdmafs_lease(fd, signo);
		close(fd);
		if (lfd < 0)
			return fail("lease", argv[i], lfd);
		printf("lease held\n");
		fflush(stdout);
		/* Readable when the lease is being broken (a notice), or EOF if the daemon left. */
		if (read(lfd, buf, sizeof(buf)) > 0)
			printf("lease break\n");
		close(lfd);
		return 0;
	}
	return fprintf(stderr, "%s: lease list|break|hold; see --help\n", prog), 2;
}

/* ---- replay ---- */

/*
 * Open the file a MANIFEST record names for writing, only if it is the file that was
 * rescued: reached below @rootfd without following any symlink (openat2 RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS), and with the recorded device, inode, owner and birth time. A user
 * may have replaced any part of that path since; root must not write through it.
 * Returns the fd or -errno (-ESTALE: another file is there now).
 */
static int replay_open(int rootfd, const struct rdmafs_manifest_rec *m)
{
	struct open_how how = { .flags = O_PATH | O_NOFOLLOW | O_CLOEXEC,
				.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
					   RESOLVE_NO_MAGICLINKS };
	char proc[64];
	struct statx stx;
	struct stat sb;
	int pfd, fd, r;

	if (!m->path[0])
		return -ENOENT;	/* it had no path when rescued (unlinked) */
	pfd = (int)syscall(SYS_openat2, rootfd, m->path, &how, sizeof(how));
	if (pfd < 0)
		return -errno;
	r = statx(pfd, "", AT_EMPTY_PATH, STATX_BASIC_STATS | STATX_BTIME, &stx) < 0 ? -errno : 0;
	if (!r && (!S_ISREG(stx.stx_mode) ||
		   makedev(stx.stx_dev_major, stx.stx_dev_minor) != m->dev ||
		   stx.stx_ino != m->ino || stx.stx_uid != m->uid ||
		   ((stx.stx_mask & STATX_BTIME) && (m->btime_sec || m->btime_nsec) &&
		    ((uint64_t)stx.stx_btime.tv_sec != m->btime_sec ||
		     stx.stx_btime.tv_nsec != m->btime_nsec))))
		r = -ESTALE;
	if (r) {
		close(pfd);
		return r;
	}
	/* Reopen that very inode (the O_PATH fd's magic link), not the path again. */
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", pfd);
	fd = open(proc, O_WRONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	r = fd < 0 ? -errno : 0;
	close(pfd);
	if (!r && (fstat(fd, &sb) < 0 || sb.st_ino != m->ino || sb.st_dev != m->dev))
		r = -ESTALE;
	if (r && fd >= 0)
		close(fd);
	return r ? r : fd;
}

static int replay_one(int dirfd, int rootfd, const struct rdmafs_manifest_rec *m)
{
	char buf[1 << 16];
	uint64_t off = 0, size = m->size;
	int in, out, r = 0;

	in = openat(dirfd, m->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (in < 0)
		return -errno;
	out = replay_open(rootfd, m);
	if (out < 0) {
		close(in);
		return out;
	}
	while (off < size) {
		ssize_t n = pread(in, buf, size - off < sizeof(buf) ? size - off : sizeof(buf), off);

		if (n <= 0) {
			r = n < 0 ? -errno : -EIO;	/* the data file is shorter than recorded */
			break;
		}
		for (ssize_t done = 0; done < n;) {
			ssize_t w = pwrite(out, buf + done, n - done, off + done);

			if (w < 0) {
				r = -errno;
				goto out;
			}
			done += w;
		}
		off += n;
	}
	if (!r && ftruncate(out, size) < 0)
		r = -errno;
	if (!r && fsync(out) < 0)
		r = -errno;
out:
	close(in);
	close(out);
	return r;
}

/* The recorded backing root, if it is still the same directory (device and inode). */
static int replay_root(const struct rdmafs_manifest_rec *m)
{
	struct stat sb;
	int fd = open(m->path, O_PATH | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb) < 0 || sb.st_dev != m->dev || sb.st_ino != m->ino) {
		close(fd);
		return -ESTALE;
	}
	return fd;
}

static int cmd_replay(int argc, char **argv)
{
	static struct rdmafs_manifest_rec m;
	char *line = NULL, esc[4 * RDMAFS_MANIFEST_PATH_MAX];
	size_t cap = 0;
	ssize_t len;
	unsigned ok = 0, bad = 0, lineno = 0, version = 0;
	int dirfd, mfd, rootfd = -1;
	FILE *f;

	if (argc != 2)
		return fprintf(stderr, "%s: replay RESCUE_DIR\n", prog), 2;
	dirfd = open(argv[1], O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (dirfd < 0)
		return fail("open", argv[1], -errno);
	mfd = openat(dirfd, "MANIFEST", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	f = mfd >= 0 ? fdopen(mfd, "r") : NULL;
	if (!f) {
		close(dirfd);
		return fail("open MANIFEST in", argv[1], -errno);
	}
	while ((len = getline(&line, &cap, f)) > 0) {
		int r;

		lineno++;
		if (line[len - 1] == '\n')
			len--;
		if (rdmafs_manifest_parse(line, (size_t)len, &m)) {
			fprintf(stderr, "%s: %s/MANIFEST:%u: malformed line\n", prog, argv[1], lineno);
			bad++;
			continue;
		}
		if (m.kind == RDMAFS_MANIFEST_SKIP)
			continue;
		if (m.kind == RDMAFS_MANIFEST_FORMAT) {
			version = m.version;
			continue;
		}
		if (version != RDMAFS_MANIFEST_VERSION) {
			/* Format 1 named files by path alone: replaying it as root is unsafe. */
			fprintf(stderr, "%s: %s/MANIFEST:%u: not a format %d MANIFEST (no file "
				"identity recorded); copy its files by hand\n", prog, argv[1], lineno,
				RDMAFS_MANIFEST_VERSION);
			bad++;
			break;
		}
		if (m.kind == RDMAFS_MANIFEST_ROOT) {
			if (rootfd >= 0)
				close(rootfd);
			rootfd = replay_root(&m);
			if (rootfd < 0)
				fprintf(stderr, "%s: backing root %s: %s\n", prog, m.path,
					rootfd == -ESTALE ? "another directory is there now" :
					strerror(-rootfd));
			continue;
		}
		r = rootfd < 0 ? -ENOENT : replay_one(dirfd, rootfd, &m);
		if (rdmafs_manifest_escape(m.path[0] ? m.path : "(no path)", esc, sizeof(esc)) < 0)
			strcpy(esc, "(path too long)");
		if (r) {
			fprintf(stderr, "%s: replay %s -> %s: %s\n", prog, m.name, esc,
				r == -ESTALE ? "not the rescued file any more, refused" :
				r == -ELOOP ? "a symlink on the way, refused" :
				r == -EXDEV ? "path leaves the backing root, refused" : strerror(-r));
			bad++;
		} else {
			printf("replayed %s -> %s (%" PRIu64 " bytes)\n", m.name, esc, m.size);
			ok++;
		}
	}
	if (!version && !bad) {
		fprintf(stderr, "%s: %s/MANIFEST: no format line\n", prog, argv[1]);
		bad++;
	}
	free(line);
	fclose(f);
	if (rootfd >= 0)
		close(rootfd);
	close(dirfd);
	printf("%u file(s) replayed, %u failed\n", ok, bad);
	return bad ? 1 : 0;
}

/*
 * The supervisor that keeps the mount's descriptors starts the next daemon generation
 * from the binary installed now (SIGUSR2, doc/restart.md): wait until a new generation
 * answers. Generation + 1 answering: the new binary serves; + 2 or more: it did not start
 * and the supervisor went back to the previous binary (or it died meanwhile).
 */
static int cmd_restart(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : ".";
	struct rdmafs_stat s, n;
	struct timespec t0, t1;
	int r;

	if (argc > 2)
		return fprintf(stderr, "%s: restart takes one PATH\n", prog), 2;
	r = rdmafs_mount_stat(path, &s);
	if (r)
		return fail("restart", path, r);
	if (s.supervisor_pid <= 0) {
		fprintf(stderr, "%s: restart %s: the mount has no supervisor (restart = off, or "
			"the kernel cannot resend requests): its daemon cannot restart\n", prog, path);
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (kill(s.supervisor_pid, SIGUSR2) < 0)
		return fail("restart", path, -errno);
	for (;;) {
		struct timespec nap = { 0, 20 * 1000 * 1000 };

		/* Asked during the restart, this waits in the kept listener's backlog; one
		 * the dying generation had accepted is reset: ask again. */
		r = rdmafs_mount_stat(path, &n);
		if (r && r != -ECONNRESET && r != -EPIPE && r != -ECONNREFUSED)
			return fail("restart", path, r);
		if (!r && n.generation != s.generation)
			break;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (t1.tv_sec - t0.tv_sec > 60) {
			fprintf(stderr, "%s: restart %s: generation %u still serves after 60 s (see "
				"the supervisor's log)\n", prog, path, s.generation);
			return 1;
		}
		nanosleep(&nap, NULL);
	}
	if (n.generation != s.generation + 1) {
		char why[64];

		fprintf(stderr, "%s: restart %s: generation %u serves, not %u: the new binary "
			"did not start (%s), or a generation died (see the supervisor's log)\n",
			prog, path, n.generation, s.generation + 1,
			n.prev_exit == 77 ? "it cannot serve this mount: its FUSE INIT or state "
					    "layout differs" :
			n.prev_exit >= 0 ? prev_exit_name(n.prev_exit, why, sizeof(why)) : "?");
		return 1;
	}
	printf("generation %u serves (blackout %.1f ms)\n", n.generation,
	       n.last_blackout_us / 1e3);
	return 0;
}

int main(int argc, char **argv)
{
	const char *cmd;

	if (argc < 2)
		return usage(stderr), 2;
	cmd = argv[1];
	if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help"))
		return usage(stdout), 0;
	if (!strcmp(cmd, "-V") || !strcmp(cmd, "--version")) {
		printf("rdmafsctl %s\n", RDMAFS_VERSION);
		return 0;
	}
	if (!strcmp(cmd, "flush"))
		return cmd_flush(argc - 1, argv + 1);
	if (!strcmp(cmd, "stat"))
		return cmd_stat(argc - 1, argv + 1);
	if (!strcmp(cmd, "evict"))
		return cmd_evict(argc - 1, argv + 1);
	if (!strcmp(cmd, "metrics"))
		return cmd_metrics_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "top"))
		return cmd_top(argc - 1, argv + 1);
	if (!strcmp(cmd, "lease"))
		return cmd_lease(argc - 1, argv + 1);
	if (!strcmp(cmd, "replay"))
		return cmd_replay(argc - 1, argv + 1);
	if (!strcmp(cmd, "restart"))
		return cmd_restart(argc - 1, argv + 1);
	fprintf(stderr, "%s: unknown command '%s'; see %s --help\n", prog, cmd, prog);
	return 2;
}
