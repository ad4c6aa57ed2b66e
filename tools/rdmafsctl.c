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
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/openat2.h>
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
		"  flush [--all [PATH] | PATH...]  commit files (or every staged file of the mount\n"
		"                                  of PATH, default .) and wait until durable\n"
		"  stat [--json] [PATH...]\n"
		"                                  staging state of files, or of the mount when\n"
		"                                  PATH is a directory (default .)\n"
		"  evict [PATH]                    commit and drop staging nobody uses\n"
		"  lease list [PATH]               leases of a file, or of the whole mount\n"
		"  lease break PATH                break the leases on a file\n"
		"  lease hold [-s SIGNAL] PATH     hold a lease until it is broken or killed\n"
		"  replay RESCUE_DIR               copy a rescue folder back over its backing files\n"
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

static void progress(const struct rdmafs_report *p, void *arg)
{
	char b[16];

	human(p->bytes, b, sizeof(b));
	fprintf(stderr, "\rflushing: %" PRIu64 "/%" PRIu64 " files, %s committed", p->files_done,
		p->files_total, b);
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

static int cmd_flush(int argc, char **argv)
{
	static const struct option opts[] = { { "all", no_argument, NULL, 'a' },
					      { "help", no_argument, NULL, 'h' }, { 0 } };
	bool all = false;
	int c, ret = 0;

	while ((c = getopt_long(argc, argv, "ah", opts, NULL)) != -1) {
		if (c == 'a')
			all = true;
		else if (c == 'h')
			return usage(stdout), 0;
		else
			return 2;
	}
	on_tty = isatty(STDERR_FILENO);
	if (all) {
		const char *path = optind < argc ? argv[optind] : ".";
		struct rdmafs_report rep;
		char b[16];
		int r;

		if (argc - optind > 1)
			return fprintf(stderr, "%s: flush --all takes one PATH\n", prog), 2;
		r = rdmafs_flush_all_report(path, &rep, on_tty ? progress : NULL, NULL);
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
		r = rdmafs_flush(fd);
		close(fd);
		if (r == -EBADF) {	/* not root: the daemon wants a writable open */
			fd = open(argv[i], O_WRONLY | O_CLOEXEC);
			r = fd < 0 ? -errno : rdmafs_flush(fd);
			if (fd >= 0)
				close(fd);
		}
		if (r)
			ret = fail("flush", argv[i], r);
		if (on_tty && argc - optind > 1)
			fprintf(stderr, "\rflushing: %d/%d files", i - optind + 1, argc - optind);
	}
	if (on_tty && argc - optind > 1)
		fprintf(stderr, "\r\033[K");
	return ret;
}

/* ---- stat ---- */

static const char *mode_name(unsigned m)
{
	static const char *const names[] = { "shmem", "thp", "hugetlb" };

	return m < 3 ? names[m] : "?";
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
	} else {
		json_object_object_add(o, "ino", json_object_new_uint64(s->ino));
		json_object_object_add(o, "sealed",
				       json_object_new_boolean(s->flags & RDMAFS_STAT_SEALED));
	}
	json_object_object_add(o, "commits", json_object_new_uint64(s->commits));
	json_object_object_add(o, "failures", json_object_new_uint64(s->failures));
	json_object_object_add(o, "committed_bytes", json_object_new_uint64(s->committed_bytes));
	json_object_object_add(o, "scanned_bytes", json_object_new_uint64(s->scanned_bytes));
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
	snprintf(err, sizeof(err), "%s", s->pending_error ? strerror(-s->pending_error) :
		 s->last_error ? strerror(-s->last_error) : "-");
	printf("%-6s %7s %7s %7s %5u %6u %-19s %10s %-16.16s %s\n",
	       mount ? "mount" : (s->flags & RDMAFS_STAT_STAGED) ? "file" : "file-",
	       size, mount || (s->flags & RDMAFS_STAT_STAGED) ? staged : "-", changed, s->opens,
	       s->leases, when, bw, err, path);
}

static int cmd_stat(int argc, char **argv)
{
	static const struct option opts[] = { { "json", no_argument, NULL, 'j' },
					      { "help", no_argument, NULL, 'h' }, { 0 } };
	json_object *arr = NULL;
	bool json = false;
	char *dot[] = { ".", NULL };
	char **paths;
	int c, n, ret = 0;

	while ((c = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
		if (c == 'j')
			json = true;
		else if (c == 'h')
			return usage(stdout), 0;
		else
			return 2;
	}
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
			r = rdmafs_mount_stat(paths[i], &s);
		} else {
			int fd = open(paths[i], O_RDONLY | O_CLOEXEC);

			r = fd < 0 ? -errno : rdmafs_stat(fd, &s);
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
	if (!strcmp(cmd, "lease"))
		return cmd_lease(argc - 1, argv + 1);
	if (!strcmp(cmd, "replay"))
		return cmd_replay(argc - 1, argv + 1);
	fprintf(stderr, "%s: unknown command '%s'; see %s --help\n", prog, cmd, prog);
	return 2;
}
