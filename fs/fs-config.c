/*
 * fs-config.c - option table, validation, INI file (inih), environment.
 */
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "fs-config.h"
#include "notify.h"
#include "s3.h"

/* OPT_RATE: a decimal above min (requests per second). */
enum opt_type { OPT_STR, OPT_BOOL, OPT_UINT, OPT_SIZE, OPT_SECONDS,
		OPT_RATE };

struct opt {
	const char *name;
	enum opt_type type;
	size_t off;
	const char *def;	/* default as text; NULL: unset */
	long min, max;		/* for OPT_UINT; OPT_SIZE when max > 0 */
	const char *help;
};

#define F(x) offsetof(struct fs_config, x)
#define MIB (1024L * 1024)

static const struct opt opts[] = {
	{ "endpoint", OPT_STR, F(endpoint), NULL, 0, 0,
	  "URL of the S3 service (default: AWS S3 in the region)" },
	{ "region", OPT_STR, F(region), NULL, 0, 0,
	  "region the requests are signed for (default: AWS_PROFILE's, "
	  "else us-east-1)" },
	{ "path_style", OPT_BOOL, F(path_style), "0", 0, 1,
	  "address the bucket as ENDPOINT/BUCKET instead of BUCKET.HOST" },
	{ "cache_dir", OPT_STR, F(cache_dir), NULL, 0, 0,
	  "staging cache (default: ~/.cache/blitfs/BUCKET)" },
	{ "concurrency", OPT_UINT, F(concurrency), "8", 1, 256,
	  "uploads in flight at once" },
	{ "retries", OPT_UINT, F(retries), "5", 1, 100,
	  "attempts per request before the upload is FAILED (and retried "
	  "later)" },
	{ "write_rate", OPT_RATE, F(write_rate), "10", 0, 10000,
	  "write requests (PUT, POST, DELETE) per second to the bucket; "
	  "SlowDown lowers it for a while" },
	{ "read_rate", OPT_RATE, F(read_rate), "100", 0, 100000,
	  "read requests (GET, HEAD, LIST) per second to the bucket" },
	{ "multipart_threshold", OPT_SIZE, F(multipart_threshold), "64M",
	  5 * MIB, 5 * 1024 * MIB,
	  "files from this size on go up in parts (K, M, G suffixes)" },
	{ "part_size", OPT_SIZE, F(part_size), "16M", 5 * MIB, 5 * 1024 * MIB,
	  "bytes in each part of a multipart upload (K, M, G suffixes)" },
	{ "drain_timeout", OPT_UINT, F(drain_timeout), "30", 0, 86400,
	  "seconds unmount waits for queued uploads" },
	{ "timeout", OPT_UINT, F(timeout), "30", 1, 3600,
	  "seconds a request may stall before it is retried" },
	{ "tls_verify", OPT_BOOL, F(tls_verify), "1", 0, 1,
	  "verify the server's TLS certificate (0 only for test servers)" },
	{ "ca_file", OPT_STR, F(ca_file), NULL, 0, 0,
	  "extra CA certificates (PEM) to trust" },
	{ "upload_delay", OPT_UINT, F(upload_delay), "200", 0, 60000,
	  "milliseconds a closed file settles before its upload starts, so "
	  "a rename or unlink right after close costs no upload" },
	{ "cache_size", OPT_SIZE, F(cache_size), "4G", 0, 0,
	  "bytes of staging cache (K, M, G, T suffixes); past it clean "
	  "copies are evicted and writers wait for uploads; 0: no limit" },
	{ "failed_retry", OPT_UINT, F(failed_retry), "60", 1, 86400,
	  "seconds before a FAILED upload is tried again" },
	{ "visibility_poll", OPT_SECONDS, F(visibility_poll_ms), "2", 0, 3600,
	  "seconds between HEADs that wait for an upload to show in S3" },
	{ "visibility_timeout", OPT_SECONDS, F(visibility_timeout_ms), "10", 0,
	  86400, "seconds after an upload before it is UNCONFIRMED" },
	{ "read_wait", OPT_SECONDS, F(read_wait_ms), "10", 0, 3600,
	  "seconds a reader of a just-written file waits for S3 to show "
	  "it (0: off)" },
	{ "fsync_upload", OPT_BOOL, F(fsync_upload), "0", 0, 1,
	  "fsync() also waits until S3 has acknowledged the bytes" },
	{ "postback_url", OPT_STR, F(postback_url), NULL, 0, 0,
	  "postback for every file that asks for none itself (http/https)" },
	{ "postback_secret", OPT_STR, F(postback_secret), NULL, 0, 0,
	  "HMAC-SHA256 key that signs postbacks; INI file only, never -o" },
	{ "postback_secret_file", OPT_STR, F(postback_secret_file), NULL, 0, 0,
	  "file holding the HMAC-SHA256 key that signs postbacks (the "
	  "environment's BLITFS_POSTBACK_SECRET also works)" },
	{ "postback_timeout", OPT_UINT, F(postback_timeout), "10", 1, 600,
	  "seconds one postback request may take" },
};

