/*
 * fs-status.h - how far a mount's uploads have come, for the user.
 *
 * The daemon answers the mount root's extended attribute
 * user.blitfs.status with a JSON document (fs-status.c), and optionally
 * serves the same figures as Prometheus text on a loopback address
 * (fs-metrics.c).  `blitfs status` and `blitfs wait` read the attribute
 * (fs-statcmd.c), so no socket is needed between them and the daemon.
 * README.md, "Status and waiting", documents the fields.
 */
#ifndef BLITFS_FS_STATUS_H
#define BLITFS_FS_STATUS_H

#include <stddef.h>

#define FS_STATUS_XATTR "user.blitfs.status"

/*
 * The attribute never grows past this: the kernel caps an xattr value at
 * 64 KiB.  The list of FAILED files is cut to fit, and to this many.
 */
#define FS_STATUS_MAX 60000
#define FS_STATUS_FAILED_MAX 100

struct fs_ctx;

/* fs-status.c: the daemon's side; getxattr/listxattr of the root. */
int fs_status_getxattr(struct fs_ctx *x, char *value, size_t size);
int fs_status_listxattr(char *list, size_t size);

/* The figures as Prometheus text (malloc'd), or NULL without memory. */
char *fs_status_metrics(struct fs_ctx *x, size_t *plen);

/*
 * fs-metrics.c: the metrics endpoint.  bind checks the address (loopback
 * only) and opens the socket before the mount, so a bad one fails the
 * mount with a message; start serves it from a thread once the daemon
 * runs (threads do not survive daemonising); stop ends it.  An empty or
 * NULL address turns the endpoint off.
 */
int fs_metrics_bind(const char *listen, char *err, size_t errlen);
int fs_metrics_start(struct fs_ctx *x);
void fs_metrics_stop(void);

/* fs-statcmd.c: `blitfs status` and `blitfs wait`. */
int fs_statcmd_is(const char *word);
int fs_statcmd_main(int argc, char **argv);

#endif
