/*
 * s3-sign.c - AWS Signature Version 4 for S3 requests.
 *
 * Builds the canonical request, the string to sign and the signature the
 * way AWS documents them, plus the hashes S3 wants in headers (SHA-256 of
 * the payload, Content-MD5).  Everything works on raw bytes, so object keys
 * in UTF-8 are encoded byte by byte.  Strings handed back are malloc'd and
 * owned by the caller; running out of memory for them aborts.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "s3_i.h"

#define ALGORITHM "AWS4-HMAC-SHA256"

/* A growing, always NUL-terminated string. */
struct buf {
	char *p;
	size_t len;
	size_t cap;
};

/* A header after canonicalisation: lowercase name, trimmed value. */
struct chdr {
	char *name;
	char *value;
	size_t order;		/* position in the input, keeps sort stable */
};

/* An encoded query parameter. */
struct cparam {
	char *name;
	char *value;
};

/* malloc that aborts: these strings are small and cannot be done without. */
static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		abort();
	return p;
}

/* strdup that aborts, for the same reason as xmalloc. */
static char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;

	return memcpy(xmalloc(n), s, n);
}

/* Make room for n more bytes plus the terminating NUL. */
static void buf_grow(struct buf *b, size_t n)
{
	char *p;

	if (b->len + n + 1 <= b->cap)
		return;
	b->cap = (b->len + n + 1) * 2;
	p = realloc(b->p, b->cap);
	if (!p)
		abort();
	b->p = p;
}

/* Append n bytes. */
static void buf_add(struct buf *b, const char *s, size_t n)
{
	buf_grow(b, n);
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

/* Append a C string. */
static void buf_adds(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

/* Append one byte. */
static void buf_addc(struct buf *b, char c)
{
	buf_add(b, &c, 1);
}

/* Hand the string over to the caller; an empty buffer gives "". */
static char *buf_take(struct buf *b)
{
	char *p = b->p;

	if (!p)
		p = xstrdup("");
	b->p = NULL;
	b->len = b->cap = 0;
	return p;
}

/* Whether a byte is one of RFC 3986's unreserved characters. */
static int unreserved(unsigned char c)
{
	if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))
		return 1;
	if (c >= '0' && c <= '9')
		return 1;
	return c == '-' || c == '_' || c == '.' || c == '~';
}

/* Percent-encode by S3's rules: unreserved bytes stay, '/' when keep_slash. */
char *s3_uri_encode(const char *s, int keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	char *out = xmalloc(strlen(s) * 3 + 1);
	char *o = out;

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (unreserved(c) || (keep_slash && c == '/')) {
			*o++ = (char)c;
			continue;
		}
		*o++ = '%';
		*o++ = hex[c >> 4];
		*o++ = hex[c & 15];
	}
	*o = '\0';
	return out;
}

/* Lowercase hex of n bytes; out holds 2 * n + 1 bytes. */
static void hex_encode(const unsigned char *in, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = hex[in[i] >> 4];
		out[2 * i + 1] = hex[in[i] & 15];
	}
	out[2 * n] = '\0';
}

/* Lowercase hex SHA-256 of a buffer; out holds 65 bytes ("" on failure). */
void s3_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	out[0] = '\0';
	if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL))
		return;
	hex_encode(md, mdlen, out);
}

/* Base64 of the MD5 of a buffer; out holds 25 bytes ("" on failure). */
void s3_md5_base64(const void *data, size_t len, char out[25])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	out[0] = '\0';
	if (!EVP_Digest(data, len, md, &mdlen, EVP_md5(), NULL) || mdlen != 16)
		return;
	EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen);
}

#define HASH_CHUNK (256 * 1024)

