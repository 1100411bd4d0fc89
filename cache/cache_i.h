/*
 * cache_i.h - what the files of cache/ share: the entry table (cache.c),
 * crash recovery (recover.c), space accounting and eviction (space.c), the
 * upload queue (upq.c) and the journal (journal.c).
 *
 * Lock rules: one mutex, cache.lock, guards the entry table, every field
 * of every entry, the queue, the space counters and the journal handle.
 * It is never held across a call to S3 or across I/O on staged bytes;
 * workers copy what they need, drop the lock, transfer, and take it again
 * to record the outcome.  Journal commits happen under it, which keeps the
 * journal's order the order of events.
 */
#ifndef BLITFS_CACHE_I_H
#define BLITFS_CACHE_I_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "cache.h"
#include "journal.h"

struct cache_entry {
	char *key;
	unsigned refs;		/* table + open handles + the queue */
	int in_table;
	int counted;		/* counted in the directory counts */

	uint64_t work_id;	/* staging file being written, 0 if none */
	uint64_t work_size;	/* its size as far as writes have gone */
	unsigned writers;	/* handles writing work_id */
	int dirty;		/* work_id differs from the last version */

	uint64_t file_id;	/* staging file of the newest closed version */
	uint64_t file_size;
	uint64_t version;	/* bumped by every close that changed it */
	int deleted;		/* newest version is an unlink */
	int remote;		/* some version may be in S3 */
	enum cache_state state;
	double last_use;	/* monotonic seconds; for eviction */

	int queued;		/* on the upload queue */
	int busy;		/* a worker is transferring it */
	uint64_t busy_file_id;	/* the staging file the worker reads */
	unsigned attempts;	/* upload tries of the newest version */
	struct timespec retry_at;	/* not before this (CLOCK_MONOTONIC) */
	char error[256];	/* the last failure, for the user */
	char etag[80];		/* what S3 answered for the newest upload */
	char upload_id[256];	/* multipart upload of the newest version */

	uint64_t uploaded_version;	/* whose PUT S3 acknowledged */
	double upload_end;	/* when, in monotonic seconds */
	long visible_ms;	/* upload end to VISIBLE, -1 if not yet */
	uint64_t seq;		/* close sequence number (cache-stats.c) */
	uint64_t seq_version;	/* the version seq was given for */
	unsigned waiters;	/* readers waiting for visibility */

	int local_only;		/* a sidecar: never uploaded */
	int fetched;		/* a clean copy read from S3: check its ETag */
	struct s3_meta meta;	/* mode, owner, mtime sent with the PUT */
	char content_type[128];	/* set by xattr; "" takes the name's */
	char *pb_sticky;	/* postback set on the file (xattr) */
	char *pb_request;	/* postback of the newest version */
	uint64_t pb_fired;	/* version whose postback was handed on */

	struct cache_entry *qnext;
};

/*
 * An open handle.  A read of an object only in S3 (e NULL) streams it
 * with ranged GETs into a staging file, the copy, read back from there;
 * a whole copy becomes a clean cache entry, checked by its ETag later.
 */
struct cache_file {
	struct cache *c;
	struct cache_entry *e;	/* NULL for reads of objects only in S3 */
	char *key;
	int fd;			/* staging file, -1 for remote reads */
	uint64_t work_id;	/* non-zero: one of the writers of work_id */
	uint64_t remote_size;
	struct s3_meta remote_meta;	/* of an object read only from S3 */
	char remote_etag[80];	/* pinned by the first GET */

	pthread_mutex_t ra_lock;	/* guards the fields below */
	uint64_t copy_id;	/* the copy's staging file, 0 if none */
	int copy_fd;
	uint64_t filled;	/* bytes [0, filled) are in the copy */
	uint64_t window;	/* the next GET's length; grows as reads go on */
	int copy_dead;		/* the copy cannot be finished */

	struct cache_file *prev, *next;	/* cache.files, under cache.lock */
};

/* fetch.c: reads of objects only in S3 */
int cache_fetch_read(struct cache_file *f, char *buf, size_t size,
		     off_t off);
void cache_fetch_close(struct cache_file *f);

struct cache {
	pthread_mutex_t lock;
	pthread_cond_t work_cv;		/* workers wait for jobs */
	pthread_cond_t idle_cv;		/* unmount and readers wait here */
	pthread_cond_t space_cv;	/* writers wait for room */
	void *table;			/* tsearch tree of entries by key */
	void *dirs;			/* tsearch tree of struct dir_count */
	void *inflight;			/* keys being transferred right now */
	void *dir_pb;			/* tsearch tree of directory postbacks */
	struct cache_entry *qhead;
	struct cache_entry *qtail;
	struct cache_file *files;	/* open handles */
	unsigned nbusy;
	int stopping;

	uint64_t used;			/* bytes in staging files */
	uint64_t clean;			/* of which clean copies */

	struct s3_client *s3;
	struct jnl *jnl;
	int lock_fd;			/* holds the cache directory's flock */
	char *dir;
	char *staging;			/* dir/staging */
	uint64_t next_id;
	struct cache_opts opts;

	pthread_t *workers;
	int nworkers;
	uint64_t seq_closed;		/* close sequence numbers given */
};

/* S3 holds the bytes of a version in this state: a clean copy. */
static inline int cache_state_clean(enum cache_state st)
{
	return st == CACHE_UPLOADED || st == CACHE_VISIBLE ||
	       st == CACHE_UNCONFIRMED;
}

/* cache.c */
void cache_staging_path(const struct cache *c, uint64_t id, char *buf,
			size_t size);
void cache_unlink_staging(struct cache *c, uint64_t id, uint64_t size);
struct cache_entry *cache_entry_find(struct cache *c, const char *key);
struct cache_entry *cache_entry_get(struct cache *c, const char *key);
void cache_entry_put(struct cache *c, struct cache_entry *e);
void cache_entry_drop(struct cache *c, struct cache_entry *e);
void cache_entry_relive(struct cache *c, struct cache_entry *e, int was);
int cache_entry_live(const struct cache_entry *e);
double cache_now(void);

/* recover.c: take the directory's lock, then requeue what the journal
 * holds and remove staging files no version refers to. */
int cache_lock_dir(struct cache *c, char *err, size_t errlen);
int cache_recover(struct cache *c, char *err, size_t errlen);

/* space.c */
void cache_space_add(struct cache *c, uint64_t bytes);
void cache_space_sub(struct cache *c, uint64_t bytes);
int cache_space_reserve(struct cache *c, struct cache_entry *self,
			uint64_t bytes);
void cache_space_evict(struct cache *c, uint64_t want);

/* Wait (lock held) until a reader may have e's bytes; see cache.c. */
void cache_read_barrier(struct cache *c, struct cache_entry *e);

/* Hand a final outcome of e's newest version to the postback hook. */
void cache_fire_final(struct cache *c, struct cache_entry *e,
		      const char *event);

/* cache-stats.c: a version was journaled (lock held); numbers it. */
void cache_stats_numbered(struct cache *c, struct cache_entry *e);

/* upq.c: all with cache.lock held unless said otherwise. */
void upq_push(struct cache *c, struct cache_entry *e);
void upq_push_delayed(struct cache *c, struct cache_entry *e, long ms);
int upq_start(struct cache *c);
void upq_stop(struct cache *c);			/* lock not held */
unsigned upq_drain(struct cache *c, int seconds);	/* lock not held */

#endif
