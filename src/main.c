// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * main.c - owns the daemon's life: command line, configuration, modules started in order
 * (conf, log, inode, staging, flusher, ctl) and stopped in reverse, with a final commit.
 */
#include "rdmafsd.h"
#include "budget.h"
#include "commit.h"
#include "restart.h"

#include <fcntl.h>
#include <signal.h>
#include <fuse_lowlevel.h>
#include <libmount.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define DEFAULT_CONF RDMAFS_SYSCONFDIR "/rdmafs/rdmafs.conf"
/* What the supervisor tells its generations (absolute: they run in /). */
#define ENV_SOURCE "RDMAFS_SUP_SOURCE"
#define ENV_MOUNTPOINT "RDMAFS_SUP_MOUNTPOINT"
#define ENV_CONF "RDMAFS_SUP_CONF"

struct cmdline {
	char *source, *mountpoint, *conf_file;
	bool foreground, debug, help, version, check;
	/* -o key=value pairs for the config, applied after the file. */
	char **overrides;
	size_t noverrides;
	int bad;
};

enum { KEY_HELP, KEY_VERSION, KEY_FG, KEY_DEBUG, KEY_CHECK };

static const struct fuse_opt opt_spec[] = {
	{ "conf=%s", offsetof(struct cmdline, conf_file), 0 },
	FUSE_OPT_KEY("-h", KEY_HELP),
	FUSE_OPT_KEY("--help", KEY_HELP),
	FUSE_OPT_KEY("-V", KEY_VERSION),
	FUSE_OPT_KEY("--version", KEY_VERSION),
	FUSE_OPT_KEY("-f", KEY_FG),
	FUSE_OPT_KEY("-d", KEY_DEBUG),
	FUSE_OPT_KEY("debug", KEY_DEBUG),
	FUSE_OPT_KEY("--check-config", KEY_CHECK),
	FUSE_OPT_END
};

static void usage(const char *prog)
{
	printf("usage: %s SOURCE MOUNTPOINT [-f] [-d] [-o conf=FILE,key=value,...]\n"
	       "\n"
	       "Mount the directory SOURCE at MOUNTPOINT. Files opened for writing are staged\n"
	       "in shared memory and passed through to the kernel, so a mapping of them may be\n"
	       "pinned by RDMA (ibv_reg_mr) and DMA engines; changes are committed to SOURCE by\n"
	       "content (XXH3 per chunk) on fsync, close, every flush_interval and at unmount.\n"
	       "\n"
	       "options:\n"
	       "  -f                   stay in the foreground, log to stderr\n"
	       "  -d, -o debug         foreground, FUSE request tracing and log_level=debug\n"
	       "  -o conf=FILE         configuration file (default %s if it exists)\n"
	       "  -o KEY=VALUE         any rdmafs.conf key, e.g. -o flush_interval=1,staging=thp\n"
	       "  --check-config       parse the configuration, print it and exit\n"
	       "  -h, --help           this text\n"
	       "  -V, --version        version\n"
	       "\n"
	       "Other -o options are FUSE mount options (ro, allow_other, ...).\n"
	       "Through mount(8): mount -t fuse.rdmafs SOURCE MOUNTPOINT -o KEY=VALUE\n"
	       "See rdmafs(8) and rdmafs.conf(5).\n",
	       prog, DEFAULT_CONF);
}

