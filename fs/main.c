/*
 * main.c - command line, configuration, the mount-time check, and the
 * FUSE loop.
 *
 *   blitfs [-f] [-d] [-c FILE] [-o OPT[,OPT...]] BUCKET[:PREFIX] MOUNTPOINT
 *   blitfs BUCKET MOUNTPOINT -o OPTS     (as mount(8) runs it, see README)
 *
 * Everything that can fail for a reason the user must fix (bad options, no
 * credentials, no such bucket, endpoint unreachable) is checked before the
 * mount, so that it fails with one line on stderr and nothing mounted.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fuse.h>
#include <fuse_lowlevel.h>
#include <getopt.h>
#include <jansson.h>
#include <libxml/xmlversion.h>
#include <openssl/crypto.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs-rename.h"
#include "fs-path.h"
#include "fs-status.h"
#include "fs.h"
#include "log.h"

#define ERRLEN 512

struct cmdline {
	char **opts;		/* every -o argument, in order */
	int nopts;
	char *fuse_opts;	/* the -o options that belong to FUSE */
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: blitfs [-f] [-d] [-c FILE] [-o OPT[,OPT...]] "
		"BUCKET[:PREFIX] MOUNTPOINT\n"
		"       blitfs status|wait [OPTIONS] MOUNTPOINT     "
		"(see blitfs status --help)\n"
		"Mount an S3 bucket, or the keys under PREFIX/, as a "
		"directory.\n\n"
		"  -f             stay in the foreground and log to stderr "
		"(else: syslog)\n"
		"  -d             log debug detail too\n"
		"  -c FILE        read options from an INI file (the same "
		"as -o config=FILE)\n"
		"  -o OPT,...     set the options below, and FUSE and mount "
		"options\n"
		"  -h, --help     print this help and exit\n"
		"  -V, --version  print the versions of blitfs and its "
		"libraries and exit\n\n");
	fs_config_help(out);
	fprintf(out, "\nCredentials: credentials_file when -o sets it; "
		"else AWS_ACCESS_KEY_ID,\nAWS_SECRET_ACCESS_KEY and "
		"AWS_SESSION_TOKEN; else credentials_file; else the\n"
		"profile in AWS_SHARED_CREDENTIALS_FILE (~/.aws/credentials) "
		"and AWS_CONFIG_FILE\n(~/.aws/config).  See blitfs(1).\n");
}

/* The names usage() explains, for the test that checks the man page. */
static void list_options(void)
{
	printf("-f\n-d\n-c\n-o\n-h\n--help\n-V\n--version\n");
	fs_config_list(stdout);
}

static void version(void)
{
	printf("blitfs %s\n"
	       "libfuse %s\n"
	       "%s\n"
	       "%s\n"
	       "SQLite %s\n"
	       "jansson %s\n"
	       "libxml2 %s\n"
	       "inih %s\n",
	       BLITFS_VERSION, fuse_pkgversion(), curl_version(),
	       OpenSSL_version(OPENSSL_VERSION), sqlite3_libversion(),
	       JANSSON_VERSION, LIBXML_DOTTED_VERSION, BLITFS_INIH_VERSION);
}

static void add_opts(struct cmdline *cl, char *list)
{
	cl->opts = realloc(cl->opts, sizeof(char *) * (cl->nopts + 1));
	if (!cl->opts)
		abort();
	cl->opts[cl->nopts++] = list;
}

/*
 * The command line.  Options may follow the operands, as mount(8)'s
 * helper puts them: "blitfs BUCKET MOUNTPOINT -o OPTS".  0 to go on, 1
 * when done (help, version), -1 on a usage error.
 */
static int parse_args(int argc, char **argv, struct fs_config *cfg,
		      struct cmdline *cl, char *err)
{
	static const struct option longs[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "list-options", no_argument, NULL, 'L' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "fdc:o:hV", longs, NULL)) != -1) {
		switch (c) {
		case 'f':
			cfg->foreground = 1;
			break;
		case 'd':
			cfg->debug = 1;
			break;
		case 'c':
			if (fs_config_set(cfg, "config", optarg, err,
					  ERRLEN) < 0)
				return -1;
			break;
		case 'o':
			add_opts(cl, optarg);
			break;
		case 'h':
			usage(stdout);
			return 1;
		case 'V':
			version();
			return 1;
		case 'L':
			list_options();
			return 1;
		default:
			snprintf(err, ERRLEN, "see blitfs --help");
			return -1;
		}
	}
	if (argc - optind != 2) {
		snprintf(err, ERRLEN, "%s; usage: blitfs [OPTIONS] "
			 "BUCKET[:PREFIX] MOUNTPOINT (see --help)",
			 argc - optind < 2 ? "missing BUCKET or MOUNTPOINT"
					   : "too many operands");
		return -1;
	}

	char *colon = strchr(argv[optind], ':');

	cfg->bucket = colon ? strndup(argv[optind], colon - argv[optind])
			    : strdup(argv[optind]);
	cfg->prefix = strdup(colon ? colon + 1 : "");
	cfg->mountpoint = strdup(argv[optind + 1]);
	return 0;
}

