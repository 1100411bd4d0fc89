/*
 * fs-path.c - paths in the mount to keys in the bucket, and back.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs-path.h"

#define NAME_MAX_BYTES 255

/* Allocate or die: these are small bookkeeping strings. */
static char *join(const char *a, const char *b, const char *c)
{
	size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
	char *s = malloc(la + lb + lc + 1);

	if (!s)
		abort();
	memcpy(s, a, la);
	memcpy(s + la, b, lb);
	memcpy(s + la + lb, c, lc + 1);
	return s;
}

int fs_path_is_alias(const char *name, size_t len)
{
	size_t sl = strlen(FS_PATH_DIR_ALIAS);

	return len > sl && memcmp(name + len - sl, FS_PATH_DIR_ALIAS, sl) == 0;
}

/* 1 when a component is usable as a file name in the mount. */
int fs_path_name_ok(const char *name, size_t len)
{
	if (len == 0 || len > NAME_MAX_BYTES || fs_path_is_alias(name, len))
		return 0;
	if (len == 1 && name[0] == '.')
		return 0;
	if (len == 2 && name[0] == '.' && name[1] == '.')
		return 0;
	return memchr(name, '/', len) == NULL && memchr(name, '\0', len) == NULL;
}

char *fs_path_prefix(const char *raw, const char **preason)
{
	const char *p = raw;
	const char *seg;
	size_t n;

	while (*p == '/')
		p++;
	n = strlen(p);
	while (n > 0 && p[n - 1] == '/')
		n--;
	if (n == 0)
		return join("", "", "");

	for (seg = p; seg < p + n;) {
		const char *end = memchr(seg, '/', (size_t)(p + n - seg));
		size_t len = end ? (size_t)(end - seg) : (size_t)(p + n - seg);

		if (!fs_path_name_ok(seg, len)) {
			*preason = "it holds an empty, \".\" or \"..\" segment";
			return NULL;
		}
		seg += len + 1;
	}

	char *s = join(p, "", "/");
	s[n] = '/';
	s[n + 1] = '\0';
	return s;
}

/* Turn each "NAME.blitfs-dir" component of s into "NAME", in place. */
static char *strip_aliases(char *s, size_t from)
{
	size_t sl = strlen(FS_PATH_DIR_ALIAS);
	char *seg = s + from, *end;
	size_t len;

	while (*seg) {
		end = strchr(seg, '/');
		len = end ? (size_t)(end - seg) : strlen(seg);
		if (fs_path_is_alias(seg, len)) {
			memmove(seg + len - sl, seg + len, strlen(seg + len) + 1);
			len -= sl;
		}
		if (seg[len] == '\0')
			break;
		seg += len + 1;
	}
	return s;
}

char *fs_path_to_key(const char *prefix, const char *path)
{
	while (*path == '/')
		path++;
	return strip_aliases(join(prefix, path, ""), strlen(prefix));
}

char *fs_path_to_dir(const char *prefix, const char *path)
{
	while (*path == '/')
		path++;
	if (*path == '\0')
		return join(prefix, "", "");
	return strip_aliases(join(prefix, path, "/"), strlen(prefix));
}

int fs_path_child(const char *dir, const char *key, char *name, size_t size,
		  int *pis_dir)
{
	size_t dl = strlen(dir);
	const char *rest;
	size_t len;

	if (strncmp(key, dir, dl) != 0)
		return 0;
	rest = key + dl;
	len = strlen(rest);
	*pis_dir = 0;
	if (len > 0 && rest[len - 1] == '/') {
		*pis_dir = 1;
		len--;
	}
	if (!fs_path_name_ok(rest, len) || len + 1 > size)
		return 0;
	memcpy(name, rest, len);
	name[len] = '\0';
	return 1;
}

/* Percent-encode each segment of key, keeping the slashes between them. */
static char *encode_key(const char *key)
{
	size_t cap = strlen(key) * 3 + 1, o = 0;
	char *out = malloc(cap);
	const char *seg = key;

	if (!out)
		abort();
	for (;;) {
		size_t len = strcspn(seg, "/");
		char *e = curl_easy_escape(NULL, seg, (int)len);

		if (!e)
			abort();
		o += (size_t)snprintf(out + o, cap - o, "%s", e);
		curl_free(e);
		if (seg[len] != '/')
			break;
		out[o++] = '/';
		seg += len + 1;
	}
	out[o] = '\0';
	return out;
}

char *fs_path_object_url(const char *endpoint, const char *bucket,
			 int path_style, const char *key)
{
	const char *host = strstr(endpoint, "://");
	char *ekey = encode_key(key);
	char *url = NULL;
	int n;

	if (path_style || !host)
		n = asprintf(&url, "%s/%s/%s", endpoint, bucket, ekey);
	else
		n = asprintf(&url, "%.*s%s.%s/%s", (int)(host - endpoint + 3),
			     endpoint, bucket, host + 3, ekey);
	free(ekey);
	if (n < 0)
		abort();
	return url;
}
