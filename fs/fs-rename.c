/*
 * fs-rename.c - renames of what is already in S3.
 *
 * S3 has no rename: an object is copied on the server (no bytes pass
 * through the mount) and the old key deleted.  A directory is every key
 * under its prefix, moved one by one inside the rate limits; the move is
 * journaled first, so a mount cut short finishes it at the next start.
 * Files that still have local versions are re-keyed in the cache instead:
 * only their final name is ever uploaded.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs-rename.h"
#include "log.h"

static void log_move_failure(struct fs_ctx *x, const char *op,
			     const char *key, const struct s3_error *err)
{
	char kb[512];

	log_warn("fs", "%s: bucket=%s key=%s: %s (%ld %s)", op,
		 s3_client_bucket(x->s3), log_key(key, kb, sizeof(kb)),
		 err->message, err->http, err->code);
}

int fs_move_object(struct fs_ctx *x, const char *from, const char *to)
{
	struct s3_error err;
	enum s3_status st;

	/* A local version of the target must not land after the copy. */
	cache_drop(x->cache, to);
	st = s3_copy(x->s3, from, to, NULL, NULL, NULL, NULL, &err);
	if (st != S3_OK) {
		log_move_failure(x, "rename: copy", from, &err);
		return s3_status_errno(st);
	}
	st = s3_delete(x->s3, from, &err);
	if (st != S3_OK && st != S3_NOT_FOUND) {
		log_move_failure(x, "rename: delete", from, &err);
		return s3_status_errno(st);
	}
	return 0;
}

/* A growing array of keys. */
struct keys {
	char **v;
	size_t n, cap;
};

static void keys_add(struct keys *k, const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (k->n == k->cap) {
		k->cap = k->cap ? k->cap * 2 : 64;
		k->v = realloc(k->v, k->cap * sizeof(*k->v));
		if (!k->v)
			abort();
	}
	k->v[k->n] = malloc(la + lb + 1);
	if (!k->v[k->n])
		abort();
	memcpy(k->v[k->n], a, la);
	memcpy(k->v[k->n] + la, b, lb + 1);
	k->n++;
}

static void keys_free(struct keys *k)
{
	size_t i;

	for (i = 0; i < k->n; i++)
		free(k->v[i]);
	free(k->v);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* 1 when key is in k, which is sorted. */
static int keys_has(const struct keys *k, const char *key)
{
	return k->n && bsearch(&key, k->v, k->n, sizeof(*k->v), cmp_str);
}

/* What cache_list shows under a directory: the live local files. */
struct local_walk {
	const char *dir;
	struct keys *keys;
};

static void add_local_key(void *arg, const char *rest, const struct stat *st)
{
	struct local_walk *w = arg;

	if (st)
		keys_add(w->keys, w->dir, rest);
}

/* Every key under dir in S3, all pages. */
static int list_all(struct fs_ctx *x, const char *dir, struct keys *out)
{
	struct s3_list_page page;
	struct s3_error err;
	enum s3_status st;
	char *token = NULL;
	size_t i;

	do {
		st = s3_list(x->s3, dir, NULL, token, 0, &page, &err);
		free(token);
		token = NULL;
		if (st != S3_OK) {
			log_move_failure(x, "rename: list", dir, &err);
			return s3_status_errno(st);
		}
		for (i = 0; i < page.nobjects; i++)
			keys_add(out, page.objects[i].key, "");
		if (page.truncated && page.next_token)
			token = strdup(page.next_token);
		s3_list_page_free(&page);
	} while (token);
	return 0;
}

/* The key under to that key under from moves to. */
static char *moved_key(const char *key, const char *from, const char *to)
{
	const char *rest = key + strlen(from);
	size_t lt = strlen(to), lr = strlen(rest);
	char *k = malloc(lt + lr + 1);

	if (!k)
		abort();
	memcpy(k, to, lt);
	memcpy(k + lt, rest, lr + 1);
	return k;
}

/*
 * Move every key under from to the same place under to: local files in
 * the cache, then the objects in S3 that no local file stands for.
 * Running it again after an interruption moves what is left.
 */
static int run_move(struct fs_ctx *x, const char *from, const char *to)
{
	struct keys local = { 0 }, remote = { 0 };
	struct local_walk w = { from, &local };
	size_t i;
	char *nk;
	int ret = 0, r;

	cache_list(x->cache, from, add_local_key, &w);
	for (i = 0; i < local.n; i++) {
		nk = moved_key(local.v[i], from, to);
		cache_rename(x->cache, local.v[i], nk, 1);
		free(nk);
	}

	if (local.n)
		qsort(local.v, local.n, sizeof(*local.v), cmp_str);
	ret = list_all(x, from, &remote);
	for (i = 0; ret == 0 && i < remote.n; i++) {
		if (keys_has(&local, remote.v[i]))
			continue;
		nk = moved_key(remote.v[i], from, to);
		r = fs_move_object(x, remote.v[i], nk);
		free(nk);
		if (r < 0 && r != -ENOENT)
			ret = r;
	}
	keys_free(&local);
	keys_free(&remote);
	return ret;
}

int fs_move_dir(struct fs_ctx *x, const char *from, const char *to)
{
	char kb[512];
	int ret;

	if (cache_move_begin(x->cache, from, to) < 0)
		return -EIO;
	ret = run_move(x, from, to);
	if (ret == 0)
		cache_move_end(x->cache, from);
	else
		log_warn("fs", "rename: bucket=%s dir=%s: stopped (%s); the "
			 "next mount finishes it", s3_client_bucket(x->s3),
			 log_key(from, kb, sizeof(kb)), strerror(-ret));
	return ret;
}

/* The moves a journal holds, copied out before any of them runs. */
struct pending_moves {
	struct keys from;
	struct keys to;
};

static void add_pending(void *arg, const char *from, const char *to)
{
	struct pending_moves *p = arg;

	keys_add(&p->from, from, "");
	keys_add(&p->to, to, "");
}

int fs_move_resume(struct fs_ctx *x)
{
	struct pending_moves p = { { 0 }, { 0 } };
	char kf[512], kt[512];
	size_t i;
	int ret = 0, r;

	cache_moves(x->cache, add_pending, &p);
	for (i = 0; i < p.from.n; i++) {
		log_info("fs", "rename: bucket=%s: finishing the move of %s to "
			 "%s", s3_client_bucket(x->s3),
			 log_key(p.from.v[i], kf, sizeof(kf)),
			 log_key(p.to.v[i], kt, sizeof(kt)));
		r = run_move(x, p.from.v[i], p.to.v[i]);
		if (r == 0)
			cache_move_end(x->cache, p.from.v[i]);
		else
			ret = r;
	}
	keys_free(&p.from);
	keys_free(&p.to);
	return ret;
}