static int opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct cmdline *cl = data;
	const char *eq;

	switch (key) {
	case KEY_HELP:
		cl->help = true;
		return 0;
	case KEY_VERSION:
		cl->version = true;
		return 0;
	case KEY_FG:
		cl->foreground = true;
		return 0;
	case KEY_DEBUG:
		cl->foreground = cl->debug = true;
		return fuse_opt_add_arg(outargs, "-odebug") ? -1 : 0;
	case KEY_CHECK:
		cl->check = true;
		return 0;
	case FUSE_OPT_KEY_NONOPT:
		if (!cl->source)
			return (cl->source = strdup(arg)) ? 0 : -1;
		if (!cl->mountpoint)
			return (cl->mountpoint = strdup(arg)) ? 0 : -1;
		fprintf(stderr, "rdmafs: unexpected argument '%s'\n", arg);
		cl->bad = 1;
		return -1;
	case FUSE_OPT_KEY_OPT:
		eq = strchr(arg, '=');
		if (eq) {
			char key_name[64];
			size_t n = eq - arg;

			if (n < sizeof(key_name)) {
				memcpy(key_name, arg, n);
				key_name[n] = 0;
				if (conf_is_key(key_name)) {
					char **v = realloc(cl->overrides,
							   (cl->noverrides + 1) * sizeof(*v));

					if (!v)
						return -1;
					cl->overrides = v;
					v[cl->noverrides++] = strdup(arg);
					return 0;
				}
			}
		}
		return 1;	/* a FUSE option: fuse_session_new checks it */
	default:
		return 1;
	}
}

static int build_config(struct cmdline *cl, struct conf *c)
{
	const char *file = cl->conf_file;
	char err[1024];
	int r;

	conf_defaults(c);
	if (!file && access(DEFAULT_CONF, R_OK) == 0)
		file = DEFAULT_CONF;
	r = conf_load_file(c, file, err, sizeof(err));
	if (r) {
		fprintf(stderr, "rdmafs: %s\n", err);
		return r;
	}
	for (size_t i = 0; i < cl->noverrides; i++) {
		char *kv = cl->overrides[i], *eq = strchr(kv, '=');

		*eq = 0;
		r = conf_set(c, kv, eq + 1, err, sizeof(err));
		*eq = '=';
		if (r) {
			fprintf(stderr, "rdmafs: option -o %s: %s\n", kv, err);
			return r;
		}
	}
	if (cl->debug)
		c->log_level = LOG_LVL_DEBUG;
	return 0;
}

static void cmdline_free(struct cmdline *cl)
{
	for (size_t i = 0; i < cl->noverrides; i++)
		free(cl->overrides[i]);
	free(cl->overrides);
	free(cl->source);
	free(cl->mountpoint);
	free(cl->conf_file);
}

static int run(int argc, char *argv[], struct cmdline *cl, struct fuse_args *args);

/*
 * Refuse a mountpoint that is not a directory; warn when another rdmafs already serves
 * SOURCE (allowed: the per-file stager lock keeps two daemons from staging one file, as two
 * nodes on a shared filesystem would, but it is rarely meant on one host). 0 or -errno,
 * reported on stderr.
 */
static int check_mount_args(const char *source, const char *mountpoint)
{
	struct libmnt_table *tb;
	struct libmnt_iter *it;
	struct libmnt_fs *fs;
	struct stat sb;
	int r = 0;

	if (stat(mountpoint, &sb) < 0)
		r = -errno;
	else if (!S_ISDIR(sb.st_mode))
		r = -ENOTDIR;
	if (r) {
		fprintf(stderr, "rdmafs: mountpoint %s: %s\n", mountpoint, strerror(-r));
		return r;
	}
	tb = mnt_new_table_from_file("/proc/self/mountinfo");
	it = mnt_new_iter(MNT_ITER_FORWARD);
	while (tb && it && mnt_table_next_fs(tb, it, &fs) == 0) {
		const char *type = mnt_fs_get_fstype(fs), *src = mnt_fs_get_source(fs);

		if (!type || strcmp(type, "fuse.rdmafs") || !src || strcmp(src, source))
			continue;
		fprintf(stderr, "rdmafs: warning: %s is already served by rdmafs on %s; a file "
			"staged by one of them cannot be opened for writing through the other\n",
			source, mnt_fs_get_target(fs));
		break;
	}
	mnt_free_iter(it);
	mnt_unref_table(tb);	/* no table: nothing to compare with */
	return r;
}

