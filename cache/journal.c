/*
 * journal.c - the SQLite journal of closed versions.
 *
 * WAL mode with synchronous=NORMAL: a commit reaches the operating system
 * before the close returns, so it survives a crash of the process; with
 * "durable" set (fsync semantics) commits also reach the disk.  Statements
 * are prepared once and reused.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "journal.h"
#include "log.h"

enum stmt_id {
	ST_PUT,
	ST_STATE,
	ST_UPLOAD_ID,
	ST_DELETE,
	ST_REKEY_DROP,
	ST_REKEY,
	ST_SCAN,
	ST_PRUNE,
	ST_POSTBACK,
	ST_DIR_PB_SET,
	ST_DIR_PB_DEL,
	ST_DIR_PB_SCAN,
	ST_MOVE_ADD,
	ST_MOVE_DEL,
	ST_MOVE_SCAN,
	ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
	[ST_PUT] = "INSERT OR REPLACE INTO versions (key, version, file_id, "
		   "deleted, state, error, upload_id, etag, postback, updated, "
		   "meta_has, mode, uid, gid, mtime_s, mtime_ns, content_type) "
		   "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
		   "julianday('now'), ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
	[ST_STATE] = "UPDATE versions SET state = ?3, error = ?4, "
		     "etag = coalesce(?5, etag), updated = julianday('now') "
		     "WHERE key = ?1 AND version = ?2",
	[ST_UPLOAD_ID] = "UPDATE versions SET upload_id = ?3 "
			 "WHERE key = ?1 AND version = ?2",
	[ST_DELETE] = "DELETE FROM versions WHERE key = ?1",
	[ST_REKEY_DROP] = "DELETE FROM versions WHERE key = ?2",
	[ST_REKEY] = "UPDATE versions SET key = ?2 WHERE key = ?1",
	[ST_SCAN] = "SELECT key, version, file_id, deleted, state, error, "
		    "upload_id, etag, postback, meta_has, mode, uid, gid, "
		    "mtime_s, mtime_ns, content_type FROM versions",
	[ST_PRUNE] = "DELETE FROM versions WHERE state IN "
		     "('VISIBLE', 'UNCONFIRMED')",
	[ST_POSTBACK] = "UPDATE versions SET postback = ?3 "
			"WHERE key = ?1 AND version = ?2",
	[ST_DIR_PB_SET] = "INSERT OR REPLACE INTO dir_postbacks (dir, request)"
			  " VALUES (?1, ?2)",
	[ST_DIR_PB_DEL] = "DELETE FROM dir_postbacks WHERE dir = ?1",
	[ST_DIR_PB_SCAN] = "SELECT dir, request FROM dir_postbacks",
	[ST_MOVE_ADD] = "INSERT OR REPLACE INTO dir_moves (src, dst) "
			"VALUES (?1, ?2)",
	[ST_MOVE_DEL] = "DELETE FROM dir_moves WHERE src = ?1",
	[ST_MOVE_SCAN] = "SELECT src, dst FROM dir_moves",
};

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS versions ("
	" key TEXT PRIMARY KEY NOT NULL,"
	" version INTEGER NOT NULL,"
	" file_id INTEGER NOT NULL,"
	" deleted INTEGER NOT NULL,"
	" state TEXT NOT NULL,"
	" error TEXT,"
	" upload_id TEXT,"
	" etag TEXT,"
	" postback TEXT,"
	" updated REAL NOT NULL,"
	" meta_has INTEGER NOT NULL DEFAULT 0,"	/* bit 0 mode .. 3 mtime */
	" mode INTEGER, uid INTEGER, gid INTEGER,"
	" mtime_s INTEGER, mtime_ns INTEGER,"
	" content_type TEXT);"
	"CREATE TABLE IF NOT EXISTS dir_postbacks ("
	" dir TEXT PRIMARY KEY NOT NULL,"
	" request TEXT NOT NULL);"
	"CREATE TABLE IF NOT EXISTS dir_moves ("
	" src TEXT PRIMARY KEY NOT NULL,"
	" dst TEXT NOT NULL)";

struct jnl {
	sqlite3 *db;
	sqlite3_stmt *st[ST_COUNT];
};

/*
 * Columns added after the first release: a journal made by it gains them
 * (ALTER TABLE fails with "duplicate column" where they exist already).
 */
static const char *const added_columns[] = {
	"meta_has INTEGER NOT NULL DEFAULT 0", "mode INTEGER", "uid INTEGER",
	"gid INTEGER", "mtime_s INTEGER", "mtime_ns INTEGER",
	"content_type TEXT",
};

static void add_columns(struct jnl *j)
{
	char sql[128];
	size_t i;

	for (i = 0; i < sizeof(added_columns) / sizeof(*added_columns); i++) {
		snprintf(sql, sizeof(sql), "ALTER TABLE versions ADD COLUMN %s",
			 added_columns[i]);
		sqlite3_exec(j->db, sql, NULL, NULL, NULL);
	}
}

