/*
 * fs-config.c - option table, validation, the INI file (inih), the
 * environment, -o lists, --help.
 *
 * The table below is the one list of options: --help, --list-options,
 * the environment's BLITFS_* names and the debug log of the settings are
 * all made from it.  A value is checked before its source is weighed, so
 * a bad value is an error even where a stronger source overrides it.
 */
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs-config.h"
#include "log.h"
#include "notify.h"
#include "s3.h"

/* OPT_RATE: a decimal above min (requests per second). */
enum opt_type { OPT_STR, OPT_BOOL, OPT_UINT, OPT_SIZE, OPT_SECONDS,
		OPT_RATE };

enum {
	OF_SECRET = 1,		/* never from -o, never logged */
	OF_NO_INI = 2,		/* not inside the INI file (config) */
};

/* Checks a string option's value; 0, or -1 with a reason. */
typedef int opt_check(const char *v, char *reason, size_t len);

struct opt {
	const char *name;
	enum opt_type type;
	size_t off;
	const char *def;	/* default as text; NULL: unset */
	long min, max;		/* for OPT_UINT; OPT_SIZE when max > 0 */
	const char *help;
	/* The fields below may be left out of an entry. */
	const char *arg;	/* what --help shows after '=' */
	const char *unit;	/* of the value: "s", "ms", "requests/s" */
	const char *defdesc;	/* the default in words, when def is NULL */
	const char *env;	/* variables besides BLITFS_NAME, in order */
	opt_check *check;
	unsigned flags;
};

/* A value being set, and where from (for precedence and messages). */
struct src {
	enum fs_src kind;
	const char *where;	/* "FILE:LINE" for the INI file */
};

static opt_check check_endpoint, check_region, check_postback;
static opt_check check_acl, check_storage_class, check_header_value;

#define F(x) offsetof(struct fs_config, x)
#define MIB (1024L * 1024)

