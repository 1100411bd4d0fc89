/*
 * cache.c - staging files and the table of keys that have local data.
 *
 * A key's entry tracks two staging files at most: the one being written
 * (work_id) and the newest closed version (file_id).  Opening a closed file
 * for writing copies it first, so a version is never changed while a worker
 * uploads it.  Staging files are named by a number that only grows.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache_i.h"
#include "log.h"

#define READ_AHEAD (4u << 20)	/* bytes fetched per ranged GET */

struct cache_file {
	struct cache *c;
	struct cache_entry *e;	/* NULL for reads of objects only in S3 */
	char *key;
	int fd;			/* staging file, -1 for remote reads */
	uint64_t work_id;	/* non-zero: one of the writers of work_id */
	uint64_t remote_size;

	pthread_mutex_t ra_lock;	/* guards the read-ahead window */
	char *ra_buf;
	uint64_t ra_off;
	size_t ra_len;
};

struct dir_count {
	char *dir;
	unsigned n;
};

static char *xstrdup(const char *s)
{
	char *d = strdup(s);

	if (!d)
		abort();
	return d;
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	if (!p)
		abort();
	return p;
}

static int cmp_entry(const void *a, const void *b)
{
	const struct cache_entry *x = a, *y = b;

	return strcmp(x->key, y->key);
}

static int cmp_dir(const void *a, const void *b)
{
	const struct dir_count *x = a, *y = b;

	return strcmp(x->dir, y->dir);
}

void cache_staging_path(const struct cache *c, uint64_t id, char *buf,
			size_t size)
{
	snprintf(buf, size, "%s/%016" PRIx64, c->staging, id);
}

const char *cache_state_name(enum cache_state st)
{
	static const char *const names[] = {
		"OPEN", "QUEUED", "UPLOADING", "UPLOADED", "FAILED",
		"DELETING",
	};

	if ((unsigned)st >= sizeof(names) / sizeof(names[0]))
		return "?";
	return names[st];
}

/* Count one more (or one fewer) live file below each parent of key. */
static void dirs_adjust(struct cache *c, const char *key, int delta)
{
	const char *slash;

	for (slash = strchr(key, '/'); slash; slash = strchr(slash + 1, '/')) {
		char *dir = strndup(key, (size_t)(slash - key + 1));
		struct dir_count probe = { .dir = dir };
		struct dir_count **found = tfind(&probe, &c->dirs, cmp_dir);

		if (!dir)
			abort();
		if (found) {
			(*found)->n += delta;
			if ((*found)->n == 0) {
				struct dir_count *d = *found;

				tdelete(d, &c->dirs, cmp_dir);
				free(d->dir);
				free(d);
			}
			free(dir);
		} else if (delta > 0) {
			struct dir_count *d = xcalloc(1, sizeof(*d));

			d->dir = dir;
			d->n = 1;
			if (!tsearch(d, &c->dirs, cmp_dir))
				abort();
		} else {
			free(dir);
		}
	}
}

/* A file is live when it is in the table, not unlinked, and has bytes. */
static int entry_live(const struct cache_entry *e)
{
	return e->in_table && !e->deleted && (e->work_id || e->file_id);
}

/* Keep the directory counts in step with whether e is live. */
static void entry_relive(struct cache *c, struct cache_entry *e, int was)
{
	int now = entry_live(e);

	if (now != was)
		dirs_adjust(c, e->key, now ? 1 : -1);
}

static struct cache_entry *entry_find(struct cache *c, const char *key)
{
	struct cache_entry probe = { .key = (char *)key };
	struct cache_entry **found = tfind(&probe, &c->table, cmp_entry);

	return found ? *found : NULL;
}

static struct cache_entry *entry_get(struct cache *c, const char *key)
{
	struct cache_entry *e = entry_find(c, key);

	if (e)
		return e;
	e = xcalloc(1, sizeof(*e));
	e->key = xstrdup(key);
	e->refs = 1;
	e->in_table = 1;
	if (!tsearch(e, &c->table, cmp_entry))
		abort();
	return e;
}

/* Release one reference; the last one frees the entry. */
void cache_entry_put(struct cache *c, struct cache_entry *e)
{
	(void)c;
	if (--e->refs > 0)
		return;
	free(e->key);
	free(e);
}

