/*
 * cache.h - the local staging cache and its upload queue.
 *
 * Every file written into the mount is written to a staging file in the
 * cache directory.  When its last writer closes it, that content becomes a
 * version of the key and is queued for upload; close() never waits for S3.
 * Uploaded files stay as clean local copies, so reads of them stay local.
 *
 * Functions return 0 or a negative errno, like the FUSE layer above them.
 */
#ifndef BLITFS_CACHE_H
#define BLITFS_CACHE_H

#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "s3.h"

/* The life of one version of a key; see the design notes in README.md. */
enum cache_state {
	CACHE_OPEN,		/* being written */
	CACHE_QUEUED,		/* closed, waiting for a worker */
	CACHE_UPLOADING,
	CACHE_UPLOADED,		/* S3 acknowledged it; probing visibility */
	CACHE_VISIBLE,		/* a HEAD showed the uploaded ETag */
	CACHE_UNCONFIRMED,	/* the visibility wait ran out */
	CACHE_FAILED,		/* kept locally; tried again later */
	CACHE_DELETING,		/* unlinked; the DELETE is queued */
};

/* Files named NAME.postback are postback sidecars: kept, never uploaded. */
#define CACHE_SIDECAR_SUFFIX ".postback"

/* The final outcome of a version that asked for a postback. */
struct cache_final {
	const char *event;	/* "visible", "unconfirmed" or "failed" */
	const char *key;
	const char *request;	/* the postback asked for */
	const char *etag;	/* NULL when failed */
	const char *error;	/* NULL unless failed */
	uint64_t size;
	uint64_t version;
	int visible;
	long waited_ms;
	unsigned attempts;
};

/*
 * Called with the cache's lock held, before the outcome is journaled, so
 * it must only record the event durably and return.
 */
typedef void (*cache_final_fn)(void *arg, const struct cache_final *ev);

struct cache_opts {
	const char *dir;	/* cache directory, created 0700 */
	int concurrency;	/* upload workers */
	int drain_timeout;	/* seconds unmount waits for the queue */
	int upload_delay_ms;	/* settle time before a closed file's PUT */
	uint64_t cache_size;	/* bytes of staging files before eviction */
	int failed_retry_s;	/* FAILED versions are tried again after this */
	int visibility_poll_ms;	/* between HEADs after an upload */
	int visibility_timeout_ms;	/* after it: UNCONFIRMED */
	int read_wait_ms;	/* longest a reader waits for visibility */
	int fsync_upload;	/* fsync also waits for S3 to have the bytes */
	cache_final_fn on_final;	/* postbacks, or NULL */
	void *final_arg;
};

struct cache;
struct cache_file;

struct cache *cache_new(const struct cache_opts *o, struct s3_client *s3,
			char *err, size_t errlen);

/* Start the upload workers (after daemonising: threads do not fork). */
int cache_start(struct cache *c);

/* Wait for the queue up to drain_timeout, stop workers, free everything. */
void cache_free(struct cache *c);

/*
 * What the cache knows of key: 0 and *st filled for a local file, -ENOENT
 * for a key unlinked locally whose DELETE is still pending, 1 when the cache
 * knows nothing and S3 must be asked.
 */
int cache_stat(struct cache *c, const char *key, struct stat *st);

/* 1 when some live local file has a key starting with dir ("a/b/"). */
int cache_has_below(struct cache *c, const char *dir);

/*
 * Called once for every local key under dir: name is the rest of the key
 * after dir; st is NULL for keys unlinked locally (hide the remote one).
 */
typedef void (*cache_list_fn)(void *arg, const char *rest,
			      const struct stat *st);
void cache_list(struct cache *c, const char *dir, cache_list_fn fn,
		void *arg);

/* What the caller knows of the object at key in S3. */
struct cache_remote {
	int exists;
	uint64_t size;
	char etag[80];		/* "" when not known */
	struct s3_meta meta;	/* its attributes, has_ bits 0 if unknown */
};

/*
 * Open key.  For writing without O_TRUNC an object that exists only in S3
 * (r->exists) is fetched first.  A file with no local copy opened for
 * reading is streamed from S3 in growing ranges, into a clean copy kept
 * for later readers while its ETag stays the one in S3.
 */
int cache_open(struct cache *c, const char *key, int flags,
	       const struct cache_remote *r, struct cache_file **pf);
int cache_read(struct cache_file *f, char *buf, size_t size, off_t off);
int cache_write(struct cache_file *f, const char *buf, size_t size,
		off_t off);
int cache_ftruncate(struct cache_file *f, off_t size);
int cache_fstat(struct cache_file *f, struct stat *st);
int cache_fsync(struct cache_file *f, int datasync);

/*
 * Last close of a written file queues its content for upload.  request is
 * the postback that applies unless the file has its own (xattr): from a
 * sidecar, a directory, or the default; NULL for none.
 */
int cache_release(struct cache_file *f, const char *request);

/* 1 when f is open for writing. */
int cache_file_writable(const struct cache_file *f);

/*
 * Ask for a postback for key's newest version; with sticky (an xattr on
 * the file) also for its later versions.  Sent at once if the version is
 * already final.  -ENOENT when the cache holds nothing for key.
 */
