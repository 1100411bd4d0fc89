/*
 * s3_i.h - internals shared by the files of s3/ and by the unit tests:
 * Signature V4, S3's URI encoding, response parsing, the rate limiter,
 * the transfer engine as multipart uploads and copies use it, user
 * metadata headers, and credentials files.
 */
#ifndef BLITFS_S3_I_H
#define BLITFS_S3_I_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "s3.h"

/* A name/value pair: a request header or a query parameter. */
struct s3_pair {
	const char *name;
	const char *value;
};

/*
 * A list of request or answer headers whose names and values are the
 * list's own.  A zeroed struct is an empty list.
 */
struct s3_hlist {
	struct s3_pair *h;
	size_t n;
	size_t cap;
};

/* ---- s3-meta.c: header lists and user metadata ---- */

/* Add name: value, copied.  0, or -1 without memory. */
int s3_hlist_add(struct s3_hlist *l, const char *name, const char *value);

/* Add every header of src (may be NULL) but the one named skip (or NULL). */
int s3_hlist_add_all(struct s3_hlist *l, const struct s3_hlist *src,
		     const char *skip);

/* The value of the first header called name (any case), or NULL. */
const char *s3_hlist_get(const struct s3_hlist *l, const char *name);

/* Free what the list holds and leave it empty. */
void s3_hlist_free(struct s3_hlist *l);

/* Decimal seconds: "1700000000", or "1700000000.123456789" (nsec != 0). */
void s3_meta_mtime_text(const struct timespec *t, char *buf, size_t size);

/* Parse "[-]S" or "[-]S.F" seconds into t.  0, or -1 if malformed. */
int s3_meta_parse_mtime(const char *s, struct timespec *t);

/*
 * Add x-amz-meta-mode, -uid, -gid, -mtime for the fields m has (m NULL:
 * none).  0, or -1 without memory.
 */
int s3_meta_add_headers(const struct s3_meta *m, struct s3_hlist *l);

/*
 * Take an answer header into m when its name is x-amz-meta-mode, -uid,
 * -gid or -mtime (any case): 1 then, and the field's has_ says whether
 * the value parsed; 0 for any other header.
 */
int s3_meta_take_header(struct s3_meta *m, const char *name, const char *v);

/*
 * Whether a copy in parts must send this header of its source again:
 * x-amz-meta-*, and the stored system metadata a CopyObject keeps
 * (Content-Type, Cache-Control, Content-Disposition, -Encoding,
 * -Language, Expires).
 */
int s3_meta_kept_header(const char *name);

/*
 * Everything Signature V4 needs to know about one request.  path and the
 * parameter names and values are raw (not percent-encoded); the signer
 * encodes them by S3's rules.  headers are the ones to sign, exactly as
 * they will be sent (host and x-amz-date among them).
 */
struct s3_sign_input {
	const char *method;
	const char *path;
	const struct s3_pair *params;
	size_t nparams;
	const struct s3_pair *headers;
	size_t nheaders;
	const char *payload_hash;	/* hex SHA-256 or "UNSIGNED-PAYLOAD" */
	const char *region;
	const char *service;		/* "s3" */
	const char *amz_date;		/* "20150830T123600Z" */
	const char *access_key;
	const char *secret_key;
	int normalize_path;	/* generic (non-S3) services: remove dot
				 * segments and collapse slashes first */
};

/* Percent-encode by S3's rules: unreserved bytes stay, '/' when keep_slash. */
char *s3_uri_encode(const char *s, int keep_slash);

/* Lowercase hex SHA-256 of a buffer; out holds 65 bytes. */
void s3_sha256_hex(const void *data, size_t len, char out[65]);

/* Base64 of the MD5 of a buffer (Content-MD5); out holds 25 bytes. */
void s3_md5_base64(const void *data, size_t len, char out[25]);

/* The canonical request; caller frees. */
char *s3_sign_canonical_request(const struct s3_sign_input *in);