/* Feed size bytes of fd from off into both digests.  0, or an errno. */
static int hash_chunks(int fd, uint64_t off, uint64_t size,
		       unsigned char *buf, EVP_MD_CTX *sha, EVP_MD_CTX *md5)
{
	uint64_t end = off + size;
	ssize_t n;

	while (off < end) {
		n = pread(fd, buf, end - off < HASH_CHUNK ? end - off
							  : HASH_CHUNK,
			  (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? errno : ENODATA;
		if (!EVP_DigestUpdate(sha, buf, (size_t)n) ||
		    !EVP_DigestUpdate(md5, buf, (size_t)n))
			return EIO;
		off += (uint64_t)n;
	}
	return 0;
}

/* Write out both digests in the three forms s3_hash_fd gives. */
static int finish_hashes(EVP_MD_CTX *sha, EVP_MD_CTX *md5,
			 char sha_hex[65], char md5_hex[33],
			 char md5_b64[25])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n;

	if (!EVP_DigestFinal_ex(sha, md, &n) || n != 32)
		return EIO;
	hex_encode(md, n, sha_hex);
	if (!EVP_DigestFinal_ex(md5, md, &n) || n != 16)
		return EIO;
	hex_encode(md, n, md5_hex);
	EVP_EncodeBlock((unsigned char *)md5_b64, md, (int)n);
	return 0;
}

/*
 * Hash size bytes of fd from off in one read: SHA-256 for the signature,
 * MD5 for Content-MD5 and the ETag.  0, or an errno.
 */
int s3_hash_fd(int fd, uint64_t off, uint64_t size, char sha_hex[65],
	       char md5_hex[33], char md5_b64[25])
{
	EVP_MD_CTX *sha = EVP_MD_CTX_new();
	EVP_MD_CTX *md5 = EVP_MD_CTX_new();
	unsigned char *buf = malloc(HASH_CHUNK);
	int result = ENOMEM;

	if (!sha || !md5 || !buf)
		goto out;
	result = EIO;
	if (!EVP_DigestInit_ex(sha, EVP_sha256(), NULL) ||
	    !EVP_DigestInit_ex(md5, EVP_md5(), NULL))
		goto out;
	result = hash_chunks(fd, off, size, buf, sha, md5);
	if (!result)
		result = finish_hashes(sha, md5, sha_hex, md5_hex, md5_b64);
out:
	free(buf);
	EVP_MD_CTX_free(sha);
	EVP_MD_CTX_free(md5);
	return result;
}

/* Drop the last segment written to b, as ".." asks (never the root). */
static void pop_segment(struct buf *b)
{
	if (!b->len)
		return;
	while (b->len > 0 && b->p[b->len - 1] != '/')
		b->len--;
	if (b->len > 0)
		b->len--;
	b->p[b->len] = '\0';
}

/* 1 for a "." segment, 2 for "..", 0 for anything else. */
static int dot_segment(const char *s, size_t n)
{
	if (n == 1 && s[0] == '.')
		return 1;
	if (n == 2 && s[0] == '.' && s[1] == '.')
		return 2;
	return 0;
}

/*
 * RFC 3986 dot-segment removal plus collapsing of repeated slashes, for
 * generic services only: S3 signs keys exactly as given.
 */
static char *normalize_path(const char *path)
{
	struct buf b = { 0 };
	const char *s = path;
	int dir = 0;

	while (*s) {
		size_t n = strcspn(s, "/");
		int dots = dot_segment(s, n);

		if (dots == 2)
			pop_segment(&b);
		else if (n && !dots) {
			buf_addc(&b, '/');
			buf_add(&b, s, n);
		}
		/* a path ending in '/', "." or ".." names a directory */
		dir = dots != 0;
		s += n;
		if (*s == '/') {
			s++;
			dir = 1;
		}
	}
	if (!b.len || dir)
		buf_addc(&b, '/');
	return buf_take(&b);
}

/* The canonical URI: the path encoded once, '/' kept, "/" when empty. */
static char *canonical_uri(const struct s3_sign_input *in)
{
	const char *path = in->path && *in->path ? in->path : "/";
	char *norm, *out;

	if (!in->normalize_path)
		return s3_uri_encode(path, 1);
	norm = normalize_path(path);
	out = s3_uri_encode(norm, 1);
	free(norm);
	return out;
}

/* qsort order of query parameters: encoded name, then encoded value. */
static int cparam_cmp(const void *a, const void *b)
{
	const struct cparam *x = a, *y = b;
	int r = strcmp(x->name, y->name);

	return r ? r : strcmp(x->value, y->value);
}

/* The canonical query string: encoded, sorted, "name=value" joined by '&'. */
static char *canonical_query(const struct s3_sign_input *in)
{
	struct cparam *p = xmalloc(in->nparams * sizeof(*p));
	struct buf b = { 0 };
	size_t i;

	for (i = 0; i < in->nparams; i++) {
		const char *v = in->params[i].value;

		p[i].name = s3_uri_encode(in->params[i].name, 0);
		p[i].value = s3_uri_encode(v ? v : "", 0);
	}
	qsort(p, in->nparams, sizeof(*p), cparam_cmp);
	for (i = 0; i < in->nparams; i++) {
		if (i)
			buf_addc(&b, '&');
		buf_adds(&b, p[i].name);
		buf_addc(&b, '=');
		buf_adds(&b, p[i].value);
		free(p[i].name);
		free(p[i].value);
	}
	free(p);
	return buf_take(&b);
}

/* Whether a byte is blank for header-value trimming. */
static int blank(char c)
{
	return c == ' ' || c == '\t';
}

/* A header value trimmed, with each inner run of blanks made one space. */
static char *trim_value(const char *v)
{
	struct buf b = { 0 };

	while (blank(*v))
		v++;
	while (*v) {
		if (!blank(*v)) {
			buf_addc(&b, *v++);
			continue;
		}
		while (blank(*v))
			v++;
		if (*v)
			buf_addc(&b, ' ');
	}
	return buf_take(&b);
}

/* A header name in lowercase (ASCII only, as HTTP names are). */
static char *lower_name(const char *name)
{
	char *out = xstrdup(name);
	char *s;

	for (s = out; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
	return out;
}

/* qsort order of headers: name, then position in the request. */
static int chdr_cmp(const void *a, const void *b)
{
	const struct chdr *x = a, *y = b;
	int r = strcmp(x->name, y->name);

	if (r)
		return r;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* Free an array of canonical headers. */
static void chdrs_free(struct chdr *h, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(h[i].name);
		free(h[i].value);
	}
	free(h);
}

/* Fold each run of same-named headers (sorted) into its first entry. */
static size_t merge_duplicates(struct chdr *h, size_t n)
{
	struct buf b = { 0 };
	size_t i, out = 0;

	for (i = 0; i < n; i++) {
		if (out && !strcmp(h[out - 1].name, h[i].name)) {
			buf_adds(&b, h[out - 1].value);
			buf_addc(&b, ',');
			buf_adds(&b, h[i].value);
			free(h[out - 1].value);
			h[out - 1].value = buf_take(&b);
			free(h[i].name);
			free(h[i].value);
			continue;
		}
		h[out++] = h[i];
	}
	return out;
}

/* The headers to sign: lowercased, trimmed, sorted, duplicates joined. */
static struct chdr *canonical_headers(const struct s3_sign_input *in,
				      size_t *pn)
{
	struct chdr *h = xmalloc(in->nheaders * sizeof(*h));
	size_t i;

	for (i = 0; i < in->nheaders; i++) {
		const char *v = in->headers[i].value;

		h[i].name = lower_name(in->headers[i].name);
		h[i].value = trim_value(v ? v : "");
		h[i].order = i;
	}
	qsort(h, in->nheaders, sizeof(*h), chdr_cmp);
	*pn = merge_duplicates(h, in->nheaders);
	return h;
}

/* Append the header names joined by ';'. */
static void add_signed_headers(struct buf *b, const struct chdr *h, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (i)
			buf_addc(b, ';');
		buf_adds(b, h[i].name);
	}
}

/* "host;x-amz-date" style list of the signed headers; caller frees. */
char *s3_sign_signed_headers(const struct s3_sign_input *in)
{
	struct buf b = { 0 };
	size_t n;
	struct chdr *h = canonical_headers(in, &n);

	add_signed_headers(&b, h, n);
	chdrs_free(h, n);
	return buf_take(&b);
}

/* Append the canonical header block, one "name:value\n" per header. */
static void add_header_lines(struct buf *b, const struct chdr *h, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		buf_adds(b, h[i].name);
		buf_addc(b, ':');
		buf_adds(b, h[i].value);
		buf_addc(b, '\n');
	}
}