static const struct opt opts[] = {
	{ "config", OPT_STR, F(config_file), NULL, 0, 0,
	  "INI file to read options from (the same as -c FILE)",
	  .arg = "FILE", .defdesc = "none", .flags = OF_NO_INI },
	{ "endpoint", OPT_STR, F(endpoint), NULL, 0, 0,
	  "URL of the S3 service",
	  .arg = "URL", .defdesc = "https://s3.REGION.amazonaws.com",
	  .env = "AWS_ENDPOINT_URL_S3 AWS_ENDPOINT_URL",
	  .check = check_endpoint },
	{ "region", OPT_STR, F(region), NULL, 0, 0,
	  "region the requests are signed for",
	  .arg = "NAME", .defdesc = "the profile's, else us-east-1",
	  .env = "AWS_REGION AWS_DEFAULT_REGION", .check = check_region },
	{ "path_style", OPT_BOOL, F(path_style), "0", 0, 1,
	  "address the bucket as ENDPOINT/BUCKET instead of BUCKET.HOST",
	  .arg = "0|1" },
	{ "profile", OPT_STR, F(profile), NULL, 0, 0,
	  "profile to take the keys from, in credentials_file or in the "
	  "AWS shared files",
	  .arg = "NAME", .defdesc = "default", .env = "AWS_PROFILE" },
	{ "credentials_file", OPT_STR, F(credentials_file), NULL, 0, 0,
	  "AWS-format credentials file holding the keys (mode 0600), for "
	  "services; set by -o it wins over the environment's keys",
	  .arg = "FILE",
	  .defdesc = "the environment's keys, else ~/.aws/credentials" },
	{ "cache_dir", OPT_STR, F(cache_dir), NULL, 0, 0,
	  "staging cache, one per mount",
	  .arg = "DIR", .defdesc = "~/.cache/blitfs/BUCKET" },
	{ "concurrency", OPT_UINT, F(concurrency), "8", 1, 256,
	  "uploads in flight at once", .unit = "uploads" },
	{ "retries", OPT_UINT, F(retries), "5", 1, 100,
	  "attempts per request before the upload is FAILED (and retried "
	  "after failed_retry)", .unit = "attempts" },
	{ "write_rate", OPT_RATE, F(write_rate), "10", 0, 10000,
	  "write requests (PUT, POST, DELETE) per second to the bucket; "
	  "SlowDown lowers it for a while", .unit = "requests/s" },
	{ "read_rate", OPT_RATE, F(read_rate), "1000", 0, 100000,
	  "read requests (GET, HEAD, LIST) per second to the bucket; "
	  "every upload costs one HEAD, so keep it above write_rate",
	  .unit = "requests/s" },
	{ "multipart_threshold", OPT_SIZE, F(multipart_threshold), "64M",
	  5 * MIB, 5 * 1024 * MIB,
	  "files from this size on go up in parts (K, M, G suffixes)",
	  .unit = "bytes" },
	{ "part_size", OPT_SIZE, F(part_size), "16M", 5 * MIB, 5 * 1024 * MIB,
	  "bytes in each part of a multipart upload (K, M, G suffixes)",
	  .unit = "bytes" },
	{ "copy_cutoff", OPT_SIZE, F(copy_cutoff), "5G", 5 * MIB,
	  5 * 1024 * MIB,
	  "renames of objects from this size on copy them in parts on the "
	  "server (K, M, G suffixes; S3 copies at most 5G at once)",
	  .unit = "bytes" },
	{ "cache_control", OPT_STR, F(cache_control), NULL, 0, 0,
	  "Cache-Control header of every object written",
	  .arg = "VALUE", .defdesc = "none", .check = check_header_value },
	{ "acl", OPT_STR, F(acl), NULL, 0, 0,
	  "canned ACL of every object written (private, public-read, "
	  "bucket-owner-full-control, ...)",
	  .arg = "NAME", .defdesc = "none: the bucket's default",
	  .check = check_acl },
	{ "storage_class", OPT_STR, F(storage_class), NULL, 0, 0,
	  "storage class of every object written (STANDARD, STANDARD_IA, "
	  "INTELLIGENT_TIERING, ...)",
	  .arg = "CLASS", .defdesc = "none: the bucket's default",
	  .check = check_storage_class },
	{ "drain_timeout", OPT_UINT, F(drain_timeout), "30", 0, 86400,
	  "how long unmounting waits for queued uploads", .unit = "s" },
	{ "timeout", OPT_UINT, F(timeout), "30", 1, 3600,
	  "how long a request may stall before it is retried", .unit = "s" },
	{ "tls_verify", OPT_BOOL, F(tls_verify), "1", 0, 1,
	  "verify the server's TLS certificate (0 only for test servers)",
	  .arg = "0|1" },
	{ "ca_file", OPT_STR, F(ca_file), NULL, 0, 0,
	  "extra CA certificates (PEM) to trust",
	  .arg = "FILE", .defdesc = "none" },
	{ "upload_delay", OPT_UINT, F(upload_delay), "200", 0, 60000,
	  "how long a closed file settles before its upload starts, so a "
	  "rename or unlink right after close costs no upload", .unit = "ms" },
	{ "cache_size", OPT_SIZE, F(cache_size), "4G", 0, 0,
	  "staging cache size (K, M, G, T suffixes); past it clean copies "
	  "are evicted and writers wait for uploads; 0: no limit",
	  .unit = "bytes" },
	{ "failed_retry", OPT_UINT, F(failed_retry), "60", 1, 86400,
	  "how long before a FAILED upload is tried again", .unit = "s" },
	{ "visibility_poll", OPT_SECONDS, F(visibility_poll_ms), "2", 0, 3600,
	  "time between HEADs that wait for an upload to show in S3",
	  .unit = "s" },
	{ "visibility_timeout", OPT_SECONDS, F(visibility_timeout_ms), "10", 0,
	  86400, "time after an upload before it is UNCONFIRMED",
	  .unit = "s" },
	{ "read_wait", OPT_SECONDS, F(read_wait_ms), "10", 0, 3600,
	  "how long a reader of a just-written file waits for S3 to show "
	  "it (0: not at all)", .unit = "s" },
	{ "fsync_upload", OPT_BOOL, F(fsync_upload), "0", 0, 1,
	  "fsync() also waits until S3 has acknowledged the bytes",
	  .arg = "0|1" },
	{ "postback_url", OPT_STR, F(postback_url), NULL, 0, 0,
	  "postback for every file that asks for none itself (http/https)",
	  .arg = "URL", .defdesc = "none", .check = check_postback },
	{ "postback_secret", OPT_STR, F(postback_secret), NULL, 0, 0,
	  "HMAC-SHA256 key that signs postbacks; never as -o",
	  .arg = "KEY", .defdesc = "none: unsigned", .flags = OF_SECRET },
	{ "postback_secret_file", OPT_STR, F(postback_secret_file), NULL, 0, 0,
	  "file whose first line is postback_secret (mode 0600)",
	  .arg = "FILE", .defdesc = "none" },
	{ "postback_timeout", OPT_UINT, F(postback_timeout), "10", 1, 600,
	  "how long one postback request may take", .unit = "s" },
	{ "metrics_listen", OPT_STR, F(metrics_listen), NULL, 0, 0,
	  "loopback HOST:PORT serving Prometheus metrics at /metrics",
	  .arg = "HOST:PORT", .defdesc = "off" },
};

#define NOPTS (sizeof(opts) / sizeof(opts[0]))
_Static_assert(NOPTS <= FS_CONFIG_MAX_OPTS, "fs_config.src is too small");

/*
 * -o names that are not blitfs's.  FUSE's and the kernel's go on to
 * libfuse (those ending in '=' take a value); mount(8)'s own, which it
 * or fstab hands to every helper, are dropped (those ending in '*' are
 * prefixes), and so are the access time flags other than atime and
 * noatime: blitfs keeps no access times, and libfuse 3.14 refuses them.
 * Names of credentials are refused wherever they appear.
 */
static const char *const fuse_names[] = {
	"allow_other", "allow_root", "auto_unmount", "default_permissions",
	"ro", "rw", "dev", "nodev", "suid", "nosuid", "exec", "noexec",
	"sync", "async", "dirsync", "atime", "noatime",
	"uid=", "gid=", "umask=", NULL
};
static const char *const mount_names[] = {
	"defaults", "auto", "noauto", "user", "nouser", "users", "owner",
	"group", "_netdev", "nofail", "user=*", "comment=*", "x-*",
	"diratime", "nodiratime", "relatime", "norelatime", "strictatime",
	"nostrictatime", "lazytime", "nolazytime", NULL
};
static const char *const credential_names[] = {
	"access_key", "secret_key", "session_token", "aws_access_key_id",
	"aws_secret_access_key", "aws_session_token", NULL
};

