/*
 * cache.c - staging files and the table of keys that have local data.
 *
 * A key's entry tracks two staging files at most: the one being written
 * (work_id) and the newest closed version (file_id).  Opening a closed file
 * for writing copies it first, so a version is never changed while a worker
 * uploads it.  Staging files are named by a number that only grows.  Every
 * closed version is written to the journal before its close returns.
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

double cache_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void forget_local(struct cache *c, struct cache_entry *e);

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
		"OPEN", "QUEUED", "UPLOADING", "UPLOADED", "VISIBLE",
		"UNCONFIRMED", "FAILED", "DELETING",
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
		struct dir_count probe;
		struct dir_count **found;
		struct dir_count *d;

		probe.dir = strndup(key, (size_t)(slash - key + 1));
		if (!probe.dir)
			abort();
		found = tfind(&probe, &c->dirs, cmp_dir);
		if (!found && delta > 0) {
			d = xcalloc(1, sizeof(*d));
			d->dir = probe.dir;
			d->n = 1;
			if (!tsearch(d, &c->dirs, cmp_dir))
				abort();
			continue;
		}
		free(probe.dir);
		if (!found)
			continue;
		d = *found;
		d->n += delta;
		if (d->n == 0) {
			tdelete(d, &c->dirs, cmp_dir);
			free(d->dir);
			free(d);
		}
	}
}

/* A file is live when it is in the table, not unlinked, and has bytes. */
int cache_entry_live(const struct cache_entry *e)
{
	return e->in_table && !e->deleted && (e->work_id || e->file_id);
}

/* Keep the directory counts in step with whether e is live. */
void cache_entry_relive(struct cache *c, struct cache_entry *e, int was)
{
	int now = cache_entry_live(e);

	(void)was;
	if (now != e->counted) {
		dirs_adjust(c, e->key, now ? 1 : -1);
		e->counted = now;
	}
}

struct cache_entry *cache_entry_find(struct cache *c, const char *key)
{
	struct cache_entry probe = { .key = (char *)key };
	struct cache_entry **found = tfind(&probe, &c->table, cmp_entry);

	return found ? *found : NULL;
}

static int has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n > m && strcmp(s + n - m, suffix) == 0;
}

struct cache_entry *cache_entry_get(struct cache *c, const char *key)
{
	struct cache_entry *e = cache_entry_find(c, key);

	if (e)
		return e;
	e = xcalloc(1, sizeof(*e));
	e->key = xstrdup(key);
	e->refs = 1;
	e->in_table = 1;
	e->last_use = cache_now();
	e->local_only = has_suffix(key, CACHE_SIDECAR_SUFFIX);
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
	free(e->pb_sticky);
	free(e->pb_request);
	free(e->key);
	free(e);
}

/* Take e out of the table: it is done, or replaced. */
void cache_entry_drop(struct cache *c, struct cache_entry *e)
{
	if (!e->in_table)
		return;
	tdelete(e, &c->table, cmp_entry);
	e->in_table = 0;
	cache_entry_relive(c, e, 0);
	cache_entry_put(c, e);
}

void cache_unlink_staging(struct cache *c, uint64_t id, uint64_t size)
{
	char path[PATH_MAX];

	cache_staging_path(c, id, path, sizeof(path));
	if (unlink(path) < 0 && errno != ENOENT)
		log_warn("cache", "unlink(%s): %s", path, strerror(errno));
	cache_space_sub(c, size);
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

static struct cache *cache_alloc(const struct cache_opts *o,
				 struct s3_client *s3)
{
	struct cache *c = xcalloc(1, sizeof(*c));
	size_t n = strlen(o->dir) + sizeof("/staging");

	c->opts = *o;
	c->s3 = s3;
	c->lock_fd = -1;
	c->dir = xstrdup(o->dir);
	c->opts.dir = c->dir;
	c->staging = xcalloc(1, n);
	snprintf(c->staging, n, "%s/staging", o->dir);
	c->next_id = 1;
	pthread_mutex_init(&c->lock, NULL);
	init_monotonic_cond(&c->work_cv);
	init_monotonic_cond(&c->idle_cv);
	init_monotonic_cond(&c->space_cv);
	return c;
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

static void free_dir_pb(void *p);
static void dir_pb_load(void *arg, const char *dir, const char *request);

/* Free what cache_alloc and cache_new built; workers are stopped. */
static void cache_release_all(struct cache *c)
{
	tdestroy(c->table, free_entry_node);
	tdestroy(c->dirs, free_dir_node);
	tdestroy(c->inflight, free);
	tdestroy(c->dir_pb, free_dir_pb);
	jnl_close(c->jnl);
	if (c->lock_fd >= 0)
		close(c->lock_fd);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->work_cv);
	pthread_cond_destroy(&c->idle_cv);
	pthread_cond_destroy(&c->space_cv);
	free(c->staging);
	free(c->dir);
	free(c);
}

struct cache *cache_new(const struct cache_opts *o, struct s3_client *s3,
			char *err, size_t errlen)
{
	struct cache *c = cache_alloc(o, s3);
	int ret;

	ret = make_private_dir(c->staging);
	if (ret < 0) {
		snprintf(err, errlen, "cache directory %s: %s", c->staging,
			 strerror(-ret));
		goto fail;
	}
	if (cache_lock_dir(c, err, errlen) < 0)
		goto fail;
	c->jnl = jnl_open(c->dir, 0, err, errlen);
	if (!c->jnl)
		goto fail;
	if (cache_recover(c, err, errlen) < 0)
		goto fail;
	jnl_scan_dir_postbacks(c->jnl, dir_pb_load, c);
	return c;

fail:
	cache_release_all(c);
	return NULL;
}

int cache_start(struct cache *c)
{
	char pid[32];
	int n;

	/* Written now, after daemonising, so it names the serving process. */
	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(c->lock_fd, 0) < 0 || pwrite(c->lock_fd, pid, n, 0) < 0)
		log_warn("cache", "%s/lock: %s", c->dir, strerror(errno));
	return upq_start(c);
}

