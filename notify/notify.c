/*
 * notify.c - postbacks: the queue's public face and its delivery threads.
 *
 * pb_enqueue builds the body and commits a row to postbacks.db, nothing
 * more, so an upload thread never waits on a web service.  max_inflight
 * threads each take the pending row due first that no other thread holds,
 * POST it without the lock, and record the outcome: delivered rows go,
 * network errors, 429 and 5xx come back after an exponential backoff with
 * full jitter, anything else is given up at once.  pb_close abandons
 * requests in flight; their rows stay pending for the next mount.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "log.h"
#include "notify_i.h"

#define DEF_TIMEOUT_S 10
#define DEF_INFLIGHT 4
#define DEF_RETRIES 12
#define BACKOFF_BASE_MS 1000
#define BACKOFF_CAP_MS 60000
/* Longest sleep between looks at the queue, should the clock jump. */
#define MAX_NAP_MS 5000

/*
 * Lock rules: lock guards store, busy[], the counters and every SQLite
 * call; it is never held across an HTTP request.  stop is atomic so that
 * curl's progress callback can read it without the lock.
 */
struct pb {
	pthread_mutex_t lock;
	pthread_cond_t wake;	/* a row was added or released, or stop */
	struct pb_store *store;
	char **busy;		/* per thread: id of the row in flight */
	pthread_t *threads;
	int nthreads;		/* started */
	atomic_int stop;
	unsigned delivered;
	unsigned failed;

	char *secret;
	char *ca_file;
	int timeout_s;
	int max_inflight;
	unsigned retries;
	int insecure;
	int64_t base_ms;
	int64_t cap_ms;
};

/* One delivery thread's identity. */
struct worker {
	struct pb *p;
	int slot;
};

/* Wall-clock ms: due times outlive the process. */
static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Full jitter: uniform in [0, min(cap, base 2^(n-1))]. */
int64_t pb_backoff(int64_t base_ms, int64_t cap_ms, unsigned n, uint32_t rnd)
{
	int64_t ceiling = cap_ms;

	if (n == 0)
		return 0;
	if (n <= 30 && (base_ms << (n - 1)) < cap_ms)
		ceiling = base_ms << (n - 1);
	return (int64_t)(rnd % (uint64_t)(ceiling + 1));
}