static int fail(struct jnl *j, const char *what)
{
	log_err("journal", "%s: %s", what, sqlite3_errmsg(j->db));
	return -EIO;
}

/* Run one prepared statement to completion and reset it. */
static int step(struct jnl *j, enum stmt_id id)
{
	sqlite3_stmt *s = j->st[id];
	int rc = sqlite3_step(s);

	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc != SQLITE_DONE)
		return fail(j, stmt_sql[id]);
	return 0;
}

static void bind_text(sqlite3_stmt *s, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(s, i);
}

static int setup(struct jnl *j, int durable, char *err, size_t errlen)
{
	char *msg = NULL;
	char pragmas[sizeof(schema) + 128];
	int i;

	snprintf(pragmas, sizeof(pragmas),
		 "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s; "
		 "PRAGMA busy_timeout=5000; %s;",
		 durable ? "FULL" : "NORMAL", schema);
	if (sqlite3_exec(j->db, pragmas, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, errlen, "journal: %s", msg ? msg : "?");
		sqlite3_free(msg);
		return -1;
	}
	add_columns(j);
	for (i = 0; i < ST_COUNT; i++) {
		if (sqlite3_prepare_v3(j->db, stmt_sql[i], -1,
				       SQLITE_PREPARE_PERSISTENT, &j->st[i],
				       NULL) != SQLITE_OK) {
			snprintf(err, errlen, "journal: %s",
				 sqlite3_errmsg(j->db));
			return -1;
		}
	}
	return 0;
}

struct jnl *jnl_open(const char *dir, int durable, char *err, size_t errlen)
{
	struct jnl *j = calloc(1, sizeof(*j));
	char path[PATH_MAX];
	int fd;

	if (!j)
		abort();
	snprintf(path, sizeof(path), "%s/journal.db", dir);

	/* SQLite gives its -wal and -shm files the database's mode. */
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
	if (sqlite3_open_v2(path, &j->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				    SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		snprintf(err, errlen, "journal %s: %s", path,
			 j->db ? sqlite3_errmsg(j->db) : "out of memory");
		goto fail;
	}
	if (setup(j, durable, err, errlen) < 0)
		goto fail;
	return j;

fail:
	jnl_close(j);
	return NULL;
}

void jnl_close(struct jnl *j)
{
	int i;

	if (!j)
		return;
	for (i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(j->st[i]);
	sqlite3_close(j->db);
	free(j);
}

int jnl_put(struct jnl *j, const struct jnl_row *r)
{
	sqlite3_stmt *s = j->st[ST_PUT];

	bind_text(s, 1, r->key);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)r->version);
	sqlite3_bind_int64(s, 3, (sqlite3_int64)r->file_id);
	sqlite3_bind_int(s, 4, r->deleted);
	bind_text(s, 5, r->state);
	bind_text(s, 6, r->error);
	bind_text(s, 7, r->upload_id);
	bind_text(s, 8, r->etag);
	bind_text(s, 9, r->postback);
	sqlite3_bind_int(s, 10, r->meta.has_mode | r->meta.has_uid << 1 |
				       r->meta.has_gid << 2 |
				       r->meta.has_mtime << 3);
	sqlite3_bind_int64(s, 11, r->meta.mode);
	sqlite3_bind_int64(s, 12, r->meta.uid);
	sqlite3_bind_int64(s, 13, r->meta.gid);
	sqlite3_bind_int64(s, 14, (sqlite3_int64)r->meta.mtime.tv_sec);
	sqlite3_bind_int64(s, 15, r->meta.mtime.tv_nsec);
	bind_text(s, 16, r->content_type && *r->content_type
				 ? r->content_type
				 : NULL);
	return step(j, ST_PUT);
}

int jnl_set_state(struct jnl *j, const char *key, uint64_t version,
		  const char *state, const char *error, const char *etag)
{
	sqlite3_stmt *s = j->st[ST_STATE];

	bind_text(s, 1, key);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)version);
	bind_text(s, 3, state);
	bind_text(s, 4, error);
	bind_text(s, 5, etag);
	return step(j, ST_STATE);
}

int jnl_set_upload_id(struct jnl *j, const char *key, uint64_t version,
		      const char *upload_id)
{
	sqlite3_stmt *s = j->st[ST_UPLOAD_ID];

	bind_text(s, 1, key);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)version);
	bind_text(s, 3, upload_id);
	return step(j, ST_UPLOAD_ID);
}

int jnl_delete(struct jnl *j, const char *key)
{
	bind_text(j->st[ST_DELETE], 1, key);
	return step(j, ST_DELETE);
}

