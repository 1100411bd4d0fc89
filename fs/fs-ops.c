/*
 * fs-ops.c - the FUSE operations of blitfs.
 *
 * Each handler maps the path to a key, asks the staging cache first (it
 * knows every file written here and not yet gone), and asks S3 only for
 * what the cache does not know.  Handlers return 0 or a negative errno.
 */
#include <errno.h>
#include <search.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "fs-path.h"
#include "fs-rename.h"
#include "fs-status.h"
#include "fs.h"
#include "log.h"

#define DIR_MARKER_TYPE "application/x-directory"

static struct fs_ctx *ctx(void)
{
	return fuse_get_context()->private_data;
}

static void fill_dir_stat(const struct fs_ctx *x, struct stat *st,
			  time_t mtime)
{
	memset(st, 0, sizeof(*st));
	st->st_mode = S_IFDIR | 0755;
	st->st_nlink = 2;
	st->st_uid = x->uid;
	st->st_gid = x->gid;
	st->st_mtime = st->st_ctime = st->st_atime = mtime;
}

static void fill_file_stat(const struct fs_ctx *x, struct stat *st,
			   uint64_t size, time_t mtime)
{
	memset(st, 0, sizeof(*st));
	st->st_mode = S_IFREG | 0644;
	st->st_nlink = 1;
	st->st_uid = x->uid;
	st->st_gid = x->gid;
	st->st_size = (off_t)size;
	st->st_blocks = (blkcnt_t)((size + 511) / 512);
	st->st_blksize = 4096;
	st->st_mtime = st->st_ctime = st->st_atime = mtime;
}

/* Files whose owner S3 does not keep belong to the mount's user. */
static void own(const struct fs_ctx *x, struct stat *st)
{
	if (st->st_uid == (uid_t)-1)
		st->st_uid = x->uid;
	if (st->st_gid == (gid_t)-1)
		st->st_gid = x->gid;
}

/* A file in S3: its size and date, and what its metadata keeps. */
static void fill_remote_stat(const struct fs_ctx *x, struct stat *st,
			     const struct fs_attr_val *v)
{
	fill_file_stat(x, st, v->size, v->mtime);
	if (!v->has_meta)
		return;
	cache_apply_meta(&v->meta, st);
	if (v->meta.has_mode && S_ISLNK(v->meta.mode))
		st->st_mode = S_IFLNK | 0777;
}

/* The attributes a new file or link starts with: the caller's. */
static void new_meta(struct s3_meta *m, mode_t mode)
{
	struct fuse_context *fc = fuse_get_context();
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	s3_meta_from_stat(m, (uint32_t)mode, (uint32_t)fc->uid,
			  (uint32_t)fc->gid, &now);
}

static void log_s3_failure(const char *op, const char *key,
			   const struct s3_error *err)
{
	char kb[512];

	log_warn("fs", "%s: bucket=%s key=%s: %s (%ld %s)", op,
		 s3_client_bucket(ctx()->s3), log_key(key, kb, sizeof(kb)),
		 err->message, err->http, err->code);
}

struct dent_list;
static int list_remote(struct fs_ctx *x, const char *dir,
		       struct dent_list *l);

/*
 * While S3 cannot be reached, a lookup of a name the mount knows nothing
 * of answers "no such file" at once, so that writers can go on creating
 * files at local speed; the uploads wait in the queue.  What could lose
 * data (opening a file that might exist in S3 without truncating it) is
 * refused instead; see op_create.
 */
#define UNREACHABLE_S 5

static int s3_unreachable(struct fs_ctx *x)
{
	return time(NULL) < __atomic_load_n(&x->unreachable_until,
					     __ATOMIC_RELAXED);
}

static void s3_unreachable_for(struct fs_ctx *x, int seconds)
{
	__atomic_store_n(&x->unreachable_until, time(NULL) + seconds,
			 __ATOMIC_RELAXED);
}

/* The directory prefix key lives in: "a/b/" for "a/b/c", "" for "c". */
static char *parent_dir(const char *key)
{
	const char *slash = strrchr(key, '/');
	char *p = strndup(key, slash ? (size_t)(slash - key + 1) : 0);

	if (!p)
		abort();
	return p;
}

/*
 * What S3 holds at key: a file, a directory, or nothing.  A key missing
 * from a directory listed moments ago is answered without a request;
 * otherwise a HEAD, and when that finds nothing, one listing of the
 * parent directory, which then answers its siblings too (cp of many new
 * files costs one listing, not a HEAD each).  A listing tells size and
 * date only: with need_meta, a file's mode, owner and mtime take a HEAD.
 */
static int remote_lookup(struct fs_ctx *x, const char *key,
			 struct fs_attr_val *v, int need_meta)
{
	struct s3_object_info info;
	struct s3_error err;
	enum s3_status st;
	char *parent;
	int ret = 0, known;

	known = fs_attr_get(x->attrs, key, v);
	if (known && (!need_meta || v->type != FS_ATTR_FILE || v->has_meta))
		return 0;
	if (known && s3_unreachable(x))
		return 0;
	parent = parent_dir(key);
	if (!known &&
	    (fs_attr_get(x->listed, parent, v) || s3_unreachable(x))) {
		v->type = FS_ATTR_NONE;
		goto out;
	}

