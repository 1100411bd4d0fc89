/*
 * fs-status.c - the figures of a mount, as the JSON of the root's
 * user.blitfs.status attribute and as Prometheus text.
 *
 * Both are made fresh for each request from one walk of the cache
 * (cache_stats_get) and the S3 client's counters: nothing is kept
 * between requests, so a reader sees the queue as it is now.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs-status.h"
#include "fs.h"
#include "notify.h"

/* The states under their names in the JSON and the metrics. */
static const char *const state_names[CACHE_NSTATES] = {
	[CACHE_OPEN] = "open",
	[CACHE_QUEUED] = "queued",
	[CACHE_UPLOADING] = "uploading",
	[CACHE_UPLOADED] = "uploaded",
	[CACHE_VISIBLE] = "visible",
	[CACHE_UNCONFIRMED] = "unconfirmed",
	[CACHE_FAILED] = "failed",
	[CACHE_DELETING] = "deleting",
};

struct figures {
	struct cache_stats cs;
	struct s3_stats s3;
	struct cache_tally pending;	/* not final: wait waits for these */
	struct cache_tally to_send;	/* queued, uploading, deleting */
	double files_per_s;		/* uploads lately */
	double bytes_per_s;
	double eta_s;			/* until to_send is sent; -1: unknown */
};

static void add_tally(struct cache_tally *to, const struct cache_tally *t)
{
	to->files += t->files;
	to->bytes += t->bytes;
}

/*
 * How long until what is still to send is sent: at the pace of the
 * uploads of the last seconds (by files and by bytes, the slower of the
 * two), or, with none lately, at the write rate the limiter allows now,
 * one request per file.
 */
static double estimate(const struct figures *f)
{
	double t_files, t_bytes;

	if (!f->to_send.files)
		return 0;
	if (f->files_per_s > 0) {
		t_files = f->to_send.files / f->files_per_s;
		t_bytes = f->bytes_per_s > 0
				  ? (double)f->to_send.bytes / f->bytes_per_s
				  : 0;
		return t_files > t_bytes ? t_files : t_bytes;
	}
	if (f->s3.write_rate > 0)
		return f->to_send.files / f->s3.write_rate;
	return -1;
}

/* Three decimals are plenty for an estimate, and easier to read. */
static double round3(double v)
{
	return floor(v * 1000 + 0.5) / 1000;
}

static void collect(struct fs_ctx *x, size_t max_failed, struct figures *f)
{
	const struct cache_tally *st;

	memset(f, 0, sizeof(*f));
	cache_stats_get(x->cache, max_failed, &f->cs);
	s3_client_stats(x->s3, &f->s3);
	st = f->cs.state;
	add_tally(&f->to_send, &st[CACHE_QUEUED]);
	add_tally(&f->to_send, &st[CACHE_UPLOADING]);
	add_tally(&f->to_send, &st[CACHE_DELETING]);
	f->pending = f->to_send;
	add_tally(&f->pending, &st[CACHE_UPLOADED]);
	f->files_per_s = round3(f->cs.recent_files / f->cs.recent_s);
	f->bytes_per_s = round3((double)f->cs.recent_bytes / f->cs.recent_s);
	f->cs.recent_s = round3(f->cs.recent_s);
	f->eta_s = round3(estimate(f));
}

/* ------------------------------------------------------------- JSON */

static json_t *jtally(const struct cache_tally *t)
{
	return json_pack("{s:I,s:I}", "files", (json_int_t)t->files, "bytes",
			 (json_int_t)t->bytes);
}

/* The path of key in the mount: the key without the mount's prefix. */
static const char *key_path(const struct fs_ctx *x, const char *key)
{
	size_t n = strlen(x->prefix);

	return strncmp(key, x->prefix, n) == 0 ? key + n : key;
}

