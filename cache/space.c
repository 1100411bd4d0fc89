/*
 * space.c - how many bytes the staging files hold, and making room.
 *
 * Two kinds of bytes live in the cache: staged versions that S3 does not
 * have yet, which are never removed, and clean copies of uploaded files,
 * kept so that reads stay local.  When a write would take the cache past
 * cache_size, clean copies go first, least recently used first; if staged
 * bytes alone fill it, the writer waits for uploads to make some of them
 * clean.  Only a disk that is really full fails a write (ENOSPC).
 */
#include <search.h>
#include <stdlib.h>
#include <string.h>

#include "cache_i.h"
#include "log.h"

void cache_space_add(struct cache *c, uint64_t bytes)
{
	c->used += bytes;
}

void cache_space_sub(struct cache *c, uint64_t bytes)
{
	c->used -= bytes < c->used ? bytes : c->used;
	pthread_cond_broadcast(&c->space_cv);
}

/* A clean copy that nothing uses and S3 has: it may go. */
static int evictable(const struct cache_entry *e)
{
	return e->in_table && e->file_id && !e->work_id && !e->busy &&
	       !e->queued && !e->deleted && !e->waiters && !e->local_only &&
	       (e->state == CACHE_VISIBLE || e->state == CACHE_UNCONFIRMED);
}

struct victims {
	struct cache_entry **v;
	size_t n, cap;
};

static void collect(const void *node, VISIT which, void *closure)
{
	struct cache_entry *e = *(struct cache_entry *const *)node;
	struct victims *vs = closure;

	if ((which != postorder && which != leaf) || !evictable(e))
		return;
	if (vs->n == vs->cap) {
		vs->cap = vs->cap ? vs->cap * 2 : 64;
		vs->v = realloc(vs->v, vs->cap * sizeof(*vs->v));
		if (!vs->v)
			abort();
	}
	vs->v[vs->n++] = e;
}

static int by_last_use(const void *a, const void *b)
{
	const struct cache_entry *x = *(struct cache_entry *const *)a;
	const struct cache_entry *y = *(struct cache_entry *const *)b;

	return (x->last_use > y->last_use) - (x->last_use < y->last_use);
}

/* Remove clean copies, oldest use first, until want bytes are freed. */
void cache_space_evict(struct cache *c, uint64_t want)
{
	struct victims vs = { 0 };
	uint64_t freed = 0;
	size_t i;

	twalk_r(c->table, collect, &vs);
	if (vs.n)
		qsort(vs.v, vs.n, sizeof(*vs.v), by_last_use);
	for (i = 0; i < vs.n && freed < want; i++) {
		struct cache_entry *e = vs.v[i];

		freed += e->file_size;
		c->clean -= e->file_size < c->clean ? e->file_size : c->clean;
		cache_unlink_staging(c, e->file_id, e->file_size);
		e->file_id = 0;
		jnl_delete(c->jnl, e->key);
		cache_entry_drop(c, e);
	}
	free(vs.v);
	if (freed)
		log_debug("cache", "evicted %zu clean copies, %llu bytes", i,
			  (unsigned long long)freed);
}

/* Could some staged bytes become clean (and evictable) by waiting? */
static int uploads_pending(const struct cache *c)
{
	const struct cache_entry *e;

	if (c->nbusy)
		return 1;
	for (e = c->qhead; e; e = e->qnext)
		if (e->state != CACHE_FAILED)
			return 1;
	return 0;
}

int cache_space_reserve(struct cache *c, struct cache_entry *self,
			uint64_t bytes)
{
	uint64_t limit = c->opts.cache_size;
	int warned = 0;

	(void)self;
	if (!limit)
		return 0;
	while (c->used + bytes > limit && !c->stopping) {
		cache_space_evict(c, c->used + bytes - limit);
		if (c->used + bytes <= limit || !uploads_pending(c))
			break;
		if (!warned++)
			log_info("cache", "bucket=%s: cache full (%llu of %llu "
				 "bytes staged); writer waits for uploads",
				 s3_client_bucket(c->s3),
				 (unsigned long long)c->used,
				 (unsigned long long)limit);
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&c->space_cv, &c->lock, &ts);
	}
	return 0;
}