/* Append s and a newline, then free s. */
static void add_line_take(struct buf *b, char *s)
{
	buf_adds(b, s);
	buf_addc(b, '\n');
	free(s);
}

/* The canonical request; caller frees. */
char *s3_sign_canonical_request(const struct s3_sign_input *in)
{
	struct buf b = { 0 };
	size_t n;
	struct chdr *h = canonical_headers(in, &n);

	buf_adds(&b, in->method);
	buf_addc(&b, '\n');
	add_line_take(&b, canonical_uri(in));
	add_line_take(&b, canonical_query(in));
	add_header_lines(&b, h, n);
	buf_addc(&b, '\n');
	add_signed_headers(&b, h, n);
	buf_addc(&b, '\n');
	buf_adds(&b, in->payload_hash);
	chdrs_free(h, n);
	return buf_take(&b);
}

/* Append the credential scope, yyyymmdd/region/service/aws4_request. */
static void add_scope(struct buf *b, const struct s3_sign_input *in)
{
	buf_add(b, in->amz_date, strnlen(in->amz_date, 8));
	buf_addc(b, '/');
	buf_adds(b, in->region);
	buf_addc(b, '/');
	buf_adds(b, in->service);
	buf_adds(b, "/aws4_request");
}

/* The string to sign for a canonical request; caller frees. */
char *s3_sign_string_to_sign(const struct s3_sign_input *in,
			     const char *canonical_request)
{
	struct buf b = { 0 };
	char hash[65];

	s3_sha256_hex(canonical_request, strlen(canonical_request), hash);
	buf_adds(&b, ALGORITHM "\n");
	buf_adds(&b, in->amz_date);
	buf_addc(&b, '\n');
	add_scope(&b, in);
	buf_addc(&b, '\n');
	buf_adds(&b, hash);
	return buf_take(&b);
}

