/*
 * fs-postback.c - which postback a file asks for, and handing it to the
 * delivery service (notify/) once its version is final.
 *
 * A file asks in one of four ways, the first that applies wins: the xattr
 * user.blitfs.postback on the file itself; a sidecar NAME.postback beside
 * it; the xattr on the nearest directory above it; the postback_url
 * option.  Sidecars and xattrs are checked when they are set, so a URL
 * that could never be sent fails the setfattr or the sidecar's close.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs-path.h"
#include "fs.h"
#include "log.h"

static char *sidecar_key(const char *key)
{
	size_t n = strlen(key) + sizeof(CACHE_SIDECAR_SUFFIX);
	char *s = malloc(n);

	if (!s)
		abort();
	snprintf(s, n, "%s%s", key, CACHE_SIDECAR_SUFFIX);
	return s;
}

/* Read a sidecar's request into buf; -ENOENT if there is none. */
static int read_sidecar(struct fs_ctx *x, const char *skey, char *buf,
			size_t size)
{
	int n = cache_read_local(x->cache, skey, buf, size - 1);

	if (n < 0)
		return n;
	buf[n] = '\0';
	return 0;
}

/* The postback of the nearest directory above key that has one. */
static int nearest_dir(struct fs_ctx *x, const char *key, char *buf,
		       size_t size)
{
	char *dir = strdup(key);
	char *slash;
	int ret = -ENODATA;

	if (!dir)
		abort();
	while (ret < 0 && (slash = strrchr(dir, '/')) != NULL) {
		slash[1] = '\0';
		ret = cache_dir_postback_get(x->cache, dir, buf, size);
		slash[0] = '\0';
	}
	if (ret < 0)
		ret = cache_dir_postback_get(x->cache, "", buf, size);
	free(dir);
	return ret;
}

int fs_pb_fallback(struct fs_ctx *x, const char *key, char *buf,
		   size_t size)
{
	char *skey = sidecar_key(key);
	int ret = read_sidecar(x, skey, buf, size);

	free(skey);
	if (ret == 0 && pb_check_request(buf, NULL, 0) == 0)
		return 0;
	if (nearest_dir(x, key, buf, size) == 0)
		return 0;
	if (x->cfg->postback_url) {
		snprintf(buf, size, "%s", x->cfg->postback_url);
		return 0;
	}
	return -ENODATA;
}

static int is_sidecar(const char *key)
{
	size_t n = strlen(key), m = strlen(CACHE_SIDECAR_SUFFIX);

	return n > m && strcmp(key + n - m, CACHE_SIDECAR_SUFFIX) == 0;
}

int fs_pb_check_sidecar(struct fs_ctx *x, const char *key)
{
	char buf[FS_PB_REQUEST_MAX];
	char reason[256];
	char kb[512];

	if (!is_sidecar(key) || read_sidecar(x, key, buf, sizeof(buf)) < 0)
		return 0;
	if (buf[strspn(buf, " \t\r\n")] == '\0')
		return 0;
	if (pb_check_request(buf, reason, sizeof(reason)) == 0)
		return 0;
	log_warn("fs", "sidecar key=%s refused: %s",
		 log_key(key, kb, sizeof(kb)), reason);
	return -EINVAL;
}

void fs_pb_apply_sidecar(struct fs_ctx *x, const char *key)
{
	char buf[FS_PB_REQUEST_MAX];
	char *target;

	if (!is_sidecar(key) || read_sidecar(x, key, buf, sizeof(buf)) < 0)
		return;
	if (pb_check_request(buf, NULL, 0) < 0)
		return;
	target = strndup(key, strlen(key) - strlen(CACHE_SIDECAR_SUFFIX));
	if (!target)
		abort();
	cache_set_postback(x->cache, target, buf, 0);
	free(target);
}

int fs_pb_set(struct fs_ctx *x, const char *path, int is_dir,
	      const char *value, size_t size)
{
	char buf[FS_PB_REQUEST_MAX];
	char reason[256];
	char *key;
	int ret;

	if (size >= sizeof(buf))
		return -E2BIG;
	memcpy(buf, value, size);
	buf[size] = '\0';
	if (pb_check_request(buf, reason, sizeof(reason)) < 0) {
		log_warn("fs", "setxattr user.blitfs.postback on %s: %s", path,
			 reason);
		return -EINVAL;
	}

	if (is_dir) {
		key = fs_path_to_dir(x->prefix, path);
		ret = cache_dir_postback_set(x->cache, key, buf);
	} else {
		key = fs_path_to_key(x->prefix, path);
		ret = cache_set_postback(x->cache, key, buf, 1);
		if (ret == -ENOENT)
			log_warn("fs", "postback on %s: only files written "
				 "through this mount can ask for one", path);
		ret = ret == -ENOENT ? -EPERM : ret;
	}
	free(key);
	return ret;
}

int fs_pb_get(struct fs_ctx *x, const char *path, char *buf, size_t size)
{
	char *key = fs_path_to_key(x->prefix, path);
	char *dir = fs_path_to_dir(x->prefix, path);
	int ret = cache_get_postback(x->cache, key, buf, size);

	if (ret < 0)
		ret = cache_dir_postback_get(x->cache, dir, buf, size);
	free(key);
	free(dir);
	return ret;
}

void fs_pb_on_final(void *arg, const struct cache_final *ev)
{
	struct fs_ctx *x = arg;
	char *url = fs_path_object_url(x->cfg->endpoint, x->cfg->bucket,
				       x->cfg->path_style, ev->key);
	struct pb_event pe = {
		.event = ev->event,
		.request = ev->request,
		.bucket = x->cfg->bucket,
		.key = ev->key,
		.object_url = url,
		.etag = ev->etag,
		.content_type = s3_mime_type(ev->key),
		.size = ev->size,
		.version = ev->version,
		.visible = ev->visible,
		.waited_ms = ev->waited_ms,
		.attempts = ev->attempts,
		.error = ev->error,
	};
	char kb[512];

	if (!x->pb || pb_enqueue(x->pb, &pe) < 0)
		log_err("fs", "bucket=%s key=%s: postback could not be "
			"recorded", x->cfg->bucket,
			log_key(ev->key, kb, sizeof(kb)));
	free(url);
}
