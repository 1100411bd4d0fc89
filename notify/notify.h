/*
 * notify.h - postbacks: a signed HTTP POST to a web service when a file's
 * upload is visible in S3, when the wait for that ran out, or when the
 * upload failed.
 *
 * Deliveries are durable: pb_enqueue returns once the delivery is on disk
 * (SQLite in the cache directory), and a mount delivers whatever an
 * earlier one left.  At least once: a receiver may see a delivery twice
 * (after a crash) and can tell by its delivery id.
 */
#ifndef BLITFS_NOTIFY_H
#define BLITFS_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

struct pb_opts {
	const char *dir;	/* cache directory; postbacks.db lives there */
	const char *secret;	/* HMAC-SHA256 key, or NULL: unsigned */
	int timeout_s;		/* per request */
	int max_inflight;	/* deliveries in flight at once */
	int retries;		/* attempts before a delivery is given up */
	int insecure;		/* do not verify TLS */
	const char *ca_file;
};

/* One final outcome of one version of one file. */
struct pb_event {
	const char *event;	/* "visible", "unconfirmed" or "failed" */
	const char *request;	/* what the file asked for: a URL, or JSON
				 * {"url": ..., "data": {...}} */
	const char *bucket;
	const char *key;
	const char *object_url;	/* the object's URL, for handing on */
	const char *etag;	/* NULL when failed */
	const char *content_type;
	uint64_t size;
	uint64_t version;	/* with bucket and key: the delivery id */
	int visible;		/* S3 showed this version */
	long waited_ms;		/* upload end to visible (or to giving up) */
	unsigned attempts;	/* upload attempts */
	const char *error;	/* NULL unless failed */
};

struct pb;

struct pb *pb_open(const struct pb_opts *o, char *err, size_t errlen);

/* Start delivering (after daemonising: threads do not fork). */
int pb_start(struct pb *p);

/* Stop delivering; undelivered postbacks stay for the next mount. */
void pb_close(struct pb *p);

/* Record a delivery durably; 0, or a negative errno. */
int pb_enqueue(struct pb *p, const struct pb_event *ev);

/*
 * Check what a file asks for (a URL, or JSON with "url" and an optional
 * object "data"): 0 when it can be sent, else -EINVAL with a one-line
 * reason naming the problem (only http:// and https:// URLs are allowed).
 * reason may be NULL with len 0 when only the verdict matters.
 */
int pb_check_request(const char *request, char *reason, size_t len);

struct pb_counts {
	unsigned pending;	/* waiting or being retried */
	unsigned delivered;	/* since the mount */
	unsigned failed;	/* given up since the mount */
};
void pb_counts(struct pb *p, struct pb_counts *n);

/*
 * A JSON string of s, or null for NULL.  A file name need not be UTF-8
 * and JSON must be: bytes that jansson refuses become '?'.
 */
struct json_t;
struct json_t *pb_json_string(const char *s);

#endif