/* "host;x-amz-date" style list of the signed headers; caller frees. */
char *s3_sign_signed_headers(const struct s3_sign_input *in);

/* The string to sign for a canonical request; caller frees. */
char *s3_sign_string_to_sign(const struct s3_sign_input *in,
			     const char *canonical_request);

/* Hex HMAC signature of a string to sign; out holds 65 bytes. */
void s3_sign_signature(const struct s3_sign_input *in, const char *sts,
		       char out[65]);

/*
 * The Authorization header value.  sep is what goes between its parts:
 * ", " as AWS's test suite writes it, "," as the S3 reference does.
 */
char *s3_sign_authorization(const struct s3_sign_input *in, const char *sep);

/*
 * Parse an S3 error body (<Error><Code>..</Code><Message>..</Message>)
 * together with the HTTP status into err.  body may be NULL or empty (HEAD
 * answers have none); the status alone then decides.
 */
void s3_error_from_response(long http, const char *body, size_t len,
			    struct s3_error *err);

/* The value of one hex digit, or -1. */
int s3_hex_digit(char c);

/* Parse a ListObjectsV2 result. 0 on success, -1 on a malformed body. */
int s3_parse_list(const char *body, size_t len, struct s3_list_page *page);

/*
 * Whether a 2xx body is an <Error> after all (CompleteMultipartUpload may
 * answer 200 and fail later): 1 with err filled (transient unless the
 * code says otherwise), else 0.
 */
int s3_error_in_body(const char *body, size_t len, struct s3_error *err);

/*
 * The <Region> and <Endpoint> of a redirect's error body (301
 * PermanentRedirect, 307, 400 AuthorizationHeaderMalformed); each is ""
 * when absent.  Control bytes are not copied through.
 */
void s3_parse_redirect(const char *body, size_t len, char *region,
		       size_t rsize, char *endpoint, size_t esize);

/* Whether s can be a region name: [a-z0-9-], 1 to 63 bytes. */
int s3_region_ok(const char *s);

/* One part of a multipart upload. */
struct s3_part {
	int number;		/* 1 to 10,000 */
	uint64_t size;
	char etag[80];		/* without quotes */
};

/* A ListParts page. */
struct s3_part_list {
	struct s3_part *parts;
	size_t nparts;
	int truncated;
	int next_marker;	/* NextPartNumberMarker */
};

/*
 * The ETag (quotes stripped) and, when pmtime is not NULL, LastModified
 * (0 if absent) of a CopyObjectResult (op "CopyObject") or a
 * CopyPartResult (op "CopyPart").  0, or -1 when the body is no such
 * answer or has no ETag.
 */
int s3_parse_copy_result(const char *body, size_t len, const char *op,
			 char *etag, size_t size, time_t *pmtime);

/* The UploadId of an InitiateMultipartUploadResult; caller frees. */
char *s3_parse_upload_id(const char *body, size_t len);

/* The ETag of a CompleteMultipartUploadResult, quotes stripped. 0 or -1. */
int s3_parse_complete(const char *body, size_t len, char *etag,
		      size_t size);

/* Parse a ListParts page (free with s3_part_list_free).  0 or -1. */
int s3_parse_parts(const char *body, size_t len, struct s3_part_list *pl);
void s3_part_list_free(struct s3_part_list *pl);

/* ---- s3-sign.c: hashes of files ---- */

/*
 * Hash size bytes of fd from off: hex SHA-256 (for the signature), hex
 * and base64 MD5 (for ETags and Content-MD5).  0, or an errno.
 */
int s3_hash_fd(int fd, uint64_t off, uint64_t size, char sha_hex[65],
	       char md5_hex[33], char md5_b64[25]);

/* ---- s3-limit.c: the rate limiter and backoff ---- */

enum s3_class {
	S3_CLASS_WRITE,		/* PUT, POST, DELETE (and COPY, a PUT) */
	S3_CLASS_READ,		/* GET, HEAD (listings are GETs) */
	S3_NCLASSES,
};