/*
 * The kernel may end a mount before the release of a file closed just
 * before it reaches us.  Such a file was closed all the same: its version
 * is queued like any other.
 */
static void release_leftovers(struct cache *c)
{
	struct cache_file *f;
	unsigned n = 0;

	for (;;) {
		pthread_mutex_lock(&c->lock);
		f = c->files;
		pthread_mutex_unlock(&c->lock);
		if (!f)
			break;
		cache_release(f, NULL);
		n++;
	}
	if (n)
		log_info("cache", "bucket=%s: %u files closed at unmount "
			 "without a release from the kernel",
			 s3_client_bucket(c->s3), n);
}

void cache_free(struct cache *c)
{
	unsigned left;

	if (!c)
		return;
	release_leftovers(c);
	left = upq_drain(c, c->opts.drain_timeout);
	upq_stop(c);
	if (left)
		log_warn("cache", "bucket=%s: %u versions not uploaded yet; "
			 "they stay journaled in %s for the next mount",
			 s3_client_bucket(c->s3), left, c->dir);
	cache_release_all(c);
}

/*
 * The attributes a file shows: those kept in m where it has them, else a
 * regular file of mode 0644 (the mount's owner is the caller's to set).
 */
void cache_apply_meta(const struct s3_meta *m, struct stat *st)
{
	st->st_mode = S_IFREG | 0644;
	st->st_nlink = 1;
	if (m->has_mode && S_ISREG(m->mode))
		st->st_mode = (mode_t)m->mode;
	else if (m->has_mode && !(m->mode & S_IFMT))
		st->st_mode = S_IFREG | (mode_t)(m->mode & 07777);
	if (m->has_uid)
		st->st_uid = m->uid;
	if (m->has_gid)
		st->st_gid = m->gid;
	if (m->has_mtime) {
		st->st_mtim = m->mtime;
		st->st_ctim = m->mtime;
	}
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
	st->st_uid = (uid_t)-1;
	st->st_gid = (gid_t)-1;
	cache_apply_meta(&e->meta, st);
	return 0;
}

