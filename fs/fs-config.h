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

	/* Credentials: from the environment only, never from argv. */
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

/* AWS_REGION, AWS_DEFAULT_REGION, AWS_ENDPOINT_URL and the credentials. */
void fs_config_env(struct fs_config *cfg);

/* Fill what is still unset from what is set (cache_dir from bucket...). */
int fs_config_finish(struct fs_config *cfg, char *err, size_t errlen);

/* Name and help text of option i, NULL past the last: for --help. */
const char *fs_config_option(int i, const char **phelp, const char **pdef);

#endif