/* The table entry of an option, or NULL. */
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

/* What a value looks like, for --help and messages: URL, N, SECONDS. */
static const char *arg_of(const struct opt *o)
{
	static const char *const by_type[] = {
		[OPT_STR] = "VALUE", [OPT_BOOL] = "0|1", [OPT_UINT] = "N",
		[OPT_SIZE] = "SIZE", [OPT_SECONDS] = "SECONDS",
		[OPT_RATE] = "N",
	};

	if (o->arg)
		return o->arg;
	if (o->unit && !strcmp(o->unit, "s"))
		return "SECONDS";
	if (o->unit && !strcmp(o->unit, "ms"))
		return "MS";
	return by_type[o->type];
}

/* ------------------------------------------------------------ values */

/* A parsed value, before it is stored. */
union value {
	char *s;
	int i;
	uint64_t u;
	double d;
};

/* "5M" for 5 MiB: the largest K/M/G/T unit that divides n. */
static void format_size(uint64_t n, char *buf, size_t size)
{
	static const char units[] = "KMGT";
	int u = -1;

	while (n && u < 3 && n % 1024 == 0) {
		n /= 1024;
		u++;
	}
	if (u < 0)
		snprintf(buf, size, "%llu", (unsigned long long)n);
	else
		snprintf(buf, size, "%llu%c", (unsigned long long)n, units[u]);
}

/* " s" after a number in a message, or nothing. */
static const char *unit_sep(const struct opt *o)
{
	return o->unit && strcmp(o->unit, "bytes") ? " " : "";
}

/* The unit after a number in a message ("s"); bytes go unsaid. */
static const char *unit_of(const struct opt *o)
{
	return o->unit && strcmp(o->unit, "bytes") ? o->unit : "";
}

/* 1/0, true/false, yes/no, on/off, in any case. */
static int parse_bool(const char *v, int *out, char *reason, size_t len)
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
	snprintf(reason, len, "not a boolean (1/0, yes/no, true/false, "
		 "on/off)");
	return -1;
}

/* A whole number within the option's bounds. */
static int parse_uint(const char *v, const struct opt *o, int *out,
		      char *reason, size_t len)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(v, &end, 10);
	if (end == v || *end || *v == '-' || *v == '+') {
		snprintf(reason, len, "not a whole number");
		return -1;
	}
	if (errno || n < o->min || n > o->max) {
		snprintf(reason, len, "must be %ld to %ld%s%s", o->min, o->max,
			 unit_sep(o), unit_of(o));
		return -1;
	}
	*out = (int)n;
	return 0;
}

/* A byte count with an optional K, M, G or T suffix (powers of 1024). */
static int parse_size(const char *v, const struct opt *o, uint64_t *out,
		      char *reason, size_t len)
{
	static const char units[] = "KMGT";
	char lo[16], hi[16];
	unsigned long long n;
	const char *u = NULL;
	char *end;

	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno || end == v || *v == '-' || *v == '+') {
		snprintf(reason, len, "not a size (like 512M or 4G)");
		return -1;
	}
	if (*end && *end != '-')
		u = strchr(units, *end & ~0x20);
	if (*end && (!u || (end[1] && strcasecmp(end + 1, "B") &&
			    strcasecmp(end + 1, "iB")))) {
		snprintf(reason, len, "unknown unit '%s' (K, M, G or T)", end);
		return -1;
	}
	if (u && n > (ULLONG_MAX >> 10 * (u - units + 1))) {
		snprintf(reason, len, "too large");
		return -1;
	}
	if (u)
		n <<= 10 * (u - units + 1);
	if (o->max > 0 && (n < (uint64_t)o->min || n > (uint64_t)o->max)) {
		format_size((uint64_t)o->min, lo, sizeof(lo));
		format_size((uint64_t)o->max, hi, sizeof(hi));
		snprintf(reason, len, "must be %s to %s", lo, hi);
		return -1;
	}
	*out = n;
	return 0;
}

/* A decimal: seconds (fractions allowed) or a rate. */
static int parse_number(const char *v, double *out, char *reason,
			size_t len)
{
	char *end;

	errno = 0;
	*out = strtod(v, &end);
	if (errno || end == v || *end || *out != *out) {
		snprintf(reason, len, "not a number");
		return -1;
	}
	return 0;
}

/* Seconds, stored as milliseconds. */
static int parse_seconds(const char *v, const struct opt *o, int *ms,
			 char *reason, size_t len)
{
	double d;

	if (parse_number(v, &d, reason, len) < 0)
		return -1;
	if (d < o->min || d > o->max) {
		snprintf(reason, len, "must be %ld to %ld s", o->min, o->max);
		return -1;
	}
	*ms = (int)(d * 1000 + 0.5);
	return 0;
}