#define NOPTS (sizeof(opts) / sizeof(opts[0]))

static const struct opt *find_opt(const char *name)
{
	size_t i;

	for (i = 0; i < NOPTS; i++)
		if (strcmp(opts[i].name, name) == 0)
			return &opts[i];
	return NULL;
}

const char *fs_config_option(int i, const char **phelp, const char **pdef)
{
	if (i < 0 || (size_t)i >= NOPTS)
		return NULL;
	*phelp = opts[i].help;
	*pdef = opts[i].def;
	return opts[i].name;
}

static int parse_bool(const char *v, int *out)
{
	static const char *const yes[] = { "1", "true", "yes", "on" };
	static const char *const no[] = { "0", "false", "no", "off" };
	size_t i;

	for (i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	return -1;
}

/* A byte count with an optional K, M, G or T suffix (powers of 1024). */
static int parse_size(const char *v, uint64_t *out, const char **preason)
{
	static const char units[] = "KMGT";
	unsigned long long n;
	const char *u;
	char *end;

	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno || end == v || *v == '-') {
		*preason = "not a size (examples: 0, 512M, 4G)";
		return -1;
	}
	if (*end) {
		u = strchr(units, *end & ~0x20);
		if (!u || (end[1] && strcasecmp(end + 1, "B") &&
			   strcasecmp(end + 1, "iB"))) {
			*preason = "unknown unit (use K, M, G or T)";
			return -1;
		}
		n <<= 10 * (u - units + 1);
	}
	*out = n;
	return 0;
}

/* A size within the option's bounds, when it has them. */
static int parse_size_in(const char *v, const struct opt *o, uint64_t *out,
			 const char **preason)
{
	uint64_t n;

	if (parse_size(v, &n, preason) < 0)
		return -1;
	if (o->max > 0 && (n < (uint64_t)o->min || n > (uint64_t)o->max)) {
		*preason = "out of range (5M to 5G)";
		return -1;
	}
	*out = n;
	return 0;
}

/* A rate in requests per second: above min, at most max. */
static int parse_rate(const char *v, const struct opt *o, double *out,
		      const char **preason)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(v, &end);
	if (errno || end == v || *end || !(d > o->min) || d > o->max) {
		*preason = "not a number of requests per second above 0";
		return -1;
	}
	*out = d;
	return 0;
}

/* Seconds, fractions allowed ("0.5"), stored as milliseconds. */
static int parse_seconds(const char *v, const struct opt *o, int *ms,
			 const char **preason)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(v, &end);
	if (errno || end == v || *end || d < o->min || d > o->max) {
		*preason = "out of range or not a number of seconds";
		return -1;
	}
	*ms = (int)(d * 1000 + 0.5);
	return 0;
}

