/*
 * s3-copy.c - server-side copies: CopyObject, or UploadPartCopy above the
 * copy cutoff.
 *
 * A copy starts with a HEAD of its source.  The size decides between one
 * CopyObject and a copy in parts; the Content-Type is what a copy that
 * replaces the metadata keeps when the caller names none; the ETag pins
 * the version every part takes.  A copy in parts carries no metadata of
 * its own, so the HEAD also collects what a CopyObject would have kept
 * (x-amz-meta-*, Content-Type, Cache-Control and the like) to send again
 * on the CreateMultipartUpload.  Every request goes through the engine:
 * paced as a write (HEAD as a read), retried, redirected; a CopyObject
 * that answers 200 and fails in its body is caught there too.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "s3_i.h"

/* One copy in progress. */
struct copy {
	struct s3_client *c;
	const char *from;
	const char *to;
	const struct s3_meta *meta;	/* NULL: keep the source's */
	const char *content_type;	/* with meta: the new type, or NULL */
	const char *if_match;		/* the caller's ETag, or NULL */
	char *source;			/* the x-amz-copy-source value */
	char match[84];			/* the source's ETag, quoted */
	struct s3_object_info src;	/* what the HEAD said */
	struct s3_hlist kept;		/* the source's headers to carry */
	char etag[80];			/* the new object's */
	time_t mtime;			/* its date, 0 if not told */
};


/* Report that memory ran out. */
static enum s3_status set_nomem(struct s3_error *err)
{
	return s3_set_error(err, S3_LOCAL, "OutOfMemory", "out of memory");
}

/* The x-amz-copy-source value: "/bucket/key", the key percent-encoded. */
char *s3_copy_source(const char *bucket, const char *key)
{
	char *b = s3_uri_encode(bucket, 0);
	char *k = s3_uri_encode(key, 1);
	char *s;

	if (asprintf(&s, "/%s/%s", b, k) < 0)
		s = NULL;
	free(b);
	free(k);
	return s;
}

/* An ETag in quotes, as HTTP conditions write it, whether or not it was. */
static void quote_etag(const char *etag, char *buf, size_t size)
{
	size_t n = strlen(etag);

	if (n >= 2 && etag[0] == '"' && etag[n - 1] == '"')
		snprintf(buf, size, "%s", etag);
	else
		snprintf(buf, size, "\"%s\"", etag);
}

/* The headers of a CopyObject.  0, or -1 without memory. */
int s3_copy_headers(const struct s3_client *c, const char *source,
		    const struct s3_meta *meta, const char *if_match,
		    struct s3_hlist *l)
{
	char q[96];

	if (s3_hlist_add(l, "x-amz-copy-source", source) ||
	    s3_hlist_add(l, "x-amz-metadata-directive",
			 meta ? "REPLACE" : "COPY"))
		return -1;
	if (if_match) {
		quote_etag(if_match, q, sizeof(q));
		if (s3_hlist_add(l, "x-amz-copy-source-if-match", q))
			return -1;
	}
	/* with COPY, Cache-Control is the source's: S3 ignores a new one */
	if (s3_client_object_headers(c, !meta, l))
		return -1;
	return s3_meta_add_headers(meta, l);
}

/* Whether two ETags are the same, quotes or not. */
static int same_etag(const char *a, const char *b)
{
	char qa[96], qb[96];

	quote_etag(a, qa, sizeof(qa));
	quote_etag(b, qb, sizeof(qb));
	return !strcmp(qa, qb);
}

/* Say that the source is not the version the caller meant. */
static enum s3_status source_changed(const struct copy *cp,
				     struct s3_error *err)
{
	/* a HEAD's 200 is no status to report; S3's 412 is */
	long http = err->http == 412 ? 412 : 0;

	s3_set_error(err, S3_INVALID, "PreconditionFailed",
		"the copy source changed: its ETag is no longer %s",
		cp->if_match ? cp->if_match : cp->match);
	err->http = http;
	return S3_INVALID;
}

/* HEAD the source: its size, type, ETag, and the headers to carry. */
static enum s3_status head_source(struct copy *cp, struct s3_error *err)
{
	struct s3_call call;
	enum s3_status st;

	memset(&call, 0, sizeof(call));
	call.method = "HEAD";
	call.key = cp->from;
	call.fd = -1;
	call.kept = &cp->kept;
	st = s3_call(cp->c, &call, err);
	if (st == S3_NOT_FOUND) {
		snprintf(err->message, sizeof(err->message),
			 "the copy source is not there");
		return st;
	}
	if (st != S3_OK)
		return st;
	cp->src = call.info;
	quote_etag(cp->src.etag, cp->match, sizeof(cp->match));
	if (cp->if_match && !same_etag(cp->if_match, cp->src.etag))
		return source_changed(cp, err);
	return S3_OK;
}

/*
 * The Content-Type of the new object: the caller's when the metadata is
 * replaced, else the source's (whole, from the kept headers).
 */
static const char *new_type(const struct copy *cp)
{
	const char *t = s3_hlist_get(&cp->kept, "Content-Type");

	if (cp->meta && cp->content_type)
		return cp->content_type;
	return t ? t : (cp->src.content_type[0] ? cp->src.content_type
						: NULL);
}

