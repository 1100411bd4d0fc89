/*
 * pb-store.c - the durable queue of deliveries: postbacks.db in the cache
 * directory, a database of its own so that postbacks never contend with
 * the journal's writers.
 *
 * WAL with synchronous=NORMAL: a commit is in the operating system's hands
 * when pb_store_add returns, so it survives kill -9 of the daemon (not a
 * power cut, which the journal's own "durable" setting is for).  Delivered
 * rows are deleted; given-up ones stay, marked failed, for a month.
 *
 * Not thread safe: the caller holds one lock around every call.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "notify_i.h"

enum stmt_id {
	ST_ADD,
	ST_NEXT,
	ST_DONE,
	ST_RETRY,
	ST_FAIL,
	ST_PENDING,
	ST_WAKE,
	ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
	[ST_ADD] = "INSERT OR IGNORE INTO deliveries (id, url, body, key, "
		   "attempts, next_try, state, last_error, created) "
		   "VALUES (?1, ?2, ?3, ?4, 0, ?5, 'pending', NULL, ?5)",
	[ST_NEXT] = "SELECT id, url, body, key, attempts, next_try "
		    "FROM deliveries WHERE state = 'pending' "
		    "ORDER BY next_try, created",
	[ST_DONE] = "DELETE FROM deliveries WHERE id = ?1",
	[ST_RETRY] = "UPDATE deliveries SET attempts = ?2, next_try = ?3, "
		     "last_error = ?4 WHERE id = ?1",
	[ST_FAIL] = "UPDATE deliveries SET attempts = ?2, state = 'failed', "
		    "last_error = ?3 WHERE id = ?1",
	[ST_PENDING] = "SELECT count(*) FROM deliveries "
		       "WHERE state = 'pending'",
	[ST_WAKE] = "UPDATE deliveries SET next_try = ?2 "
		    "WHERE state = 'pending' AND url = ?1 AND next_try > ?2",
};

/* Times are ms since the epoch: a due time must mean the same next mount. */
static const char schema[] =
	"PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
	"PRAGMA busy_timeout=5000; "
	"CREATE TABLE IF NOT EXISTS deliveries ("
	" id TEXT PRIMARY KEY NOT NULL,"
	" url TEXT NOT NULL,"
	" body TEXT NOT NULL,"
	" key TEXT NOT NULL,"
	" attempts INTEGER NOT NULL,"
	" next_try INTEGER NOT NULL,"
	" state TEXT NOT NULL,"
	" last_error TEXT,"
	" created INTEGER NOT NULL); "
	"CREATE INDEX IF NOT EXISTS deliveries_due "
	" ON deliveries (state, next_try); "
	"DELETE FROM deliveries WHERE state = 'failed' AND "
	" created < (strftime('%s', 'now') - 30 * 86400) * 1000;";

struct pb_store {
	sqlite3 *db;
	sqlite3_stmt *st[ST_COUNT];
};

/* Log what SQLite said about a statement; always -EIO. */
static int fail(struct pb_store *s, enum stmt_id id)
{
	log_err("notify", "postbacks.db: %s: %s", stmt_sql[id],
		sqlite3_errmsg(s->db));
	return -EIO;
}

/* Run a statement that returns no rows, then reset it. */
static int step(struct pb_store *s, enum stmt_id id)
{
	sqlite3_stmt *st = s->st[id];
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE)
		return fail(s, id);
	return 0;
}

/* Bind text, or NULL. */
static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

/* Create the file 0600 first: SQLite gives -wal and -shm its mode. */
static int create_private(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	int e;

	if (fd < 0) {
		e = errno;
		snprintf(err, errlen, "open(%s): %s", path, strerror(e));
		return -e;
	}
	if (fchmod(fd, 0600) < 0) {
		e = errno;
		close(fd);
		snprintf(err, errlen, "chmod(%s): %s", path, strerror(e));
		return -e;
	}
	close(fd);
	return 0;
}

/* Make the table and prepare the statements. */
static int setup(struct pb_store *s, char *err, size_t errlen)
{
	char *msg = NULL;
	int i;

	if (sqlite3_exec(s->db, schema, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, errlen, "postbacks.db: %s", msg ? msg : "?");
		sqlite3_free(msg);
		return -1;
	}
	for (i = 0; i < ST_COUNT; i++) {
		if (sqlite3_prepare_v3(s->db, stmt_sql[i], -1,
				       SQLITE_PREPARE_PERSISTENT, &s->st[i],
				       NULL) != SQLITE_OK) {
			snprintf(err, errlen, "postbacks.db: %s",
				 sqlite3_errmsg(s->db));
			return -1;
		}
	}
	return 0;
}

/* Open (or create) dir/postbacks.db. */
struct pb_store *pb_store_open(const char *dir, char *err, size_t errlen)
{
	struct pb_store *s = calloc(1, sizeof(*s));
	char path[PATH_MAX];