/* A rate in requests per second: above min, at most max. */
static int parse_rate(const char *v, const struct opt *o, double *out,
		      char *reason, size_t len)
{
	if (parse_number(v, out, reason, len) < 0)
		return -1;
	if (!(*out > o->min) || *out > o->max) {
		snprintf(reason, len, "must be above %ld and at most %ld%s%s",
			 o->min, o->max, unit_sep(o), unit_of(o));
		return -1;
	}
	return 0;
}

/* A string: not empty, and what the option's check allows. */
static int parse_str(const char *v, const struct opt *o, char **out,
		     char *reason, size_t len)
{
	if (*v == '\0') {
		snprintf(reason, len, "must not be empty");
		return -1;
	}
	if (o->check && o->check(v, reason, len) < 0)
		return -1;
	*out = strdup(v);
	if (!*out)
		abort();
	return 0;
}

/* Check v and turn it into the option's type; 0, or -1 with a reason. */
static int parse(const struct opt *o, const char *v, union value *val,
		 char *reason, size_t len)
{
	switch (o->type) {
	case OPT_STR:
		return parse_str(v, o, &val->s, reason, len);
	case OPT_BOOL:
		return parse_bool(v, &val->i, reason, len);
	case OPT_UINT:
		return parse_uint(v, o, &val->i, reason, len);
	case OPT_SIZE:
		return parse_size(v, o, &val->u, reason, len);
	case OPT_SECONDS:
		return parse_seconds(v, o, &val->i, reason, len);
	case OPT_RATE:
		return parse_rate(v, o, &val->d, reason, len);
	}
	return -1;
}

/* Wipe and free a string option's old value. */
static void free_str(const struct opt *o, char *s)
{
	if (s && (o->flags & OF_SECRET))
		explicit_bzero(s, strlen(s));
	free(s);
}

/* Put a parsed value in its field, freeing what a string held. */
static void store(struct fs_config *cfg, const struct opt *o,
		  union value *val)
{
	char *field = (char *)cfg + o->off;

	switch (o->type) {
	case OPT_STR:
		free_str(o, *(char **)field);
		*(char **)field = val->s;
		return;
	case OPT_BOOL:
	case OPT_UINT:
	case OPT_SECONDS:
		*(int *)field = val->i;
		return;
	case OPT_SIZE:
		*(uint64_t *)field = val->u;
		return;
	case OPT_RATE:
		*(double *)field = val->d;
		return;
	}
}

/* http:// or https://, and a host after it. */
static int check_endpoint(const char *v, char *reason, size_t len)
{
	const char *host = NULL;

	if (strncmp(v, "http://", 7) == 0)
		host = v + 7;
	else if (strncmp(v, "https://", 8) == 0)
		host = v + 8;
	if (!host) {
		snprintf(reason, len, "must start with http:// or https://");
		return -1;
	}
	if (!*host || *host == '/') {
		snprintf(reason, len, "has no host");
		return -1;
	}
	return 0;
}

/* A name S3 could have for a region: the signature carries it. */
static int check_region(const char *v, char *reason, size_t len)
{
	if (s3_region_ok(v))
		return 0;
	snprintf(reason, len, "not a region name (like eu-west-1)");
	return -1;
}

/* S3's canned ACLs. */
static int check_acl(const char *v, char *reason, size_t len)
{
	static const char *const names[] = {
		"private", "public-read", "public-read-write",
		"authenticated-read", "aws-exec-read", "bucket-owner-read",
		"bucket-owner-full-control",
	};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(*names); i++)
		if (strcmp(v, names[i]) == 0)
			return 0;
	snprintf(reason, len, "not a canned ACL (private, public-read, "
		 "public-read-write, authenticated-read, aws-exec-read, "
		 "bucket-owner-read, bucket-owner-full-control)");
	return -1;
}

/*
 * A storage class: S3's names are capitals, digits and '_'; other stores
 * have classes of their own, so any such word is taken.
 */
static int check_storage_class(const char *v, char *reason, size_t len)
{
	if (*v && strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") ==
			  strlen(v))
		return 0;
	snprintf(reason, len, "not a storage class (capitals, digits and "
		 "'_', like STANDARD_IA)");
	return -1;
}

/* A header value: printable, on one line. */
static int check_header_value(const char *v, char *reason, size_t len)
{
	const unsigned char *p;

	for (p = (const unsigned char *)v; *p; p++) {
		if (*p < 0x20 || *p == 0x7f) {
			snprintf(reason, len, "holds a control character");
			return -1;
		}
	}
	return 0;
}

/* The same rules as a file's own postback request. */
static int check_postback(const char *v, char *reason, size_t len)
{
	return pb_check_request(v, reason, len) < 0 ? -1 : 0;
}

/* -------------------------------------------------------------- errors */

/*
 * The one shape of every message about a setting: where it came from,
 * the key (the variable, for the environment), the value, and why:
 *   blitfs.ini:12: concurrency='many': not a whole number
 *   -o concurrency='many': not a whole number
 *   BLITFS_CONCURRENCY='many': not a whole number
 * A value with control characters shows them as '?'.  Returns -1.
 */
