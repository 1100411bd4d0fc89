/*
 * fs-config.h - the options of a mount: defaults, the INI file, the
 * environment and -o, applied in that order so that later ones win.
 */
#ifndef BLITFS_FS_CONFIG_H
#define BLITFS_FS_CONFIG_H

#include <stddef.h>
#include <stdint.h>

struct fs_config {
	/* From the command line. */
	char *bucket;
	char *prefix;		/* as given; see fs_path_prefix */
	char *mountpoint;
	char *config_file;
	int foreground;
	int debug;

	/* Options (-o, the INI file, the environment). */
	char *endpoint;
	char *region;
	int path_style;
	char *cache_dir;
	int concurrency;
	int retries;
	int drain_timeout;
	int timeout;
	int tls_verify;
	char *ca_file;
	int upload_delay;	/* milliseconds */
	uint64_t cache_size;	/* bytes, 0: no limit */
	int failed_retry;	/* seconds */
	int visibility_poll_ms;
	int visibility_timeout_ms;
	int read_wait_ms;
	int fsync_upload;
	char *postback_url;
	char *postback_secret;		/* INI, file or environment only */
	char *postback_secret_file;
	int postback_timeout;
	double write_rate;	/* write-class requests per second */
	double read_rate;	/* read-class requests per second */
	uint64_t multipart_threshold;	/* bytes */
	uint64_t part_size;	/* bytes */

	/*
	 * Credentials: from the environment or AWS_PROFILE's shared files,
	 * never from argv or the INI file.
	 */
	char *access_key;
	char *secret_key;
	char *session_token;
};

void fs_config_defaults(struct fs_config *cfg);
void fs_config_free(struct fs_config *cfg);

/*
 * Set one option.  where names the source for messages ("-o",
 * "blitfs.ini:12").  Returns 0, or -1 with a one-line reason in err that
 * names the key, the value and where it came from; -2 when the key is not
 * a blitfs option at all (the caller may hand it to FUSE).
 */
int fs_config_set(struct fs_config *cfg, const char *key, const char *value,
		  const char *where, char *err, size_t errlen);

/* Read an INI file; every key must be known and every value valid. */
int fs_config_load(struct fs_config *cfg, const char *path, char *err,
		   size_t errlen);

/* AWS_REGION, AWS_DEFAULT_REGION and AWS_ENDPOINT_URL. */
void fs_config_env(struct fs_config *cfg);

/*
 * Fill what is still unset from what is set (cache_dir from bucket...),
 * find the credentials (the environment's, else AWS_PROFILE's in the
 * shared files) and take the profile's region when none was given.
 */
int fs_config_finish(struct fs_config *cfg, char *err, size_t errlen);

/* Name and help text of option i, NULL past the last: for --help. */
const char *fs_config_option(int i, const char **phelp, const char **pdef);

#endif