	if (!s)
		abort();
	snprintf(path, sizeof(path), "%s/postbacks.db", dir);
	if (create_private(path, err, errlen) < 0)
		goto fail;
	if (sqlite3_open_v2(path, &s->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path,
			 s->db ? sqlite3_errmsg(s->db) : "out of memory");
		goto fail;
	}
	if (setup(s, err, errlen) < 0)
		goto fail;
	return s;

fail:
	pb_store_close(s);
	return NULL;
}

/* Finalise the statements and close the database. */
void pb_store_close(struct pb_store *s)
{
	int i;

	if (!s)
		return;
	for (i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(s->st[i]);
	sqlite3_close(s->db);
	free(s);
}

/* Insert a pending delivery; an id already there keeps its first body. */
int pb_store_add(struct pb_store *s, const struct pb_row *r)
{
	sqlite3_stmt *st = s->st[ST_ADD];
	int rc;

	bind_text(st, 1, r->id);
	bind_text(st, 2, r->url);
	bind_text(st, 3, r->body);
	bind_text(st, 4, r->key);
	sqlite3_bind_int64(st, 5, r->next_try);
	rc = step(s, ST_ADD);
	if (rc)
		return rc;
	return sqlite3_changes(s->db) > 0;
}

/* A copy of column i as text; "" for NULL. */
static char *column(sqlite3_stmt *st, int i)
{
	const unsigned char *v = sqlite3_column_text(st, i);
	char *c = strdup(v ? (const char *)v : "");

	if (!c)
		abort();
	return c;
}

/* Fill r from the current row. */
static void take_row(sqlite3_stmt *st, struct pb_row *r)
{
	r->id = column(st, 0);
	r->url = column(st, 1);
	r->body = column(st, 2);
	r->key = column(st, 3);
	r->attempts = (unsigned)sqlite3_column_int(st, 4);
	r->next_try = sqlite3_column_int64(st, 5);
}

/* The earliest pending delivery that skip() lets through. */
int pb_store_next(struct pb_store *s, int (*skip)(void *, const char *),
		  void *arg, struct pb_row *r)
{
	sqlite3_stmt *st = s->st[ST_NEXT];
	int found = 0;
	int rc;

	memset(r, 0, sizeof(*r));
	for (;;) {
		rc = sqlite3_step(st);
		if (rc != SQLITE_ROW)
			break;
		if (skip && skip(arg, (const char *)sqlite3_column_text(st, 0)))
			continue;
		take_row(st, r);
		found = 1;
		break;
	}
	sqlite3_reset(st);
	if (!found && rc != SQLITE_DONE)
		return fail(s, ST_NEXT);
	return found;
}

/* Free the strings of a row. */
void pb_row_free(struct pb_row *r)
{
	free(r->id);
	free(r->url);
	free(r->body);
	free(r->key);
	memset(r, 0, sizeof(*r));
}

/* Delivered: the row goes. */
int pb_store_done(struct pb_store *s, const char *id)
{
	bind_text(s->st[ST_DONE], 1, id);
	return step(s, ST_DONE);
}

/* Count a failed attempt and set the next try. */
int pb_store_retry(struct pb_store *s, const char *id, unsigned attempts,
		   int64_t next_try, const char *error)
{
	sqlite3_stmt *st = s->st[ST_RETRY];

	bind_text(st, 1, id);
	sqlite3_bind_int(st, 2, (int)attempts);
	sqlite3_bind_int64(st, 3, next_try);
	bind_text(st, 4, error);
	return step(s, ST_RETRY);
}

/* Given up: keep the row, marked failed, with why. */
int pb_store_fail(struct pb_store *s, const char *id, unsigned attempts,
		  const char *error)
{
	sqlite3_stmt *st = s->st[ST_FAIL];

	bind_text(st, 1, id);
	sqlite3_bind_int(st, 2, (int)attempts);
	bind_text(st, 3, error);
	return step(s, ST_FAIL);
}

/* Make every delivery waiting for url due at now; how many, or -EIO. */
int pb_store_wake(struct pb_store *s, const char *url, int64_t now)
{
	sqlite3_stmt *st = s->st[ST_WAKE];
	int rc;

	bind_text(st, 1, url);
	sqlite3_bind_int64(st, 2, now);
	rc = step(s, ST_WAKE);
	if (rc)
		return rc;
	return sqlite3_changes(s->db);
}

/* How many deliveries wait. */
long pb_store_pending(struct pb_store *s)
{
	sqlite3_stmt *st = s->st[ST_PENDING];
	long n = -EIO;

	if (sqlite3_step(st) == SQLITE_ROW)
		n = (long)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (n < 0)
		fail(s, ST_PENDING);
	return n;
}
