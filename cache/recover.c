/*
 * recover.c - the start of a mount: take the cache directory, then bring
 * back every version the journal says S3 does not have yet.
 *
 * The journal is the truth: a staging file no pending version refers to is
 * a working file that was never closed, a superseded version, or a clean
 * copy, and is removed.  A pending version whose staging file is gone can
 * only come from damage outside blitfs; it is logged and dropped.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache_i.h"
#include "log.h"

int cache_lock_dir(struct cache *c, char *err, size_t errlen)
{
	char path[PATH_MAX];
	char pid[32] = "";
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/lock", c->dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "cache directory %s: %s", c->dir,
			 strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		n = pread(fd, pid, sizeof(pid) - 1, 0);
		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		snprintf(err, errlen, "cache directory %s is in use by another "
			 "blitfs (pid %s); give each mount its own cache_dir",
			 c->dir, *pid ? pid : "?");
		close(fd);
		return -1;
	}
	c->lock_fd = fd;
	return 0;
}

struct recovery {
	struct cache *c;
	uint64_t *ids;		/* staging files pending versions use */
	size_t nids, cap;
	char **lost;		/* rows to drop: their file is gone */
	size_t nlost;
	unsigned versions;
	uint64_t bytes;
};

static void keep_id(struct recovery *r, uint64_t id)
{
	if (r->nids == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 256;
		r->ids = realloc(r->ids, r->cap * sizeof(*r->ids));
		if (!r->ids)
			abort();
	}
	r->ids[r->nids++] = id;
}

static int is_done(const char *state)
{
	return strcmp(state, "VISIBLE") == 0 ||
	       strcmp(state, "UNCONFIRMED") == 0;
}

static void drop_row(struct recovery *r, const char *key)
{
	r->lost = realloc(r->lost, (r->nlost + 1) * sizeof(*r->lost));
	if (!r->lost || !(r->lost[r->nlost] = strdup(key)))
		abort();
	r->nlost++;
}

/* Bring one journaled version back onto the queue. */
static void recover_row(void *arg, const struct jnl_row *row)
{
	struct recovery *r = arg;
	struct cache *c = r->c;
	struct cache_entry *e;
	char path[PATH_MAX];
	char kb[512];
	struct stat st = { 0 };

	if (is_done(row->state))
		return;
	if (row->file_id >= c->next_id)
		c->next_id = row->file_id + 1;
	cache_staging_path(c, row->file_id, path, sizeof(path));
	if (!row->deleted && stat(path, &st) < 0) {
		log_err("cache", "bucket=%s key=%s: staging file %s is gone; "
			"that version cannot be uploaded",
			s3_client_bucket(c->s3),
			log_key(row->key, kb, sizeof(kb)), path);
		drop_row(r, row->key);
		return;
	}

	e = cache_entry_get(c, row->key);
	e->version = row->version;
	e->deleted = row->deleted;
	e->file_id = row->deleted ? 0 : row->file_id;
	e->file_size = (uint64_t)st.st_size;
	e->remote = 1;
	e->state = row->deleted ? CACHE_DELETING : CACHE_QUEUED;
	snprintf(e->error, sizeof(e->error), "%s", row->error ? row->error
							       : "");
	if (row->postback)
		e->pb_request = strdup(row->postback);
	e->meta = row->meta;
	snprintf(e->content_type, sizeof(e->content_type), "%s",
		 row->content_type ? row->content_type : "");
	if (row->upload_id)
		snprintf(e->upload_id, sizeof(e->upload_id), "%s",
			 row->upload_id);

	/* Uploaded before the crash: probe again, its postback may be due. */
	if (strcmp(row->state, "UPLOADED") == 0) {
		e->state = CACHE_UPLOADED;
		e->uploaded_version = e->version;
		e->upload_end = cache_now();
		e->visible_ms = -1;
		snprintf(e->etag, sizeof(e->etag), "%s", row->etag ? row->etag
								   : "");
		c->clean += e->file_size;
	}
	cache_entry_relive(c, e, 0);
	cache_space_add(c, e->file_size);
	upq_push(c, e);
	if (e->file_id)
		keep_id(r, e->file_id);
	r->versions++;
	r->bytes += e->file_size;
}

static int cmp_id(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* Remove staging files no pending version refers to. */
static unsigned remove_orphans(struct recovery *r)
{
	struct cache *c = r->c;
	DIR *d = opendir(c->staging);
	struct dirent *de;
	unsigned removed = 0;

	if (!d)
		return 0;
	if (r->nids)
		qsort(r->ids, r->nids, sizeof(*r->ids), cmp_id);
	while ((de = readdir(d)) != NULL) {
		char *end;
		uint64_t id = strtoull(de->d_name, &end, 16);

		if (de->d_name[0] == '.' || *end != '\0')
			continue;
		if (id >= c->next_id)
			c->next_id = id + 1;
		if (r->nids &&
		    bsearch(&id, r->ids, r->nids, sizeof(id), cmp_id))
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) == 0)
			removed++;
	}
	closedir(d);
	return removed;
}

int cache_recover(struct cache *c, char *err, size_t errlen)
{
	struct recovery r = { .c = c };
	double t0 = cache_now();
	unsigned orphans;
	size_t i;

	if (jnl_scan(c->jnl, recover_row, &r) < 0) {
		snprintf(err, errlen, "journal in %s cannot be read", c->dir);
		free(r.ids);
		return -1;
	}
	for (i = 0; i < r.nlost; i++) {
		jnl_delete(c->jnl, r.lost[i]);
		free(r.lost[i]);
	}
	free(r.lost);
	jnl_prune_done(c->jnl);
	orphans = remove_orphans(&r);
	free(r.ids);

	if (r.versions || orphans)
		log_info("cache", "bucket=%s: recovered %u versions (%llu "
			 "bytes) from the journal in %.0f ms; removed %u "
			 "unreferenced staging files",
			 s3_client_bucket(c->s3), r.versions,
			 (unsigned long long)r.bytes, (cache_now() - t0) * 1e3,
			 orphans);
	return 0;
}