/* What an answer tells the limiter. */
enum s3_outcome {
	S3_OUTCOME_OK,		/* the server worked: the rate may climb */
	S3_OUTCOME_THROTTLED,	/* 503 SlowDown or 429: cut the rate */
	S3_OUTCOME_OTHER,	/* resets, 500s, local trouble: no change */
};

struct s3_limit_conf {
	double rate[S3_NCLASSES];	/* requests per second */
	double burst[S3_NCLASSES];	/* slots at once after a pause */
	int concurrency;		/* in flight per class; 0: no cap */
};

struct s3_limit;

struct s3_limit *s3_limit_new(const struct s3_limit_conf *conf);
void s3_limit_free(struct s3_limit *l);

/* Replace the clock (seconds) and the sleep; before sharing the limiter. */
void s3_limit_set_clock(struct s3_limit *l, double (*now)(void *),
			void (*sleep)(void *, double), void *arg);
double s3_limit_now(const struct s3_limit *l);

/* Take the next slot of class k at time now; returns the slot's time. */
double s3_limit_reserve(struct s3_limit *l, enum s3_class k, double now);

/* 1 when the calling thread was marked by s3_background. */
int s3_is_background(struct s3_client *c);

/*
 * Wait for an in-flight place and a slot; returns the slot's time.  A
 * background caller lets every waiting foreground caller go first.
 */
double s3_limit_acquire(struct s3_limit *l, enum s3_class k,
			int background);

/* Feed an answer to a request sent at `sent` into the rate (AIMD). */
void s3_limit_feedback(struct s3_limit *l, enum s3_class k, double sent,
		       enum s3_outcome o, double now);

/* Feedback at the clock's now, and give back the in-flight place. */
void s3_limit_done(struct s3_limit *l, enum s3_class k, double sent,
		   enum s3_outcome o);

/* Give back an in-flight place and a slot that sent nothing. */
void s3_limit_cancel(struct s3_limit *l, enum s3_class k);

/* Fill the rate and counter fields of st. */
void s3_limit_stats(struct s3_limit *l, struct s3_stats *st);

/* Full-jitter backoff before retry `attempt` (1 = first), u in [0, 1). */
long s3_backoff_ms(unsigned attempt, long base_ms, long cap_ms, double u);

