/*
 * fs.h - what main.c and fs-ops.c share: the mount's context and the
 * table of FUSE operations.
 */
#ifndef BLITFS_FS_H
#define BLITFS_FS_H

#include <fuse.h>
#include <sys/types.h>

#include "cache.h"
#include "fs-attr.h"
#include "fs-config.h"
#include "notify.h"
#include "s3.h"

struct fs_ctx {
	struct fs_config *cfg;
	struct s3_client *s3;
	struct cache *cache;
	struct fs_attr *attrs;
	struct fs_attr *listed;	/* directories listed moments ago */
	char *prefix;		/* normalised: "" or "some/prefix/" */
	uid_t uid;
	gid_t gid;
	int started;		/* upload workers running */
	struct pb *pb;		/* postback delivery */
	time_t unreachable_until;	/* S3 failed to answer a lookup */
};

extern const struct fuse_operations fs_ops;

/* fs-postback.c: which postback a file asks for, and handing it on. */
#define FS_PB_REQUEST_MAX 8192

/* The postback for key from its sidecar, a directory, or the default. */
int fs_pb_fallback(struct fs_ctx *x, const char *key, char *buf,
		   size_t size);

/* A sidecar was written: check it (flush) and apply it (release). */
int fs_pb_check_sidecar(struct fs_ctx *x, const char *key);
void fs_pb_apply_sidecar(struct fs_ctx *x, const char *key);

/* setxattr/getxattr of user.blitfs.postback. */
int fs_pb_set(struct fs_ctx *x, const char *path, int is_dir,
	      const char *value, size_t size);
int fs_pb_get(struct fs_ctx *x, const char *path, char *buf, size_t size);

/* The cache's hook: a version that asked for a postback is final. */
void fs_pb_on_final(void *arg, const struct cache_final *ev);

#endif