static json_t *jfailed(const struct fs_ctx *x, const struct cache_failed *f)
{
	json_t *o = json_object();
	char path[4096];

	snprintf(path, sizeof(path), "/%s", key_path(x, f->key));
	if (!o || json_object_set_new(o, "path", pb_json_string(path)) ||
	    json_object_set_new(o, "key", pb_json_string(f->key)) ||
	    json_object_set_new(o, "error", pb_json_string(f->error)) ||
	    json_object_set_new(o, "seq", json_integer((json_int_t)f->seq))) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *jstates(const struct figures *f)
{
	json_t *o = json_object();
	int i;

	for (i = 0; o && i < CACHE_NSTATES; i++)
		if (json_object_set_new(o, state_names[i],
					jtally(&f->cs.state[i]))) {
			json_decref(o);
			return NULL;
		}
	return o;
}

static json_t *jrate(double current, double limit)
{
	return json_pack("{s:f,s:f}", "current", current, "limit", limit);
}

static json_t *jrequests(const struct s3_stats *s)
{
	return json_pack("{s:I,s:I,s:I,s:I,s:I}",
			 "write", (json_int_t)s->write_requests,
			 "read", (json_int_t)s->read_requests,
			 "slowdowns", (json_int_t)s->slowdowns,
			 "retries", (json_int_t)s->retries,
			 "redirects", (json_int_t)s->redirects);
}

static json_t *jtraffic(const struct figures *f)
{
	const struct s3_stats *s = &f->s3;

	return json_pack("{s:o,s:o,s:{s:f,s:f,s:f},s:o}",
			 "write_rate", jrate(s->write_rate, s->write_rate_max),
			 "read_rate", jrate(s->read_rate, s->read_rate_max),
			 "throughput",
			 "files_per_s", f->files_per_s,
			 "bytes_per_s", f->bytes_per_s,
			 "window_s", f->cs.recent_s,
			 "requests", jrequests(s));
}

/* Every member but the FAILED list; NULL without memory. */
static json_t *jfigures(struct fs_ctx *x, const struct figures *f)
{
	const char *mnt = x->cfg->mountpoint ? x->cfg->mountpoint : "";
	json_t *o = json_pack(
		"{s:i,s:o,s:o,s:o,s:I,s:{s:I,s:I},s:o,s:o,s:o,s:I}",
		"format", 1,
		"bucket", pb_json_string(x->cfg->bucket),
		"prefix", pb_json_string(x->prefix),
		"mountpoint", pb_json_string(mnt),
		"pid", (json_int_t)getpid(),
		"seq",
		"closed", (json_int_t)f->cs.seq_closed,
		"pending", (json_int_t)f->cs.seq_pending,
		"states", jstates(f),
		"pending", jtally(&f->pending),
		"eta_s", f->eta_s >= 0 ? json_real(f->eta_s) : json_null(),
		"failed_count", (json_int_t)f->cs.state[CACHE_FAILED].files);

	if (o && json_object_update_new(o, jtraffic(f)) < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/*
 * The whole document, at most FS_STATUS_MAX bytes: FAILED entries are
 * dropped from the end of the list until it fits (the ones of lowest
 * sequence stay, which are those a waiting client asks about).
 */
static char *render(struct fs_ctx *x, const struct figures *f)
{
	json_t *o = jfigures(x, f);
	json_t *list = json_array();
	char *text = NULL;
	size_t i, n = f->cs.nfailed;

	if (!o || !list || json_object_set(o, "failed", list))
		goto out;
	for (i = 0; i < n; i++)
		if (json_array_append_new(list, jfailed(x, &f->cs.failed[i])))
			goto out;
	for (;;) {
		json_object_set_new(o, "failed_listed", json_integer((int)n));
		text = json_dumps(o, JSON_COMPACT);
		if (!text || strlen(text) <= FS_STATUS_MAX || n == 0)
			break;
		free(text);
		text = NULL;
		json_array_remove(list, --n);
	}
out:
	json_decref(list);
	json_decref(o);
	return text;
}

int fs_status_getxattr(struct fs_ctx *x, char *value, size_t size)
{
	struct figures f;
	char *text;
	size_t len;

	collect(x, FS_STATUS_FAILED_MAX, &f);
	text = render(x, &f);
	cache_stats_free(&f.cs);
	if (!text)
		return -ENOMEM;
	len = strlen(text);
	if (size && size < len) {
		free(text);
		return -ERANGE;
	}
	if (size)
		memcpy(value, text, len);
	free(text);
	return (int)len;
}

int fs_status_listxattr(char *list, size_t size)
{
	size_t need = sizeof(FS_STATUS_XATTR);

	if (size == 0)
		return (int)need;
	if (size < need)
		return -ERANGE;
	memcpy(list, FS_STATUS_XATTR, need);
	return (int)need;
}

/* ------------------------------------------------------- Prometheus */

/* A label value with the exposition format's escapes. */
static void put_label(FILE *out, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			fprintf(out, "\\%c", *v);
		else if (*v == '\n')
			fputs("\\n", out);
		else
			fputc(*v, out);
	}
}

/* HELP and TYPE lines of one metric. */
static void head(FILE *out, const char *name, const char *type,
		 const char *help)
{
	fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One sample: name{bucket="...",extra} value. */
static void sample(FILE *out, const char *bucket, const char *name,
		   const char *extra, double v)
{
	fprintf(out, "%s{bucket=\"", name);
	put_label(out, bucket);
	fprintf(out, "\"%s%s} ", extra ? "," : "", extra ? extra : "");
	/* Counts exactly, as integers; rates to six digits. */
	if (v < 1e17 && v > -1e17 && v == (double)(int64_t)v)
		fprintf(out, "%lld\n", (long long)v);
	else
		fprintf(out, "%.6g\n", v);
}

static void metric(FILE *out, const char *bucket, const char *name,
		const char *type, const char *help, double v)
{
	head(out, name, type, help);
	sample(out, bucket, name, NULL, v);
}

static void metric_states(FILE *out, const char *b, const struct figures *f)
{
	char label[64];
	int i;

	head(out, "blitfs_files", "gauge",
	     "Files by the state of their newest version.");
	for (i = 0; i < CACHE_NSTATES; i++) {
		snprintf(label, sizeof(label), "state=\"%s\"", state_names[i]);
		sample(out, b, "blitfs_files", label, f->cs.state[i].files);
	}
	head(out, "blitfs_bytes", "gauge",
	     "Bytes by the state of their newest version.");
	for (i = 0; i < CACHE_NSTATES; i++) {
		snprintf(label, sizeof(label), "state=\"%s\"", state_names[i]);
		sample(out, b, "blitfs_bytes", label,
		       (double)f->cs.state[i].bytes);
	}
}

static void metric_queue(FILE *out, const char *b, const struct figures *f)
{
	metric(out, b, "blitfs_closed_versions_total", "counter",
	    "Versions closed since the mount (the close sequence).",
	    (double)f->cs.seq_closed);
	metric(out, b, "blitfs_pending_sequence", "gauge",
	    "Lowest close sequence number not final yet.",
	    (double)f->cs.seq_pending);
	metric(out, b, "blitfs_pending_files", "gauge",
	    "Files queued, uploading or waiting to be visible.",
	    f->pending.files);
	metric(out, b, "blitfs_pending_bytes", "gauge",
	    "Bytes queued, uploading or waiting to be visible.",
	    (double)f->pending.bytes);
	metric(out, b, "blitfs_upload_files_per_second", "gauge",
	    "Uploads finished per second lately.", f->files_per_s);
	metric(out, b, "blitfs_upload_bytes_per_second", "gauge",
	    "Bytes uploaded per second lately.", f->bytes_per_s);
	if (f->eta_s >= 0)
		metric(out, b, "blitfs_eta_seconds", "gauge",
		    "Estimated seconds until the queued files are sent.",
		    f->eta_s);
}

static void metric_traffic(FILE *out, const char *b, const struct figures *f)
{
	const struct s3_stats *s = &f->s3;

	metric(out, b, "blitfs_write_rate", "gauge",
	    "Write requests per second the limiter allows now.",
	    s->write_rate);
	metric(out, b, "blitfs_write_rate_limit", "gauge",
	    "Write requests per second configured.", s->write_rate_max);
	metric(out, b, "blitfs_read_rate", "gauge",
	    "Read requests per second the limiter allows now.", s->read_rate);
	metric(out, b, "blitfs_read_rate_limit", "gauge",
	    "Read requests per second configured.", s->read_rate_max);
	head(out, "blitfs_s3_requests_total", "counter",
	     "Requests sent to S3, retries and redirects included.");
	sample(out, b, "blitfs_s3_requests_total", "class=\"write\"",
	       (double)s->write_requests);
	sample(out, b, "blitfs_s3_requests_total", "class=\"read\"",
	       (double)s->read_requests);
	metric(out, b, "blitfs_s3_slowdowns_total", "counter",
	    "SlowDown (503) and 429 answers.", (double)s->slowdowns);
	metric(out, b, "blitfs_s3_retries_total", "counter",
	    "Requests sent again after a failure.", (double)s->retries);
	metric(out, b, "blitfs_s3_redirects_total", "counter",
	    "Redirects followed.", (double)s->redirects);
}

char *fs_status_metrics(struct fs_ctx *x, size_t *plen)
{
	struct figures f;
	char *text = NULL;
	FILE *out = open_memstream(&text, plen);

	if (!out)
		return NULL;
	collect(x, 0, &f);
	metric_states(out, x->cfg->bucket, &f);
	metric_queue(out, x->cfg->bucket, &f);
	metric_traffic(out, x->cfg->bucket, &f);
	cache_stats_free(&f.cs);
	if (fclose(out) != 0) {
		free(text);
		return NULL;
	}
	return text;
}
