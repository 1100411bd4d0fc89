/*
 * notify_i.h - what the files of notify/ share: the delivery store
 * (pb-store.c), the request, body and id (pb-body.c) and one HTTP attempt
 * (pb-send.c).  notify.c ties them to worker threads.  Also what the unit
 * tests reach into.
 */
#ifndef BLITFS_NOTIFY_I_H
#define BLITFS_NOTIFY_I_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "notify.h"

/* A request (sidecar or xattr) larger than this is refused. */
#define PB_REQUEST_MAX 65536
/* Longest postback URL accepted. */
#define PB_URL_MAX 2048
/* Hex characters of a delivery id. */
#define PB_ID_LEN 32

/* ---- pb-body.c ---- */

/* What a file asked for, parsed: the URL to POST to and the data echoed. */
struct pb_request {
	char *url;
	json_t *data;		/* an object, or NULL */
};

/*
 * Parse and check a request; 0 and *r filled (free with
 * pb_request_free), or -EINVAL with a one-line reason.
 */
int pb_request_parse(const char *request, struct pb_request *r, char *reason,
		     size_t len);
void pb_request_free(struct pb_request *r);

/* The delivery id of an event sent to url; id holds PB_ID_LEN + 1 bytes. */
void pb_delivery_id(const struct pb_event *ev, const char *url,
		    char id[PB_ID_LEN + 1]);

/* ISO 8601 UTC with milliseconds of a time in ms since the epoch. */
void pb_iso8601(int64_t ms, char *buf, size_t size);

/* The JSON body of an event, made at now_ms; caller frees.  NULL: no mem. */
char *pb_body(const struct pb_event *ev, json_t *data, const char *id,
	      int64_t now_ms);

/* ---- pb-send.c ---- */

/* Where one attempt left a delivery. */
enum pb_outcome {
	PB_DELIVERED,		/* 2xx */
	PB_RETRY,		/* network error, timeout, 429, 5xx */
	PB_REFUSED,		/* 3xx or another 4xx: give up at once */
	PB_ABORTED,		/* pb_close cut it short: try next mount */
};

struct pb_result {
	enum pb_outcome outcome;
	long status;		/* HTTP status, 0 if none came */
	char error[256];	/* what went wrong, for logs and the row */
};

/* One delivery as it goes out. */
struct pb_post {
	const char *id;
	const char *url;
	const char *body;
	const char *secret;	/* or NULL */
	int timeout_s;
	int insecure;
	const char *ca_file;
	const atomic_int *stop;	/* non-zero: abandon the request */
};

/* The X-Blitfs-Signature value for ts and body; sig holds 72 bytes. */
void pb_sign(const char *secret, const char *ts, const char *body,
	     char sig[72]);

/* POST once, and say what became of it. */
void pb_send(const struct pb_post *p, struct pb_result *r);

/* The URL as logs may show it: no user info, no query string. */
const char *pb_url_for_log(const char *url, char *buf, size_t size);

/* ---- pb-store.c ---- */

struct pb_store;

/* A delivery as it sits in the store; strings owned by the row. */
struct pb_row {
	char *id;
	char *url;
	char *body;
	char *key;
	unsigned attempts;
	int64_t next_try;	/* ms since the epoch */
};

struct pb_store *pb_store_open(const char *dir, char *err, size_t errlen);
void pb_store_close(struct pb_store *s);

/* Add a pending delivery: 1, or 0 if its id is there already, or -EIO. */
int pb_store_add(struct pb_store *s, const struct pb_row *r);

/*
 * The pending delivery due first (due now or later) that skip() does not
 * reject: 1 and *r filled (free with pb_row_free), 0 if there is none, or
 * -EIO.
 */
int pb_store_next(struct pb_store *s, int (*skip)(void *, const char *),
		  void *arg, struct pb_row *r);
void pb_row_free(struct pb_row *r);

/* The delivery went through: forget it. */
int pb_store_done(struct pb_store *s, const char *id);

/* One more failed attempt; try again at next_try. */
int pb_store_retry(struct pb_store *s, const char *id, unsigned attempts,
		   int64_t next_try, const char *error);

/* Given up: kept, marked failed, with the reason. */
int pb_store_fail(struct pb_store *s, const char *id, unsigned attempts,
		  const char *error);

/* Make the deliveries that wait for url due now; how many, or -EIO. */
int pb_store_wake(struct pb_store *s, const char *url, int64_t now);

/* Deliveries still pending; negative on error. */
long pb_store_pending(struct pb_store *s);

/* ---- notify.c ---- */

/* Backoff base and cap in ms (tests shorten them); before pb_start. */
void pb_set_backoff(struct pb *p, int64_t base_ms, int64_t cap_ms);

/* Milliseconds to wait before attempt n + 1 after n failed ones. */
int64_t pb_backoff(int64_t base_ms, int64_t cap_ms, unsigned n,
		   uint32_t rnd);

#endif