/* Store value into the field o describes. */
static int apply(struct fs_config *cfg, const struct opt *o, const char *v,
		 const char **preason)
{
	char *field = (char *)cfg + o->off;
	char *end;
	long n;

	switch (o->type) {
	case OPT_STR:
		if (*v == '\0') {
			*preason = "must not be empty";
			return -1;
		}
		free(*(char **)field);
		*(char **)field = strdup(v);
		return 0;
	case OPT_BOOL:
		if (parse_bool(v, (int *)field) < 0) {
			*preason = "expected 1/0, true/false, yes/no or on/off";
			return -1;
		}
		return 0;
	case OPT_SIZE:
		return parse_size_in(v, o, (uint64_t *)field, preason);
	case OPT_RATE:
		return parse_rate(v, o, (double *)field, preason);
	case OPT_SECONDS:
		return parse_seconds(v, o, (int *)field, preason);
	case OPT_UINT:
		errno = 0;
		n = strtol(v, &end, 10);
		if (errno || end == v || *end || n < o->min || n > o->max) {
			*preason = "out of range or not a whole number";
			return -1;
		}
		*(int *)field = (int)n;
		return 0;
	}
	return -1;
}

int fs_config_set(struct fs_config *cfg, const char *key, const char *value,
		  const char *where, char *err, size_t errlen)
{
	const struct opt *o = find_opt(key);
	const char *reason = NULL;

	if (!o) {
		snprintf(err, errlen, "%s: unknown option '%s'", where, key);
		return -2;
	}

	/* A bare boolean ("-o path_style") switches it on. */
	if (!value)
		value = o->type == OPT_BOOL ? "1" : "";
	if (apply(cfg, o, value, &reason) < 0) {
		snprintf(err, errlen, "%s: bad value '%s' for %s: %s", where,
			 value, key, reason);
		return -1;
	}
	return 0;
}

void fs_config_defaults(struct fs_config *cfg)
{
	size_t i;
	const char *reason;

	memset(cfg, 0, sizeof(*cfg));
	for (i = 0; i < NOPTS; i++)
		if (opts[i].def)
			apply(cfg, &opts[i], opts[i].def, &reason);
}

void fs_config_free(struct fs_config *cfg)
{
	size_t i;

	for (i = 0; i < NOPTS; i++) {
		if (opts[i].type == OPT_STR) {
			char **p = (char **)((char *)cfg + opts[i].off);

			free(*p);
			*p = NULL;
		}
	}
	free(cfg->bucket);
	free(cfg->prefix);
	free(cfg->mountpoint);
	free(cfg->config_file);
	free(cfg->access_key);
	free(cfg->secret_key);
	free(cfg->session_token);
	memset(cfg, 0, sizeof(*cfg));
}

struct ini_state {
	struct fs_config *cfg;
	const char *path;
	FILE *fp;
	int lineno;		/* of the line inih read last */
	char *err;
	size_t errlen;
	int failed;
};

/*
 * inih as packaged does not pass line numbers to the handler, so the
 * reader counts them: inih calls it once per line, just before the
 * handler for that line.
 */
static char *read_line(char *buf, int size, void *stream)
{
	struct ini_state *s = stream;

	s->lineno++;
	return fgets(buf, size, s->fp);
}

static int on_ini_line(void *user, const char *section, const char *name,
		       const char *value)
{
	struct ini_state *s = user;
	char where[PATH_MAX + 32];

	if (s->failed)
		return 0;
	snprintf(where, sizeof(where), "%s:%d", s->path, s->lineno);
	if (*section && strcmp(section, "blitfs") != 0) {
		snprintf(s->err, s->errlen, "%s: unknown section [%s]", where,
			 section);
		s->failed = 1;
		return 0;
	}
	if (fs_config_set(s->cfg, name, value, where, s->err, s->errlen) < 0) {
		s->failed = 1;
		return 0;
	}
	return 1;
}

int fs_config_load(struct fs_config *cfg, const char *path, char *err,
		   size_t errlen)
{
	struct ini_state s = { cfg, path, NULL, 0, err, errlen, 0 };
	int ret;

	s.fp = fopen(path, "r");
	if (!s.fp) {
		snprintf(err, errlen, "%s: cannot open: %s", path,
			 strerror(errno));
		return -1;
	}
	ret = ini_parse_stream(read_line, &s, on_ini_line, &s);
	fclose(s.fp);
	if (s.failed)
		return -1;
	if (ret != 0) {
		snprintf(err, errlen, "%s:%d: not a 'key = value' line", path,
			 ret);
		return -1;
	}
	return 0;
}

static void take_env(char **field, const char *name)
{
	const char *v = getenv(name);

	if (v && *v) {
		free(*field);
		*field = strdup(v);
	}
}

