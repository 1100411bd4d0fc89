/*
 * fs-config.h - the options of a mount: defaults, the INI file, the
 * environment and -o.  Each setting remembers where it came from, and a
 * source never overrides a stronger one, so -o wins over the environment,
 * which wins over the INI file, which wins over the defaults, whatever
 * the order they are read in.
 */
#ifndef BLITFS_FS_CONFIG_H
#define BLITFS_FS_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define FS_CONFIG_MAX_OPTS 64

/* Where a setting came from, weakest first. */
enum fs_src { FS_SRC_DEFAULT, FS_SRC_INI, FS_SRC_ENV, FS_SRC_ARGV };

struct fs_config {
	/* From the command line. */
	char *bucket;
	char *prefix;		/* as given; see fs_path_prefix */
	char *mountpoint;
	int foreground;
	int debug;

	/* Options (-o, the environment, the INI file). */
	char *config_file;	/* -c, -o config or BLITFS_CONFIG */
	char *endpoint;
	char *region;
	int path_style;
	char *profile;
	char *credentials_file;
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
	char *postback_secret;	/* INI, file or environment only */
	char *postback_secret_file;
	int postback_timeout;
	char *metrics_listen;	/* HOST:PORT of the metrics, NULL: off */
	double write_rate;	/* write-class requests per second */
	double read_rate;	/* read-class requests per second */
	uint64_t multipart_threshold;	/* bytes */
	uint64_t part_size;	/* bytes */
	uint64_t copy_cutoff;	/* bytes */
	char *cache_control;	/* sent with new objects, or NULL */
	char *acl;
	char *storage_class;

	/* Where each option of the table came from (enum fs_src). */
	unsigned char src[FS_CONFIG_MAX_OPTS];

	/*
	 * Credentials: from credentials_file, the environment or the AWS
	 * shared files, never from argv or the INI file.
	 */
	char *access_key;
	char *secret_key;
	char *session_token;
	char *creds_source;	/* "environment", "profile P in F" */
};

void fs_config_defaults(struct fs_config *cfg);
void fs_config_free(struct fs_config *cfg);

/*
 * Set one option from the command line (-c FILE is config=FILE).
 * Returns 0, or -1 with a one-line reason in err naming the key and the
 * value.
 */
int fs_config_set(struct fs_config *cfg, const char *key, const char *value,
		  char *err, size_t errlen);

/*
 * One -o list: blitfs's options are set; FUSE's and the kernel's
 * (allow_other, ro, nodev...) are appended to *pfuse for libfuse; the
 * generic ones mount(8) passes (defaults, _netdev, x-systemd.*...) are
 * dropped.  A secret, an unknown name or a bad value is an error.
 */
int fs_config_opts(struct fs_config *cfg, const char *list, char **pfuse,
		   char *err, size_t errlen);

/* Read an INI file; every key must be known and every value valid. */
int fs_config_load(struct fs_config *cfg, const char *path, char *err,
		   size_t errlen);

/*
 * The environment: BLITFS_<OPTION> for every option, and the AWS
 * variables that stand for some (AWS_REGION, AWS_ENDPOINT_URL,
 * AWS_PROFILE...).  A bad value is an error naming the variable.
 */
int fs_config_env(struct fs_config *cfg, char *err, size_t errlen);

/*
 * All of the above: the -o lists, the environment, then the INI file
 * that -c, -o config or BLITFS_CONFIG names.
 */
int fs_config_read(struct fs_config *cfg, char *const *olists, int nlists,
		   char **pfuse, char *err, size_t errlen);

/*
 * Fill what is still unset from what is set (cache_dir from bucket...),
 * find the credentials (credentials_file's, the environment's, else the
 * profile's in the AWS shared files) and take the profile's region when
 * none was given.  Warns about secret files others can read.
 */
int fs_config_finish(struct fs_config *cfg, char *err, size_t errlen);

/* Name and help text of option i, NULL past the last. */
const char *fs_config_option(int i, const char **phelp, const char **pdef);

/* The options part of --help: every option, its default and its use. */
void fs_config_help(FILE *out);

/* Every -o name accepted, one a line: blitfs's, FUSE's, mount(8)'s. */
void fs_config_list(FILE *out);

/* Log the settings in effect at debug level, secrets masked. */
void fs_config_log(const struct fs_config *cfg);

#endif