static int bad(const struct src *s, const char *key, const char *value,
	       const char *reason, char *err, size_t errlen)
{
	char shown[160];
	size_t i;

	for (i = 0; value && value[i] && i < sizeof(shown) - 4; i++)
		shown[i] = (unsigned char)value[i] < 0x20 ? '?' : value[i];
	shown[i] = '\0';
	if (value && value[i])
		strcat(shown, "...");
	snprintf(err, errlen, "%s%s%s%s%s%s: %s",
		 s->kind == FS_SRC_INI ? s->where : "",
		 s->kind == FS_SRC_INI ? ": " :
		 s->kind == FS_SRC_ARGV ? "-o " : "",
		 key, value ? "='" : "", value ? shown : "", value ? "'" : "",
		 reason);
	return -1;
}

/* Whether name is one of a NULL-ended list. */
static int in_list(const char *const *list, const char *name)
{
	for (; *list; list++)
		if (strcmp(*list, name) == 0)
			return 1;
	return 0;
}

/* A secret given where every user can see it, or keys in the INI file. */
static int refuse_secret(const struct src *s, const char *key, char *err,
			 size_t errlen)
{
	int cred = in_list(credential_names, key);
	const char *where = s->kind == FS_SRC_ARGV ? "-o " : "";

	if (s->kind == FS_SRC_INI)
		snprintf(err, errlen, "%s: %s: keys do not go in the INI "
			 "file; put them in credentials_file", s->where, key);
	else
		snprintf(err, errlen, "%s%s: a secret on the command line is "
			 "visible to every user; use %s", where, key,
			 cred ? "credentials_file or the environment"
			      : "postback_secret_file or the INI file");
	return -1;
}

/*
 * Check and set option o from source s; key names it in messages (the
 * variable, for the environment).  A weaker source than the one that
 * set it already is checked, then ignored.
 */
static int set_from(struct fs_config *cfg, const struct opt *o,
		    const char *key, const char *value, const struct src *s,
		    char *err, size_t errlen)
{
	size_t i = (size_t)(o - opts);
	char reason[256];
	union value val;

	if ((o->flags & OF_SECRET) && s->kind == FS_SRC_ARGV)
		return refuse_secret(s, key, err, errlen);
	if ((o->flags & OF_NO_INI) && s->kind == FS_SRC_INI)
		return bad(s, key, value, "not inside the INI file", err,
			   errlen);
	if (parse(o, value, &val, reason, sizeof(reason)) < 0)
		return bad(s, key, (o->flags & OF_SECRET) ? NULL : value,
			   reason, err, errlen);
	if (cfg->src[i] > s->kind) {
		if (o->type == OPT_STR)
			free_str(o, val.s);
		return 0;
	}
	store(cfg, o, &val);
	cfg->src[i] = (unsigned char)s->kind;
	return 0;
}

int fs_config_set(struct fs_config *cfg, const char *key, const char *value,
		  char *err, size_t errlen)
{
	const struct opt *o = find_opt(key);
	struct src s = { FS_SRC_ARGV, NULL };

	if (!o)
		return bad(&s, key, value, "unknown option", err, errlen);
	return set_from(cfg, o, key, value, &s, err, errlen);
}

void fs_config_defaults(struct fs_config *cfg)
{
	char reason[256];
	union value val;
	size_t i;

	memset(cfg, 0, sizeof(*cfg));
	for (i = 0; i < NOPTS; i++)
		if (opts[i].def &&
		    parse(&opts[i], opts[i].def, &val, reason,
			  sizeof(reason)) == 0)
			store(cfg, &opts[i], &val);
}

/* Wipe and free a string that may hold a secret. */
static void free_secret(char *s)
{
	if (s)
		explicit_bzero(s, strlen(s));
	free(s);
}

void fs_config_free(struct fs_config *cfg)
{
	size_t i;

	for (i = 0; i < NOPTS; i++) {
		if (opts[i].type == OPT_STR) {
			char **p = (char **)((char *)cfg + opts[i].off);

			free_str(&opts[i], *p);
			*p = NULL;
		}
	}
	free(cfg->bucket);
	free(cfg->prefix);
	free(cfg->mountpoint);
	free(cfg->access_key);
	free_secret(cfg->secret_key);
	free_secret(cfg->session_token);
	free(cfg->creds_source);
	memset(cfg, 0, sizeof(*cfg));
}

/* ----------------------------------------------------------- -o lists */

/* Whether name (with its value cut off) is in a list of FUSE names. */
static const char *fuse_name(const char *tok)
{
	size_t n = strcspn(tok, "=");
	const char *const *p;

	for (p = fuse_names; *p; p++) {
		size_t len = strlen(*p);
		int wants_value = (*p)[len - 1] == '=';

		if (wants_value && !strncmp(tok, *p, len))
			return *p;
		if (!wants_value && n == len && !strncmp(tok, *p, n) &&
		    !tok[n])
			return *p;
	}
	return NULL;
}

/* Whether tok is one of mount(8)'s own options, dropped here. */
static int is_mount_name(const char *tok)
{
	const char *const *p;

	for (p = mount_names; *p; p++) {
		size_t len = strlen(*p);

		if ((*p)[len - 1] == '*' ? !strncmp(tok, *p, len - 1)
					 : !strcmp(tok, *p))
			return 1;
	}
	return 0;
}