/* Take e out of the table: it is done and has nothing local left. */
void cache_entry_drop(struct cache *c, struct cache_entry *e)
{
	int was = entry_live(e);

	if (!e->in_table)
		return;
	tdelete(e, &c->table, cmp_entry);
	e->in_table = 0;
	entry_relive(c, e, was);
	cache_entry_put(c, e);
}

static void unlink_staging(struct cache *c, uint64_t id)
{
	char path[PATH_MAX];

	cache_staging_path(c, id, path, sizeof(path));
	if (unlink(path) < 0 && errno != ENOENT)
		log_warn("cache", "unlink(%s): %s", path, strerror(errno));
}

/* Create dir (and its parents) private to the user. */
static int make_private_dir(const char *dir)
{
	char *tmp = xstrdup(dir);
	char *p;
	int ret = 0;

	for (p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
			ret = -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
		ret = -errno;
	else
		ret = chmod(tmp, 0700) < 0 ? -errno : 0;
	free(tmp);
	return ret;
}

/* Waits are measured on the monotonic clock, immune to clock steps. */
static void init_monotonic_cond(pthread_cond_t *cv)
{
	pthread_condattr_t attr;

	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(cv, &attr);
	pthread_condattr_destroy(&attr);
}

/* Staging names must never repeat: start past the highest one on disk. */
static uint64_t first_free_id(const char *staging)
{
	DIR *d = opendir(staging);
	struct dirent *de;
	uint64_t max = 0;

	if (!d)
		return 1;
	while ((de = readdir(d)) != NULL) {
		char *end;
		uint64_t id = strtoull(de->d_name, &end, 16);

		if (*end == '\0' && id > max)
			max = id;
	}
	closedir(d);
	return max + 1;
}

struct cache *cache_new(const struct cache_opts *o, struct s3_client *s3,
			char *err, size_t errlen)
{
	struct cache *c = xcalloc(1, sizeof(*c));
	size_t n = strlen(o->dir) + sizeof("/staging");
	int ret;

	c->opts = *o;
	c->s3 = s3;
	c->dir = xstrdup(o->dir);
	c->opts.dir = c->dir;
	c->staging = xcalloc(1, n);
	snprintf(c->staging, n, "%s/staging", o->dir);

	ret = make_private_dir(c->staging);
	if (ret < 0) {
		snprintf(err, errlen, "cache directory %s: %s", c->staging,
			 strerror(-ret));
		goto fail;
	}
	c->next_id = first_free_id(c->staging);

	pthread_mutex_init(&c->lock, NULL);
	init_monotonic_cond(&c->work_cv);
	init_monotonic_cond(&c->idle_cv);
	return c;

fail:
	free(c->staging);
	free(c->dir);
	free(c);
	return NULL;
}

int cache_start(struct cache *c)
{
	return upq_start(c);
}

static void free_entry_node(void *p)
{
	struct cache_entry *e = p;

	e->in_table = 0;
	cache_entry_put(NULL, e);
}

static void free_dir_node(void *p)
{
	struct dir_count *d = p;

	free(d->dir);
	free(d);
}

void cache_free(struct cache *c)
{
	if (!c)
		return;
	upq_drain(c, c->opts.drain_timeout);
	upq_stop(c);

	tdestroy(c->table, free_entry_node);
	tdestroy(c->dirs, free_dir_node);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->work_cv);
	pthread_cond_destroy(&c->idle_cv);
	free(c->staging);
	free(c->dir);
	free(c);
}

/* Fill st from the staging file that holds e's newest bytes. */
static int stat_entry(struct cache *c, const struct cache_entry *e,
		      struct stat *st)
{
	char path[PATH_MAX];
	uint64_t id = e->work_id ? e->work_id : e->file_id;

	cache_staging_path(c, id, path, sizeof(path));
	if (stat(path, st) < 0)
		return -errno;
	st->st_mode = S_IFREG | 0644;
	st->st_nlink = 1;
	return 0;
}

int cache_stat(struct cache *c, const char *key, struct stat *st)
{
	struct cache_entry *e;
	int ret = 1;

	pthread_mutex_lock(&c->lock);
	e = entry_find(c, key);
	if (e && e->deleted)
		ret = -ENOENT;
	else if (e && (e->work_id || e->file_id))
		ret = stat_entry(c, e, st);
	pthread_mutex_unlock(&c->lock);
	return ret;
}

