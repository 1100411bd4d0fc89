/*
 * fs-rename.h - renames of objects and directories that are in S3.
 */
#ifndef BLITFS_FS_RENAME_H
#define BLITFS_FS_RENAME_H

#include "fs.h"

/* Copy the object from to the key to on the server, then delete from. */
int fs_move_object(struct fs_ctx *x, const char *from, const char *to);

/*
 * Move the directory prefix from ("a/") to to ("b/"): every key under it,
 * local or in S3.  Journaled: if it stops, fs_move_resume ends it.
 */
int fs_move_dir(struct fs_ctx *x, const char *from, const char *to);

/* Finish the directory moves a previous mount left unfinished. */
int fs_move_resume(struct fs_ctx *x);

#endif
