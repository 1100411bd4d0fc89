/*
 * journal.h - the durable record of every closed version that S3 does not
 * have yet, kept in SQLite (WAL mode) in the cache directory.
 *
 * One row per key: the newest closed version, the staging file that holds
 * its bytes (or an unlink), and where its upload stands.  A version is in
 * the journal before the close that made it returns, so a crash of blitfs
 * (kill -9) never costs a closed file: the next mount finds the row and
 * queues it again.  The caller serialises calls (cache.lock).
 */
#ifndef BLITFS_JOURNAL_H
#define BLITFS_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "s3.h"

struct jnl;

struct jnl_row {
	const char *key;
	uint64_t version;
	uint64_t file_id;	/* staging file, 0 for an unlink */
	int deleted;		/* the version is an unlink */
	const char *state;	/* "QUEUED", "UPLOADED", "FAILED", ... */
	const char *error;	/* last failure, or NULL */
	const char *upload_id;	/* multipart upload in flight, or NULL */
	const char *etag;	/* what S3 answered, or NULL */
	const char *postback;	/* postback asked for, not yet sent; or NULL */
	struct s3_meta meta;	/* the file's attributes (has_ bits) */
	const char *content_type;	/* set by the user, or NULL */
};

struct jnl *jnl_open(const char *dir, int durable, char *err, size_t errlen);
void jnl_close(struct jnl *j);

/* Insert or replace the row of r->key. 0, or -EIO with the reason logged. */
int jnl_put(struct jnl *j, const struct jnl_row *r);

/* Record the outcome of an upload of version v; no-op if superseded. */
int jnl_set_state(struct jnl *j, const char *key, uint64_t version,
		  const char *state, const char *error, const char *etag);

int jnl_set_upload_id(struct jnl *j, const char *key, uint64_t version,
		      const char *upload_id);

int jnl_delete(struct jnl *j, const char *key);

/* Move a row to a new key (rename of a file not yet uploaded). */
int jnl_rekey(struct jnl *j, const char *from, const char *to);

/* Call fn for every row; rows stay valid only during the call. */
typedef void (*jnl_scan_fn)(void *arg, const struct jnl_row *r);
int jnl_scan(struct jnl *j, jnl_scan_fn fn, void *arg);

/* Attach (or with NULL clear) the postback request of version v. */
int jnl_set_postback(struct jnl *j, const char *key, uint64_t version,
		     const char *request);

/* Remember (or with NULL forget) a directory's postback request. */
int jnl_dir_postback(struct jnl *j, const char *dir, const char *request);

typedef void (*jnl_dir_fn)(void *arg, const char *dir, const char *request);
int jnl_scan_dir_postbacks(struct jnl *j, jnl_dir_fn fn, void *arg);

/* Directory renames under way, finished by the next mount if cut short. */
int jnl_move_begin(struct jnl *j, const char *src, const char *dst);
int jnl_move_end(struct jnl *j, const char *src);
int jnl_scan_moves(struct jnl *j, jnl_dir_fn fn, void *arg);

/* Drop rows whose upload is finished: they are not needed to recover. */
int jnl_prune_done(struct jnl *j);

/* Force the journal to disk (fsync of a file). */
int jnl_sync(struct jnl *j);

#endif