	st = s3_head(x->s3, key, &info, &err);
	if (st == S3_OK) {
		memset(v, 0, sizeof(*v));
		v->type = FS_ATTR_FILE;
		v->size = info.size;
		v->mtime = info.mtime;
		v->has_meta = 1;
		v->meta = info.meta;
		snprintf(v->etag, sizeof(v->etag), "%s", info.etag);
		fs_attr_put(x->attrs, key, v);
		goto out;
	}
	if (st == S3_TRANSIENT) {
		log_s3_failure("head", key, &err);
		s3_unreachable_for(x, UNREACHABLE_S);
		v->type = FS_ATTR_NONE;
		goto out;
	}
	if (st != S3_NOT_FOUND) {
		log_s3_failure("head", key, &err);
		ret = s3_status_errno(st);
		goto out;
	}

	ret = list_remote(x, parent, NULL);
	if (ret == 0 && !fs_attr_get(x->attrs, key, v))
		v->type = FS_ATTR_NONE;
out:
	free(parent);
	return ret;
}

/* Forget what S3 said about key. */
static void forget(struct fs_ctx *x, const char *key)
{
	fs_attr_forget(x->attrs, key);
}

/*
 * The mount itself just made key a file in S3 (a link, a server-side
 * copy): say so at once, whatever a listing of moments ago said.
 */
static void learn_file(struct fs_ctx *x, const char *key, uint64_t size,
		       const struct s3_meta *m)
{
	struct fs_attr_val v = { .type = FS_ATTR_FILE, .size = size,
				 .mtime = time(NULL) };

	if (m) {
		v.has_meta = 1;
		v.meta = *m;
	}
	fs_attr_put(x->attrs, key, &v);
}

/* 1 when the last component of path is a directory alias. */
static int is_alias_path(const char *path)
{
	const char *name = strrchr(path, '/');

	name = name ? name + 1 : path;
	return fs_path_is_alias(name, strlen(name));
}

/* An alias stands for the directory only: does S3 hold keys under it? */
static int alias_getattr(struct fs_ctx *x, const char *path,
			 struct stat *st)
{
	char *dir = fs_path_to_dir(x->prefix, path);
	struct s3_list_page page;
	struct s3_error err;
	enum s3_status s;
	int ret = -ENOENT;

	if (cache_has_below(x->cache, dir)) {
		ret = 0;
	} else {
		s = s3_list(x->s3, dir, "/", NULL, 1, &page, &err);
		if (s != S3_OK)
			ret = s3_status_errno(s);
		else if (page.nobjects || page.nprefixes)
			ret = 0;
		if (s == S3_OK)
			s3_list_page_free(&page);
	}
	if (ret == 0)
		fill_dir_stat(x, st, time(NULL));
	free(dir);
	return ret;
}

static int do_getattr(struct fs_ctx *x, const char *path, struct stat *st)
{
	struct fs_attr_val v;
	char *key, *dir;
	int ret;

	if (strcmp(path, "/") == 0) {
		fill_dir_stat(x, st, time(NULL));
		return 0;
	}
	if (is_alias_path(path))
		return alias_getattr(x, path, st);

	key = fs_path_to_key(x->prefix, path);
	ret = cache_stat(x->cache, key, st);
	if (ret <= 0) {
		own(x, st);
		goto out;
	}

	dir = fs_path_to_dir(x->prefix, path);
	ret = cache_has_below(x->cache, dir);
	free(dir);
	if (ret) {
		fill_dir_stat(x, st, time(NULL));
		ret = 0;
		goto out;
	}

	ret = remote_lookup(x, key, &v, 1);
	if (ret == 0 && v.type == FS_ATTR_FILE)
		fill_remote_stat(x, st, &v);
	else if (ret == 0 && v.type == FS_ATTR_DIR)
		fill_dir_stat(x, st, v.mtime);
	else if (ret == 0)
		ret = -ENOENT;
out:
	free(key);
	return ret;
}

static int op_getattr(const char *path, struct stat *st,
		      struct fuse_file_info *fi)
{
	struct cache_file *f = fi ? (struct cache_file *)fi->fh : NULL;
	int ret;

	if (f) {
		ret = cache_fstat(f, st);
		own(ctx(), st);
		return ret;
	}
	return do_getattr(ctx(), path, st);
}

/* One name in a directory listing being merged. */
struct dent {
	char *name;
	struct stat st;
	int hidden;		/* unlinked here; the S3 copy is going away */
	int local;
};

struct dent_list {
	struct dent *v;
	size_t n, cap;
	const struct fs_ctx *x;
};

static struct dent *dent_add(struct dent_list *l, const char *name,
			     size_t len)
{
	struct dent *d;

	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		if (!l->v)
			abort();
	}
	d = &l->v[l->n++];
	memset(d, 0, sizeof(*d));
	d->name = strndup(name, len);
	if (!d->name)
		abort();
	return d;
}

/* A local key under the directory: a file, a subdirectory, or a hole. */
static void add_local(void *arg, const char *rest, const struct stat *st)
{
	struct dent_list *l = arg;
	const char *slash = strchr(rest, '/');
	struct dent *d;

	if (slash) {
		if (!st || !fs_path_name_ok(rest, (size_t)(slash - rest)))
			return;
		d = dent_add(l, rest, (size_t)(slash - rest));
		fill_dir_stat(l->x, &d->st, time(NULL));
		d->local = 1;
		return;
	}
	if (!fs_path_name_ok(rest, strlen(rest)))
		return;
	d = dent_add(l, rest, strlen(rest));
	d->local = 1;
	if (!st) {
		d->hidden = 1;
		return;
	}
	fill_file_stat(l->x, &d->st, (uint64_t)st->st_size, st->st_mtime);
}

