/*
 * cache_i.h - what cache.c and upq.c (the upload queue) share.
 *
 * Lock rules: one mutex, cache.lock, guards the entry table, every field
 * of every entry and the queue.  It is never held across a call to S3 or
 * across file I/O on staged bytes; workers copy what they need, drop the
 * lock, transfer, and take it again to record the outcome.
 */
#ifndef BLITFS_CACHE_I_H
#define BLITFS_CACHE_I_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "cache.h"

struct cache_entry {
	char *key;
	unsigned refs;		/* table + open handles + the queue/worker */
	int in_table;

	uint64_t work_id;	/* staging file being written, 0 if none */
	unsigned writers;	/* handles writing work_id */
	int dirty;		/* work_id differs from the last version */

	uint64_t file_id;	/* staging file of the newest closed version */
	uint64_t version;	/* bumped by every close that changed it */
	int deleted;		/* newest version is an unlink */
	int remote;		/* some version may be in S3 */
	enum cache_state state;

	int queued;		/* on the upload queue */
	int busy;		/* a worker is transferring it */
	uint64_t busy_file_id;	/* the staging file the worker reads */
	unsigned attempts;	/* failed tries of the newest version */
	struct timespec retry_at;	/* not before this (CLOCK_MONOTONIC) */
	char error[256];	/* the last failure, for the user */

	struct cache_entry *qnext;
};

struct cache {
	pthread_mutex_t lock;
	pthread_cond_t work_cv;		/* workers wait for jobs */
	pthread_cond_t idle_cv;		/* unmount waits for the queue */
	void *table;			/* tsearch tree of entries by key */
	void *dirs;			/* tsearch tree of struct dir_count */
	struct cache_entry *qhead;
	struct cache_entry *qtail;
	unsigned nbusy;
	int stopping;

	struct s3_client *s3;
	char *dir;
	char *staging;			/* dir/staging */
	uint64_t next_id;
	struct cache_opts opts;

	pthread_t *workers;
	int nworkers;
};

/* Path of staging file id; buf holds PATH_MAX. */
void cache_staging_path(const struct cache *c, uint64_t id, char *buf,
			size_t size);

void cache_entry_put(struct cache *c, struct cache_entry *e);
void cache_entry_drop(struct cache *c, struct cache_entry *e);

/* Upload queue (upq.c); all with cache.lock held unless said otherwise. */
void upq_push(struct cache *c, struct cache_entry *e);
int upq_start(struct cache *c);
void upq_stop(struct cache *c);		/* lock not held */
void upq_drain(struct cache *c, int seconds);	/* lock not held */

#endif
