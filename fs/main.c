/*
 * main.c - command line, configuration, the mount-time check, and the
 * FUSE loop.
 *
 *   blitfs [-f] [-d] [-c FILE] [-o OPT[,OPT...]] BUCKET[:PREFIX] MOUNTPOINT
 *
 * Everything that can fail for a reason the user must fix (bad options, no
 * credentials, no such bucket, endpoint unreachable) is checked before the
 * mount, so that it fails with one line on stderr and nothing mounted.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fuse.h>
#include <fuse_lowlevel.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs-path.h"
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
	const char *help, *def, *name;
	int i;

	fprintf(out,
		"usage: blitfs [-f] [-d] [-c FILE] [-o OPT[,OPT...]] "
		"BUCKET[:PREFIX] MOUNTPOINT\n\n"
		"  -f        stay in the foreground, log to stderr\n"
		"  -d        debug log\n"
		"  -c FILE   INI file with the options below\n"
		"  -o OPTS   options below, and FUSE's own (allow_other...)\n"
		"  -h        this help;  -V  version\n\n"
		"options (-o wins over the environment, which wins over "
		"the INI file):\n");
	for (i = 0; (name = fs_config_option(i, &help, &def)) != NULL; i++)
		fprintf(out, "  %-14s %s%s%s%s\n", name, help,
			def ? " [" : "", def ? def : "", def ? "]" : "");
	fprintf(out, "\ncredentials and defaults from the environment: "
		"AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,\n"
		"AWS_SESSION_TOKEN, AWS_REGION, AWS_DEFAULT_REGION, "
		"AWS_ENDPOINT_URL\n");
}

static void version(void)
{
	printf("blitfs %s\nlibfuse %s\n%s\n", BLITFS_VERSION,
	       fuse_pkgversion(), curl_version());
}

static void append_fuse_opt(struct cmdline *cl, const char *opt)
{
	size_t old = cl->fuse_opts ? strlen(cl->fuse_opts) : 0;
	size_t add = strlen(opt);
	char *s = realloc(cl->fuse_opts, old + add + 2);

	if (!s)
		abort();
	if (old)
		s[old++] = ',';
	memcpy(s + old, opt, add + 1);
	cl->fuse_opts = s;
}

/* Apply one -o list: blitfs's own options, the rest kept for FUSE. */
static int apply_opts(struct fs_config *cfg, struct cmdline *cl,
		      const char *list, char *err)
{
	char *copy = strdup(list);
	char *save = NULL;
	char *tok;
	int ret = 0;

	for (tok = strtok_r(copy, ",", &save); tok && ret == 0;
	     tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');

		if (eq)
			*eq = '\0';
		if (strcmp(tok, "postback_secret") == 0) {
			snprintf(err, ERRLEN, "-o postback_secret: a secret on "
				 "the command line is visible to every user; "
				 "use postback_secret_file or the INI file");
			ret = -1;
			break;
		}
		ret = fs_config_set(cfg, tok, eq ? eq + 1 : NULL, "-o", err,
				    ERRLEN);
		if (ret == -2) {
			if (eq)
				*eq = '=';
			append_fuse_opt(cl, tok);
			ret = 0;
		}
	}
	free(copy);
	return ret;
}

static int parse_args(int argc, char **argv, struct fs_config *cfg,
		      struct cmdline *cl)
{
	int c;

	while ((c = getopt(argc, argv, "+fdc:o:hV")) != -1) {
		switch (c) {
		case 'f':
			cfg->foreground = 1;
			break;
		case 'd':
			cfg->debug = 1;
			break;
		case 'c':
			free(cfg->config_file);
			cfg->config_file = strdup(optarg);
			break;
		case 'o':
			cl->opts = realloc(cl->opts,
					   sizeof(char *) * (cl->nopts + 1));
			if (!cl->opts)
				abort();
			cl->opts[cl->nopts++] = optarg;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			version();
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (argc - optind != 2) {
		usage(stderr);
		return -1;
	}

	char *colon = strchr(argv[optind], ':');

	cfg->bucket = colon ? strndup(argv[optind], colon - argv[optind])
			    : strdup(argv[optind]);
	cfg->prefix = strdup(colon ? colon + 1 : "");
	cfg->mountpoint = strdup(argv[optind + 1]);
	return 0;
}

/* Defaults, then the INI file, the environment, and -o, in that order. */
static int configure(struct fs_config *cfg, struct cmdline *cl, char *err)
{
	int i;

	if (cfg->config_file &&
	    fs_config_load(cfg, cfg->config_file, err, ERRLEN) < 0)
		return -1;
	fs_config_env(cfg);
	for (i = 0; i < cl->nopts; i++)
		if (apply_opts(cfg, cl, cl->opts[i], err) < 0)
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

/* Mount, serve until unmounted, and return the loop's status. */
static int run_fuse(struct fs_ctx *x, const char *argv0, struct cmdline *cl)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_loop_config *lc;
	struct fuse *f;
	char fsname[512];
	int ret = 1;

	snprintf(fsname, sizeof(fsname),
		 "fsname=blitfs:%s,subtype=blitfs,default_permissions",
		 x->cfg->bucket);
	append_fuse_opt(cl, fsname);
	fuse_opt_add_arg(&args, argv0);
	fuse_opt_add_arg(&args, "-o");
	fuse_opt_add_arg(&args, cl->fuse_opts);

	f = fuse_new(&args, &fs_ops, sizeof(fs_ops), x);
	if (!f)
		goto out_args;
	if (fuse_mount(f, x->cfg->mountpoint) != 0)
		goto out_destroy;
	if (fuse_daemonize(x->cfg->foreground) != 0)
		goto out_unmount;
	if (!x->cfg->foreground)
		log_use_syslog(1);
	if (fuse_set_signal_handlers(fuse_get_session(f)) != 0)
		goto out_unmount;

	log_info("fs", "mounted bucket=%s prefix=\"%s\" at %s (endpoint %s)",
		 x->cfg->bucket, x->prefix, x->cfg->mountpoint,
		 x->cfg->endpoint);
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

	fs_config_defaults(&cfg);
	if (parse_args(argc, argv, &cfg, &cl) < 0)
		goto out;
	if (configure(&cfg, &cl, err) < 0) {
		fprintf(stderr, "blitfs: %s\n", err);
		goto out;
	}
	log_set_level(cfg.debug ? LOG_LVL_DEBUG : LOG_LVL_INFO);

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

	ret = run_fuse(&x, argv[0], &cl);

	cache_free(x.cache);
	fs_attr_free(x.attrs);
	fs_attr_free(x.listed);
out_s3:
	pb_close(x.pb);
	s3_client_free(x.s3);
	s3_global_cleanup();
out:
	free(x.prefix);
	free(cl.opts);
	free(cl.fuse_opts);
	fs_config_free(&cfg);
	return ret;
}
