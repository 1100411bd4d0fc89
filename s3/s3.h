/*
 * s3.h - the S3 client as the rest of blitfs sees it.
 *
 * Every call is synchronous and thread-safe: each calling thread gets its
 * own libcurl handle (and so its own keep-alive connection) behind the
 * shared client.  Calls return an enum s3_status and, when it is not S3_OK,
 * fill a struct s3_error that names the reason.  s3/ knows nothing of FUSE.
 *
 * Each call is a transfer: every request in it waits for the bucket's rate
 * limiter, transient failures are retried with capped, jittered backoff
 * (up to `retries` attempts), and redirects are followed and re-signed.  A
 * status other than S3_OK is therefore final for that call: S3_TRANSIENT
 * means the attempts ran out, S3_HARD that retrying cannot help.
 */
#ifndef BLITFS_S3_H
#define BLITFS_S3_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* What a call came to; the class decides what the caller does next. */
enum s3_status {
	S3_OK = 0,
	S3_NOT_FOUND,		/* 404, NoSuchKey: the object is not there */
	S3_TRANSIENT,		/* 5xx, SlowDown, resets: attempts ran out */
	S3_HARD,		/* 403, NoSuchBucket, bad keys: give up */
	S3_INVALID,		/* 400-class errors that retry won't fix */
	S3_LOCAL,		/* local failure: a file read, no memory */
};

struct s3_error {
	enum s3_status status;
	long http;		/* HTTP status, 0 when no answer came */
	char code[64];		/* S3's error code ("SlowDown"), or curl's */
	char message[256];	/* human-readable reason, never a secret */
};

struct s3_config {
	const char *endpoint;	/* "https://s3.us-east-1.amazonaws.com" */
	const char *region;	/* "us-east-1" */
	const char *bucket;
	int path_style;		/* 1: http://host/bucket/key */
	int insecure;		/* 1: do not verify TLS certificates */
	const char *ca_file;	/* extra CA bundle, or NULL */
	const char *access_key;
	const char *secret_key;
	const char *session_token;	/* or NULL */
	long timeout;		/* seconds without progress before giving up */

	/* Traffic; 0 takes the default. */
	double write_rate;	/* PUT, POST, DELETE per second [10] */
	double read_rate;	/* GET, HEAD per second [100] */
	int concurrency;	/* requests in flight per class [8] */
	int retries;		/* attempts per request, in all [5] */
	uint64_t multipart_threshold;	/* multipart from this size [64 MiB] */
	uint64_t part_size;	/* multipart part size [16 MiB] */
	uint64_t copy_cutoff;	/* copies larger go in parts [5 GiB] */

	/* Sent with every new object (PUT, multipart, copy); NULL: none. */
	const char *cache_control;	/* Cache-Control */
	const char *acl;		/* x-amz-acl, a canned ACL */
	const char *storage_class;	/* x-amz-storage-class */
};

/*
 * A file's attributes kept in the object's user metadata, in the headers
 * s3fs writes (x-amz-meta-mode, -uid, -gid: decimal; -mtime: decimal
 * seconds) and rclone reads (x-amz-meta-mtime, which rclone writes with a
 * fraction: "1700000000.123456789").  Both forms are read; blitfs writes
 * seconds with a nine-digit fraction when nsec is not 0, which s3fs
 * reads as its integer part.  A field not in the object has its has_ 0.
 */
struct s3_meta {
	unsigned has_mode : 1, has_uid : 1, has_gid : 1, has_mtime : 1;
	uint32_t mode;		/* st_mode, file type bits included */
	uint32_t uid;
	uint32_t gid;
	struct timespec mtime;
};

/*
 * Options of one upload.  With resume_upload_id, a multipart upload
 * carries on where an earlier one stopped: parts S3 already holds with the
 * right MD5 are not sent again.  on_upload_id, when set, learns the id of
 * each multipart upload as it starts, on the calling thread and before
 * any part is sent (for a journal); a caller that sets it can resume, so
 * an upload that runs out of attempts is kept for it rather than aborted
 * (hard failures abort it all the same).
 */
