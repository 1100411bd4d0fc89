/*
 * fs-attr.h - a short-lived memory of what S3 said about a key.
 *
 * Listing a directory learns the size and date of every object in it; a
 * getattr right after (ls -l, find, cp's checks) is then answered without
 * one HEAD per file.  Entries live a few seconds, so other hosts' changes
 * show up soon.
 */
#ifndef BLITFS_FS_ATTR_H
#define BLITFS_FS_ATTR_H

#include <stdint.h>
#include <time.h>

#include "s3.h"

enum fs_attr_type { FS_ATTR_NONE, FS_ATTR_FILE, FS_ATTR_DIR };

struct fs_attr_val {
	enum fs_attr_type type;
	uint64_t size;
	time_t mtime;
	char etag[80];		/* a file's, "" when not known */
	int has_meta;		/* from a HEAD: meta is the object's */
	struct s3_meta meta;
};

struct fs_attr;

struct fs_attr *fs_attr_new(double ttl_seconds);
void fs_attr_free(struct fs_attr *a);

void fs_attr_put(struct fs_attr *a, const char *key,
		 const struct fs_attr_val *v);

/*
 * The moment an entry put now would expire, and a put that expires then:
 * what one listing learns expires all at once, so a directory marked as
 * listed never outlives the entries of its listing.
 */
double fs_attr_deadline(const struct fs_attr *a);
void fs_attr_put_until(struct fs_attr *a, const char *key,
		       const struct fs_attr_val *v, double deadline);

/* 1 and *v filled when key is known and fresh, else 0. */
int fs_attr_get(struct fs_attr *a, const char *key, struct fs_attr_val *v);

/* When key's entry expires; 0 when it is not known or not fresh. */
double fs_attr_expiry(struct fs_attr *a, const char *key);

void fs_attr_forget(struct fs_attr *a, const char *key);

/* Forget everything (after a change to many keys at once). */
void fs_attr_clear(struct fs_attr *a);

#endif
