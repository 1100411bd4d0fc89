/*
 * s3_i.h - internals shared by the files of s3/ and by the unit tests:
 * Signature V4, S3's URI encoding, and response parsing.
 */
#ifndef BLITFS_S3_I_H
#define BLITFS_S3_I_H

#include <stddef.h>

#include "s3.h"

/* A name/value pair: a request header or a query parameter. */
struct s3_pair {
	const char *name;
	const char *value;
};

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

/* Parse a ListObjectsV2 result. 0 on success, -1 on a malformed body. */
int s3_parse_list(const char *body, size_t len, struct s3_list_page *page);

#endif