/* uid=, gid= take decimal numbers, umask= an octal one. */
static int check_fuse_value(const char *name, const char *v, char *reason,
			    size_t len)
{
	const char *digits = strcmp(name, "umask=") ? "0123456789"
						    : "01234567";

	if (*v && v[strspn(v, digits)] == '\0')
		return 0;
	snprintf(reason, len, strcmp(name, "umask=") ? "not a number"
						     : "not an octal number");
	return -1;
}

/* Append opt to a comma-separated list, growing it. */
static void append_opt(char **plist, const char *opt)
{
	size_t old = *plist ? strlen(*plist) : 0;
	size_t add = strlen(opt);
	char *s = realloc(*plist, old + add + 2);

	if (!s)
		abort();
	if (old)
		s[old++] = ',';
	memcpy(s + old, opt, add + 1);
	*plist = s;
}

/* One item of a -o list. */
static int one_opt(struct fs_config *cfg, char *tok, char **pfuse,
		   char *err, size_t errlen)
{
	static const struct src s = { FS_SRC_ARGV, NULL };
	char *eq = strchr(tok, '=');
	const char *value = eq ? eq + 1 : NULL;
	const char *fuse = fuse_name(tok);
	const struct opt *o;
	char reason[128];

	if (fuse) {
		if (value && check_fuse_value(fuse, value, reason,
					      sizeof(reason)) < 0) {
			*eq = '\0';
			return bad(&s, tok, value, reason, err, errlen);
		}
		append_opt(pfuse, tok);
		return 0;
	}
	if (is_mount_name(tok))
		return 0;
	if (eq)
		*eq = '\0';
	if (in_list(credential_names, tok))
		return refuse_secret(&s, tok, err, errlen);
	o = find_opt(tok);
	if (!o)
		return bad(&s, tok, value, "unknown option", err, errlen);
	if (!value && o->type != OPT_BOOL) {
		snprintf(reason, sizeof(reason), "needs a value (%s=%s)",
			 o->name, arg_of(o));
		return bad(&s, tok, NULL, reason, err, errlen);
	}
	return set_from(cfg, o, tok, value ? value : "1", &s, err, errlen);
}

int fs_config_opts(struct fs_config *cfg, const char *list, char **pfuse,
		   char *err, size_t errlen)
{
	char *copy = strdup(list);
	char *save = NULL;
	char *tok;
	int ret = 0;

	if (!copy)
		abort();
	for (tok = strtok_r(copy, ",", &save); tok && ret == 0;
	     tok = strtok_r(NULL, ",", &save))
		ret = one_opt(cfg, tok, pfuse, err, errlen);
	free(copy);
	return ret;
}

/* ------------------------------------------------------------ INI file */

struct ini_state {
	struct fs_config *cfg;
	const char *path;
	FILE *fp;
	int lineno;		/* of the line inih read last */
	char *err;
	size_t errlen;
	int failed;
	int has_secret;
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

/* One key of the INI file, from source s (its file and line). */
static int ini_entry(struct ini_state *st, const char *section,
		     const char *name, const char *value, const struct src *s)
{
	const struct opt *o;

	if (*section && strcmp(section, "blitfs") != 0) {
		snprintf(st->err, st->errlen, "%s: unknown section [%s]",
			 s->where, section);
		return -1;
	}
	if (in_list(credential_names, name))
		return refuse_secret(s, name, st->err, st->errlen);
	o = find_opt(name);
	if (!o)
		return bad(s, name, value, "unknown option", st->err,
			   st->errlen);
	if (o->flags & OF_SECRET)
		st->has_secret = 1;
	return set_from(st->cfg, o, name, value, s, st->err, st->errlen);
}

/* inih's handler: stops at the first mistake, keeping its message. */
static int on_ini_line(void *user, const char *section, const char *name,
		       const char *value)
{
	struct ini_state *st = user;
	char where[PATH_MAX + 32];
	struct src s = { FS_SRC_INI, where };

	if (st->failed)
		return 0;
	snprintf(where, sizeof(where), "%s:%d", st->path, st->lineno);
	if (ini_entry(st, section, name, value, &s) < 0) {
		st->failed = 1;
		return 0;
	}
	return 1;
}

/*
 * Warn when a file holding a secret can be read by others; -1 with err
 * when it is not a regular file.  what names it ("credentials_file").
 */
static int check_secret_file(const char *what, const char *path,
			     char *err, size_t errlen)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		snprintf(err, errlen, "%s %s: cannot read: %s", what, path,
			 strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s %s: not a regular file", what, path);
		return -1;
	}
	if (st.st_mode & (S_IRGRP | S_IROTH))
		log_warn("config", "%s %s holds a secret and is readable by "
			 "%s (mode %04o): chmod 600 it", what, path,
			 st.st_mode & S_IROTH ? "every user" : "its group",
			 (unsigned)(st.st_mode & 07777));
	return 0;
}