/* Keys logged as impossible paths, so each is logged once a mount. */
static pthread_mutex_t bad_keys_lock = PTHREAD_MUTEX_INITIALIZER;
static void *bad_keys;

static int cmp_str(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* A listed key that cannot be a path in dir is left out, said once. */
static void left_out(struct fs_ctx *x, const char *dir, const char *key)
{
	char *copy;
	char kb[512];
	void *found;

	if (strcmp(key, dir) == 0)
		return;
	pthread_mutex_lock(&bad_keys_lock);
	found = tfind(key, &bad_keys, cmp_str);
	copy = found ? NULL : strdup(key);
	if (copy && !tsearch(copy, &bad_keys, cmp_str)) {
		free(copy);
		copy = NULL;
	}
	pthread_mutex_unlock(&bad_keys_lock);
	if (copy)
		log_warn_each("fs", "bucket=%s key=%s: left out of listings: it "
			 "cannot be a path (an empty, \".\" or \"..\" segment, "
			 "a name over 255 bytes or one ending in %s)",
			 s3_client_bucket(x->s3), log_key(key, kb, sizeof(kb)),
			 FS_PATH_DIR_ALIAS);
}

/*
 * Add one ListObjectsV2 page to l (when not NULL), and remember what it
 * says of each key until deadline.
 */
static void add_page(struct fs_ctx *x, struct dent_list *l, const char *dir,
		     const struct s3_list_page *page, double deadline)
{
	struct fs_attr_val v = { .type = FS_ATTR_DIR, .mtime = time(NULL) };
	struct fs_attr_val known;
	char name[256];
	struct dent *d;
	int is_dir;
	size_t i;

	for (i = 0; i < page->nprefixes; i++) {
		const char *p = page->prefixes[i];
		char *key = strndup(p, strlen(p) - 1);

		if (!key)
			abort();
		/* a file of the same name keeps it; see alias_shared_names */
		if (!fs_attr_get(x->attrs, key, &known) ||
		    known.type != FS_ATTR_FILE)
			fs_attr_put_until(x->attrs, key, &v, deadline);
		free(key);
		if (!fs_path_child(dir, p, name, sizeof(name), &is_dir)) {
			left_out(x, dir, p);
			continue;
		}
		if (!l)
			continue;
		d = dent_add(l, name, strlen(name));
		fill_dir_stat(x, &d->st, time(NULL));
	}
	for (i = 0; i < page->nobjects; i++) {
		const struct s3_list_entry *o = &page->objects[i];

		if (!fs_path_child(dir, o->key, name, sizeof(name),
				   &is_dir)) {
			left_out(x, dir, o->key);
			continue;
		}
		v.type = is_dir ? FS_ATTR_DIR : FS_ATTR_FILE;
		v.size = o->size;
		v.mtime = o->mtime;
		snprintf(v.etag, sizeof(v.etag), "%s", o->etag);
		if (!is_dir)
			fs_attr_put_until(x->attrs, o->key, &v, deadline);
		if (!l)
			continue;
		d = dent_add(l, name, strlen(name));
		if (is_dir)
			fill_dir_stat(x, &d->st, o->mtime);
		else
			fill_file_stat(x, &d->st, o->size, o->mtime);
	}
}

/*
 * Every page of the listing of dir in S3, into l (or only into the
 * attribute memory when l is NULL).  The directory is then marked as
 * listed, until the same moment its entries expire.
 */
static int list_remote(struct fs_ctx *x, const char *dir,
		       struct dent_list *l)
{
	struct fs_attr_val listed = { .type = FS_ATTR_DIR };
	double deadline = fs_attr_deadline(x->attrs);
	struct s3_list_page page;
	struct s3_error err;
	enum s3_status st;
	char *token = NULL;

	do {
		st = s3_list(x->s3, dir, "/", token, 0, &page, &err);
		free(token);
		token = NULL;
		if (st != S3_OK) {
			log_s3_failure("list", dir, &err);
			return s3_status_errno(st);
		}
		add_page(x, l, dir, &page, deadline);
		if (page.truncated && page.next_token)
			token = strdup(page.next_token);
		s3_list_page_free(&page);
	} while (token);
	fs_attr_put_until(x->listed, dir, &listed, deadline);
	return 0;
}

/* Sort by name, local entries first, so the first of a run wins. */
static int cmp_dent(const void *a, const void *b)
{
	const struct dent *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	return y->local - x->local;
}

/*
 * A file and a directory of the same name (keys "a" and "a/b"): the
 * directory is shown as "a.blitfs-dir", which fs-path.c maps back.  l is
 * sorted, so the two are neighbours.
 */
static void alias_shared_names(struct dent_list *l)
{
	struct dent *d;
	char *name;
	size_t i;

	for (i = 1; i < l->n; i++) {
		if (strcmp(l->v[i].name, l->v[i - 1].name) != 0)
			continue;
		if (S_ISDIR(l->v[i].st.st_mode) ==
		    S_ISDIR(l->v[i - 1].st.st_mode))
			continue;
		d = S_ISDIR(l->v[i].st.st_mode) ? &l->v[i] : &l->v[i - 1];
		if (strlen(d->name) + strlen(FS_PATH_DIR_ALIAS) > 255 ||
		    asprintf(&name, "%s%s", d->name, FS_PATH_DIR_ALIAS) < 0)
			continue;
		free(d->name);
		d->name = name;
	}
}

static int op_readdir(const char *path, void *buf, fuse_fill_dir_t fill,
		      off_t off, struct fuse_file_info *fi,
		      enum fuse_readdir_flags flags)
{
	struct fs_ctx *x = ctx();
	struct dent_list l = { .x = x };
	char *dir = fs_path_to_dir(x->prefix, path);
	size_t i;
	int ret;

	(void)off;
	(void)fi;
	(void)flags;
	ret = list_remote(x, dir, &l);
	if (ret < 0)
		goto out;
	cache_list(x->cache, dir, add_local, &l);
	if (l.n)
		qsort(l.v, l.n, sizeof(*l.v), cmp_dent);

	alias_shared_names(&l);
	fill(buf, ".", NULL, 0, 0);
	fill(buf, "..", NULL, 0, 0);
	for (i = 0; i < l.n; i++) {
		if (i > 0 && strcmp(l.v[i].name, l.v[i - 1].name) == 0)
			continue;
		if (l.v[i].hidden)
			continue;
		if (fill(buf, l.v[i].name, &l.v[i].st, 0, 0))
			break;
	}
out:
	for (i = 0; i < l.n; i++)
		free(l.v[i].name);
	free(l.v);
	free(dir);
	return ret;
}

/*
 * Does key exist in S3 as a file, and how big is it?  Only asked when the
 * cache holds nothing for key.
 */
static int remote_file(struct fs_ctx *x, const char *key,
		       struct cache_remote *r)
{
	struct fs_attr_val v;
	int ret = remote_lookup(x, key, &v, 0);

	memset(r, 0, sizeof(*r));
	if (ret < 0)
		return ret;
	if (v.type == FS_ATTR_DIR)
		return -EISDIR;
	r->exists = v.type == FS_ATTR_FILE;
	r->size = v.size;
	snprintf(r->etag, sizeof(r->etag), "%s", v.etag);
	if (v.has_meta)
		r->meta = v.meta;
	return 0;
}

static int open_key(struct fs_ctx *x, const char *path, int flags,
		    struct cache_file **pf)
{
	char *key = fs_path_to_key(x->prefix, path);
	int writing = (flags & O_ACCMODE) != O_RDONLY;
	struct cache_remote r = { 0 };
	struct stat st;
	int ret;

	ret = cache_stat(x->cache, key, &st);
	if (ret == -ENOENT && writing)
		ret = 0;
	if (ret == 1 && !(writing && (flags & O_TRUNC))) {
		ret = remote_file(x, key, &r);
		if (ret == 0 && !r.exists && !writing)
			ret = -ENOENT;
	} else if (ret == 0 && !writing && cache_fetched(x->cache, key)) {
		/* a copy fetched earlier: cache_open checks its ETag */
		if (remote_file(x, key, &r) == 0 && !r.exists) {
			cache_drop(x->cache, key);
			ret = -ENOENT;
		}
	}
	if (ret < 0)
		goto out;

	ret = cache_open(x->cache, key, flags, &r, pf);
	if (ret == 0 && writing)
		forget(x, key);
out:
	free(key);
	return ret;
}

static int op_open(const char *path, struct fuse_file_info *fi)
{
	struct cache_file *f;
	int ret = open_key(ctx(), path, fi->flags, &f);

	if (ret == 0)
		fi->fh = (uint64_t)(uintptr_t)f;
	return ret;
}

static int op_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct fs_ctx *x = ctx();
	char *key = fs_path_to_key(x->prefix, path);
	struct cache_remote none = { 0 };
	struct cache_file *f;
	struct s3_meta m;
	int ret;

	if (is_alias_path(path)) {
		free(key);
		return -EINVAL;
	}

	/*
	 * The kernel creates only names a lookup did not find.  If S3 could
	 * not be asked, an open that keeps old bytes must not start empty.
	 */
	if (!(fi->flags & (O_TRUNC | O_EXCL)) && s3_unreachable(x)) {
		free(key);
		return -EIO;
	}
	ret = cache_open(x->cache, key, fi->flags | O_CREAT | O_TRUNC, &none,
			 &f);
	if (ret == 0) {
		fi->fh = (uint64_t)(uintptr_t)f;
		new_meta(&m, S_IFREG | (mode & 07777));
		cache_set_attr(x->cache, key, &m);
		forget(x, key);
	}
	free(key);
	return ret;
}