/* -o lists, the environment, the INI file; then what follows from them. */
static int configure(struct fs_config *cfg, struct cmdline *cl, char *err)
{
	if (fs_config_read(cfg, cl->opts, cl->nopts, &cl->fuse_opts, err,
			   ERRLEN) < 0)
		return -1;
	if (*cfg->bucket == '\0') {
		snprintf(err, ERRLEN, "bucket name is empty");
		return -1;
	}
	return fs_config_finish(cfg, err, ERRLEN);
}

/* Connect to S3 and prove the bucket is there and ours to use. */
static struct s3_client *connect_bucket(const struct fs_config *cfg,
					char *err)
{
	struct s3_config sc = {
		.endpoint = cfg->endpoint,
		.region = cfg->region,
		.bucket = cfg->bucket,
		.path_style = cfg->path_style,
		.insecure = !cfg->tls_verify,
		.ca_file = cfg->ca_file,
		.access_key = cfg->access_key,
		.secret_key = cfg->secret_key,
		.session_token = cfg->session_token,
		.timeout = cfg->timeout,
		.write_rate = cfg->write_rate,
		.read_rate = cfg->read_rate,
		.concurrency = cfg->concurrency,
		.retries = cfg->retries,
		.multipart_threshold = cfg->multipart_threshold,
		.part_size = cfg->part_size,
		.copy_cutoff = cfg->copy_cutoff,
		.cache_control = cfg->cache_control,
		.acl = cfg->acl,
		.storage_class = cfg->storage_class,
	};
	struct s3_error e;
	struct s3_client *s3 = s3_client_new(&sc, &e);
	enum log_level lvl;
	enum s3_status st;

	if (!s3) {
		snprintf(err, ERRLEN, "endpoint %s: %s", cfg->endpoint,
			 e.message);
		return NULL;
	}
	/*
	 * A mount that fails says why in one line: the check's retries
	 * and their backoff are not news, unless debugging.
	 */
	lvl = log_threshold;
	if (!cfg->debug)
		log_set_level(LOG_LVL_WARN);
	st = s3_check_bucket(s3, &e);
	log_set_level(lvl);
	if (st != S3_OK) {
		snprintf(err, ERRLEN, "cannot mount bucket %s at %s: %s (%s)",
			 cfg->bucket, cfg->endpoint, e.message, e.code);
		s3_client_free(s3);
		return NULL;
	}
	return s3;
}

static struct cache *open_cache(const struct fs_config *cfg,
				struct s3_client *s3, struct fs_ctx *x,
				char *err)
{
	struct cache_opts co = {
		.dir = cfg->cache_dir,
		.concurrency = cfg->concurrency,
		.drain_timeout = cfg->drain_timeout,
		.upload_delay_ms = cfg->upload_delay,
		.cache_size = cfg->cache_size,
		.failed_retry_s = cfg->failed_retry,
		.visibility_poll_ms = cfg->visibility_poll_ms,
		.visibility_timeout_ms = cfg->visibility_timeout_ms,
		.read_wait_ms = cfg->read_wait_ms,
		.fsync_upload = cfg->fsync_upload,
		.on_final = fs_pb_on_final,
		.final_arg = x,
	};

	return cache_new(&co, s3, err, ERRLEN);
}

static struct pb *open_postbacks(const struct fs_config *cfg, char *err)
{
	struct pb_opts po = {
		.dir = cfg->cache_dir,
		.secret = cfg->postback_secret,
		.timeout_s = cfg->postback_timeout,
		.max_inflight = 4,
		.retries = 12,
		.insecure = !cfg->tls_verify,
		.ca_file = cfg->ca_file,
	};

	return pb_open(&po, err, ERRLEN);
}

/* Whether a comma-separated list holds name as one item. */
static int has_opt(const char *list, const char *name)
{
	size_t n = strlen(name);
	const char *p;

	for (p = list; p && *p; p += strcspn(p, ","), p += *p == ',')
		if (!strncmp(p, name, n) && (p[n] == ',' || !p[n]))
			return 1;
	return 0;
}