/* One CopyObject; it names the type only when it replaces metadata. */
static enum s3_status copy_whole(struct copy *cp, struct s3_error *err)
{
	struct s3_hlist h = { 0 };
	struct s3_call call;
	enum s3_status st;

	if (s3_copy_headers(cp->c, cp->source, cp->meta, cp->if_match, &h)) {
		st = set_nomem(err);
		goto out;
	}
	memset(&call, 0, sizeof(call));
	call.method = "PUT";
	call.key = cp->to;
	call.fd = -1;
	call.content_type = cp->meta ? new_type(cp) : NULL;
	call.headers = &h;
	call.keep_body = 1;
	st = s3_call(cp->c, &call, err);
	if (st == S3_OK && s3_parse_copy_result(call.body, call.body_len,
						"CopyObject", cp->etag,
						sizeof(cp->etag), &cp->mtime))
		st = s3_set_error(err, S3_TRANSIENT, "MalformedResponse",
			     "no ETag in the CopyObject answer");
	free(call.body);
out:
	s3_hlist_free(&h);
	return st;
}

/*
 * The CreateMultipartUpload headers of a copy in parts: the source's
 * metadata again when it is kept, else the new metadata.
 */
static int parts_headers(const struct copy *cp, struct s3_hlist *h)
{
	if (!cp->meta &&
	    s3_hlist_add_all(h, &cp->kept, "Content-Type"))
		return -1;
	/* Cache-Control: the source's, in kept, or the configured one */
	if (s3_client_object_headers(cp->c, !cp->meta, h))
		return -1;
	return s3_meta_add_headers(cp->meta, h);
}

/* Copy in parts, every part pinned to the ETag the HEAD saw. */
static enum s3_status copy_parts(struct copy *cp, struct s3_error *err)
{
	struct s3_mp_source src = {
		.copy_source = cp->source,
		.if_match = cp->match,
		.size = cp->src.size,
	};
	struct s3_hlist h = { 0 };
	enum s3_status st;

	if (parts_headers(cp, &h))
		st = set_nomem(err);
	else
		st = s3_mp_copy(cp->c, cp->to, &src, new_type(cp), &h,
				cp->etag, sizeof(cp->etag), err);
	s3_hlist_free(&h);
	return st;
}

/* What the copy made. */
static void copy_info(const struct copy *cp, struct s3_object_info *pinfo)
{
	const char *t = new_type(cp);

	memset(pinfo, 0, sizeof(*pinfo));
	pinfo->size = cp->src.size;
	pinfo->mtime = cp->mtime ? cp->mtime : time(NULL);
	snprintf(pinfo->etag, sizeof(pinfo->etag), "%s", cp->etag);
	snprintf(pinfo->content_type, sizeof(pinfo->content_type), "%s",
		 t ? t : "");
	pinfo->meta = cp->meta ? *cp->meta : cp->src.meta;
}

/* Refuse arguments that cannot make a request. */
static enum s3_status check_args(const struct copy *cp,
				 struct s3_error *err)
{
	if (!cp->from || !*cp->from || !cp->to || !*cp->to)
		return s3_set_error(err, S3_INVALID, "BadArgument",
			       "empty object key");
	if ((cp->content_type && strpbrk(cp->content_type, "\r\n")) ||
	    (cp->if_match && strpbrk(cp->if_match, "\r\n")))
		return s3_set_error(err, S3_INVALID, "BadArgument",
			       "content type or ETag holds a line break");
	return S3_OK;
}

/* Copy the source as HEAD found it: whole, or in parts past the cutoff. */
static enum s3_status run_copy(struct copy *cp, struct s3_error *err)
{
	struct s3_mp_conf mc;
	enum s3_status st;

	cp->source = s3_copy_source(s3_client_bucket(cp->c), cp->from);
	if (!cp->source)
		return set_nomem(err);
	s3_client_mp_conf(cp->c, &mc);
	if (cp->src.size > mc.copy_cutoff)
		st = copy_parts(cp, err);
	else
		st = copy_whole(cp, err);
	if (st == S3_INVALID && (err->http == 412 ||
				 !strcmp(err->code, "PreconditionFailed")))
		return source_changed(cp, err);
	return st;
}

/* Server-side copy of from_key to to_key in the same bucket. */
enum s3_status s3_copy(struct s3_client *c, const char *from_key,
		       const char *to_key, const struct s3_meta *meta,
		       const char *content_type, const char *if_match,
		       struct s3_object_info *pinfo, struct s3_error *err)
{
	struct copy cp = {
		.c = c,
		.from = from_key,
		.to = to_key,
		.meta = meta,
		.content_type = content_type,
		.if_match = if_match && *if_match ? if_match : NULL,
	};
	enum s3_status st = check_args(&cp, err);

	if (st == S3_OK)
		st = head_source(&cp, err);
	if (st == S3_OK)
		st = run_copy(&cp, err);
	if (st == S3_OK && pinfo)
		copy_info(&cp, pinfo);
	free(cp.source);
	s3_hlist_free(&cp.kept);
	return st;
}