int cache_stat(struct cache *c, const char *key, struct stat *st)
{
	struct cache_entry *e;
	int ret = 1;

	pthread_mutex_lock(&c->lock);
	e = cache_entry_find(c, key);
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

/*
 * Fetch an object that is only in S3 so that it can be changed in place;
 * *info gets its ETag and the attributes it keeps in S3.
 */
static int fetch_remote(struct cache *c, const char *key, int fd,
			struct s3_object_info *info)
{
	struct s3_error err;
	enum s3_status st;
	char kb[512];

	st = s3_get_to_fd(c->s3, key, fd, info, &err);
	if (st == S3_OK || st == S3_NOT_FOUND)
		return 0;
	log_warn("cache", "fetch: bucket=%s key=%s: %s (%ld %s)",
		 s3_client_bucket(c->s3), log_key(key, kb, sizeof(kb)),
		 err.message, err.http, err.code);
	return s3_status_errno(st);
}

/* Fill a new working file from a closed version or from S3, unlocked. */
static int fill_work(struct cache *c, struct cache_entry *e, uint64_t from,
		     int fd, uint64_t *psize)
{
	struct s3_object_info info;
	struct stat st;
	char *key = xstrdup(e->key);
	int ret;

	memset(&info, 0, sizeof(info));
	e->refs++;
	pthread_mutex_unlock(&c->lock);
	ret = from ? copy_staged(c, from, fd)
		   : fetch_remote(c, key, fd, &info);
	if (ret == 0 && fstat(fd, &st) == 0)
		*psize = (uint64_t)st.st_size;
	pthread_mutex_lock(&c->lock);
	if (ret == 0 && !from) {
		cache_merge_meta(&e->meta, &info.meta, 0);
		snprintf(e->etag, sizeof(e->etag), "%s", info.etag);
	}
	cache_entry_put(c, e);
	free(key);
	return ret;
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
	uint64_t size = 0;
	int fd, ret = 0;

	cache_staging_path(c, id, path, sizeof(path));
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;

	e->work_id = id;
	e->work_size = 0;
	e->dirty = !from && !fetch;
	if (e->deleted) {
		e->deleted = 0;
		e->state = CACHE_OPEN;
	}
	cache_entry_relive(c, e, 0);

	if (from || fetch)
		ret = fill_work(c, e, from, fd, &size);
	close(fd);
	if (ret < 0 && e->work_id == id) {
		e->work_id = 0;
		unlink(path);
		cache_entry_relive(c, e, 0);
	} else if (e->work_id == id) {
		e->work_size = size;
		cache_space_add(c, size);
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
	f->copy_fd = -1;
	pthread_mutex_init(&f->ra_lock, NULL);
	if (e)
		e->refs++;
	f->next = c->files;
	if (c->files)
		c->files->prev = f;
	c->files = f;
	return f;
}

/* Take f off the list of open handles (the lock is held). */
static void file_unlist(struct cache *c, struct cache_file *f)
{
	if (f->prev)
		f->prev->next = f->next;
	else
		c->files = f->next;
	if (f->next)
		f->next->prev = f->prev;
	f->prev = f->next = NULL;
}

static void file_free(struct cache_file *f)
{
	pthread_mutex_destroy(&f->ra_lock);
	free(f->key);
	free(f);
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
	if ((flags & O_TRUNC) && ftruncate(f->fd, 0) == 0) {
		cache_space_sub(c, e->work_size);
		e->work_size = 0;
		e->dirty = 1;
	}
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

/*
 * A clean copy fetched earlier whose object S3 now holds in another
 * version (another host wrote it) is dropped: the reader gets S3's.
 */
static struct cache_entry *check_fetched(struct cache *c,
					 struct cache_entry *e,
					 const struct cache_remote *r)
{
	if (!e || !e->fetched || e->work_id || e->busy || e->queued ||
	    !r->etag[0] || strcmp(e->etag, r->etag) == 0)
		return e;
	forget_local(c, e);
	e->deleted = 1;
	cache_entry_drop(c, e);
	return NULL;
}

int cache_open(struct cache *c, const char *key, int flags,
	       const struct cache_remote *r, struct cache_file **pf)
{
	int writing = (flags & O_ACCMODE) != O_RDONLY;
	int remote_exists = r->exists;
	struct cache_entry *e;
	struct cache_file *f;
	int ret = 0;

	pthread_mutex_lock(&c->lock);
	e = writing ? cache_entry_get(c, key)
		    : check_fetched(c, cache_entry_find(c, key), r);
	if (e && !writing && e->deleted) {
		pthread_mutex_unlock(&c->lock);
		return -ENOENT;
	}
	if (e && !writing && !e->work_id && !e->file_id)
		e = NULL;
	if (e)
		e->last_use = cache_now();
	if (e && writing && remote_exists)
		e->remote = 1;
	if (e && !writing)
		cache_read_barrier(c, e);

	f = file_new(c, e, key);
	f->remote_size = r->size;
	f->remote_meta = r->meta;
	snprintf(f->remote_etag, sizeof(f->remote_etag), "%s", r->etag);
	if (writing)
		ret = open_for_write(c, e, flags, remote_exists, f);
	else if (e)
		ret = open_local_read(c, e, f);
	if (ret < 0)
		file_unlist(c, f);
	if (ret < 0 && f->e)
		cache_entry_put(c, f->e);
	pthread_mutex_unlock(&c->lock);

	if (ret < 0) {
		file_free(f);
		return ret;
	}
	*pf = f;
	return 0;
}

/* A reader of this version must wait for S3 to show it. */
static int must_wait(const struct cache_entry *e)
{
	if (e->work_id || e->deleted || !e->file_id || !e->in_table)
		return 0;
	return e->state == CACHE_QUEUED || e->state == CACHE_UPLOADING ||
	       e->state == CACHE_UPLOADED;
}

/*
 * The read barrier: a reader of a just-closed file waits until S3 shows
 * that version (VISIBLE), the probe gives up (UNCONFIRMED), the upload
 * fails, or read_wait passes; then the local bytes are served, which are
 * the right ones in every case.  A file open for writing is never waited
 * on.  Waiting readers move their file to the front of the queue.
 */
void cache_read_barrier(struct cache *c, struct cache_entry *e)
{
	struct timespec deadline;
	long ms = c->opts.read_wait_ms;

	if (ms <= 0 || !must_wait(e))
		return;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += ms / 1000;
	deadline.tv_nsec += (ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}

	e->refs++;
	e->waiters++;
	if (e->queued && e->state == CACHE_QUEUED) {
		memset(&e->retry_at, 0, sizeof(e->retry_at));
		pthread_cond_signal(&c->work_cv);
	}
	while (must_wait(e) && !c->stopping) {
		if (pthread_cond_timedwait(&c->idle_cv, &c->lock, &deadline) ==
		    ETIMEDOUT)
			break;
	}
	e->waiters--;
	cache_entry_put(c, e);
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
	ret = cache_fetch_read(f, buf, size, off);
	pthread_mutex_unlock(&f->ra_lock);
	return ret;
}

/* The working file changed: it differs from S3 and its mtime is now. */
static void touch(struct cache_entry *e)
{
	e->dirty = 1;
	clock_gettime(CLOCK_REALTIME, &e->meta.mtime);
	e->meta.has_mtime = 1;
}

/*
 * Before a write that may grow the working file to end bytes: make room
 * (evicting clean copies, or waiting for uploads), and account for it.
 */
static int grow_work(struct cache_file *f, uint64_t end)
{
	struct cache *c = f->c;
	struct cache_entry *e = f->e;
	int ret = 0;

	pthread_mutex_lock(&c->lock);
	if (e->work_id == f->work_id && end > e->work_size) {
		ret = cache_space_reserve(c, e, end - e->work_size);
		if (ret == 0 && e->work_id == f->work_id &&
		    end > e->work_size) {
			cache_space_add(c, end - e->work_size);
			e->work_size = end;
		}
	}
	if (e->work_id == f->work_id)
		touch(e);
	pthread_mutex_unlock(&c->lock);
	return ret;
}

int cache_write(struct cache_file *f, const char *buf, size_t size,
		off_t off)
{
	ssize_t n;
	int ret;

	if (!f->work_id)
		return -EBADF;
	ret = grow_work(f, (uint64_t)off + size);
	if (ret < 0)
		return ret;
	n = pwrite(f->fd, buf, size, off);
	if (n < 0 && errno == ENOSPC) {
		pthread_mutex_lock(&f->c->lock);
		cache_space_evict(f->c, (uint64_t)size);
		pthread_mutex_unlock(&f->c->lock);
		n = pwrite(f->fd, buf, size, off);
	}
	if (n < 0)
		return -errno;
	return (int)n;
}

int cache_ftruncate(struct cache_file *f, off_t size)
{
	struct cache *c = f->c;
	struct cache_entry *e = f->e;

	if (!f->work_id)
		return -EBADF;
	if (ftruncate(f->fd, size) < 0)
		return -errno;

	pthread_mutex_lock(&c->lock);
	if (e->work_id == f->work_id) {
		cache_space_sub(c, e->work_size);
		cache_space_add(c, (uint64_t)size);
		e->work_size = (uint64_t)size;
		touch(e);
	}
	pthread_mutex_unlock(&c->lock);
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
	st->st_uid = (uid_t)-1;
	st->st_gid = (gid_t)-1;
	pthread_mutex_lock(&f->c->lock);
	cache_apply_meta(f->e ? &f->e->meta : &f->remote_meta, st);
	pthread_mutex_unlock(&f->c->lock);
	return 0;
}

static int journal_queued(struct cache *c, struct cache_entry *e);

/* The version a waiting fsync cares about is acknowledged or failed. */
static int upload_settled(const struct cache_entry *e, uint64_t v)
{
	if (e->version != v || !e->in_table)
		return 1;
	return cache_state_clean(e->state) || e->state == CACHE_FAILED;
}

/*
 * fsync with fsync_upload: the bytes written so far become a version of
 * their own, which jumps the queue, and the caller waits until S3 has
 * acknowledged it.  The file stays open for more writes.
 */
static int fsync_upload(struct cache_file *f)
{
	struct cache *c = f->c;
	struct cache_entry *e = f->e;
	uint64_t id, v;
	int fd, ret = 0;
	char path[PATH_MAX];

	pthread_mutex_lock(&c->lock);
	if (e->work_id != f->work_id || !e->dirty || e->local_only)
		goto out;
	id = c->next_id++;
	cache_staging_path(c, id, path, sizeof(path));
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		goto out;
	}
	e->refs++;
	pthread_mutex_unlock(&c->lock);
	ret = copy_staged(c, f->work_id, fd);
	close(fd);
	pthread_mutex_lock(&c->lock);
	cache_entry_put(c, e);
	if (ret == 0 && e->work_id != f->work_id)
		ret = -EBADF;
	if (ret < 0) {
		unlink(path);
		goto out;
	}
	if (e->file_id && e->file_id != e->busy_file_id)
		cache_unlink_staging(c, e->file_id, e->file_size);
	e->file_id = id;
	e->file_size = e->work_size;
	cache_space_add(c, e->file_size);
	e->dirty = 0;
	e->version++;
	e->upload_id[0] = '\0';
	e->attempts = 0;
	e->state = CACHE_QUEUED;
	v = e->version;
	ret = journal_queued(c, e);
	upq_push(c, e);
	e->waiters++;
	pthread_cond_signal(&c->work_cv);
	while (!upload_settled(e, v) && !c->stopping)
		pthread_cond_wait(&c->idle_cv, &c->lock);
	e->waiters--;
	if (e->version == v && e->state == CACHE_FAILED)
		ret = -EIO;
out:
	pthread_mutex_unlock(&c->lock);
	return ret;
}

int cache_fsync(struct cache_file *f, int datasync)
{
	if (f->fd < 0)
		return 0;
	if ((datasync ? fdatasync(f->fd) : fsync(f->fd)) < 0)
		return -errno;
	if (f->work_id && f->c->opts.fsync_upload)
		return fsync_upload(f);
	return 0;
}

/* Replace a malloc'd string field with a copy of v (or NULL). */
static void set_string(char **field, const char *v)
{
	char *copy = v ? xstrdup(v) : NULL;

	free(*field);
	*field = copy;
}

/* Journal e's newest version as QUEUED. */
static int journal_queued(struct cache *c, struct cache_entry *e)
{
	struct jnl_row r = {
		.key = e->key,
		.version = e->version,
		.file_id = e->file_id,
		.deleted = e->deleted,
		.state = "QUEUED",
		.postback = e->deleted ? NULL : e->pb_request,
		.meta = e->meta,
		.content_type = e->content_type,
	};

	cache_stats_numbered(c, e);
	return jnl_put(c->jnl, &r);
}

/*
 * The last writer closed: a changed file becomes the newest version, is
 * journaled and queued after the settle delay; an unchanged copy is
 * dropped (or kept as a clean copy when it was fetched from S3).
 */
static int close_work(struct cache *c, struct cache_entry *e,
		      const char *request)
{
	uint64_t old = e->file_id, old_size = e->file_size;
	int ret;

	if (e->local_only) {
		if (old)
			cache_unlink_staging(c, old, old_size);
		e->file_id = e->work_id;
		e->file_size = e->work_size;
		e->work_id = 0;
		e->dirty = 0;
		e->version++;
		e->upload_id[0] = '\0';
		return 0;
	}
	if (!e->dirty) {
		if (old) {
			cache_unlink_staging(c, e->work_id, e->work_size);
		} else {
			e->file_id = e->work_id;
			e->file_size = e->work_size;
			c->clean += e->file_size;
			e->state = CACHE_VISIBLE;
			e->fetched = 1;
		}
		e->work_id = 0;
		return 0;
	}

	if (!e->meta.has_mtime)
		touch(e);
	e->fetched = 0;
	if (old && cache_state_clean(e->state))
		c->clean -= old_size;
	e->file_id = e->work_id;
	e->file_size = e->work_size;
	e->work_id = 0;
	e->dirty = 0;
	e->version++;
	e->upload_id[0] = '\0';
	e->attempts = 0;
	e->error[0] = '\0';
	e->state = CACHE_QUEUED;
	set_string(&e->pb_request, e->pb_sticky ? e->pb_sticky : request);
	ret = journal_queued(c, e);
	if (old && old != e->busy_file_id)
		cache_unlink_staging(c, old, old_size);
	upq_push_delayed(c, e, c->opts.upload_delay_ms);
	return ret;
}

int cache_file_writable(const struct cache_file *f)
{
	return f->work_id != 0;
}

int cache_release(struct cache_file *f, const char *request)
{
	struct cache *c = f->c;
	struct cache_entry *e = f->e;
	int ret = 0;

	if (f->fd >= 0)
		close(f->fd);

	pthread_mutex_lock(&c->lock);
	file_unlist(c, f);
	if (e && f->work_id && e->work_id == f->work_id && --e->writers == 0)
		ret = close_work(c, e, request);
	if (e)
		cache_entry_put(c, e);
	pthread_mutex_unlock(&c->lock);

	if (!e)
		cache_fetch_close(f);
	file_free(f);
	return ret;
}

/* Remove e's local bytes; open handles keep their descriptors. */
static void forget_local(struct cache *c, struct cache_entry *e)
{
	if (e->work_id)
		cache_unlink_staging(c, e->work_id, e->work_size);
	if (e->file_id && cache_state_clean(e->state))
		c->clean -= e->file_size;
	if (e->file_id && e->file_id != e->busy_file_id)
		cache_unlink_staging(c, e->file_id, e->file_size);
	e->work_id = 0;
	e->writers = 0;
	e->file_id = 0;
	e->file_size = 0;
}

/* Make e an unlink of its key, journaled and queued. */
static void make_tombstone(struct cache *c, struct cache_entry *e)
{
	e->deleted = 1;
	e->version++;
	e->upload_id[0] = '\0';
	e->attempts = 0;
	e->state = CACHE_DELETING;
	cache_entry_relive(c, e, 0);
	journal_queued(c, e);
	upq_push(c, e);
}

int cache_unlink(struct cache *c, const char *key, int remote_exists)
{
	struct cache_entry *e;

	pthread_mutex_lock(&c->lock);
	e = cache_entry_find(c, key);
	if (!e && !remote_exists) {
		pthread_mutex_unlock(&c->lock);
		return -ENOENT;
	}
	if (!e)
		e = cache_entry_get(c, key);
	remote_exists |= e->remote || e->busy;
	if (e->local_only)
		remote_exists = 0;
	forget_local(c, e);

	/* Never in S3 and not on its way: cancelling the upload is enough. */
	if (remote_exists) {
		make_tombstone(c, e);
	} else {
		e->deleted = 1;
		jnl_delete(c->jnl, key);
		cache_entry_drop(c, e);
	}
	pthread_mutex_unlock(&c->lock);
	return 0;
}

/* Re-key entry e to the name to (the lock is held). */
static void move_entry(struct cache *c, struct cache_entry *e, const char *to)
{
	tdelete(e, &c->table, cmp_entry);
	e->in_table = 0;
	cache_entry_relive(c, e, 0);
	free(e->key);
	e->key = xstrdup(to);
	e->in_table = 1;
	if (!tsearch(e, &c->table, cmp_entry))
		abort();
	cache_entry_relive(c, e, 0);
}

/*
 * A file being replaced by a rename: its bytes go, and its S3 copy is
 * overwritten by the moved file's upload, so no DELETE is needed.
 */
static int drop_target(struct cache *c, const char *to)
{
	struct cache_entry *t = cache_entry_find(c, to);
	int remote;

	if (!t)
		return 0;
	remote = t->remote || t->busy;
	forget_local(c, t);
	t->deleted = 1;
	cache_entry_drop(c, t);
	return remote;
}

int cache_rename(struct cache *c, const char *from, const char *to,
		 int to_remote)
{
	struct cache_entry *e, *old;
	int target_remote;

	pthread_mutex_lock(&c->lock);
	e = cache_entry_find(c, from);
	if (!e || e->deleted || (!e->file_id && !e->work_id)) {
		pthread_mutex_unlock(&c->lock);
		return 1;
	}

	target_remote = drop_target(c, to);
	jnl_rekey(c->jnl, from, to);
	move_entry(c, e, to);
	e->last_use = cache_now();

	/* The old name may be in S3 already, or be on its way there. */
	if (e->remote || e->busy) {
		old = cache_entry_get(c, from);
		old->remote = 1;
		make_tombstone(c, old);
	}
	e->remote = target_remote || to_remote;

	if (e->file_id) {
		if (cache_state_clean(e->state))
			c->clean -= e->file_size;
		e->version++;
		e->upload_id[0] = '\0';
		e->fetched = 0;
		e->attempts = 0;
		e->state = CACHE_QUEUED;
		journal_queued(c, e);
		upq_push_delayed(c, e, c->opts.upload_delay_ms);
	}
	pthread_mutex_unlock(&c->lock);
	return 0;
}

int cache_info(struct cache *c, const char *key, struct cache_info *info)
{
	struct cache_entry *e;
	int ret = -ENODATA;

	pthread_mutex_lock(&c->lock);
	e = cache_entry_find(c, key);
	if (e && !e->deleted) {
		info->state = e->work_id ? CACHE_OPEN : e->state;
		info->version = e->version;
		snprintf(info->error, sizeof(info->error), "%s", e->error);
		snprintf(info->etag, sizeof(info->etag), "%s", e->etag);
		info->visible_ms = e->visible_ms;
		ret = 0;
	}
	pthread_mutex_unlock(&c->lock);
	return ret;
}

int cache_retry(struct cache *c, const char *key)
{
	struct cache_entry *e;
	int ret = -ENODATA;

	pthread_mutex_lock(&c->lock);
	e = cache_entry_find(c, key);
	if (e && (e->state == CACHE_FAILED || e->queued)) {
		e->attempts = 0;
		memset(&e->retry_at, 0, sizeof(e->retry_at));
		if (e->state == CACHE_FAILED)
			e->state = e->deleted ? CACHE_DELETING : CACHE_QUEUED;
		upq_push(c, e);
		pthread_cond_broadcast(&c->work_cv);
		ret = 0;
	} else if (e) {
		ret = 0;
	}
	pthread_mutex_unlock(&c->lock);
	return ret;
}

void cache_fire_final(struct cache *c, struct cache_entry *e,
		      const char *event)
{
	int failed = strcmp(event, "failed") == 0;
	struct cache_final ev = {
		.event = event,
		.key = e->key,
		.request = e->pb_request,
		.etag = failed ? NULL : e->etag,
		.error = failed ? e->error : NULL,
		.size = e->file_size,
		.version = e->version,
		.visible = e->state == CACHE_VISIBLE,
		.attempts = e->attempts,
	};

	if (!e->pb_request || !c->opts.on_final || e->pb_fired == e->version)
		return;
	if (e->upload_end > 0)
		ev.waited_ms = (long)((cache_now() - e->upload_end) * 1000);
	c->opts.on_final(c->opts.final_arg, &ev);
	e->pb_fired = e->version;
	jnl_set_postback(c->jnl, e->key, e->version, NULL);
}

/* The event to send now for a version already at its end, or NULL. */
static const char *final_event(const struct cache_entry *e)
{
	if (e->state == CACHE_VISIBLE)
		return "visible";
	if (e->state == CACHE_UNCONFIRMED)
		return "unconfirmed";
	if (e->state == CACHE_FAILED)
		return "failed";
	return NULL;
}

int cache_set_postback(struct cache *c, const char *key,
		       const char *request, int sticky)
{
	struct cache_entry *e;
	const char *event;

	pthread_mutex_lock(&c->lock);
	e = cache_entry_find(c, key);
	if (!e || e->deleted || e->local_only) {
		pthread_mutex_unlock(&c->lock);
		return -ENOENT;
	}
	if (sticky)
		set_string(&e->pb_sticky, request);
	set_string(&e->pb_request, request);
	if (e->version) {
		jnl_set_postback(c->jnl, key, e->version, request);
		event = final_event(e);
		if (event)
			cache_fire_final(c, e, event);
	}
	pthread_mutex_unlock(&c->lock);
	return 0;
}

int cache_get_postback(struct cache *c, const char *key, char *buf,
		       size_t size)
{
	struct cache_entry *e;
	const char *v = NULL;

	pthread_mutex_lock(&c->lock);
	e = cache_entry_find(c, key);
	if (e && !e->deleted)
		v = e->pb_sticky ? e->pb_sticky : e->pb_request;
	if (v)
		snprintf(buf, size, "%s", v);
	pthread_mutex_unlock(&c->lock);
	return v ? 0 : -ENODATA;
}

int cache_read_local(struct cache *c, const char *key, char *buf,
		     size_t size)
{
	struct cache_entry *e;
	char path[PATH_MAX];
	ssize_t n = -1;
	int fd = -1;

	pthread_mutex_lock(&c->lock);
	e = cache_entry_find(c, key);
	if (e && !e->deleted && (e->work_id || e->file_id)) {
		cache_staging_path(c, e->work_id ? e->work_id : e->file_id,
				   path, sizeof(path));
		fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	pthread_mutex_unlock(&c->lock);
	if (fd < 0)
		return -ENOENT;
	n = pread(fd, buf, size, 0);
	close(fd);
	return n < 0 ? -EIO : (int)n;
}

struct dir_pb {
	char *dir;
	char *request;
};

static void free_dir_pb(void *p)
{
	struct dir_pb *d = p;

	free(d->dir);
	free(d->request);
	free(d);
}

static int cmp_dir_pb(const void *a, const void *b)
{
	const struct dir_pb *x = a, *y = b;

	return strcmp(x->dir, y->dir);
}

/* Keep dir's postback in memory (NULL request: forget it). */
static void dir_pb_store(struct cache *c, const char *dir,
			 const char *request)
{
	struct dir_pb probe = { .dir = (char *)dir };
	struct dir_pb **found = tfind(&probe, &c->dir_pb, cmp_dir_pb);
	struct dir_pb *d;

	if (found && !request) {
		d = *found;
		tdelete(d, &c->dir_pb, cmp_dir_pb);
		free(d->dir);
		free(d->request);
		free(d);
		return;
	}
	if (found) {
		set_string(&(*found)->request, request);
		return;
	}
	if (!request)
		return;
	d = xcalloc(1, sizeof(*d));
	d->dir = xstrdup(dir);
	d->request = xstrdup(request);
	if (!tsearch(d, &c->dir_pb, cmp_dir_pb))
		abort();
}

static void dir_pb_load(void *arg, const char *dir, const char *request)
{
	dir_pb_store(arg, dir, request);
}

int cache_dir_postback_set(struct cache *c, const char *dir,
			   const char *request)
{
	int ret;

	pthread_mutex_lock(&c->lock);
	ret = jnl_dir_postback(c->jnl, dir, request);
	if (ret == 0)
		dir_pb_store(c, dir, request);
	pthread_mutex_unlock(&c->lock);
	return ret;
}

int cache_dir_postback_get(struct cache *c, const char *dir, char *buf,
			   size_t size)
{
	struct dir_pb probe = { .dir = (char *)dir };
	struct dir_pb **found;
	int ret = -ENODATA;

	pthread_mutex_lock(&c->lock);
	found = tfind(&probe, &c->dir_pb, cmp_dir_pb);
	if (found) {
		snprintf(buf, size, "%s", (*found)->request);
		ret = 0;
	}
	pthread_mutex_unlock(&c->lock);
	return ret;
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
		n->queued_bytes += e->file_size;
		break;
	case CACHE_UPLOADING:
		n->uploading++;
		break;
	case CACHE_FAILED:
		n->failed++;
		break;
	case CACHE_UPLOADED:
		n->probing++;
		break;
	case CACHE_VISIBLE:
		n->visible++;
		break;
	case CACHE_UNCONFIRMED:
		n->unconfirmed++;
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

void cache_merge_meta(struct s3_meta *to, const struct s3_meta *from,
		      int replace)
{
	if (from->has_mode && (replace || !to->has_mode)) {
		to->mode = from->mode;
		to->has_mode = 1;
	}
	if (from->has_uid && (replace || !to->has_uid)) {
		to->uid = from->uid;
		to->has_uid = 1;
	}
	if (from->has_gid && (replace || !to->has_gid)) {
		to->gid = from->gid;
		to->has_gid = 1;
	}
	if (from->has_mtime && (replace || !to->has_mtime)) {
		to->mtime = from->mtime;
		to->has_mtime = 1;
	}
}

/*
 * A version whose upload has begun cannot take new attributes: the next
 * version carries them, with the same bytes.  One still queued just
 * takes them.
 */
static void requeue_for_attrs(struct cache *c, struct cache_entry *e)
{
	/* open (touch opens before it sets times): the close uploads it */
	if (e->work_id) {
		e->dirty = 1;
		return;
	}
	if (!e->file_id)
		return;
	if (e->state == CACHE_QUEUED && !e->busy) {
		journal_queued(c, e);
		return;
	}
	if (cache_state_clean(e->state))
		c->clean -= e->file_size;
	e->version++;
	e->upload_id[0] = '\0';
	e->attempts = 0;
	e->error[0] = '\0';
	e->state = CACHE_QUEUED;
	e->remote = 1;
	e->fetched = 0;
	journal_queued(c, e);
	if (!e->queued)
		upq_push_delayed(c, e, c->opts.upload_delay_ms);
}

/* The live local entry of key, or NULL; the lock is held. */
static struct cache_entry *live_entry(struct cache *c, const char *key)
{
	struct cache_entry *e = cache_entry_find(c, key);

	if (!e || e->deleted || (!e->work_id && !e->file_id))
		return NULL;
	return e;
}

int cache_fetched(struct cache *c, const char *key)
{
	struct cache_entry *e;
	int ret;

	pthread_mutex_lock(&c->lock);
	e = live_entry(c, key);
	ret = e && e->fetched;
	pthread_mutex_unlock(&c->lock);
	return ret;
}

int cache_set_attr(struct cache *c, const char *key, const struct s3_meta *m)
{
	struct cache_entry *e;

	pthread_mutex_lock(&c->lock);
	e = live_entry(c, key);
	if (!e) {
		pthread_mutex_unlock(&c->lock);
		return 1;
	}
	cache_merge_meta(&e->meta, m, 1);
	requeue_for_attrs(c, e);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

int cache_get_attr(struct cache *c, const char *key, struct s3_meta *m)
{
	struct cache_entry *e;

	pthread_mutex_lock(&c->lock);
	e = live_entry(c, key);
	if (e)
		*m = e->meta;
	pthread_mutex_unlock(&c->lock);
	return e ? 0 : 1;
}

int cache_set_content_type(struct cache *c, const char *key,
			   const char *type)
{
	struct cache_entry *e;

	if (strlen(type) >= sizeof(e->content_type))
		return -ERANGE;
	pthread_mutex_lock(&c->lock);
	e = live_entry(c, key);
	if (e) {
		snprintf(e->content_type, sizeof(e->content_type), "%s",
			 type);
		requeue_for_attrs(c, e);
	}
	pthread_mutex_unlock(&c->lock);
	return e ? 0 : 1;
}

int cache_get_content_type(struct cache *c, const char *key, char *buf,
			   size_t size)
{
	struct cache_entry *e;
	int ret = 1;

	pthread_mutex_lock(&c->lock);
	e = live_entry(c, key);
	if (e) {
		snprintf(buf, size, "%s",
			 *e->content_type ? e->content_type
					  : s3_mime_type(key));
		ret = 0;
	}
	pthread_mutex_unlock(&c->lock);
	return ret;
}

int cache_key_idle(struct cache *c, const char *key)
{
	struct cache_entry *e;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		e = cache_entry_find(c, key);
		if (!e || !e->busy || c->stopping)
			break;
		pthread_cond_wait(&c->idle_cv, &c->lock);
	}
	pthread_mutex_unlock(&c->lock);
	return 0;
}

int cache_drop(struct cache *c, const char *key)
{
	int remote;

	pthread_mutex_lock(&c->lock);
	remote = drop_target(c, key);
	pthread_mutex_unlock(&c->lock);
	cache_key_idle(c, key);
	return remote;
}

int cache_move_begin(struct cache *c, const char *from, const char *to)
{
	int ret;

	pthread_mutex_lock(&c->lock);
	ret = jnl_move_begin(c->jnl, from, to);
	pthread_mutex_unlock(&c->lock);
	return ret;
}

int cache_move_end(struct cache *c, const char *from)
{
	int ret;

	pthread_mutex_lock(&c->lock);
	ret = jnl_move_end(c->jnl, from);
	pthread_mutex_unlock(&c->lock);
	return ret;
}

int cache_moves(struct cache *c, cache_move_fn fn, void *arg)
{
	int ret;

	pthread_mutex_lock(&c->lock);
	ret = jnl_scan_moves(c->jnl, fn, arg);
	pthread_mutex_unlock(&c->lock);
	return ret;
}