/* A random 32-bit number for the jitter. */
static uint32_t jitter(void)
{
	uint32_t r;

	if (RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
		r = (uint32_t)now_ms() * 2654435761u;
	return r;
}

/* Replace the backoff, for tests that cannot wait seconds. */
void pb_set_backoff(struct pb *p, int64_t base_ms, int64_t cap_ms)
{
	p->base_ms = base_ms;
	p->cap_ms = cap_ms;
}

/* Free a pb whose threads are not running. */
static void destroy(struct pb *p)
{
	pb_store_close(p->store);
	if (p->secret)
		OPENSSL_cleanse(p->secret, strlen(p->secret));
	free(p->secret);
	free(p->ca_file);
	free(p->busy);
	free(p->threads);
	pthread_cond_destroy(&p->wake);
	pthread_mutex_destroy(&p->lock);
	free(p);
	curl_global_cleanup();
}

/* A copy of s, or NULL for NULL or "". */
static char *dup_opt(const char *s)
{
	char *c;

	if (!s || !*s)
		return NULL;
	c = strdup(s);
	if (!c)
		abort();
	return c;
}

/* Copy the options, putting defaults in for zeros. */
static void take_opts(struct pb *p, const struct pb_opts *o)
{
	p->secret = dup_opt(o->secret);
	p->ca_file = dup_opt(o->ca_file);
	p->timeout_s = o->timeout_s > 0 ? o->timeout_s : DEF_TIMEOUT_S;
	p->max_inflight = o->max_inflight > 0 ? o->max_inflight : DEF_INFLIGHT;
	p->retries = o->retries > 0 ? (unsigned)o->retries : DEF_RETRIES;
	p->insecure = o->insecure;
	p->base_ms = BACKOFF_BASE_MS;
	p->cap_ms = BACKOFF_CAP_MS;
}

/* Open the queue in o->dir; threads wait for pb_start. */
struct pb *pb_open(const struct pb_opts *o, char *err, size_t errlen)
{
	struct pb *p;

	if (!o->dir || !*o->dir) {
		snprintf(err, errlen, "postbacks: no cache directory");
		return NULL;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(err, errlen, "postbacks: curl_global_init failed");
		return NULL;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		abort();
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->wake, NULL);
	take_opts(p, o);
	p->busy = calloc((size_t)p->max_inflight, sizeof(*p->busy));
	p->threads = calloc((size_t)p->max_inflight, sizeof(*p->threads));
	if (!p->busy || !p->threads)
		abort();
	p->store = pb_store_open(o->dir, err, errlen);
	if (!p->store) {
		destroy(p);
		return NULL;
	}
	return p;
}

/* skip() for pb_store_next: true if another thread holds this id. */
static int in_flight(void *arg, const char *id)
{
	struct pb *p = arg;
	int i;

	for (i = 0; i < p->max_inflight; i++)
		if (p->busy[i] && !strcmp(p->busy[i], id))
			return 1;
	return 0;
}

/* Log a line about a delivery: its key, where to, and what happened. */
#define LOG_ROW(lvl, r, fmt, ...)                                        \
	do {                                                             \
		char k_[512];                                            \
		char u_[512];                                            \
		LOG_AT(lvl, "notify", "%s key=%s url=%s " fmt,           \
		       (r)->id, log_key((r)->key, k_, sizeof(k_)),       \
		       pb_url_for_log((r)->url, u_, sizeof(u_)),         \
		       __VA_ARGS__);                                     \
	} while (0)

/*
 * A 2xx came: the row goes.  If this one had failed before, the receiver
 * is back from an outage: the others waiting for it go now rather than
 * at the end of their backoff, which grew long while it was away.
 */
static void settle_delivered(struct pb *p, struct pb_row *r,
			     const struct pb_result *res)
{
	int woken = 0;

	pb_store_done(p->store, r->id);
	p->delivered++;
	if (r->attempts)
		woken = pb_store_wake(p->store, r->url, now_ms());
	LOG_ROW(LOG_LVL_INFO, r, "status=%ld attempt=%u: delivered%s",
		res->status, r->attempts + 1,
		woken > 0 ? "; receiver is back, retrying the others now" : "");
}

/* Refused, or out of attempts: keep the row as failed. */
static void settle_failed(struct pb *p, struct pb_row *r,
			  const struct pb_result *res, const char *why)
{
	pb_store_fail(p->store, r->id, r->attempts + 1, res->error);
	p->failed++;
	LOG_ROW(LOG_LVL_ERR, r, "status=%ld attempt=%u: %s; %s", res->status,
		r->attempts + 1, res->error, why);
}

/* A transient failure: back off, or give up when attempts run out. */
static void settle_retry(struct pb *p, struct pb_row *r,
			 const struct pb_result *res)
{
	unsigned n = r->attempts + 1;
	int64_t wait;

	if (n >= p->retries) {
		settle_failed(p, r, res, "out of attempts, given up");
		return;
	}
	wait = pb_backoff(p->base_ms, p->cap_ms, n, jitter());
	pb_store_retry(p->store, r->id, n, now_ms() + wait, res->error);
	LOG_ROW(LOG_LVL_WARN, r,
		"status=%ld attempt=%u/%u: %s; retry in %lld ms", res->status,
		n, p->retries, res->error, (long long)wait);
}

/* Record what became of one attempt; called with the lock held. */
static void settle(struct pb *p, struct pb_row *r, const struct pb_result *res)
{
	switch (res->outcome) {
	case PB_DELIVERED:
		settle_delivered(p, r, res);
		break;
	case PB_RETRY:
		settle_retry(p, r, res);
		break;
	case PB_REFUSED:
		settle_failed(p, r, res, "not retried, given up");
		break;
	case PB_ABORTED:
		LOG_ROW(LOG_LVL_INFO, r, "%s", "stopping: left for next mount");
		break;
	}
}

/* POST one row without the lock, then settle it with the lock. */
static void deliver(struct pb *p, int slot, struct pb_row *r)
{
	struct pb_post post = {
		.id = r->id,
		.url = r->url,
		.body = r->body,
		.secret = p->secret,
		.timeout_s = p->timeout_s,
		.insecure = p->insecure,
		.ca_file = p->ca_file,
		.stop = &p->stop,
	};
	struct pb_result res;

	pb_send(&post, &res);
	pthread_mutex_lock(&p->lock);
	settle(p, r, &res);
	p->busy[slot] = NULL;
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->lock);
}

/* Sleep on the condition until due (ms since the epoch) at the latest. */
static void nap(struct pb *p, int64_t due)
{
	int64_t until = now_ms() + MAX_NAP_MS;
	struct timespec ts;

	if (due < until)
		until = due;
	ts.tv_sec = (time_t)(until / 1000);
	ts.tv_nsec = (long)(until % 1000) * 1000000;
	pthread_cond_timedwait(&p->wake, &p->lock, &ts);
}

/*
 * Find a due row nobody holds and mark it ours: 1, or 0 after napping
 * until something may have changed.  Called with the lock held.
 */