/* One HMAC-SHA256 step; md receives 32 bytes.  0 on success, -1 if not. */
static int hmac(const void *key, size_t keylen, const char *msg,
		unsigned char md[32])
{
	unsigned int mdlen = 0;

	if (!HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg,
		  strlen(msg), md, &mdlen) || mdlen != 32)
		return -1;
	return 0;
}

/* kSigning = HMAC chain of date, region, service and "aws4_request". */
static int signing_key(const struct s3_sign_input *in, unsigned char key[32])
{
	char date[9];
	struct buf secret = { 0 };
	int result = -1;

	snprintf(date, sizeof(date), "%.8s", in->amz_date);
	buf_adds(&secret, "AWS4");
	buf_adds(&secret, in->secret_key);
	if (hmac(secret.p, secret.len, date, key) ||
	    hmac(key, 32, in->region, key) ||
	    hmac(key, 32, in->service, key) ||
	    hmac(key, 32, "aws4_request", key))
		goto out;
	result = 0;
out:
	OPENSSL_cleanse(secret.p, secret.len);
	free(secret.p);
	return result;
}

/* Hex HMAC signature of a string to sign; out holds 65 bytes. */
void s3_sign_signature(const struct s3_sign_input *in, const char *sts,
		       char out[65])
{
	unsigned char key[32], md[32];

	out[0] = '\0';
	if (signing_key(in, key))
		goto out;
	if (hmac(key, sizeof(key), sts, md))
		goto out;
	hex_encode(md, sizeof(md), out);
out:
	OPENSSL_cleanse(key, sizeof(key));
}

/* The Authorization header value, parts separated by sep; caller frees. */
char *s3_sign_authorization(const struct s3_sign_input *in, const char *sep)
{
	struct buf b = { 0 };
	char *creq = s3_sign_canonical_request(in);
	char *sts = s3_sign_string_to_sign(in, creq);
	char *signed_headers = s3_sign_signed_headers(in);
	char sig[65];

	s3_sign_signature(in, sts, sig);
	buf_adds(&b, ALGORITHM " Credential=");
	buf_adds(&b, in->access_key);
	buf_addc(&b, '/');
	add_scope(&b, in);
	buf_adds(&b, sep);
	buf_adds(&b, "SignedHeaders=");
	buf_adds(&b, signed_headers);
	buf_adds(&b, sep);
	buf_adds(&b, "Signature=");
	buf_adds(&b, sig);
	free(creq);
	free(sts);
	free(signed_headers);
	return buf_take(&b);
}