/* Fill err with a class, a code and a message (no HTTP status). */
enum s3_status s3_set_error(struct s3_error *err, enum s3_status st,
			    const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* ---- s3-client.c: the transfer engine, for s3-multipart.c ---- */

#define S3_CALL_MAX_PARAMS 4

/*
 * One request handed to the engine: paced, signed, sent, retried and
 * redirected as every request is.  The body comes from data (fd < 0) or
 * from [off, off + size) of fd; payload_hash and md5 are the body's.
 * With want_etag the answer's ETag must be that hex MD5 where S3's rules
 * make it comparable, or the attempt failed.  With keep_body a 2xx body
 * is left in body (NUL-terminated; the caller frees it).
 */
struct s3_call {
	const char *method;
	const char *key;
	struct s3_pair params[S3_CALL_MAX_PARAMS];
	size_t nparams;
	const char *content_type;
	const char *data;
	int fd;
	uint64_t off;
	uint64_t size;
	const char *payload_hash;	/* NULL: the hash of an empty body */
	const char *md5;		/* base64, or NULL: no Content-MD5 */
	const char *want_etag;
	int keep_body;
	char *body;
	size_t body_len;
	struct s3_object_info info;
	int etag_opaque;	/* SSE-KMS or SSE-C: the ETag is no MD5 */
	const struct s3_hlist *headers;	/* more to send and sign, or NULL */
	struct s3_hlist *kept;	/* gets the answer's headers that
				 * s3_meta_kept_header names, or NULL */
};

enum s3_status s3_call(struct s3_client *c, struct s3_call *call,
		       struct s3_error *err);

/* The multipart settings of a client. */
struct s3_mp_conf {
	uint64_t threshold;
	uint64_t part_size;
	uint64_t copy_cutoff;	/* copies above this size go in parts */
	int threads;		/* parts in flight for one upload */
};
void s3_client_mp_conf(const struct s3_client *c, struct s3_mp_conf *mc);

/*
 * Add the headers every new object gets from the configuration:
 * x-amz-acl and x-amz-storage-class, and Cache-Control unless the object
 * keeps its source's metadata (a copy with directive COPY, where
 * Cache-Control is the source's).  0, or -1 without memory.
 */
int s3_client_object_headers(const struct s3_client *c, int keep_meta,
			     struct s3_hlist *l);

/*
 * The canonical request (Signature V4) that call would be signed with
 * now: what the tests check the signed headers in.  Caller frees; NULL
 * without memory.
 */
char *s3_call_canonical_request(struct s3_client *c,
				const struct s3_call *call);

/* ---- s3-multipart.c ---- */

/* The part size for an object of size bytes: S3's limits respected. */
uint64_t s3_mp_part_size(uint64_t size, uint64_t wanted);

/* The CompleteMultipartUpload body for parts; caller frees, NULL: OOM. */
char *s3_mp_complete_body(const struct s3_part *parts, size_t n);

/* The multipart ETag: hex MD5 of the parts' binary MD5s, "-", count. */
int s3_mp_etag(const char (*md5_hex)[33], size_t n, char *out, size_t size);

/* How many parts of part_size make size bytes (1 for an empty object). */
int s3_mp_part_count(uint64_t size, uint64_t part_size);

/* "bytes=first-last" of part i (0-based) for x-amz-copy-source-range. */
void s3_mp_copy_range(uint64_t size, uint64_t part_size, int i, char *buf,
		      size_t n);

/* The source of a copy in parts. */
struct s3_mp_source {
	const char *copy_source;	/* the x-amz-copy-source value */
	const char *if_match;	/* the source's ETag, every part checks it */
	uint64_t size;
};

/*
 * Copy src to key in parts (UploadPartCopy).  headers go on the
 * CreateMultipartUpload, since the parts carry no metadata; etag gets
 * the new object's.  The upload is aborted when the copy fails.
 */
enum s3_status s3_mp_copy(struct s3_client *c, const char *key,
			  const struct s3_mp_source *src,
			  const char *content_type,
			  const struct s3_hlist *headers, char *etag,
			  size_t esize, struct s3_error *err);

/* Upload fd by multipart; the engine behind s3_put_file_ex. */
enum s3_status s3_mp_upload(struct s3_client *c, const char *key, int fd,
			    uint64_t size, const char *content_type,
			    const struct s3_put_opts *opts,
			    struct s3_object_info *pinfo,
			    struct s3_error *err);

/* ---- s3-copy.c ---- */

/*
 * The x-amz-copy-source value for key in bucket: "/bucket/key", the key
 * percent-encoded by S3's rules with its slashes kept.  Caller frees.
 */
char *s3_copy_source(const char *bucket, const char *key);

/*
 * The headers of a CopyObject from source (an s3_copy_source value):
 * the directive (REPLACE when meta is not NULL, with meta's headers and
 * the configured Cache-Control; else COPY), the source's ETag to match
 * (if_match, with or without quotes, or NULL), and what every new object
 * gets.  0, or -1 without memory.
 */
int s3_copy_headers(const struct s3_client *c, const char *source,
		    const struct s3_meta *meta, const char *if_match,
		    struct s3_hlist *l);

/* ---- s3-creds.c ---- */

/*
 * Read one profile from a credentials file (section [NAME]) or a config
 * file (is_config: [profile NAME], or [default]) into cr, filling only
 * what cr lacks.  1 when the profile was found, 0 when not (or no file),
 * -1 without memory.
 */
int s3_creds_read_file(struct s3_creds *cr, const char *path,
		       const char *profile, int is_config);

#endif