int cache_has_below(struct cache *c, const char *dir)
{
	struct dir_count probe = { .dir = (char *)dir };
	int found;

	pthread_mutex_lock(&c->lock);
	found = tfind(&probe, &c->dirs, cmp_dir) != NULL;
	pthread_mutex_unlock(&c->lock);
	return found;
}

struct list_walk {
	struct cache *c;
	const char *dir;
	size_t dirlen;
	cache_list_fn fn;
	void *arg;
};

static void list_visit(const void *node, VISIT which, void *closure)
{
	const struct cache_entry *e = *(const struct cache_entry *const *)node;
	struct list_walk *w = closure;
	struct stat st;

	if (which != postorder && which != leaf)
		return;
	if (strncmp(e->key, w->dir, w->dirlen) != 0)
		return;
	if (e->deleted)
		w->fn(w->arg, e->key + w->dirlen, NULL);
	else if ((e->work_id || e->file_id) && stat_entry(w->c, e, &st) == 0)
		w->fn(w->arg, e->key + w->dirlen, &st);
}

void cache_list(struct cache *c, const char *dir, cache_list_fn fn,
		void *arg)
{
	struct list_walk w = { c, dir, strlen(dir), fn, arg };

	pthread_mutex_lock(&c->lock);
	twalk_r(c->table, list_visit, &w);
	pthread_mutex_unlock(&c->lock);
}