struct s3_put_opts {
	const char *resume_upload_id;
	void (*on_upload_id)(void *arg, const char *upload_id);
	void *arg;
	const struct s3_meta *meta;	/* user metadata to send, or NULL */
};

/* How the client's traffic goes, for status reports. */
struct s3_stats {
	double write_rate;	/* current, after SlowDowns */
	double write_rate_max;	/* configured */
	double read_rate;
	double read_rate_max;
	uint64_t write_requests;	/* sent, retries and redirects too */
	uint64_t read_requests;
	uint64_t slowdowns;	/* 503 SlowDown (and 429) answers */
	uint64_t retries;	/* requests sent again after a failure */
	uint64_t redirects;	/* 301/307/400-region answers followed */
	char region[64];	/* the region requests are signed for now */
};

/* Credentials found in the environment or the AWS shared files. */
struct s3_creds {
	char *access_key;
	char *secret_key;
	char *session_token;	/* or NULL */
	char *region;		/* the profile's region, or NULL */
	char source[256];	/* where they came from, for messages */
};

struct s3_object_info {
	uint64_t size;
	time_t mtime;		/* Last-Modified */
	char etag[80];		/* as S3 sends it, quotes stripped */
	char content_type[128];
	struct s3_meta meta;	/* from x-amz-meta-* (HEAD, GET) */
};

struct s3_list_entry {
	char *key;
	uint64_t size;
	time_t mtime;
	char etag[80];
};

struct s3_list_page {
	struct s3_list_entry *objects;
	size_t nobjects;
	char **prefixes;	/* CommonPrefixes, each ending in delimiter */
	size_t nprefixes;
	int truncated;
	char *next_token;	/* NextContinuationToken, or NULL */
};

struct s3_client;

/* The client copies what it needs from cfg; NULL on bad configuration. */
struct s3_client *s3_client_new(const struct s3_config *cfg,
				struct s3_error *err);
void s3_client_free(struct s3_client *c);
const char *s3_client_bucket(const struct s3_client *c);
const char *s3_client_endpoint(const struct s3_client *c);

/*
 * Wait for a write slot and keep it for the calling thread's next write
 * request.  A queue whose order can change while it waits (a reader
 * starts waiting for some file) takes its turn first and chooses what to
 * send after, so the choice is made when the request can go.
 */
void s3_write_turn(struct s3_client *c);

/*
 * Mark the calling thread as background (an upload worker): its requests
 * wait while a foreground one (a program's mkdir, lookup, read) waits for
 * an in-flight place.
 */
void s3_background(struct s3_client *c);

/* Give back a turn the thread took and did not use. */
void s3_write_turn_cancel(struct s3_client *c);

/* Rates and counters of the client's traffic so far. */
void s3_client_stats(struct s3_client *c, struct s3_stats *st);

/* Proves the bucket exists and the credentials are accepted. */
enum s3_status s3_check_bucket(struct s3_client *c, struct s3_error *err);

/*
 * Upload the first size bytes of fd (read with pread from offset 0): one
 * PUT, or a multipart upload from the configured threshold on.  The ETag
 * in pinfo is the one S3 gave the object.
 */
enum s3_status s3_put_file(struct s3_client *c, const char *key, int fd,
			   uint64_t size, const char *content_type,
			   struct s3_object_info *pinfo, struct s3_error *err);

/* s3_put_file with upload options; opts may be NULL. */
enum s3_status s3_put_file_ex(struct s3_client *c, const char *key, int fd,
			      uint64_t size, const char *content_type,
			      const struct s3_put_opts *opts,
			      struct s3_object_info *pinfo,
			      struct s3_error *err);

/* PUT a small in-memory body (directory markers). */
enum s3_status s3_put_data(struct s3_client *c, const char *key,
			   const void *data, size_t len,
			   const char *content_type, struct s3_error *err);

/* s3_put_data with user metadata (meta may be NULL); symlinks. */
enum s3_status s3_put_data_meta(struct s3_client *c, const char *key,
				const void *data, size_t len,
				const char *content_type,
				const struct s3_meta *meta,
				struct s3_error *err);

