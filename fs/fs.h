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
#include "s3.h"

struct fs_ctx {
	struct fs_config *cfg;
	struct s3_client *s3;
	struct cache *cache;
	struct fs_attr *attrs;
	char *prefix;		/* normalised: "" or "some/prefix/" */
	uid_t uid;
	gid_t gid;
	int started;		/* upload workers running */
};

extern const struct fuse_operations fs_ops;

#endif