/* Copy a closed version into a new working file (copy on write). */
static int copy_staged(struct cache *c, uint64_t from, int to_fd)
{
	char path[PATH_MAX];
	int in;
	ssize_t n;
	int ret = 0;

	cache_staging_path(c, from, path, sizeof(path));
	in = open(path, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -errno;
	do {
		n = copy_file_range(in, NULL, to_fd, NULL, 1 << 30, 0);
	} while (n > 0);
	if (n < 0)
		ret = -errno;
	close(in);
	return ret;
}

/* Fetch an object that is only in S3 so that it can be changed in place. */
static int fetch_remote(struct cache *c, const char *key, int fd)
{
	struct s3_error err;
	enum s3_status st;
	char kb[512];

	st = s3_get_to_fd(c->s3, key, fd, NULL, &err);
	if (st == S3_OK || st == S3_NOT_FOUND)
		return 0;
	log_warn("cache", "fetch: bucket=%s key=%s: %s (%ld %s)",
		 s3_client_bucket(c->s3), log_key(key, kb, sizeof(kb)),
		 err.message, err.http, err.code);
	return s3_status_errno(st);
}

/*
 * Give e a working file filled with its current content: a copy of the
 * newest version, the remote object, or nothing.  Called with the lock
 * held; drops it around the copy.
 */
static int start_work(struct cache *c, struct cache_entry *e, int trunc,
		      int remote_exists)
{
	uint64_t id = c->next_id++;
	uint64_t from = (trunc || e->deleted) ? 0 : e->file_id;
	int fetch = !trunc && !e->deleted && !e->file_id && remote_exists;
	char path[PATH_MAX];
	int was = entry_live(e);
	int fd, ret = 0;

	cache_staging_path(c, id, path, sizeof(path));
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;

	e->work_id = id;
	e->dirty = !from && !fetch;
	e->deleted = 0;
	e->state = CACHE_OPEN;
	entry_relive(c, e, was);

	if (from || fetch) {
		e->refs++;
		pthread_mutex_unlock(&c->lock);
		ret = from ? copy_staged(c, from, fd) : fetch_remote(c, e->key,
								    fd);
		pthread_mutex_lock(&c->lock);
		cache_entry_put(c, e);
	}
	close(fd);
	if (ret < 0 && e->work_id == id) {
		was = entry_live(e);
		e->work_id = 0;
		unlink(path);
		entry_relive(c, e, was);
	}
	return ret;
}

static struct cache_file *file_new(struct cache *c, struct cache_entry *e,
				   const char *key)
{
	struct cache_file *f = xcalloc(1, sizeof(*f));

	f->c = c;
	f->e = e;
	f->key = xstrdup(key);
	f->fd = -1;
	pthread_mutex_init(&f->ra_lock, NULL);
	if (e)
		e->refs++;
	return f;
}

/* Open e's working file for one more writer. */
static int open_for_write(struct cache *c, struct cache_entry *e, int flags,
			  int remote_exists, struct cache_file *f)
{
	char path[PATH_MAX];
	int ret;

	if (!e->work_id) {
		ret = start_work(c, e, flags & O_TRUNC, remote_exists);
		if (ret < 0)
			return ret;
	}
	cache_staging_path(c, e->work_id, path, sizeof(path));
	f->fd = open(path, O_RDWR | O_CLOEXEC);
	if (f->fd < 0)
		return -errno;
	if ((flags & O_TRUNC) && ftruncate(f->fd, 0) == 0)
		e->dirty = 1;
	f->work_id = e->work_id;
	e->writers++;
	return 0;
}

/* Open the newest local bytes of e for reading. */
static int open_local_read(struct cache *c, struct cache_entry *e,
			   struct cache_file *f)
{
	char path[PATH_MAX];

	cache_staging_path(c, e->work_id ? e->work_id : e->file_id, path,
			   sizeof(path));
	f->fd = open(path, O_RDONLY | O_CLOEXEC);
	return f->fd < 0 ? -errno : 0;
}

int cache_open(struct cache *c, const char *key, int flags,
	       int remote_exists, uint64_t remote_size,
	       struct cache_file **pf)
{
	int writing = (flags & O_ACCMODE) != O_RDONLY;
	struct cache_entry *e;
	struct cache_file *f;
	int ret = 0;

	pthread_mutex_lock(&c->lock);
	e = writing ? entry_get(c, key) : entry_find(c, key);
	if (e && !writing && e->deleted) {
		ret = -ENOENT;
		goto out;
	}
	if (e && !writing && !e->work_id && !e->file_id)
		e = NULL;

	f = file_new(c, e, key);
	f->remote_size = remote_size;
	if (writing && remote_exists)
		e->remote = 1;
	if (writing)
		ret = open_for_write(c, e, flags, remote_exists, f);
	else if (e)
		ret = open_local_read(c, e, f);
	if (ret < 0) {
		if (f->e)
			cache_entry_put(c, f->e);
		pthread_mutex_unlock(&c->lock);
		pthread_mutex_destroy(&f->ra_lock);
		free(f->key);
		free(f);
		return ret;
	}
	*pf = f;
out:
	pthread_mutex_unlock(&c->lock);
	return ret;
}

/* Serve a read of an object only in S3 from a read-ahead window. */
static int read_remote(struct cache_file *f, char *buf, size_t size,
		       off_t off)
{
	struct s3_error err;
	uint64_t uoff = (uint64_t)off;
	size_t got;
	enum s3_status st;

	if (uoff >= f->ra_off && uoff + size <= f->ra_off + f->ra_len) {
		memcpy(buf, f->ra_buf + (uoff - f->ra_off), size);
		return (int)size;
	}
	if (!f->ra_buf)
		f->ra_buf = malloc(READ_AHEAD);
	if (!f->ra_buf)
		return -ENOMEM;

	st = s3_get_range(f->c->s3, f->key, uoff, READ_AHEAD, f->ra_buf, &got,
			  &err);
	if (st != S3_OK) {
		char kb[512];

		log_warn("cache", "read: bucket=%s key=%s: %s (%ld %s)",
			 s3_client_bucket(f->c->s3),
			 log_key(f->key, kb, sizeof(kb)), err.message,
			 err.http, err.code);
		f->ra_len = 0;
		return s3_status_errno(st);
	}
	f->ra_off = uoff;
	f->ra_len = got;
	if (size > got)
		size = got;
	memcpy(buf, f->ra_buf, size);
	return (int)size;
}

int cache_read(struct cache_file *f, char *buf, size_t size, off_t off)
{
	ssize_t n;
	int ret;

	if (f->fd >= 0) {
		n = pread(f->fd, buf, size, off);
		return n < 0 ? -errno : (int)n;
	}
	pthread_mutex_lock(&f->ra_lock);
	ret = read_remote(f, buf, size, off);
	pthread_mutex_unlock(&f->ra_lock);
	return ret;
}

/* Note that the working file f writes to now differs from the last close. */
static void mark_dirty(struct cache_file *f)
{
	struct cache *c = f->c;

	pthread_mutex_lock(&c->lock);
	if (f->e->work_id == f->work_id)
		f->e->dirty = 1;
	pthread_mutex_unlock(&c->lock);
}

int cache_write(struct cache_file *f, const char *buf, size_t size,
		off_t off)
{
	ssize_t n;

	if (!f->work_id)
		return -EBADF;
	n = pwrite(f->fd, buf, size, off);
	if (n < 0)
		return -errno;
	mark_dirty(f);
	return (int)n;
}

int cache_ftruncate(struct cache_file *f, off_t size)
{
	if (!f->work_id)
		return -EBADF;
	if (ftruncate(f->fd, size) < 0)
		return -errno;
	mark_dirty(f);
	return 0;
}

int cache_fstat(struct cache_file *f, struct stat *st)
{
	if (f->fd < 0) {
		memset(st, 0, sizeof(*st));
		st->st_size = (off_t)f->remote_size;
	} else if (fstat(f->fd, st) < 0) {
		return -errno;
	}
	st->st_mode = S_IFREG | 0644;
	st->st_nlink = 1;
	return 0;
}

int cache_fsync(struct cache_file *f, int datasync)
{
	if (f->fd < 0)
		return 0;
	if ((datasync ? fdatasync(f->fd) : fsync(f->fd)) < 0)
		return -errno;
	return 0;
}

/*
 * The last writer closed: a changed file becomes the newest version and
 * is queued; an unchanged copy is dropped (or kept as a clean copy when it
 * was fetched from S3).
 */
static void close_work(struct cache *c, struct cache_entry *e)
{
	uint64_t old = e->file_id;

	if (!e->dirty) {
		if (old) {
			unlink_staging(c, e->work_id);
		} else {
			e->file_id = e->work_id;
			e->state = CACHE_UPLOADED;
		}
		e->work_id = 0;
		return;
	}

	e->file_id = e->work_id;
	e->work_id = 0;
	e->dirty = 0;
	e->version++;
	e->attempts = 0;
	e->state = CACHE_QUEUED;
	if (old && old != e->busy_file_id)
		unlink_staging(c, old);
	upq_push(c, e);
}

int cache_release(struct cache_file *f)
{
	struct cache *c = f->c;
	struct cache_entry *e = f->e;

	if (f->fd >= 0)
		close(f->fd);

	pthread_mutex_lock(&c->lock);
	if (e && f->work_id && e->work_id == f->work_id && --e->writers == 0)
		close_work(c, e);
	if (e)
		cache_entry_put(c, e);
	pthread_mutex_unlock(&c->lock);

	pthread_mutex_destroy(&f->ra_lock);
	free(f->ra_buf);
	free(f->key);
	free(f);
	return 0;
}

int cache_unlink(struct cache *c, const char *key, int remote_exists)
{
	struct cache_entry *e;
	int was;

	pthread_mutex_lock(&c->lock);
	e = entry_find(c, key);
	if (!e && !remote_exists) {
		pthread_mutex_unlock(&c->lock);
		return -ENOENT;
	}
	if (!e)
		e = entry_get(c, key);
	was = entry_live(e);
	remote_exists |= e->remote || e->busy;

	/* Open handles keep their descriptors; the names go now. */
	if (e->work_id)
		unlink_staging(c, e->work_id);
	if (e->file_id && e->file_id != e->busy_file_id)
		unlink_staging(c, e->file_id);
	e->work_id = 0;
	e->writers = 0;
	e->file_id = 0;
	e->deleted = 1;
	e->version++;
	e->attempts = 0;
	e->state = CACHE_DELETING;
	entry_relive(c, e, was);

	/* Never in S3 and not on its way: cancelling the upload is enough. */
	if (remote_exists)
		upq_push(c, e);
	else
		cache_entry_drop(c, e);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

static void count_visit(const void *node, VISIT which, void *closure)
{
	const struct cache_entry *e = *(const struct cache_entry *const *)node;
	struct cache_counts *n = closure;

	if (which != postorder && which != leaf)
		return;
	switch (e->state) {
	case CACHE_QUEUED:
	case CACHE_DELETING:
		n->queued++;
		break;
	case CACHE_UPLOADING:
		n->uploading++;
		break;
	case CACHE_FAILED:
		n->failed++;
		break;
	case CACHE_UPLOADED:
		n->uploaded++;
		break;
	case CACHE_OPEN:
		break;
	}
}

void cache_counts(struct cache *c, struct cache_counts *n)
{
	memset(n, 0, sizeof(*n));
	pthread_mutex_lock(&c->lock);
	twalk_r(c->table, count_visit, n);
	pthread_mutex_unlock(&c->lock);
}