/*
 * restart = on: this process becomes the supervisor (doc/restart.md) that keeps the
 * mount's descriptors and runs daemon generations of this binary with the same arguments.
 * Without -f it forks first, as fuse_daemonize() would, and the parent exits 0 once
 * generation 0 serves (mount(8) waits for that), or with its status if it failed.
 */
static int supervise(char *argv[], const char *source, const char *mountpoint,
		     const struct cmdline *cl)
{
	int p[2], status;
	char c, *conf;
	ssize_t n;
	pid_t pid;

	if (setenv(ENV_SOURCE, source, 1) || setenv(ENV_MOUNTPOINT, mountpoint, 1))
		return 1;
	if (cl->conf_file) {
		conf = realpath(cl->conf_file, NULL);
		if (!conf || setenv(ENV_CONF, conf, 1)) {
			fprintf(stderr, "rdmafs: conf %s: %s\n", cl->conf_file, strerror(errno));
			free(conf);
			return 1;
		}
		free(conf);
	}
	if (cl->foreground)
		return supervisor_run("/proc/self/exe", argv, -1, false);
	if (pipe2(p, O_CLOEXEC)) {
		perror("rdmafs: pipe");
		return 1;
	}
	pid = fork();
	if (pid < 0) {
		perror("rdmafs: fork");
		return 1;
	}
	if (pid == 0) {
		close(p[0]);
		setsid();
		if (chdir("/"))
			return 1;
		return supervisor_run("/proc/self/exe", argv, p[1], true);
	}
	close(p[1]);
	do
		n = read(p[0], &c, 1);
	while (n < 0 && errno == EINTR);
	close(p[0]);
	if (n == 1)
		return 0;	/* mounted; the supervisor stays */
	if (waitpid(pid, &status, 0) != pid)
		return 1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

/* A supervised generation without -f: what fuse_daemonize() does after its fork. */
static void detach_stdio(void)
{
	int fd;

	if (chdir("/"))
		log_warn("chdir /: %s", strerror(errno));
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return;
	dup2(fd, 0);
	dup2(fd, 1);
	dup2(fd, 2);
	close(fd);
}

/*
 * A resumed generation's session has no mountpoint of its own (it adopted the descriptor):
 * stopped by a signal, it unmounts as fuse_session_unmount() would have.
 */
static void unmount_adopted(const char *mountpoint)
{
	pid_t pid;

	if (geteuid() == 0) {
		if (umount2(mountpoint, MNT_DETACH))
			log_err("umount %s: %s", mountpoint, strerror(errno));
		return;
	}
	pid = fork();
	if (pid == 0) {
		execlp("fusermount3", "fusermount3", "-u", "-z", "--", mountpoint, (char *)NULL);
		_exit(127);
	}
	if (pid > 0)
		waitpid(pid, NULL, 0);
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct cmdline cl = { 0 };
	int ret = run(argc, argv, &cl, &args);

	cmdline_free(&cl);
	fuse_opt_free_args(&args);
	return ret;
}

/* Below this many descriptors the daemon says at start what the limit allows. */
#define FD_LIMIT_LOW 16384

/*
 * The daemon holds a bounded cache of inode fds (half the limit, at most 16384, given back
 * on EMFILE),
 * one memfd per staged file and one fd per unstaged open: raise the open-file limit as far
 * as allowed (root: fs.nr_open), as libfuse's passthrough_hp does, and warn when it stays
 * low, naming the numbers.
 */
static void raise_fd_limit(void)
{
	struct rlimit lim, was;
	unsigned long nr_open = 0;
	FILE *f = fopen("/proc/sys/fs/nr_open", "r");

	if (f) {
		if (fscanf(f, "%lu", &nr_open) != 1)
			nr_open = 0;
		fclose(f);
	}
	if (getrlimit(RLIMIT_NOFILE, &lim) < 0)
		return;
	was = lim;
	if (nr_open > lim.rlim_max) {
		struct rlimit want = { nr_open, nr_open };

		if (setrlimit(RLIMIT_NOFILE, &want) == 0)
			lim = want;
	}
	if (lim.rlim_cur < lim.rlim_max) {
		lim.rlim_cur = lim.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &lim) < 0)
			lim = was;
	}
	if (lim.rlim_cur < FD_LIMIT_LOW) {
		unsigned long long n = lim.rlim_cur, cache = MIN(MAX(n / 2, 64), 16384);

		log_warn("open-file limit is low: %llu (was %llu, hard limit %llu, below %d): "
			 "up to %llu fds cache inodes (given back when short), each staged file "
			 "holds one (its memfd) and each unstaged open one, so about %llu files "
			 "can be staged or open at once; raise it with LimitNOFILE= or ulimit -n",
			 n, (unsigned long long)was.rlim_cur, (unsigned long long)lim.rlim_max,
			 FD_LIMIT_LOW, cache, n > 64 ? n - 64 : 0);
	} else {
		log_info("open-file limit %llu (was %llu)", (unsigned long long)lim.rlim_cur,
			 (unsigned long long)was.rlim_cur);
	}
}

