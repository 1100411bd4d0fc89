/*
 * upq.c - the upload queue: worker threads that put closed versions into
 * S3 and carry out unlinks, one job per key at a time.
 *
 * A key is on the queue at most once.  A worker snapshots the newest
 * version, transfers it without the lock, then looks again: if a newer
 * version closed meanwhile, the key goes back on the queue, so the object
 * in S3 always ends as the last closed version.  Transient failures back
 * off exponentially with full jitter; after the last attempt the version
 * is FAILED, keeps its bytes, and is tried again later.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <search.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache_i.h"
#include "log.h"

#define LATE_PROBE_MS 300000	/* UNCONFIRMED versions are probed this long */

static void now_plus_ms(struct timespec *ts, long ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static int ts_before(const struct timespec *a, const struct timespec *b)
{
	if (a->tv_sec != b->tv_sec)
		return a->tv_sec < b->tv_sec;
	return a->tv_nsec < b->tv_nsec;
}

void upq_push(struct cache *c, struct cache_entry *e)
{
	if (e->queued)
		return;
	e->queued = 1;
	e->refs++;
	e->qnext = NULL;
	if (c->qtail)
		c->qtail->qnext = e;
	else
		c->qhead = e;
	c->qtail = e;
	pthread_cond_signal(&c->work_cv);
}

void upq_push_delayed(struct cache *c, struct cache_entry *e, long ms)
{
	now_plus_ms(&e->retry_at, ms);
	upq_push(c, e);
}

static int cmp_key(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* Only one transfer per key at a time, whichever entry holds the key. */
static int key_in_flight(struct cache *c, const char *key)
{
	return tfind(key, &c->inflight, cmp_key) != NULL;
}

/* Ready to run: not in flight and its wait (backoff, settle) is over. */
static int ready(struct cache *c, const struct cache_entry *e,
		 const struct timespec *now, struct timespec *pwake)
{
	if (e->busy || key_in_flight(c, e->key))
		return 0;
	if (ts_before(now, &e->retry_at)) {
		if (ts_before(&e->retry_at, pwake))
			*pwake = e->retry_at;
		return 0;
	}
	return 1;
}

/* Unlink e from the queue; prev is the entry before it, or NULL. */
static void unqueue(struct cache *c, struct cache_entry *e,
		    struct cache_entry *prev)
{
	if (prev)
		prev->qnext = e->qnext;
	else
		c->qhead = e->qnext;
	if (c->qtail == e)
		c->qtail = prev;
	e->qnext = NULL;
	e->queued = 0;
}

/* Whether e's job is only to look for its uploaded version (a HEAD). */
static int is_probe(const struct cache_entry *e)
{
	return !e->deleted && e->uploaded_version == e->version &&
	       (e->state == CACHE_UPLOADED || e->state == CACHE_UNCONFIRMED);
}

/*
 * Which job goes first: one a reader waits on, then a visibility probe
 * (a cheap HEAD that must not wait behind the uploads' rate limit), then
 * the rest in the order they came.
 */
static int rank(const struct cache_entry *e)
{
	if (e->waiters)
		return 0;
	return is_probe(e) ? 1 : 2;
}

/*
 * The ready entry of best rank, first come within a rank, or NULL;
 * *pprev is the entry before it, *pwake the earliest time another
 * becomes ready.
 */
static struct cache_entry *pick_ready(struct cache *c,
				      struct cache_entry **pprev,
				      struct timespec *pwake)
{
	struct cache_entry *e, *prev = NULL;
	struct cache_entry *pick = NULL;
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	now_plus_ms(pwake, 1000);
	*pprev = NULL;
	for (e = c->qhead; e; prev = e, e = e->qnext) {
		if (!ready(c, e, &now, pwake))
			continue;
		if (!pick || rank(e) < rank(pick)) {
			pick = e;
			*pprev = prev;
		}
		if (rank(pick) == 0)
			break;
	}
	return pick;
}

/* Where a multipart upload's id is recorded as it starts. */
struct upload_ctx {
	struct cache *c;
	struct cache_entry *e;
	uint64_t version;
	struct s3_meta meta;	/* as they were when the upload began */
	char content_type[128];
};

/* Journal a multipart upload's id, so a later mount can resume it. */
static void remember_upload_id(void *arg, const char *upload_id)
{
	struct upload_ctx *u = arg;
	struct cache *c = u->c;

	pthread_mutex_lock(&c->lock);
	if (u->e->version == u->version) {
		snprintf(u->e->upload_id, sizeof(u->e->upload_id), "%s",
			 upload_id);
		jnl_set_upload_id(c->jnl, u->e->key, u->version, upload_id);
	}
	pthread_mutex_unlock(&c->lock);
}

/* PUT one staged file, resuming a multipart upload an earlier try began. */
static enum s3_status put_staged(struct cache *c, struct upload_ctx *u,
				 const char *key, uint64_t id,
				 const char *resume, struct s3_object_info *info,
				 struct s3_error *err)
{
	struct s3_put_opts opts = {
		.resume_upload_id = *resume ? resume : NULL,
		.on_upload_id = remember_upload_id,
		.arg = u,
		.meta = &u->meta,
	};
	char path[PATH_MAX];
	struct stat st;
	enum s3_status ret;
	int fd;

	cache_staging_path(c, id, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		memset(err, 0, sizeof(*err));
		err->status = S3_LOCAL;
		snprintf(err->code, sizeof(err->code), "LocalIO");
		snprintf(err->message, sizeof(err->message), "open(%s): %s",
			 path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return S3_LOCAL;
	}
	ret = s3_put_file_ex(c->s3, key, fd, (uint64_t)st.st_size,
			     *u->content_type ? u->content_type
					      : s3_mime_type(key),
			     &opts, info, err);
	close(fd);
	return ret;
}

/*
 * After a failed transfer of version v.  s3/ has already retried what
 * retrying could fix, so the version is FAILED: its bytes stay, and a
 * transient failure is tried again after failed_retry seconds.
 */
static void record_failure(struct cache *c, struct cache_entry *e,
			   uint64_t v, enum s3_status st,
			   const struct s3_error *err)
{
	int again = st == S3_TRANSIENT || st == S3_LOCAL;
	char kb[512];

	snprintf(e->error, sizeof(e->error), "%ld %s: %s", err->http,
		 err->code, err->message);
	if (e->version != v) {
		upq_push(c, e);
		return;
	}
	e->state = CACHE_FAILED;
	cache_fire_final(c, e, "failed");
	jnl_set_state(c->jnl, e->key, v, "FAILED", e->error, NULL);
	if (again) {
		log_err("upq", "%s failed: bucket=%s key=%s: %s; retry in "
			"%d s", e->deleted ? "delete" : "upload",
			s3_client_bucket(c->s3),
			log_key(e->key, kb, sizeof(kb)), e->error,
			c->opts.failed_retry_s);
		upq_push_delayed(c, e, c->opts.failed_retry_s * 1000L);
	} else {
		log_err("upq", "%s failed: bucket=%s key=%s: %s; given up, "
			"bytes kept (user.blitfs.retry tries again)",
			e->deleted ? "delete" : "upload",
			s3_client_bucket(c->s3),
			log_key(e->key, kb, sizeof(kb)), e->error);
	}
}

/* Record a transfer that S3 acknowledged. */
static void record_success(struct cache *c, struct cache_entry *e,
			   uint64_t v, int del, const char *etag)
{
	char kb[512];

	if (e->version != v) {
		upq_push(c, e);
		return;
	}
	e->error[0] = '\0';
	e->upload_id[0] = '\0';
	log_debug("upq", "bucket=%s key=%s: %s", s3_client_bucket(c->s3),
		  log_key(e->key, kb, sizeof(kb)), del ? "deleted" : "uploaded");
	if (del) {
		jnl_delete(c->jnl, e->key);
		e->remote = 0;
		if (!e->work_id)
			cache_entry_drop(c, e);
		return;
	}
	jnl_set_state(c->jnl, e->key, v, "UPLOADED", NULL, etag);
	snprintf(e->etag, sizeof(e->etag), "%s", etag);
	e->remote = 1;
	e->state = CACHE_UPLOADED;
	e->uploaded_version = v;
	e->upload_end = cache_now();
	e->visible_ms = -1;
	c->clean += e->file_size;
	pthread_cond_broadcast(&c->space_cv);

	/* The first visibility probe goes at once. */
	upq_push(c, e);
}

/* Record that S3 shows the uploaded version. */
static void set_visible(struct cache *c, struct cache_entry *e, uint64_t v)
{
	char kb[512];

	e->visible_ms = (long)((cache_now() - e->upload_end) * 1000);
	e->state = CACHE_VISIBLE;
	cache_fire_final(c, e, "visible");
	jnl_set_state(c->jnl, e->key, v, "VISIBLE", NULL, NULL);
	log_debug("upq", "bucket=%s key=%s: visible after %ld ms",
		  s3_client_bucket(c->s3), log_key(e->key, kb, sizeof(kb)),
		  e->visible_ms);
}

/* Not visible yet: schedule the next probe, or give the wait up. */
static void probe_again(struct cache *c, struct cache_entry *e, uint64_t v)
{
	long waited = (long)((cache_now() - e->upload_end) * 1000);
	long left = c->opts.visibility_timeout_ms - waited;
	long next = c->opts.visibility_poll_ms;
	char kb[512];

	if (left <= 0 && e->state == CACHE_UPLOADED) {
		e->state = CACHE_UNCONFIRMED;
		cache_fire_final(c, e, "unconfirmed");
		jnl_set_state(c->jnl, e->key, v, "UNCONFIRMED", NULL, NULL);
		log_info("upq", "bucket=%s key=%s: not visible %ld ms after "
			 "upload; UNCONFIRMED, still probing",
			 s3_client_bucket(c->s3),
			 log_key(e->key, kb, sizeof(kb)), waited);
	}
	if (waited >= LATE_PROBE_MS)
		return;
	if (left > 0 && left < next)
		next = left;
	upq_push_delayed(c, e, next);
}

/* HEAD the key until the uploaded ETag shows; lock held on entry/exit. */
static void run_probe(struct cache *c, struct cache_entry *e)
{
	uint64_t v = e->version;
	struct s3_object_info info;
	struct s3_error err;
	enum s3_status st;
	char etag[sizeof(e->etag)];
	char *key = strdup(e->key);

	if (!key)
		abort();
	memcpy(etag, e->etag, sizeof(etag));
	e->busy = 1;
	pthread_mutex_unlock(&c->lock);
	st = s3_head(c->s3, key, &info, &err);
	free(key);
	pthread_mutex_lock(&c->lock);
	e->busy = 0;

	if (e->version != v || e->deleted) {
		upq_push(c, e);
		return;
	}
	if (st == S3_OK && strcmp(info.etag, etag) == 0)
		set_visible(c, e, v);
	else if (st == S3_OK || st == S3_NOT_FOUND || st == S3_TRANSIENT)
		probe_again(c, e, v);
	else if (e->state == CACHE_UPLOADED) {
		e->state = CACHE_UNCONFIRMED;
		cache_fire_final(c, e, "unconfirmed");
		jnl_set_state(c->jnl, e->key, v, "UNCONFIRMED", NULL, NULL);
	}
}

/* Carry out the newest version of e; called and returns with the lock. */
static void run_job(struct cache *c, struct cache_entry *e)
{
	uint64_t v = e->version, fid = e->file_id, fsize = e->file_size;
	int del = e->deleted;
	struct upload_ctx u = { c, e, v, e->meta, "" };
	struct s3_object_info info = { 0 };
	char resume[sizeof(e->upload_id)];
	struct s3_error err;
	enum s3_status st;
	char *key;

	if (!e->in_table || (!del && !fid))
		return;
	if (is_probe(e)) {
		run_probe(c, e);
		return;
	}
	key = strdup(e->key);
	if (!key || !tsearch(key, &c->inflight, cmp_key))
		abort();
	e->busy = 1;
	e->busy_file_id = fid;
	e->state = del ? CACHE_DELETING : CACHE_UPLOADING;
	e->attempts++;
	memcpy(resume, e->upload_id, sizeof(resume));
	memcpy(u.content_type, e->content_type, sizeof(u.content_type));
	c->nbusy++;
	pthread_mutex_unlock(&c->lock);

	if (del)
		st = s3_delete(c->s3, key, &err);
	else
		st = put_staged(c, &u, key, fid, resume, &info, &err);

	pthread_mutex_lock(&c->lock);
	tdelete(key, &c->inflight, cmp_key);
	free(key);
	e->busy = 0;
	c->nbusy--;
	if (fid && fid != e->file_id && fid != e->work_id)
		cache_unlink_staging(c, fid, fsize);
	e->busy_file_id = 0;
	if (st == S3_OK)
		record_success(c, e, v, del, info.etag);
	else
		record_failure(c, e, v, st, &err);
}

/*
 * Run jobs until the queue stops.  A worker about to send a write first
 * waits for its turn under the rate limit and only then picks the job:
 * a file a reader began to wait on meanwhile goes ahead of the others.
 */
static void *worker(void *arg)
{
	struct cache *c = arg;
	struct cache_entry *e, *prev;
	struct timespec wake;
	sigset_t set;
	int turn = 0;

	/* Signals belong to the FUSE loop, not to transfers. */
	sigfillset(&set);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (c->s3)
		s3_background(c->s3);

	pthread_mutex_lock(&c->lock);
	while (!c->stopping) {
		e = pick_ready(c, &prev, &wake);
		if (!e) {
			if (turn)
				s3_write_turn_cancel(c->s3);
			turn = 0;
			pthread_cond_broadcast(&c->idle_cv);
			pthread_cond_timedwait(&c->work_cv, &c->lock, &wake);
			continue;
		}
		if (!turn && !is_probe(e)) {
			pthread_mutex_unlock(&c->lock);
			s3_write_turn(c->s3);
			pthread_mutex_lock(&c->lock);
			turn = 1;
			continue;
		}
		unqueue(c, e, prev);
		if (!is_probe(e))
			turn = 0;
		run_job(c, e);
		cache_entry_put(c, e);
		pthread_cond_broadcast(&c->idle_cv);
	}
	if (turn)
		s3_write_turn_cancel(c->s3);
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

int upq_start(struct cache *c)
{
	int i, ret;


	c->workers = calloc((size_t)c->opts.concurrency, sizeof(pthread_t));
	if (!c->workers)
		return -ENOMEM;
	for (i = 0; i < c->opts.concurrency; i++) {
		ret = pthread_create(&c->workers[i], NULL, worker, c);
		if (ret != 0)
			return -ret;
		pthread_setname_np(c->workers[i], "blitfs-upq");
		c->nworkers++;
	}
	return 0;
}

/* 1 while something is queued and not given up, or in flight. */
static int pending(struct cache *c)
{
	struct cache_entry *e;

	if (c->nbusy)
		return 1;
	for (e = c->qhead; e; e = e->qnext)
		if (e->state == CACHE_QUEUED || e->state == CACHE_UPLOADING ||
		    e->state == CACHE_DELETING)
			return 1;
	return 0;
}

unsigned upq_drain(struct cache *c, int seconds)
{
	struct timespec deadline;
	unsigned left = 0;
	struct cache_entry *e;

	if (!c->nworkers)
		return 0;
	now_plus_ms(&deadline, seconds * 1000L);
	pthread_mutex_lock(&c->lock);
	while (pending(c)) {
		if (pthread_cond_timedwait(&c->idle_cv, &c->lock, &deadline) ==
		    ETIMEDOUT)
			break;
	}
	for (e = c->qhead; e; e = e->qnext)
		if (!cache_state_clean(e->state))
			left++;
	left += c->nbusy;
	pthread_mutex_unlock(&c->lock);
	return left;
}

void upq_stop(struct cache *c)
{
	int i;

	pthread_mutex_lock(&c->lock);
	c->stopping = 1;
	pthread_cond_broadcast(&c->work_cv);
	pthread_cond_broadcast(&c->space_cv);
	pthread_mutex_unlock(&c->lock);
	for (i = 0; i < c->nworkers; i++)
		pthread_join(c->workers[i], NULL);
	free(c->workers);
	c->workers = NULL;
	c->nworkers = 0;

	/* Entries still queued hold a reference each. */
	while (c->qhead) {
		struct cache_entry *e = c->qhead;

		c->qhead = e->qnext;
		cache_entry_put(c, e);
	}
	c->qtail = NULL;
}