/*
 * Server-side copy of from_key to to_key in the same bucket.  With meta
 * NULL the object keeps its metadata and Content-Type (directive COPY);
 * otherwise they are replaced by meta and content_type (directive
 * REPLACE; content_type NULL keeps the source's).  if_match, when not
 * NULL, is the source's ETag the copy must find (x-amz-copy-source-
 * if-match), so a copy never takes a newer version than the one meant.
 * Objects above copy_cutoff are copied in parts (UploadPartCopy); their
 * size comes from a HEAD.  pinfo, when not NULL, gets the new ETag.
 */
enum s3_status s3_copy(struct s3_client *c, const char *from_key,
		       const char *to_key, const struct s3_meta *meta,
		       const char *content_type, const char *if_match,
		       struct s3_object_info *pinfo, struct s3_error *err);

/* Fill m from a struct stat's mode, owner and mtime. */
void s3_meta_from_stat(struct s3_meta *m, uint32_t mode, uint32_t uid,
		       uint32_t gid, const struct timespec *mtime);

/*
 * GET bytes [off, off + len) into buf; *pgot is how many arrived (fewer at
 * the end of the object).  len 0 is not allowed.
 */
enum s3_status s3_get_range(struct s3_client *c, const char *key,
			    uint64_t off, size_t len, void *buf, size_t *pgot,
			    struct s3_error *err);

/*
 * GET bytes [off, off + len) into fd at the same offsets; *pgot is how
 * many arrived.  With if_match the object must still have that ETag (a
 * changed object fails the call: S3_INVALID, code PreconditionFailed).
 * pinfo, when not NULL, gets the answer's ETag.
 */
enum s3_status s3_get_range_fd(struct s3_client *c, const char *key,
			       uint64_t off, uint64_t len,
			       const char *if_match, int fd, uint64_t *pgot,
			       struct s3_object_info *pinfo,
			       struct s3_error *err);

/* GET the whole object into fd from offset 0. */
enum s3_status s3_get_to_fd(struct s3_client *c, const char *key, int fd,
			    struct s3_object_info *pinfo,
			    struct s3_error *err);

enum s3_status s3_head(struct s3_client *c, const char *key,
		       struct s3_object_info *pinfo, struct s3_error *err);

enum s3_status s3_delete(struct s3_client *c, const char *key,
			 struct s3_error *err);

/*
 * One ListObjectsV2 page.  delimiter may be NULL, token NULL for the first
 * page, max_keys 0 for the server's default.  Free with s3_list_page_free.
 */
enum s3_status s3_list(struct s3_client *c, const char *prefix,
		       const char *delimiter, const char *token, int max_keys,
		       struct s3_list_page *page, struct s3_error *err);
void s3_list_page_free(struct s3_list_page *page);

/* The negative errno that best describes a failed call. */
int s3_status_errno(enum s3_status st);
const char *s3_status_name(enum s3_status st);

/* Content-Type for a file name, from its extension. Never NULL. */
const char *s3_mime_type(const char *name);

/*
 * Find credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (with
 * AWS_SESSION_TOKEN), else the profile (profile, else AWS_PROFILE, else
 * "default") in the shared credentials file (AWS_SHARED_CREDENTIALS_FILE,
 * else ~/.aws/credentials) and then in the config file (AWS_CONFIG_FILE,
 * else ~/.aws/config), which also gives the profile's region.  0, or -1
 * with a reason in err that holds no secret.  Free with s3_creds_free.
 */
int s3_creds_resolve(struct s3_creds *out, const char *profile, char *err,
		     size_t errlen);

/*
 * The keys of one profile (NULL: "default") in a credentials file named
 * outright, for services: the file must be readable and hold the profile
 * with both keys.  0, or -1 with "PATH: reason" in err.
 */
int s3_creds_from_file(struct s3_creds *out, const char *path,
		       const char *profile, char *err, size_t errlen);

/* Whether s can be a region name: [a-z0-9-], 1 to 63 bytes. */
int s3_region_ok(const char *s);
void s3_creds_free(struct s3_creds *cr);

/* Process-wide setup and teardown (curl, libxml2, OpenSSL). */
int s3_global_init(void);
void s3_global_cleanup(void);

#endif