static int claim(struct pb *p, int slot, struct pb_row *r)
{
	int found = pb_store_next(p->store, in_flight, p, r);
	int64_t now = now_ms();

	if (found == 1 && r->next_try <= now) {
		p->busy[slot] = r->id;
		return 1;
	}
	if (found == 1)
		nap(p, r->next_try);
	else if (found == 0)
		pthread_cond_wait(&p->wake, &p->lock);
	else
		nap(p, now + MAX_NAP_MS);
	pb_row_free(r);
	return 0;
}

/* A delivery thread: claim, send, settle, until stopped. */
static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct pb *p = w->p;
	int slot = w->slot;
	struct pb_row r;

	free(w);
	pthread_mutex_lock(&p->lock);
	while (!atomic_load(&p->stop)) {
		if (!claim(p, slot, &r))
			continue;
		pthread_mutex_unlock(&p->lock);
		deliver(p, slot, &r);
		pb_row_free(&r);
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* Start one thread with every signal blocked: signals are main's. */
static int spawn(struct pb *p, int slot)
{
	struct worker *w = malloc(sizeof(*w));
	sigset_t all, old;
	int rc;

	if (!w)
		abort();
	w->p = p;
	w->slot = slot;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&p->threads[slot], NULL, worker_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		free(w);
		return -rc;
	}
	pthread_setname_np(p->threads[slot], "blitfs-pb");
	return 0;
}

/* Start the delivery threads. */
int pb_start(struct pb *p)
{
	long pending;
	int rc = 0;

	if (p->nthreads)
		return 0;
	while (p->nthreads < p->max_inflight) {
		rc = spawn(p, p->nthreads);
		if (rc)
			break;
		p->nthreads++;
	}
	pthread_mutex_lock(&p->lock);
	pending = pb_store_pending(p->store);
	pthread_mutex_unlock(&p->lock);
	log_info("notify", "%d delivery threads, %ld postbacks pending%s",
		 p->nthreads, pending, p->secret ? ", signed" : ", unsigned");
	return p->nthreads ? 0 : rc;
}

/* Stop the threads, abandoning requests in flight, and free everything. */
void pb_close(struct pb *p)
{
	int i;

	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	atomic_store(&p->stop, 1);
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->lock);
	for (i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	destroy(p);
}

/* True for the three outcomes a postback reports. */
static int known_event(const char *e)
{
	return e && (!strcmp(e, "visible") || !strcmp(e, "unconfirmed") ||
		     !strcmp(e, "failed"));
}

/* Commit the row and wake a thread to send it; 0, or -EIO. */
static int commit(struct pb *p, const struct pb_row *row, const char *event)
{
	int rc;

	pthread_mutex_lock(&p->lock);
	rc = pb_store_add(p->store, row);
	if (rc > 0)
		pthread_cond_signal(&p->wake);
	pthread_mutex_unlock(&p->lock);
	if (rc > 0)
		LOG_ROW(LOG_LVL_INFO, row, "event=%s: queued", event);
	else if (rc == 0)
		LOG_ROW(LOG_LVL_DEBUG, row, "event=%s: queued already", event);
	return rc < 0 ? rc : 0;
}

/* Build the delivery of one outcome and make it durable. */
int pb_enqueue(struct pb *p, const struct pb_event *ev)
{
	struct pb_request req;
	struct pb_row row = { 0 };
	char reason[256];
	char id[PB_ID_LEN + 1];
	char k[512];
	int64_t now = now_ms();
	int rc;

	if (!known_event(ev->event) || !ev->bucket || !ev->key)
		return -EINVAL;
	rc = pb_request_parse(ev->request, &req, reason, sizeof(reason));
	if (rc) {
		log_warn("notify", "key=%s: %s: not sent",
			 log_key(ev->key, k, sizeof(k)), reason);
		return rc;
	}
	pb_delivery_id(ev, req.url, id);
	row.id = id;
	row.url = req.url;
	row.key = (char *)ev->key;
	row.next_try = now;
	row.body = pb_body(ev, req.data, id, now);
	rc = row.body ? commit(p, &row, ev->event) : -ENOMEM;
	free(row.body);
	pb_request_free(&req);
	return rc;
}

/* The queue's numbers, for the stats xattr and blitfs status. */
void pb_counts(struct pb *p, struct pb_counts *n)
{
	long pending;

	pthread_mutex_lock(&p->lock);
	pending = pb_store_pending(p->store);
	n->pending = pending > 0 ? (unsigned)pending : 0;
	n->delivered = p->delivered;
	n->failed = p->failed;
	pthread_mutex_unlock(&p->lock);
}