/* Mount, serve until unmounted, and return the loop's status. */
static int run_fuse(struct fs_ctx *x, const char *argv0, struct cmdline *cl)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_loop_config *lc;
	struct fuse *f;
	char *fopts;
	int ret = 1;

	/* The kernel checks permissions: blitfs's modes are advisory. */
	if (asprintf(&fopts, "fsname=blitfs:%s,subtype=blitfs%s%s%s",
		     x->cfg->bucket,
		     has_opt(cl->fuse_opts, "default_permissions") ? ""
			: ",default_permissions",
		     cl->fuse_opts ? "," : "",
		     cl->fuse_opts ? cl->fuse_opts : "") < 0)
		abort();
	fuse_opt_add_arg(&args, argv0);
	fuse_opt_add_arg(&args, "-o");
	fuse_opt_add_arg(&args, fopts);
	free(fopts);

	f = fuse_new(&args, &fs_ops, sizeof(fs_ops), x);
	if (!f)
		goto out_args;
	if (fuse_mount(f, x->cfg->mountpoint) != 0)
		goto out_destroy;
	if (fuse_daemonize(x->cfg->foreground) != 0)
		goto out_unmount;
	if (!x->cfg->foreground)
		log_use_syslog(1);
	/* Storm summaries on time; a thread, so after the fork. */
	log_start();
	if (fuse_set_signal_handlers(fuse_get_session(f)) != 0)
		goto out_unmount;
	fs_metrics_start(x);	/* its thread, now that the daemon runs */

	log_info("fs", "mounted bucket=%s prefix=\"%s\" at %s (endpoint %s, "
		 "credentials from %s)", x->cfg->bucket, x->prefix,
		 x->cfg->mountpoint, x->cfg->endpoint, x->cfg->creds_source);
	lc = fuse_loop_cfg_create();
	fuse_loop_cfg_set_clone_fd(lc, 0);
	/* Readers may wait for visibility: each needs a thread meanwhile. */
	fuse_loop_cfg_set_max_threads(lc, 256);
	ret = fuse_loop_mt(f, lc) ? 1 : 0;
	fuse_loop_cfg_destroy(lc);
	fuse_remove_signal_handlers(fuse_get_session(f));
out_unmount:
	fuse_unmount(f);
out_destroy:
	fuse_destroy(f);
out_args:
	fuse_opt_free_args(&args);
	return ret;
}

int main(int argc, char **argv)
{
	struct fs_config cfg;
	struct cmdline cl = { 0 };
	struct fs_ctx x = { 0 };
	const char *reason = NULL;
	char err[ERRLEN];
	int ret = 1;

	/* `blitfs status` and `blitfs wait` read a mount; they mount none. */
	if (argc > 1 && fs_statcmd_is(argv[1]))
		return fs_statcmd_main(argc, argv);
	fs_config_defaults(&cfg);
	ret = parse_args(argc, argv, &cfg, &cl, err);
	if (ret != 0) {
		if (ret < 0)
			fprintf(stderr, "blitfs: %s\n", err);
		ret = ret < 0;	/* --help, --version: 0 */
		goto out;
	}
	ret = 1;
	if (configure(&cfg, &cl, err) < 0) {
		fprintf(stderr, "blitfs: %s\n", err);
		goto out;
	}
	log_set_level(cfg.debug ? LOG_LVL_DEBUG : LOG_LVL_INFO);
	fs_config_log(&cfg);

	x.cfg = &cfg;
	x.uid = getuid();
	x.gid = getgid();
	x.prefix = fs_path_prefix(cfg.prefix, &reason);
	if (!x.prefix) {
		fprintf(stderr, "blitfs: prefix '%s': %s\n", cfg.prefix,
			reason);
		goto out;
	}
	if (s3_global_init() != 0) {
		fprintf(stderr, "blitfs: cannot initialise libcurl\n");
		goto out;
	}
	/* The cache makes the cache directory that postbacks.db lives in. */
	x.s3 = connect_bucket(&cfg, err);
	if (x.s3)
		x.cache = open_cache(&cfg, x.s3, &x, err);
	if (x.cache)
		x.pb = open_postbacks(&cfg, err);
	if (!x.s3 || !x.pb || !x.cache) {
		fprintf(stderr, "blitfs: %s\n", err);
		goto out_s3;
	}
	x.attrs = fs_attr_new(3.0);
	x.listed = fs_attr_new(3.0);
	/* a directory rename a stopped mount left half done ends first */
	fs_move_resume(&x);

	if (fs_metrics_bind(cfg.metrics_listen, err, ERRLEN) == 0)
		ret = run_fuse(&x, argv[0], &cl);
	else
		fprintf(stderr, "blitfs: %s\n", err);
	fs_metrics_stop();

	cache_free(x.cache);
	fs_attr_free(x.attrs);
	fs_attr_free(x.listed);
out_s3:
	pb_close(x.pb);
	s3_client_free(x.s3);
	s3_global_cleanup();
out:
	log_stop();
	free(x.prefix);
	free(cl.opts);
	free(cl.fuse_opts);
	fs_config_free(&cfg);
	return ret;
}
