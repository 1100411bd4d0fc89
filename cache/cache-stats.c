/*
 * cache-stats.c - where the uploads stand, for `blitfs status`, `blitfs
 * wait` and the metrics.
 *
 * The figures come from one walk of the entry table under the cache's
 * lock: files and bytes per state, the close sequence (see cache.h), the
 * uploads that ended lately (their upload_end), and the FAILED versions
 * with the lowest sequence numbers.  The walk costs a pass over the table
 * and nothing else, so a client polling it does not slow the workers.
 */
#include <search.h>
#include <stdlib.h>
#include <string.h>

#include "cache_i.h"

#define RECENT_S 10.0	/* uploads that ended this long ago count as recent */

struct stats_walk {
	struct cache_stats *st;
	size_t max_failed;
	double now;
	double oldest;		/* oldest recent upload end */
	uint64_t low;		/* lowest sequence still pending */
	int any_pending;
};

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	if (!p)
		abort();
	return p;
}

/* A version in this state is still on its way to S3 (not final). */
static int pending_state(enum cache_state st)
{
	return st == CACHE_QUEUED || st == CACHE_UPLOADING ||
	       st == CACHE_UPLOADED || st == CACHE_DELETING;
}

/*
 * Keep e among the max_failed FAILED versions of lowest sequence: an
 * insertion into a short sorted array, since the list is capped small.
 */
static void note_failed(struct stats_walk *w, const struct cache_entry *e)
{
	struct cache_stats *st = w->st;
	struct cache_failed *f = st->failed;
	size_t i = st->nfailed;

	if (i == w->max_failed) {
		if (!i || f[i - 1].seq <= e->seq)
			return;
		free(f[--i].key);
	} else {
		st->nfailed++;
	}
	for (; i > 0 && f[i - 1].seq > e->seq; i--)
		f[i] = f[i - 1];
	f[i].key = strdup(e->key);
	if (!f[i].key)
		abort();
	memcpy(f[i].error, e->error, sizeof(f[i].error));
	f[i].error[sizeof(f[i].error) - 1] = '\0';
	f[i].seq = e->seq;
}

/* An upload that S3 acknowledged within the recent window. */
static void note_recent(struct stats_walk *w, const struct cache_entry *e)
{
	if (e->upload_end <= 0 || w->now - e->upload_end > RECENT_S)
		return;
	w->st->recent_files++;
	w->st->recent_bytes += e->file_size;
	if (e->upload_end < w->oldest)
		w->oldest = e->upload_end;
}

static void count_entry(struct stats_walk *w, const struct cache_entry *e)
{
	struct cache_tally *t;

	if (e->work_id) {
		w->st->state[CACHE_OPEN].files++;
		w->st->state[CACHE_OPEN].bytes += e->work_size;
	}
	/* A file never closed has no version to count beyond OPEN. */
	if (e->state == CACHE_OPEN || (!e->file_id && !e->deleted))
		return;
	t = &w->st->state[e->state];
	t->files++;
	t->bytes += e->deleted ? 0 : e->file_size;
	if (pending_state(e->state) && (!w->any_pending || e->seq < w->low)) {
		w->low = e->seq;
		w->any_pending = 1;
	}
	if (e->state == CACHE_FAILED && w->max_failed)
		note_failed(w, e);
	note_recent(w, e);
}

static void stats_visit(const void *node, VISIT which, void *closure)
{
	const struct cache_entry *e = *(const struct cache_entry *const *)node;

	if (which != postorder && which != leaf)
		return;
	if (!e->local_only)
		count_entry(closure, e);
}

/*
 * A version of e was journaled.  The same version journaled again (new
 * attributes for a queued one) keeps its number.  A new version whose
 * predecessor never reached S3 keeps the predecessor's number: the bytes
 * closed then go up only with it, so whoever waits for that number waits
 * for this version too.  Otherwise the version takes the next number.
 */
void cache_stats_numbered(struct cache *c, struct cache_entry *e)
{
	uint64_t prev = e->version - 1;

	if (e->seq_version == e->version)
		return;
	e->seq_version = e->version;
	if (e->version > 1 && e->uploaded_version != prev)
		return;
	e->seq = ++c->seq_closed;
}

void cache_stats_get(struct cache *c, size_t max_failed,
		     struct cache_stats *st)
{
	struct stats_walk w = { .st = st, .max_failed = max_failed };

	memset(st, 0, sizeof(*st));
	if (max_failed)
		st->failed = xcalloc(max_failed, sizeof(*st->failed));
	w.now = cache_now();
	w.oldest = w.now;

	pthread_mutex_lock(&c->lock);
	twalk_r(c->table, stats_visit, &w);
	st->seq_closed = c->seq_closed;
	pthread_mutex_unlock(&c->lock);

	st->seq_pending = w.any_pending ? w.low : st->seq_closed + 1;
	/* Over a second at least: one upload just now is no rate yet. */
	st->recent_s = st->recent_files ? w.now - w.oldest : RECENT_S;
	if (st->recent_s < 1.0)
		st->recent_s = 1.0;
}

void cache_stats_free(struct cache_stats *st)
{
	size_t i;

	for (i = 0; i < st->nfailed; i++)
		free(st->failed[i].key);
	free(st->failed);
	st->failed = NULL;
	st->nfailed = 0;
}
