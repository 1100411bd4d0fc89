/*
 * fetch.c - reads of objects that are only in S3.
 *
 * A reader that starts at the beginning streams the object: each GET asks
 * for the bytes after those already here, the window doubling from 1 MiB
 * to 16 MiB while the reader goes on, and lands in a staging file (the
 * copy) that reads are served from; nothing waits for the whole object.
 * A whole copy becomes a clean cache entry (VISIBLE, "fetched") that later
 * readers use for as long as S3 shows the same ETag.  Every GET after the
 * first names that ETag (If-Match), so a copy never mixes two versions.
 * A reader that jumps far ahead gets a GET of just what it asked for.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cache_i.h"
#include "log.h"

#define WINDOW_MIN ((uint64_t)1 << 20)
#define WINDOW_MAX ((uint64_t)16 << 20)

static void log_fetch_failure(struct cache_file *f, const char *what,
			      const struct s3_error *err)
{
	char kb[512];

	log_warn("cache", "%s: bucket=%s key=%s: %s (%ld %s)", what,
		 s3_client_bucket(f->c->s3), log_key(f->key, kb, sizeof(kb)),
		 err->message, err->http, err->code);
}

/* Begin the copy of f's object in a new staging file. */
static void start_copy(struct cache_file *f)
{
	struct cache *c = f->c;
	char path[PATH_MAX];

	pthread_mutex_lock(&c->lock);
	f->copy_id = c->next_id++;
	pthread_mutex_unlock(&c->lock);
	cache_staging_path(c, f->copy_id, path, sizeof(path));
	f->copy_fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (f->copy_fd < 0) {
		f->copy_id = 0;
		f->copy_dead = 1;
	}
	f->window = WINDOW_MIN;
}

/*
 * The copy is whole: keep it as key's clean entry, unless the mount has a
 * version of its own by now, or it would take over a quarter of the cache.
 */
static void keep_copy(struct cache_file *f)
{
	struct cache *c = f->c;
	struct cache_entry *e;

	pthread_mutex_lock(&c->lock);
	e = cache_entry_find(c, f->key);
	if ((e && (e->work_id || e->file_id || e->queued || e->busy)) ||
	    f->filled > c->opts.cache_size / 4) {
		pthread_mutex_unlock(&c->lock);
		return;
	}
	e = cache_entry_get(c, f->key);
	e->deleted = 0;
	e->file_id = f->copy_id;
	e->file_size = f->filled;
	e->state = CACHE_VISIBLE;
	e->fetched = 1;
	e->remote = 1;
	e->meta = f->remote_meta;
	e->last_use = cache_now();
	snprintf(e->etag, sizeof(e->etag), "%s", f->remote_etag);
	c->clean += f->filled;
	cache_space_add(c, f->filled);
	cache_entry_relive(c, e, 0);
	f->copy_id = 0;
	pthread_mutex_unlock(&c->lock);
}

/* GET the next window, or up to end if more, into the copy. */
static int extend_copy(struct cache_file *f, uint64_t end)
{
	uint64_t len = f->window, got = 0;
	struct s3_object_info info;
	struct s3_error err;
	enum s3_status st;

	if (end - f->filled > len)
		len = end - f->filled;
	if (len > f->remote_size - f->filled)
		len = f->remote_size - f->filled;
	memset(&info, 0, sizeof(info));
	st = s3_get_range_fd(f->c->s3, f->key, f->filled, len,
			     f->remote_etag[0] ? f->remote_etag : NULL,
			     f->copy_fd, &got, &info, &err);
	if (st != S3_OK) {
		log_fetch_failure(f, "read", &err);
		f->copy_dead = 1;
		return s3_status_errno(st);
	}
	if (!f->remote_etag[0])
		snprintf(f->remote_etag, sizeof(f->remote_etag), "%s",
			 info.etag);
	f->filled += got;
	if (got < len)
		f->remote_size = f->filled;
	if (f->window < WINDOW_MAX)
		f->window *= 2;
	if (f->filled >= f->remote_size)
		keep_copy(f);
	return 0;
}

/* A read far from where the copy has got to: just the bytes asked for. */
static int read_direct(struct cache_file *f, char *buf, size_t size,
		       uint64_t off)
{
	struct s3_error err;
	enum s3_status st;
	size_t got = 0;

	st = s3_get_range(f->c->s3, f->key, off, size, buf, &got, &err);
	if (st != S3_OK) {
		log_fetch_failure(f, "read", &err);
		return s3_status_errno(st);
	}
	return (int)got;
}

int cache_fetch_read(struct cache_file *f, char *buf, size_t size,
		     off_t off)
{
	uint64_t uoff = (uint64_t)off, end;
	ssize_t n;
	int ret;

	if (uoff >= f->remote_size || size == 0)
		return 0;
	end = uoff + size;
	if (end > f->remote_size)
		end = f->remote_size;
	if (f->copy_fd < 0 && !f->copy_dead && uoff == 0)
		start_copy(f);
	if (f->copy_fd < 0 || f->copy_dead || uoff > f->filled + f->window)
		return read_direct(f, buf, (size_t)(end - uoff), uoff);

	while (f->filled < end) {
		ret = extend_copy(f, end);
		if (ret < 0)
			return ret;
		if (end > f->remote_size)
			end = f->remote_size;
	}
	if (uoff >= end)
		return 0;
	n = pread(f->copy_fd, buf, (size_t)(end - uoff), off);
	return n < 0 ? -errno : (int)n;
}

void cache_fetch_close(struct cache_file *f)
{
	if (f->copy_fd >= 0)
		close(f->copy_fd);
	f->copy_fd = -1;
	if (f->copy_id)
		cache_unlink_staging(f->c, f->copy_id, 0);
	f->copy_id = 0;
}