int jnl_rekey(struct jnl *j, const char *from, const char *to)
{
	int ret;

	if (sqlite3_exec(j->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		return fail(j, "begin");
	bind_text(j->st[ST_REKEY_DROP], 2, to);
	ret = step(j, ST_REKEY_DROP);
	if (ret == 0) {
		bind_text(j->st[ST_REKEY], 1, from);
		bind_text(j->st[ST_REKEY], 2, to);
		ret = step(j, ST_REKEY);
	}
	if (sqlite3_exec(j->db, ret ? "ROLLBACK" : "COMMIT", NULL, NULL,
			 NULL) != SQLITE_OK)
		return fail(j, "commit");
	return ret;
}

static const char *col_text(sqlite3_stmt *s, int i)
{
	return (const char *)sqlite3_column_text(s, i);
}

/* The attribute columns of a scanned row (9 on). */
static void row_meta(sqlite3_stmt *s, struct jnl_row *r)
{
	int has = sqlite3_column_int(s, 9);

	memset(&r->meta, 0, sizeof(r->meta));
	r->meta.has_mode = has & 1;
	r->meta.has_uid = (has >> 1) & 1;
	r->meta.has_gid = (has >> 2) & 1;
	r->meta.has_mtime = (has >> 3) & 1;
	r->meta.mode = (uint32_t)sqlite3_column_int64(s, 10);
	r->meta.uid = (uint32_t)sqlite3_column_int64(s, 11);
	r->meta.gid = (uint32_t)sqlite3_column_int64(s, 12);
	r->meta.mtime.tv_sec = (time_t)sqlite3_column_int64(s, 13);
	r->meta.mtime.tv_nsec = (long)sqlite3_column_int64(s, 14);
	r->content_type = col_text(s, 15);
}

int jnl_scan(struct jnl *j, jnl_scan_fn fn, void *arg)
{
	sqlite3_stmt *s = j->st[ST_SCAN];
	struct jnl_row r;
	int rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		r.key = col_text(s, 0);
		r.version = (uint64_t)sqlite3_column_int64(s, 1);
		r.file_id = (uint64_t)sqlite3_column_int64(s, 2);
		r.deleted = sqlite3_column_int(s, 3);
		r.state = col_text(s, 4);
		r.error = col_text(s, 5);
		r.upload_id = col_text(s, 6);
		r.etag = col_text(s, 7);
		r.postback = col_text(s, 8);
		row_meta(s, &r);
		if (r.key && r.state)
			fn(arg, &r);
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		return fail(j, "scan");
	return 0;
}

int jnl_set_postback(struct jnl *j, const char *key, uint64_t version,
		     const char *request)
{
	sqlite3_stmt *s = j->st[ST_POSTBACK];

	bind_text(s, 1, key);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)version);
	bind_text(s, 3, request);
	return step(j, ST_POSTBACK);
}

int jnl_dir_postback(struct jnl *j, const char *dir, const char *request)
{
	sqlite3_stmt *s;

	if (!request) {
		bind_text(j->st[ST_DIR_PB_DEL], 1, dir);
		return step(j, ST_DIR_PB_DEL);
	}
	s = j->st[ST_DIR_PB_SET];
	bind_text(s, 1, dir);
	bind_text(s, 2, request);
	return step(j, ST_DIR_PB_SET);
}

int jnl_scan_dir_postbacks(struct jnl *j, jnl_dir_fn fn, void *arg)
{
	sqlite3_stmt *s = j->st[ST_DIR_PB_SCAN];
	int rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		if (col_text(s, 0) && col_text(s, 1))
			fn(arg, col_text(s, 0), col_text(s, 1));
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		return fail(j, "scan dir postbacks");
	return 0;
}

int jnl_prune_done(struct jnl *j)
{
	return step(j, ST_PRUNE);
}

int jnl_sync(struct jnl *j)
{
	int log = 0, ckpt = 0;

	if (sqlite3_wal_checkpoint_v2(j->db, NULL, SQLITE_CHECKPOINT_FULL,
				      &log, &ckpt) != SQLITE_OK)
		return fail(j, "checkpoint");
	return 0;
}

int jnl_move_begin(struct jnl *j, const char *src, const char *dst)
{
	sqlite3_stmt *s = j->st[ST_MOVE_ADD];

	bind_text(s, 1, src);
	bind_text(s, 2, dst);
	return step(j, ST_MOVE_ADD);
}

int jnl_move_end(struct jnl *j, const char *src)
{
	bind_text(j->st[ST_MOVE_DEL], 1, src);
	return step(j, ST_MOVE_DEL);
}

int jnl_scan_moves(struct jnl *j, jnl_dir_fn fn, void *arg)
{
	sqlite3_stmt *s = j->st[ST_MOVE_SCAN];
	const char *src, *dst;
	int rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		src = col_text(s, 0);
		dst = col_text(s, 1);
		if (src && dst)
			fn(arg, src, dst);
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		return fail(j, "scan moves");
	return 0;
}