int fs_config_load(struct fs_config *cfg, const char *path, char *err,
		   size_t errlen)
{
	struct ini_state s = { cfg, path, NULL, 0, err, errlen, 0, 0 };
	int ret;

	s.fp = fopen(path, "r");
	if (!s.fp) {
		snprintf(err, errlen, "config %s: cannot read: %s", path,
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
	if (s.has_secret)
		return check_secret_file("config", path, err, errlen);
	return 0;
}

/* --------------------------------------------------------- environment */

/* The first of BLITFS_NAME and the option's other variables that is set. */
static const char *env_of(const struct opt *o, char *var, size_t size)
{
	const char *v, *p;
	size_t i, n;

	n = (size_t)snprintf(var, size, "BLITFS_");
	for (i = 0; o->name[i] && n + 1 < size; i++)
		var[n++] = (char)toupper((unsigned char)o->name[i]);
	var[n] = '\0';
	v = getenv(var);
	for (p = o->env; (!v || !*v) && p && *p; p += n) {
		p += strspn(p, " ");
		n = strcspn(p, " ");
		snprintf(var, size, "%.*s", (int)n, p);
		v = getenv(var);
	}
	return v && *v ? v : NULL;
}

int fs_config_env(struct fs_config *cfg, char *err, size_t errlen)
{
	static const struct src s = { FS_SRC_ENV, NULL };
	char var[64];
	const char *v;
	size_t i;

	for (i = 0; i < NOPTS; i++) {
		v = env_of(&opts[i], var, sizeof(var));
		if (v && set_from(cfg, &opts[i], var, v, &s, err, errlen) < 0)
			return -1;
	}
	return 0;
}

int fs_config_read(struct fs_config *cfg, char *const *olists, int nlists,
		   char **pfuse, char *err, size_t errlen)
{
	int i;

	for (i = 0; i < nlists; i++)
		if (fs_config_opts(cfg, olists[i], pfuse, err, errlen) < 0)
			return -1;
	if (fs_config_env(cfg, err, errlen) < 0)
		return -1;
	if (cfg->config_file &&
	    fs_config_load(cfg, cfg->config_file, err, errlen) < 0)
		return -1;
	return 0;
}

/* ---------------------------------------------------------- finishing */

/* Move a string into *field, freeing what was there. */
static void move_str(char **field, char **from)
{
	free(*field);
	*field = *from;
	*from = NULL;
}

/* The index in opts of an option that exists. */
static size_t opt_index(const char *name)
{
	return (size_t)(find_opt(name) - opts);
}

/*
 * Which credentials: credentials_file when -o set it, or when the
 * environment holds no keys (it wins over a weaker credentials_file, as
 * it does for the AWS tools); else the environment's keys or the
 * profile's in the AWS shared files (see s3_creds_resolve).  The
 * profile's region is taken unless a region was set.
 */
static int take_creds(struct fs_config *cfg, char *err, size_t errlen)
{
	const char *id = getenv("AWS_ACCESS_KEY_ID");
	int argv = cfg->src[opt_index("credentials_file")] == FS_SRC_ARGV;
	struct s3_creds cr;
	char why[256];
	int ret;

	if (cfg->credentials_file && (argv || !id || !*id)) {
		if (check_secret_file("credentials_file",
				      cfg->credentials_file, err, errlen) < 0)
			return -1;
		ret = s3_creds_from_file(&cr, cfg->credentials_file,
					 cfg->profile, why, sizeof(why));
		if (ret < 0)
			snprintf(err, errlen, "credentials_file %s", why);
	} else {
		ret = s3_creds_resolve(&cr, cfg->profile, err, errlen);
	}
	if (ret < 0)
		return -1;
	move_str(&cfg->access_key, &cr.access_key);
	move_str(&cfg->secret_key, &cr.secret_key);
	move_str(&cfg->session_token, &cr.session_token);
	if (!cfg->region && cr.region)
		move_str(&cfg->region, &cr.region);
	free(cfg->creds_source);
	cfg->creds_source = strdup(cr.source);
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
	const char *path = cfg->postback_secret_file;
	char buf[1024];
	FILE *fp;

	if (check_secret_file("postback_secret_file", path, err, errlen) < 0)
		return -1;
	fp = fopen(path, "r");
	if (!fp) {
		snprintf(err, errlen, "postback_secret_file %s: cannot read: "
			 "%s", path, strerror(errno));
		return -1;
	}
	if (!fgets(buf, sizeof(buf), fp))
		buf[0] = '\0';
	fclose(fp);
	buf[strcspn(buf, "\r\n")] = '\0';
	if (!*buf) {
		snprintf(err, errlen, "postback_secret_file %s: empty", path);
		return -1;
	}
	free_secret(cfg->postback_secret);
	cfg->postback_secret = strdup(buf);
	explicit_bzero(buf, sizeof(buf));
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
	if (!cfg->cache_dir)
		cfg->cache_dir = default_cache_dir(cfg->bucket);
	abs = absolute(cfg->cache_dir);
	free(cfg->cache_dir);
	cfg->cache_dir = abs;

	if (cfg->postback_secret_file)
		return read_secret_file(cfg, err, errlen);
	return 0;
}

/* -------------------------------------------------------------- --help */

/* A space that wrap() prints but never folds at: "10 s" stays whole. */
#define NBSP '\1'

/*
 * Print text folded at 79 columns, every line indented by col; the first
 * line starts at column at (already written).
 */
static void wrap(FILE *out, const char *text, int at, int col)
{
	const char *p = text;
	int n;

	if (at >= col) {
		fputc('\n', out);
		at = 0;
	}
	while (*p) {
		fprintf(out, "%*s", col - at, "");
		at = col;
		n = (int)strlen(p);
		if (n > 79 - col) {
			n = 79 - col;
			while (n > 0 && p[n] != ' ')
				n--;
			if (n == 0)
				n = (int)strcspn(p, " ");
		}
		for (; n > 0; n--, p++)
			fputc(*p == NBSP ? ' ' : *p, out);
		fputc('\n', out);
		p += strspn(p, " ");
		at = 0;
	}
}

/* The default of o in words, its unit joined by NBSP (see wrap). */
static void default_text(const struct opt *o, char *buf, size_t size)
{
	if (!o->def)
		snprintf(buf, size, "%s", o->defdesc ? o->defdesc : "none");
	else if (o->type == OPT_BOOL || !o->unit || !strcmp(o->unit, "bytes"))
		snprintf(buf, size, "%s", o->def);
	else
		snprintf(buf, size, "%s%c%s", o->def, NBSP, o->unit);
}

/* Names of a list, folded; a trailing '=' is shown as "=N". */
static void print_names(FILE *out, const char *const *list)
{
	char text[1024];
	size_t n = 0;

	for (; *list && n < sizeof(text) - 32; list++) {
		size_t len = strlen(*list);

		n += (size_t)snprintf(text + n, sizeof(text) - n, "%s%s%s",
				      n ? " " : "", *list,
				      (*list)[len - 1] == '=' ? "N" : "");
	}
	wrap(out, text, 0, 2);
}

/* The option's AWS variables as "AWS_REGION, AWS_DEFAULT_REGION". */
static void env_names(const struct opt *o, char *buf, size_t size)
{
	const char *p = o->env ? o->env : "";
	size_t n = 0, len;

	buf[0] = '\0';
	for (p += strspn(p, " "); *p && n < size; p += strspn(p, " ")) {
		len = strcspn(p, " ");
		n += (size_t)snprintf(buf + n, size - n, "%s%.*s",
				      n ? ", " : "", (int)len, p);
		p += len;
	}
}

void fs_config_help(FILE *out)
{
	char head[64], text[1024], def[96], env[128];
	size_t i;
	int n;

	fprintf(out, "Options: -o NAME=VALUE, NAME = VALUE in the INI file, "
		"or BLITFS_NAME=VALUE in\nthe environment (also the AWS_* "
		"variables named).  -o wins over the\nenvironment, which "
		"wins over the INI file.\n");
	for (i = 0; i < NOPTS; i++) {
		const struct opt *o = &opts[i];

		n = snprintf(head, sizeof(head), "  %s=%s", o->name,
			     arg_of(o));
		default_text(o, def, sizeof(def));
		env_names(o, env, sizeof(env));
		snprintf(text, sizeof(text), "%s (default: %s%s%s)", o->help,
			 def, *env ? "; also " : "", env);
		fputs(head, out);
		wrap(out, text, n, 26);
	}
	fprintf(out, "\nFUSE and mount options passed on to the kernel:\n");
	print_names(out, fuse_names);
	fprintf(out, "Mount options ignored (mount(8) and fstab pass them):\n");
	print_names(out, mount_names);
}

void fs_config_list(FILE *out)
{
	const char *const *p;
	size_t i;

	for (i = 0; i < NOPTS; i++)
		fprintf(out, "%s\n", opts[i].name);
	for (p = fuse_names; *p; p++)
		fprintf(out, "%s\n", *p);
	for (p = mount_names; *p; p++)
		fprintf(out, "%s\n", *p);
}

/* ---------------------------------------------------------- debug log */

/* The value of o in cfg as text; a secret only as "set". */
static void format_value(const struct fs_config *cfg, const struct opt *o,
			 char *buf, size_t size)
{
	const char *field = (const char *)cfg + o->off;
	const char *s;

	switch (o->type) {
	case OPT_STR:
		s = *(char *const *)field;
		snprintf(buf, size, "%s", !s ? "(unset)" :
			 (o->flags & OF_SECRET) ? "(set, not shown)" : s);
		return;
	case OPT_BOOL:
	case OPT_UINT:
		snprintf(buf, size, "%d", *(const int *)field);
		return;
	case OPT_SECONDS:
		snprintf(buf, size, "%g", *(const int *)field / 1000.0);
		return;
	case OPT_SIZE:
		format_size(*(const uint64_t *)field, buf, size);
		return;
	case OPT_RATE:
		snprintf(buf, size, "%g", *(const double *)field);
		return;
	}
}

void fs_config_log(const struct fs_config *cfg)
{
	static const char *const from[] = { "default", "INI file",
					    "environment", "-o" };
	char value[512];
	size_t i;

	for (i = 0; i < NOPTS; i++) {
		format_value(cfg, &opts[i], value, sizeof(value));
		log_debug("config", "%s=%s (%s)", opts[i].name, value,
			  from[cfg->src[i]]);
	}
	log_debug("config", "access key %s from %s%s",
		  cfg->access_key ? cfg->access_key : "(none)",
		  cfg->creds_source ? cfg->creds_source : "nowhere",
		  cfg->session_token ? ", with a session token" : "");
}