void fs_config_env(struct fs_config *cfg)
{
	take_env(&cfg->region, "AWS_DEFAULT_REGION");
	take_env(&cfg->region, "AWS_REGION");
	take_env(&cfg->endpoint, "AWS_ENDPOINT_URL");
	take_env(&cfg->postback_secret, "BLITFS_POSTBACK_SECRET");
}

/* Move a string into *field, freeing what was there. */
static void move_str(char **field, char **from)
{
	free(*field);
	*field = *from;
	*from = NULL;
}

/*
 * Credentials from the environment or AWS_PROFILE's shared files (see
 * s3_creds_resolve), and the profile's region unless a region was set.
 */
static int take_creds(struct fs_config *cfg, char *err, size_t errlen)
{
	struct s3_creds cr;

	if (s3_creds_resolve(&cr, NULL, err, errlen) < 0)
		return -1;
	move_str(&cfg->access_key, &cr.access_key);
	move_str(&cfg->secret_key, &cr.secret_key);
	move_str(&cfg->session_token, &cr.session_token);
	if (!cfg->region && cr.region)
		move_str(&cfg->region, &cr.region);
	s3_creds_free(&cr);
	return 0;
}

/* The staging cache defaults to one folder per bucket in the user's cache. */
static char *default_cache_dir(const char *bucket)
{
	const char *base = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");
	char buf[PATH_MAX];

	if (base && *base == '/')
		snprintf(buf, sizeof(buf), "%s/blitfs/%s", base, bucket);
	else
		snprintf(buf, sizeof(buf), "%s/.cache/blitfs/%s",
			 home && *home ? home : "/tmp", bucket);
	return strdup(buf);
}

/* The daemon changes to "/": a relative cache_dir must be made absolute. */
static char *absolute(const char *path)
{
	char cwd[PATH_MAX];
	char buf[PATH_MAX * 2 + 2];

	if (path[0] == '/' || !getcwd(cwd, sizeof(cwd)))
		return strdup(path);
	snprintf(buf, sizeof(buf), "%s/%s", cwd, path);
	return strdup(buf);
}

/* Read the postback secret from its file: the first line, trimmed. */
static int read_secret_file(struct fs_config *cfg, char *err, size_t errlen)
{
	char buf[1024];
	FILE *fp = fopen(cfg->postback_secret_file, "r");

	if (!fp) {
		snprintf(err, errlen, "postback_secret_file %s: %s",
			 cfg->postback_secret_file, strerror(errno));
		return -1;
	}
	if (!fgets(buf, sizeof(buf), fp))
		buf[0] = '\0';
	fclose(fp);
	buf[strcspn(buf, "\r\n")] = '\0';
	if (!*buf) {
		snprintf(err, errlen, "postback_secret_file %s: empty",
			 cfg->postback_secret_file);
		return -1;
	}
	free(cfg->postback_secret);
	cfg->postback_secret = strdup(buf);
	memset(buf, 0, sizeof(buf));
	return 0;
}

int fs_config_finish(struct fs_config *cfg, char *err, size_t errlen)
{
	char *abs;
	char buf[256];

	if (take_creds(cfg, err, errlen) < 0)
		return -1;
	if (!cfg->region)
		cfg->region = strdup("us-east-1");
	if (!cfg->endpoint) {
		snprintf(buf, sizeof(buf), "https://s3.%s.amazonaws.com",
			 cfg->region);
		cfg->endpoint = strdup(buf);
	}
	if (strncmp(cfg->endpoint, "http://", 7) != 0 &&
	    strncmp(cfg->endpoint, "https://", 8) != 0) {
		snprintf(err, errlen, "endpoint '%s': must start with http:// "
			 "or https://", cfg->endpoint);
		return -1;
	}
	if (!cfg->cache_dir)
		cfg->cache_dir = default_cache_dir(cfg->bucket);
	abs = absolute(cfg->cache_dir);
	free(cfg->cache_dir);
	cfg->cache_dir = abs;

	if (cfg->postback_url &&
	    pb_check_request(cfg->postback_url, err, errlen) < 0)
		return -1;
	if (cfg->postback_secret_file)
		return read_secret_file(cfg, err, errlen);
	return 0;
}