/*
 * A resumed generation takes over the staged files of the dead one (their staging and
 * stager locks came back from the supervisor's store) before anything serves; each is
 * committed whole by its next commit (periodic, fsync, flush). Files that cannot be
 * resumed are logged.
 */
static void resume_staging(void)
{
	uint64_t t0 = now_ns();
	size_t n;
	int r;

	r = staging_resume(&n);
	if (n || r)
		log_notice("restart: %zu staged file(s) resumed in %.1f ms%s", n,
			   (now_ns() - t0) / 1e6, r ? "; some could not be (see above)" : "");
}

static int run(int argc, char *argv[], struct cmdline *cl, struct fuse_args *args)
{
	struct fuse_loop_config *loop_cfg = NULL;
	struct fuse_session *se = NULL;
	static struct fuse_lowlevel_ops ops;	/* rdmafs_ops as this configuration needs */
	static struct conf config;
	char *source = NULL, *mountpoint = NULL, opt[4200];
	int ret = 1, r, devfd, r_loop = 0;
	bool gen, served = false;

	if (fuse_opt_parse(args, cl, opt_spec, opt_proc) < 0) {
		if (!cl->bad)
			fprintf(stderr, "rdmafs: bad arguments; see %s --help\n", argv[0]);
		return 1;
	}
	if (cl->help) {
		usage(argv[0]);
		return 0;
	}
	if (cl->version) {
		printf("rdmafs %s (libfuse %s)\n", rdmafs_version(), fuse_pkgversion());
		return 0;
	}
	/* A generation: the supervisor's absolute paths (it may run in /). */
	gen = getenv(SUP_ENV_FD) != NULL;
	if (gen && getenv(ENV_CONF)) {
		free(cl->conf_file);
		cl->conf_file = strdup(getenv(ENV_CONF));
	}
	if (build_config(cl, &config))
		return 1;
	cfg = &config;
	if (cl->check) {
		conf_dump(cfg, stdout);
		return 0;
	}
	if (!cl->source || !cl->mountpoint) {
		fprintf(stderr, "rdmafs: need SOURCE and MOUNTPOINT; see %s --help\n", argv[0]);
		return 1;
	}
	if (gen && getenv(ENV_SOURCE) && getenv(ENV_MOUNTPOINT)) {
		/* Checked by the supervisor; a resumed generation must not touch the mount
		 * it is about to serve (nobody would answer). */
		source = strdup(getenv(ENV_SOURCE));
		mountpoint = strdup(getenv(ENV_MOUNTPOINT));
		if (!source || !mountpoint)
			goto out;
	} else {
		source = realpath(cl->source, NULL);
		if (!source) {
			fprintf(stderr, "rdmafs: source %s: %s\n", cl->source, strerror(errno));
			return 1;
		}
		/* Canonical before mounting: daemonizing changes the working directory, and
		 * the control socket is named after this path. */
		mountpoint = realpath(cl->mountpoint, NULL);
		if (!mountpoint) {
			fprintf(stderr, "rdmafs: mountpoint %s: %s\n", cl->mountpoint,
				strerror(errno));
			free(source);
			return 1;
		}
		if (check_mount_args(source, mountpoint)) {
			free(source);
			free(mountpoint);
			return 1;
		}
		if (cfg->restart) {
			ret = supervise(argv, source, mountpoint, cl);
			goto out;
		}
	}
	/* Generations after the first start detached (their stderr is /dev/null). */
	log_init(cfg->log_level, !cl->foreground && gen && getenv(SUP_ENV_GEN) &&
		 strcmp(getenv(SUP_ENV_GEN), "0"));
	r = restart_init(cfg->restart);
	if (r)
		goto out;
	if (restart_generation() > 0 && !restart_resumed()) {
		/* The mount ended with the generation before (it could not be kept). */
		log_notice("restart: nothing to resume for %s: ending", mountpoint);
		ret = SUP_EXIT_DONE_ERR;
		goto out;
	}
	raise_fd_limit();
	/* The kernel has applied the caller's umask to every create/mkdir/mknod mode: ours
	 * must not mask it again (a umask 0 caller gets 0666, not 0644). */
	umask(0);
	r = inode_table_init(source);
	if (r) {
		fprintf(stderr, "rdmafs: source %s: %s\n", source, strerror(-r));
		if (r == -EPROTO && restart_resumed())
			ret = SUP_EXIT_INCOMPAT;	/* another inode table layout */
		goto out;
	}
	/* Permissions are the backing files': the kernel checks them for every user. */
	snprintf(opt, sizeof(opt), "-odefault_permissions,fsname=%s,subtype=rdmafs%s", source,
		 getuid() == 0 ? ",allow_other" : "");
	if (fuse_opt_add_arg(args, opt))
		goto out;
	/*
	 * flush_on_close=no: a close commits nothing, so FLUSH would be a round trip per
	 * close(2) for no work (POSIX locks are the kernel's: no setlk op). Without the op
	 * libfuse answers ENOSYS to the first FLUSH and the kernel sends no more.
	 */
	ops = rdmafs_ops;
	if (cfg->flush_on_close == FLUSH_CLOSE_NO)
		ops.flush = NULL;
	se = fuse_session_new(args, &ops, sizeof(ops), NULL);
	if (!se) {
		fprintf(stderr, "rdmafs: bad mount options; see %s --help\n", argv[0]);
		goto out_inodes;
	}
	/* A lease we probe with (staging_open_elsewhere) may be broken meanwhile: the kernel
	 * then sends SIGIO, whose default action would end the daemon. */
	signal(SIGIO, SIG_IGN);
	if (fuse_set_signal_handlers(se))
		goto out_session;
	if (restart_resumed()) {
		devfd = restart_fuse_adopt(se);
		if (devfd < 0) {
			log_err("restart: cannot adopt the mount of %s: %s", mountpoint,
				strerror(-devfd));
			/* Nothing to clean up: the tables and the store are the mount's, for the
			 * generation after this one (inode_table_destroy() would free its node
			 * ids). Incompatible: the supervisor goes back to the previous binary. */
			_exit(devfd == -EPROTONOSUPPORT || devfd == -EPROTO ? SUP_EXIT_INCOMPAT : 1);
		}
	} else {
		if (fuse_session_mount(se, mountpoint)) {
			fprintf(stderr, "rdmafs: cannot mount on %s\n", mountpoint);
			goto out_signals;
		}
		devfd = fuse_session_fd(se);
		r = restart_fuse_attach(se, devfd);
		if (r) {
			log_err("restart: cannot keep the mount for the next daemon: %s",
				strerror(-r));
			goto out_unmount;
		}
	}
	fuse_ops_devfd = devfd;	/* backing ids closed outside requests */
	if (!restart_supervised() && !gen) {
		fuse_daemonize(cl->foreground);
	} else if (!cl->foreground) {
		detach_stdio();
	}
	if (!cl->foreground)
		log_init(cfg->log_level, true);
	/* Threads start after fuse_daemonize() forked. */
	r = staging_init();
	if (!r)
		r = staging_restart_init();	/* what a next generation resumes */
	commit_init();	/* in-place scans: SIGBUS handler */
	budget_init(flusher_kick_trim);	/* staging's policy: eviction, trimming, leases */
	if (!r)
		resume_staging();
	if (!r)
		r = fuse_ops_init();	/* after staging: a resumed staged open uses ino->st */
	if (!r)
		inode_resume_sweep();	/* forgotten node ids nothing resumed refers to */
	if (!r)
		r = flusher_init();
	if (r) {
		log_err("start-up: %s", strerror(-r));
		goto out_unmount;
	}
	r = ctl_init(mountpoint, source);
	if (r)
		log_warn("control socket: %s (rdmafsctl will not reach this mount)", strerror(-r));
	log_notice("mounted %s on %s (staging=%s chunk_size=%u flush_interval=%us)", source,
		   mountpoint, conf_staging_name(cfg->staging), cfg->chunk_size,
		   cfg->flush_interval);
	loop_cfg = fuse_loop_cfg_create();
	if (!loop_cfg)
		goto out_flusher;
	fuse_loop_cfg_set_max_threads(loop_cfg, 16);
	if (restart_resumed()) {
		r = restart_fuse_resend(devfd);
		if (r)
			log_err("restart: FUSE_NOTIFY_RESEND: %s (requests the last daemon had "
				"read stay unanswered)", strerror(-r));
		log_notice("restart: generation %u serves %s", restart_generation(),
			   mountpoint);
	}
	r = restart_ready();
	if (r)
		log_warn("restart: ready notice to the supervisor: %s", strerror(-r));
	/* 0, -errno, or the signal that ended it: SIGTERM/SIGINT/SIGHUP are a clean stop
	 * (everything is committed below), not a failure. */
	r = r_loop = fuse_session_loop_mt(se, loop_cfg);
	served = true;
	ret = r == 0 || r == SIGTERM || r == SIGINT || r == SIGHUP ? 0 : 1;
	fuse_loop_cfg_destroy(loop_cfg);
out_flusher:
	/* Holders unpin (or are revoked) before the final commit and before their lease
	 * fds close with the control socket. */
	lease_shutdown();
	/* No request runs during the final commit; the connections (lease fds) and the
	 * descriptors clients sent are let go only after it: closing those may wait on a
	 * FUSE server (ctl.c's closers), which must never cost the commit. */
	ctl_stop();
	/* Nothing written through the mount is lost: commit all before the mount goes. */
	r = flusher_shutdown();
	commit_exit();
	ctl_exit();
	fuse_ops_exit();
	if (r) {
		log_err("shutdown: not every change reached %s (see above)", source);
		ret = 1;
	} else {
		log_notice("unmounting %s: all changes committed", mountpoint);
	}
	staging_restart_exit();
	staging_exit();
out_unmount:
	fuse_ops_devfd = -1;
	if (!restart_resumed())
		fuse_session_unmount(se);
	else if (served && r_loop)	/* stopped by a signal, not unmounted */
		unmount_adopted(mountpoint);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
out_inodes:
	inode_table_destroy();
out:
	restart_exit();
	free(source);
	free(mountpoint);
	/* Supervised, a failure after the mount is the mount's end: no generation retries. */
	if (ret == 1 && gen && served)
		ret = SUP_EXIT_DONE_ERR;
	return ret;
}