int cache_set_postback(struct cache *c, const char *key,
		       const char *request, int sticky);

/* The postback key asks for, copied into buf; -ENODATA if none. */
int cache_get_postback(struct cache *c, const char *key, char *buf,
		       size_t size);

/* Read up to size bytes of a local file (sidecars); -ENOENT if none. */
int cache_read_local(struct cache *c, const char *key, char *buf,
		     size_t size);

/* Directory postbacks, kept in the journal across mounts. */
int cache_dir_postback_set(struct cache *c, const char *dir,
			   const char *request);
int cache_dir_postback_get(struct cache *c, const char *dir, char *buf,
			   size_t size);

/* Forget key locally and queue its DELETE in S3 (if remote_exists). */
int cache_unlink(struct cache *c, const char *key, int remote_exists);

/*
 * Move a file with local data to a new key: its upload goes to the new
 * name, and the old name is deleted in S3 if it may be there.  1 when the
 * cache holds nothing for from (the caller must rename in S3).
 */
int cache_rename(struct cache *c, const char *from, const char *to,
		 int to_remote);

/* Where key stands, for the user (xattrs). 0, or -ENODATA if not local. */
struct cache_info {
	enum cache_state state;
	char error[256];
	char etag[80];
	uint64_t version;
	long visible_ms;	/* upload end to VISIBLE, -1 if not yet */
};
int cache_info(struct cache *c, const char *key, struct cache_info *info);

/* Try a FAILED (or waiting) version again now. */
int cache_retry(struct cache *c, const char *key);

/* ---- attributes: mode, owner, mtime, Content-Type ---- */

/* Show m's attributes in st (those m has; a 0644 regular file else). */
void cache_apply_meta(const struct s3_meta *m, struct stat *st);

/* Copy the fields from has into to: all, or only those to lacks. */
void cache_merge_meta(struct s3_meta *to, const struct s3_meta *from,
		      int replace);

/*
 * 1 when key's local file is a clean copy read from S3, which a reader
 * checks against the object's ETag (cache_open drops a stale one).
 */
int cache_fetched(struct cache *c, const char *key);

/*
 * Set the fields m has on key's local file, uploaded with its bytes (a
 * version already on its way is sent again).  1 when key has no local
 * file: the caller changes the object in S3 itself.
 */
int cache_set_attr(struct cache *c, const char *key, const struct s3_meta *m);
int cache_get_attr(struct cache *c, const char *key, struct s3_meta *m);

/* The Content-Type key's local file is sent with; 1 when none is local. */
int cache_set_content_type(struct cache *c, const char *key,
			   const char *type);
int cache_get_content_type(struct cache *c, const char *key, char *buf,
			   size_t size);

/*
 * Forget key's local versions without touching S3, and wait until no
 * transfer of key is under way: before a server-side copy onto key.
 * 1 when a version of key may be in S3.
 */
int cache_drop(struct cache *c, const char *key);

/* Wait until no transfer of key is under way. */
int cache_key_idle(struct cache *c, const char *key);

/* Directory renames under way, journaled so a later mount ends them. */
typedef void (*cache_move_fn)(void *arg, const char *from, const char *to);
int cache_move_begin(struct cache *c, const char *from, const char *to);
int cache_move_end(struct cache *c, const char *from);
int cache_moves(struct cache *c, cache_move_fn fn, void *arg);

struct cache_counts {
	unsigned queued;
	unsigned uploading;
	unsigned probing;	/* uploaded, visibility not seen yet */
	unsigned visible;
	unsigned unconfirmed;
	unsigned failed;
	uint64_t queued_bytes;
};
void cache_counts(struct cache *c, struct cache_counts *n);

const char *cache_state_name(enum cache_state st);

/*
 * ---- where the uploads stand (cache-stats.c) ----
 *
 * Every version a mount journals (a close that changed a file, an fsync
 * with fsync_upload, a rename, an unlink of a key S3 may hold) gets the
 * next number of a sequence that starts at 1 with the mount; the versions
 * a mount takes over from the journal have number 0.  A new version whose
 * predecessor never reached S3 keeps the predecessor's number.  Numbers
 * are not final while the version is QUEUED, UPLOADING, UPLOADED or
 * DELETING; a client that noted seq_closed waits until seq_pending is
 * above it.
 */
#define CACHE_NSTATES (CACHE_DELETING + 1)

struct cache_tally {
	unsigned files;
	uint64_t bytes;
};

struct cache_failed {
	char *key;
	char error[256];
	uint64_t seq;
};

struct cache_stats {
	struct cache_tally state[CACHE_NSTATES];	/* OPEN: being written */
	uint64_t seq_closed;	/* the highest number given */
	uint64_t seq_pending;	/* lowest not final; seq_closed + 1 if none */
	unsigned recent_files;	/* uploads that ended in the last recent_s */
	uint64_t recent_bytes;
	double recent_s;
	struct cache_failed *failed;	/* lowest numbers first */
	size_t nfailed;		/* listed; state[CACHE_FAILED] counts all */
};

/* Fill st, listing up to max_failed FAILED versions; cache_stats_free. */
void cache_stats_get(struct cache *c, size_t max_failed,
		     struct cache_stats *st);
void cache_stats_free(struct cache_stats *st);

#endif