/*
 * Close a handle.  A written file's new version takes the postback its
 * sidecar, directory or the default asks for; a sidecar applies to its
 * file.
 */
static int release_file(struct fs_ctx *x, const char *path,
			struct cache_file *f)
{
	char req[FS_PB_REQUEST_MAX];
	char *key;
	int writable = cache_file_writable(f);
	int ret;

	if (!writable)
		return cache_release(f, NULL);
	key = fs_path_to_key(x->prefix, path);
	ret = cache_release(f, fs_pb_fallback(x, key, req, sizeof(req)) == 0
				       ? req
				       : NULL);
	fs_pb_apply_sidecar(x, key);
	free(key);
	return ret;
}

static int op_read(const char *path, char *buf, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	(void)path;
	return cache_read((struct cache_file *)fi->fh, buf, size, off);
}

static int op_write(const char *path, const char *buf, size_t size,
		    off_t off, struct fuse_file_info *fi)
{
	(void)path;
	return cache_write((struct cache_file *)fi->fh, buf, size, off);
}

static int op_truncate(const char *path, off_t size,
		       struct fuse_file_info *fi)
{
	struct cache_file *f;
	int ret;

	if (fi && fi->fh)
		return cache_ftruncate((struct cache_file *)fi->fh, size);

	ret = open_key(ctx(), path, size == 0 ? O_RDWR | O_TRUNC : O_RDWR,
		       &f);
	if (ret < 0)
		return ret;
	ret = cache_ftruncate(f, size);
	release_file(ctx(), path, f);
	return ret;
}

