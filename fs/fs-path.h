/*
 * fs-path.h - the mapping between paths in the mount and keys in the bucket.
 *
 * A mount of BUCKET:PREFIX shows the keys under PREFIX.  The path "/a/b.jpg"
 * is the key "PREFIX/a/b.jpg"; the directory "/a" is every key that starts
 * with "PREFIX/a/".  Keys that cannot be paths are never shown, so no path
 * can reach outside the prefix.
 */
#ifndef BLITFS_FS_PATH_H
#define BLITFS_FS_PATH_H

#include <stddef.h>

/*
 * Normalise a user-given prefix: no leading '/', one trailing '/' unless
 * empty.  Returns NULL (with *preason set) when it holds an empty, "." or
 * ".." segment.  Caller frees.
 */
char *fs_path_prefix(const char *raw, const char **preason);

/* "/a/b.jpg" under "pre/" is "pre/a/b.jpg"; "/" is "pre/".  Caller frees. */
char *fs_path_to_key(const char *prefix, const char *path);

/* The listing prefix of a directory: "pre/a/" for "/a", "pre/" for "/". */
char *fs_path_to_dir(const char *prefix, const char *path);

/*
 * A directory that shares its name with a file ("a" and "a/b" both in the
 * bucket) is shown as "a.blitfs-dir": the file keeps the plain name.  The
 * suffix is dropped from every component when a path becomes a key, so
 * keys whose own segments end in it cannot be shown.
 */
#define FS_PATH_DIR_ALIAS ".blitfs-dir"

/* 1 when the component of len bytes is such an alias. */
int fs_path_is_alias(const char *name, size_t len);

/*
 * 1 when a single path component can stand for a key segment: not empty,
 * ".", "..", over 255 bytes, holding '/' or NUL, or an alias.
 */
int fs_path_name_ok(const char *name, size_t len);

/*
 * The entry a listed key or common prefix makes in the directory dir:
 * copies its name into name (size bytes, at least 256) and returns 1, or 0
 * when the key makes no entry (the directory's own marker, or a name that
 * cannot be a path component).  *pis_dir is set for common prefixes.
 */
int fs_path_child(const char *dir, const char *key, char *name, size_t size,
		  int *pis_dir);

/*
 * The URL of key's object: ENDPOINT/BUCKET/KEY path-style, else
 * SCHEME://BUCKET.HOST/KEY, the key percent-encoded.  Caller frees.
 */
char *fs_path_object_url(const char *endpoint, const char *bucket,
			 int path_style, const char *key);

#endif