/* A sidecar that could never be sent fails its close(), not later. */
static int op_flush(const char *path, struct fuse_file_info *fi)
{
	struct fs_ctx *x = ctx();
	char *key;
	int ret;

	if (!cache_file_writable((struct cache_file *)fi->fh))
		return 0;
	key = fs_path_to_key(x->prefix, path);
	ret = fs_pb_check_sidecar(x, key);
	free(key);
	return ret;
}

static int op_release(const char *path, struct fuse_file_info *fi)
{
	return release_file(ctx(), path, (struct cache_file *)fi->fh);
}

static int op_fsync(const char *path, int datasync,
		    struct fuse_file_info *fi)
{
	(void)path;
	return cache_fsync((struct cache_file *)fi->fh, datasync);
}

static int op_unlink(const char *path)
{
	struct fs_ctx *x = ctx();
	char *key = fs_path_to_key(x->prefix, path);
	struct cache_remote r = { 0 };
	struct stat st;
	int ret;

	ret = cache_stat(x->cache, key, &st);
	if (ret == 1)
		ret = remote_file(x, key, &r);
	if (ret == 0 || r.exists)
		ret = cache_unlink(x->cache, key, r.exists);
	forget(x, key);
	free(key);
	return ret;
}

/*
 * A directory made where a listing of moments ago showed nothing holds
 * nothing in S3 either, as far as that listing knows: mark it listed
 * (empty) until the parent's listing expires, so that the files cp -r
 * creates in it next are answered without a HEAD and a listing each.
 */
static void listed_empty(struct fs_ctx *x, const char *dir,
			 double parent_until)
{
	struct fs_attr_val listed = { .type = FS_ATTR_DIR };

	if (parent_until > 0)
		fs_attr_put_until(x->listed, dir, &listed, parent_until);
}

static int op_mkdir(const char *path, mode_t mode)
{
	struct fs_ctx *x = ctx();
	char *dir = fs_path_to_dir(x->prefix, path);
	char *key = fs_path_to_key(x->prefix, path);
	char *parent = parent_dir(key);
	struct fs_attr_val v = { .type = FS_ATTR_DIR, .mtime = time(NULL) };
	struct fs_attr_val old;
	struct s3_error err;
	enum s3_status st;
	double parent_until = 0;

	(void)mode;
	if (!fs_attr_get(x->attrs, key, &old))
		parent_until = fs_attr_expiry(x->listed, parent);
	st = s3_put_data(x->s3, dir, "", 0, DIR_MARKER_TYPE, &err);
	if (st != S3_OK) {
		log_s3_failure("mkdir", dir, &err);
	} else {
		fs_attr_put(x->attrs, key, &v);
		listed_empty(x, dir, parent_until);
	}
	free(parent);
	free(dir);
	free(key);
	return s3_status_errno(st);
}

/*
 * 1 when S3 holds nothing under dir but its own marker and objects this
 * mount has already unlinked (their DELETE may still be queued: rm then
 * rmdir must work at once).  Stops at the first page that shows a live
 * key.
 */
static int remote_dir_empty(struct fs_ctx *x, const char *dir,
			    struct s3_error *err)
{
	struct s3_list_page page;
	enum s3_status st;
	struct stat sb;
	char *token = NULL;
	const char *k;
	size_t i;
	int empty = 1;

	do {
		st = s3_list(x->s3, dir, NULL, token, 0, &page, err);
		free(token);
		token = NULL;
		if (st != S3_OK)
			return s3_status_errno(st);
		for (i = 0; empty && i < page.nobjects; i++) {
			k = page.objects[i].key;
			if (strcmp(k, dir) != 0 &&
			    cache_stat(x->cache, k, &sb) != -ENOENT)
				empty = 0;
		}
		if (empty && page.truncated && page.next_token)
			token = strdup(page.next_token);
		s3_list_page_free(&page);
	} while (token);
	return empty;
}

static int op_rmdir(const char *path)
{
	struct fs_ctx *x = ctx();
	char *dir = fs_path_to_dir(x->prefix, path);
	char *key = fs_path_to_key(x->prefix, path);
	struct s3_error err;
	enum s3_status st;
	int ret;

	if (cache_has_below(x->cache, dir)) {
		ret = -ENOTEMPTY;
		goto out;
	}
	ret = remote_dir_empty(x, dir, &err);
	if (ret == 0)
		ret = -ENOTEMPTY;
	if (ret < 0)
		goto out;

	st = s3_delete(x->s3, dir, &err);
	ret = s3_status_errno(st);
	if (st != S3_OK)
		log_s3_failure("rmdir", dir, &err);
	forget(x, key);
out:
	free(dir);
	free(key);
	return ret;
}

/* Is path a directory, here or in S3? */
static int is_dir(struct fs_ctx *x, const char *path)
{
	struct stat st;

	return do_getattr(x, path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* 1 when something (a file or a directory) is at path. */
static int exists(struct fs_ctx *x, const char *path)
{
	struct stat st;

	return do_getattr(x, path, &st) == 0;
}

/* Rename a directory: every key under it, journaled; see fs-rename.c. */
static int rename_dir(struct fs_ctx *x, const char *from, const char *to)
{
	char *df = fs_path_to_dir(x->prefix, from);
	char *dt = fs_path_to_dir(x->prefix, to);
	struct s3_error err;
	int ret = 0;

	if (exists(x, to) && !is_dir(x, to))
		ret = -ENOTDIR;
	else if (is_dir(x, to) && (cache_has_below(x->cache, dt) ||
				   remote_dir_empty(x, dt, &err) == 0))
		ret = -ENOTEMPTY;
	if (ret == 0)
		ret = fs_move_dir(x, df, dt);
	fs_attr_clear(x->attrs);
	fs_attr_clear(x->listed);
	free(df);
	free(dt);
	return ret;
}

/*
 * A file with local data is re-keyed in the cache: only its final name is
 * uploaded.  One only in S3 is copied on the server and deleted.  Either
 * replaces what was at the new name.
 */
static int op_rename(const char *from, const char *to, unsigned int flags)
{
	struct fs_ctx *x = ctx();
	char *kf = fs_path_to_key(x->prefix, from);
	char *kt = fs_path_to_key(x->prefix, to);
	struct fs_attr_val v;
	int ret, to_remote;

	if (flags & ~RENAME_NOREPLACE) {
		ret = -EINVAL;
		goto out;
	}
	if ((flags & RENAME_NOREPLACE) && exists(x, to)) {
		ret = -EEXIST;
		goto out;
	}
	if (is_dir(x, from)) {
		ret = rename_dir(x, from, to);
		goto out;
	}
	if (is_dir(x, to)) {
		ret = -EISDIR;
		goto out;
	}
	to_remote = remote_lookup(x, kt, &v, 0) == 0 &&
		    v.type == FS_ATTR_FILE;
	ret = cache_rename(x->cache, kf, kt, to_remote);
	forget(x, kt);
	if (ret == 1) {
		ret = remote_lookup(x, kf, &v, 0);
		if (ret == 0 && v.type != FS_ATTR_FILE)
			ret = -ENOENT;
		if (ret == 0)
			ret = fs_move_object(x, kf, kt);
		if (ret == 0)
			learn_file(x, kt, v.size, NULL);
	}
	forget(x, kf);
out:
	free(kf);
	free(kt);
	return ret;
}

#define XATTR_PREFIX "user.blitfs."

static const char *const xattr_names[] = {
	XATTR_PREFIX "state", XATTR_PREFIX "error", XATTR_PREFIX "etag",
	XATTR_PREFIX "url", XATTR_PREFIX "visible_ms",
	XATTR_PREFIX "content_type",
};

/* The value of one of blitfs's status attributes for key. */
static int xattr_value(struct fs_ctx *x, const char *key, const char *name,
		       char *out, size_t size)
{
	struct cache_info info;
	struct fs_attr_val v;
	struct s3_object_info oi;
	struct s3_error err;

	if (strcmp(name, "url") == 0) {
		char *url = fs_path_object_url(x->cfg->endpoint,
					       x->cfg->bucket,
					       x->cfg->path_style, key);

		snprintf(out, size, "%s", url);
		free(url);
		return 0;
	}
	if (cache_info(x->cache, key, &info) == 0) {
		if (strcmp(name, "state") == 0)
			snprintf(out, size, "%s", cache_state_name(info.state));
		else if (strcmp(name, "error") == 0)
			snprintf(out, size, "%s", info.error);
		else if (strcmp(name, "visible_ms") == 0 && info.visible_ms >= 0)
			snprintf(out, size, "%ld", info.visible_ms);
		else if (strcmp(name, "visible_ms") == 0)
			return -ENODATA;
		else
			snprintf(out, size, "%s", info.etag);
		return 0;
	}
	if (remote_lookup(x, key, &v, 0) < 0 || v.type != FS_ATTR_FILE)
		return -ENODATA;
	if (strcmp(name, "state") == 0)
		snprintf(out, size, "REMOTE");
	else if (strcmp(name, "error") == 0)
		out[0] = '\0';
	else if (strcmp(name, "visible_ms") == 0)
		return -ENODATA;
	else if (s3_head(x->s3, key, &oi, &err) == S3_OK)
		snprintf(out, size, "%s", oi.etag);
	else
		return -ENODATA;
	return 0;
}

/* The Content-Type key is (or will be) stored with. */
static int content_type(struct fs_ctx *x, const char *key, char *buf,
			size_t size)
{
	struct s3_object_info oi;
	struct s3_error err;

	if (cache_get_content_type(x->cache, key, buf, size) == 0)
		return 0;
	if (s3_head(x->s3, key, &oi, &err) != S3_OK)
		return -ENODATA;
	snprintf(buf, size, "%s", oi.content_type);
	return 0;
}

static int op_getxattr(const char *path, const char *name, char *value,
		       size_t size)
{
	struct fs_ctx *x = ctx();
	char buf[FS_PB_REQUEST_MAX];
	char *key;
	size_t len;
	int ret;

	if (strcmp(path, "/") == 0 && strcmp(name, FS_STATUS_XATTR) == 0)
		return fs_status_getxattr(x, value, size);
	if (strncmp(name, XATTR_PREFIX, strlen(XATTR_PREFIX)) != 0)
		return -ENODATA;
	name += strlen(XATTR_PREFIX);
	if (strcmp(name, "postback") == 0) {
		ret = fs_pb_get(x, path, buf, sizeof(buf));
	} else if (strcmp(name, "content_type") == 0) {
		key = fs_path_to_key(x->prefix, path);
		ret = content_type(x, key, buf, sizeof(buf));
		free(key);
	} else if (strcmp(name, "state") && strcmp(name, "error") &&
		   strcmp(name, "etag") && strcmp(name, "url") &&
		   strcmp(name, "visible_ms")) {
		return -ENODATA;
	} else {
		key = fs_path_to_key(x->prefix, path);
		ret = xattr_value(x, key, name, buf, sizeof(buf));
		free(key);
	}
	if (ret < 0)
		return ret;
	len = strlen(buf);
	if (size == 0)
		return (int)len;
	if (size < len)
		return -ERANGE;
	memcpy(value, buf, len);
	return (int)len;
}

static int op_listxattr(const char *path, char *list, size_t size)
{
	size_t i, need = 0, o = 0;

	if (strcmp(path, "/") == 0)
		return fs_status_listxattr(list, size);
	for (i = 0; i < sizeof(xattr_names) / sizeof(xattr_names[0]); i++)
		need += strlen(xattr_names[i]) + 1;
	if (size == 0)
		return (int)need;
	if (size < need)
		return -ERANGE;
	for (i = 0; i < sizeof(xattr_names) / sizeof(xattr_names[0]); i++) {
		memcpy(list + o, xattr_names[i], strlen(xattr_names[i]) + 1);
		o += strlen(xattr_names[i]) + 1;
	}
	return (int)o;
}

static int set_remote_attr(struct fs_ctx *x, const char *key,
			   const struct s3_meta *m, const char *type);

/*
 * user.blitfs.content_type sets the Content-Type: a file not uploaded yet
 * is sent with it; one already in S3 is copied onto itself with it.
 */
static int set_content_type(struct fs_ctx *x, const char *path,
			    const char *value, size_t size)
{
	struct s3_meta none = { 0 };
	char type[128];
	char *key;
	int ret;

	if (size == 0 || size >= sizeof(type) || memchr(value, '\n', size) ||
	    memchr(value, '\r', size) || memchr(value, '\0', size))
		return -EINVAL;
	memcpy(type, value, size);
	type[size] = '\0';
	key = fs_path_to_key(x->prefix, path);
	ret = cache_set_content_type(x->cache, key, type);
	if (ret == 1)
		ret = set_remote_attr(x, key, &none, type);
	free(key);
	return ret;
}

/*
 * user.blitfs.retry asks for a FAILED upload to be tried again now;
 * user.blitfs.postback asks for a postback (on a directory: for every file
 * closed beneath it).
 */
static int op_setxattr(const char *path, const char *name, const char *value,
		       size_t size, int flags)
{
	struct fs_ctx *x = ctx();
	char *key;
	int ret;

	(void)flags;
	if (strcmp(name, XATTR_PREFIX "postback") == 0)
		return fs_pb_set(x, path, is_dir(x, path), value, size);
	if (strcmp(name, XATTR_PREFIX "content_type") == 0)
		return set_content_type(x, path, value, size);
	if (strcmp(name, XATTR_PREFIX "retry") != 0)
		return -ENOTSUP;
	key = fs_path_to_key(x->prefix, path);
	ret = cache_retry(x->cache, key);
	free(key);
	return ret == -ENODATA ? -ENOENT : ret;
}

/*
 * Change the attributes m has of an object only in S3: it is copied onto
 * itself with the merged metadata, as s3fs does, if still the same one.
 */
static int set_remote_attr(struct fs_ctx *x, const char *key,
			   const struct s3_meta *m, const char *type)
{
	struct s3_object_info info;
	struct s3_error err;
	enum s3_status st;

	st = s3_head(x->s3, key, &info, &err);
	if (st == S3_OK) {
		cache_merge_meta(&info.meta, m, 1);
		st = s3_copy(x->s3, key, key, &info.meta, type, info.etag,
			     NULL, &err);
	}
	if (st != S3_OK && st != S3_NOT_FOUND)
		log_s3_failure("set attributes", key, &err);
	if (st == S3_OK)
		learn_file(x, key, info.size, &info.meta);
	else
		forget(x, key);
	return s3_status_errno(st);
}

/* Keep the attributes m has for path: locally, or on the object. */
static int set_attr(const char *path, const struct s3_meta *m)
{
	struct fs_ctx *x = ctx();
	char *key;
	int ret;

	if (strcmp(path, "/") == 0 || is_dir(x, path))
		return 0;
	key = fs_path_to_key(x->prefix, path);
	ret = cache_set_attr(x->cache, key, m);
	if (ret == 1)
		ret = set_remote_attr(x, key, m, NULL);
	free(key);
	return ret;
}

static int op_utimens(const char *path, const struct timespec tv[2],
		      struct fuse_file_info *fi)
{
	struct s3_meta m = { 0 };

	(void)fi;
	if (tv && tv[1].tv_nsec == UTIME_OMIT)
		return 0;
	if (!tv || tv[1].tv_nsec == UTIME_NOW)
		clock_gettime(CLOCK_REALTIME, &m.mtime);
	else
		m.mtime = tv[1];
	m.has_mtime = 1;
	return set_attr(path, &m);
}

static int op_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct stat st;
	struct s3_meta m = { 0 };
	int ret;

	(void)fi;
	ret = do_getattr(ctx(), path, &st);
	if (ret < 0 || S_ISLNK(st.st_mode))
		return ret;
	m.has_mode = 1;
	m.mode = (uint32_t)((st.st_mode & S_IFMT) | (mode & 07777));
	return set_attr(path, &m);
}

static int op_chown(const char *path, uid_t uid, gid_t gid,
		    struct fuse_file_info *fi)
{
	struct s3_meta m = { 0 };

	(void)fi;
	m.has_uid = uid != (uid_t)-1;
	m.uid = (uint32_t)uid;
	m.has_gid = gid != (gid_t)-1;
	m.gid = (uint32_t)gid;
	if (!m.has_uid && !m.has_gid)
		return 0;
	return set_attr(path, &m);
}

/*
 * A symbolic link is an object holding the target, its mode saying
 * S_IFLNK, the way s3fs stores links; it is written at once.
 */
static int op_symlink(const char *target, const char *path)
{
	struct fs_ctx *x = ctx();
	char *key = fs_path_to_key(x->prefix, path);
	struct s3_meta m;
	struct s3_error err;
	enum s3_status st;

	new_meta(&m, S_IFLNK | 0777);
	cache_drop(x->cache, key);
	st = s3_put_data_meta(x->s3, key, target, strlen(target),
			      "application/octet-stream", &m, &err);
	if (st != S3_OK)
		log_s3_failure("symlink", key, &err);
	else
		learn_file(x, key, strlen(target), &m);
	free(key);
	return s3_status_errno(st);
}

static int op_readlink(const char *path, char *buf, size_t size)
{
	struct fs_ctx *x = ctx();
	char *key = fs_path_to_key(x->prefix, path);
	struct s3_error err;
	enum s3_status st;
	size_t got = 0;

	if (size < 2) {
		free(key);
		return -ERANGE;
	}
	st = s3_get_range(x->s3, key, 0, size - 1, buf, &got, &err);
	if (st != S3_OK)
		log_s3_failure("readlink", key, &err);
	buf[st == S3_OK ? got : 0] = '\0';
	free(key);
	return s3_status_errno(st);
}

/* S3 has no second name for an object: say so plainly. */
static int op_link(const char *from, const char *to)
{
	(void)from;
	(void)to;
	return -EPERM;
}

/*
 * Files land in the staging cache first, so its disk's free space is what
 * a writer can use; the total is shown as a large bucket would be.
 */
static int op_statfs(const char *path, struct statvfs *sv)
{
	struct fs_ctx *x = ctx();
	struct statvfs local;

	(void)path;
	memset(sv, 0, sizeof(*sv));
	if (statvfs(x->cfg->cache_dir, &local) < 0)
		return -errno;
	sv->f_bsize = 4096;
	sv->f_frsize = 4096;
	sv->f_bavail = (fsblkcnt_t)(local.f_bavail * local.f_frsize / 4096);
	sv->f_bfree = sv->f_bavail;
	sv->f_blocks = sv->f_bavail + ((fsblkcnt_t)1 << 32);
	sv->f_files = (fsfilcnt_t)1 << 32;
	sv->f_ffree = sv->f_files;
	sv->f_favail = sv->f_files;
	sv->f_namemax = 255;
	return 0;
}

static void *op_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	struct fs_ctx *x = ctx();

	(void)conn;
	cfg->attr_timeout = 1.0;
	cfg->entry_timeout = 1.0;
	cfg->negative_timeout = 0;
	cfg->hard_remove = 1;
	cfg->use_ino = 0;

	if (cache_start(x->cache) < 0 || pb_start(x->pb) < 0)
		log_err("fs", "cannot start upload or postback workers: %s",
			strerror(errno));
	else
		x->started = 1;
	return x;
}

const struct fuse_operations fs_ops = {
	.init = op_init,
	.getattr = op_getattr,
	.readdir = op_readdir,
	.open = op_open,
	.create = op_create,
	.read = op_read,
	.write = op_write,
	.truncate = op_truncate,
	.flush = op_flush,
	.release = op_release,
	.fsync = op_fsync,
	.unlink = op_unlink,
	.mkdir = op_mkdir,
	.rmdir = op_rmdir,
	.rename = op_rename,
	.utimens = op_utimens,
	.chmod = op_chmod,
	.chown = op_chown,
	.symlink = op_symlink,
	.readlink = op_readlink,
	.link = op_link,
	.statfs = op_statfs,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.setxattr = op_setxattr,
};
