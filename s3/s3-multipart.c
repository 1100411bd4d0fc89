/*
 * s3-multipart.c - large files go up in parts.
 *
 * From the threshold on, s3_put_file_ex starts a multipart upload, sends
 * the parts a few at a time (each one paced by the limiter, carrying its
 * Content-MD5, its ETag checked, retried alone by the engine) and
 * completes it with the list of ETags.  An upload that is given up is
 * aborted, so S3 keeps no orphaned parts, unless the caller can resume it:
 * then it stays, and a later call with its id asks ListParts which parts
 * S3 already holds and sends only the others.
 *
 * Copies above the copy cutoff go the same way, with UploadPartCopy
 * asking S3 to take each part from a byte range of the source; every part
 * names the source's ETag, so that a source replaced meanwhile fails the
 * copy instead of mixing two versions.  A copy is never resumed: one
 * that fails is aborted.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <libxml/xmlwriter.h>
#include <openssl/evp.h>

#include "log.h"
#include "s3_i.h"

#define MIB (1024ULL * 1024)
#define MIN_PART (5 * MIB)		/* S3's smallest part but the last */
#define MAX_PART (5 * 1024 * MIB)	/* S3's largest part */
#define MAX_PARTS 10000
#define MAX_OBJECT (5 * 1024 * 1024 * MIB)	/* 5 TiB */
#define S3_XMLNS "http://s3.amazonaws.com/doc/2006-03-01/"

/*
 * One upload in progress.  lock guards next, failed and err, which the
 * part threads share; each part's slot in parts and md5 belongs to the
 * thread that took it.
 */
struct upload {
	struct s3_client *c;
	const char *key;
	int fd;				/* the file uploaded, or -1 */
	const struct s3_mp_source *src;	/* the object copied, or NULL */
	const struct s3_hlist *headers;	/* for CreateMultipartUpload */
	uint64_t size;
	uint64_t part_size;
	int nparts;
	char *upload_id;
	struct s3_part *parts;		/* etag set once uploaded */
	char (*md5)[33];		/* hex MD5 of each part, "" unknown */
	struct s3_part_list held;	/* what S3 holds, when resuming */
	int completed;			/* S3 took the Complete */
	int background;			/* part threads as the caller */

	pthread_mutex_t lock;
	int next;
	int failed;
	struct s3_error err;
};

static enum s3_status set_err(struct s3_error *err, enum s3_status st,
			      long http, const char *code, const char *fmt,
			      ...) __attribute__((format(printf, 5, 6)));

/* Fill err with a class, an HTTP status, a code and a message. */
static enum s3_status set_err(struct s3_error *err, enum s3_status st,
			      long http, const char *code, const char *fmt,
			      ...)
{
	va_list ap;

	memset(err, 0, sizeof(*err));
	err->status = st;
	err->http = http;
	snprintf(err->code, sizeof(err->code), "%s", code);
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return st;
}

/* The part size for an object of size bytes: S3's limits respected. */
uint64_t s3_mp_part_size(uint64_t size, uint64_t wanted)
{
	uint64_t p = wanted < MIN_PART ? MIN_PART : wanted;
	uint64_t need = (size + MAX_PARTS - 1) / MAX_PARTS;

	/* grow the part, in whole MiB, rather than exceed 10,000 parts */
	if (p < need)
		p = (need + MIB - 1) / MIB * MIB;
	return p > MAX_PART ? MAX_PART : p;
}

/* How many parts of part_size make size bytes (1 for an empty object). */
int s3_mp_part_count(uint64_t size, uint64_t part_size)
{
	uint64_t n = (size + part_size - 1) / part_size;

	if (!n)
		return 1;
	return n > MAX_PARTS ? MAX_PARTS + 1 : (int)n;
}

/* Where part i (0-based) starts, and how long it is. */
static void part_span(uint64_t size, uint64_t part_size, int i,
		      uint64_t *poff, uint64_t *plen)
{
	uint64_t off = (uint64_t)i * part_size;

	*poff = off;
	*plen = size - off < part_size ? size - off : part_size;
}

/* "bytes=first-last" of part i (0-based) for x-amz-copy-source-range. */
void s3_mp_copy_range(uint64_t size, uint64_t part_size, int i, char *buf,
		      size_t n)
{
	uint64_t off, len;

	part_span(size, part_size, i, &off, &len);
	snprintf(buf, n, "bytes=%llu-%llu", (unsigned long long)off,
		 (unsigned long long)(off + len - 1));
}

/* Write the parts into an XML writer; 0, or -1 on failure. */
static int write_parts(xmlTextWriterPtr w, const struct s3_part *parts,
		       size_t n)
{
	size_t i;
	int bad = 0;

	for (i = 0; i < n && !bad; i++) {
		bad |= xmlTextWriterStartElement(w, BAD_CAST "Part") < 0;
		bad |= xmlTextWriterWriteFormatElement(w,
			BAD_CAST "PartNumber", "%d", parts[i].number) < 0;
		/* quotes as S3 wrote them; the ETag itself escaped */
		bad |= xmlTextWriterStartElement(w, BAD_CAST "ETag") < 0;
		bad |= xmlTextWriterWriteRaw(w, BAD_CAST "\"") < 0;
		bad |= xmlTextWriterWriteString(w,
			BAD_CAST parts[i].etag) < 0;
		bad |= xmlTextWriterWriteRaw(w, BAD_CAST "\"") < 0;
		bad |= xmlTextWriterEndElement(w) < 0;
		bad |= xmlTextWriterEndElement(w) < 0;
	}
	return bad ? -1 : 0;
}

/*
 * The CompleteMultipartUpload body; the writer escapes what the ETags
 * (which come from the server) might hold.  Caller frees; NULL: no memory.
 */
char *s3_mp_complete_body(const struct s3_part *parts, size_t n)
{
	xmlBufferPtr buf = xmlBufferCreate();
	xmlTextWriterPtr w = buf ? xmlNewTextWriterMemory(buf, 0) : NULL;
	char *out = NULL;
	int bad;

	if (!w)
		goto out;
	bad = xmlTextWriterStartDocument(w, NULL, "UTF-8", NULL) < 0;
	bad |= xmlTextWriterStartElement(w,
		BAD_CAST "CompleteMultipartUpload") < 0;
	bad |= xmlTextWriterWriteAttribute(w, BAD_CAST "xmlns",
					   BAD_CAST S3_XMLNS) < 0;
	bad |= write_parts(w, parts, n);
	bad |= xmlTextWriterEndDocument(w) < 0;
	xmlFreeTextWriter(w);
	w = NULL;
	if (!bad)
		out = strdup((const char *)xmlBufferContent(buf));
out:
	xmlFreeTextWriter(w);
	if (buf)
		xmlBufferFree(buf);
	return out;
}

/* Feed the binary form of a hex MD5 into ctx.  0, or -1. */
static int add_md5(EVP_MD_CTX *ctx, const char *hex)
{
	unsigned char b[16];
	int i, hi, lo;

	for (i = 0; i < 16; i++) {
		hi = s3_hex_digit(hex[2 * i]);
		lo = hi >= 0 ? s3_hex_digit(hex[2 * i + 1]) : -1;
		if (lo < 0)
			return -1;
		b[i] = (unsigned char)(hi << 4 | lo);
	}
	return EVP_DigestUpdate(ctx, b, 16) ? 0 : -1;
}

/*
 * The ETag S3 gives a multipart object: the hex MD5 of the parts' binary
 * MD5s, a dash and the number of parts.  0, or -1.
 */
int s3_mp_etag(const char (*md5_hex)[33], size_t n, char *out, size_t size)
{
	static const char digits[] = "0123456789abcdef";
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char md[EVP_MAX_MD_SIZE];
	char hex[33];
	unsigned int len = 0, i;
	size_t k;
	int bad = !ctx || !EVP_DigestInit_ex(ctx, EVP_md5(), NULL);

	for (k = 0; k < n && !bad; k++)
		bad = add_md5(ctx, md5_hex[k]);
	if (!bad)
		bad = !EVP_DigestFinal_ex(ctx, md, &len) || len != 16;
	EVP_MD_CTX_free(ctx);
	if (bad)
		return -1;
	for (i = 0; i < 16; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 15];
	}
	hex[32] = '\0';
	snprintf(out, size, "%s-%zu", hex, n);
	return 0;
}

/* A call on the upload's key with the upload id as its parameter. */
static void upload_call(struct s3_call *call, const struct upload *u,
			const char *method)
{
	memset(call, 0, sizeof(*call));
	call->method = method;
	call->key = u->key;
	call->fd = -1;
	call->params[0] = (struct s3_pair){ "uploadId", u->upload_id };
	call->nparams = 1;
}

/*
 * Start a multipart upload with the new object's headers (its metadata
 * goes here, the parts carry none); u->upload_id is set on success.
 */
static enum s3_status initiate(struct upload *u, const char *content_type,
			       struct s3_error *err)
{
	struct s3_call call;
	enum s3_status st;

	memset(&call, 0, sizeof(call));
	call.method = "POST";
	call.key = u->key;
	call.fd = -1;
	call.params[0] = (struct s3_pair){ "uploads", "" };
	call.nparams = 1;
	call.content_type = content_type;
	call.headers = u->headers;
	call.keep_body = 1;
	st = s3_call(u->c, &call, err);
	if (st == S3_OK) {
		u->upload_id = s3_parse_upload_id(call.body, call.body_len);
		if (!u->upload_id)
			st = set_err(err, S3_TRANSIENT, 200,
				     "MalformedResponse",
				     "no UploadId in the answer");
	}
	free(call.body);
	return st;
}

/* Append one ListParts page to u->held.  0, or -1 without memory. */
static int keep_parts(struct upload *u, const struct s3_part_list *pl)
{
	size_t n = u->held.nparts + pl->nparts;
	struct s3_part *p = realloc(u->held.parts, (n ? n : 1) * sizeof(*p));

	if (!p)
		return -1;
	memcpy(p + u->held.nparts, pl->parts, pl->nparts * sizeof(*p));
	u->held.parts = p;
	u->held.nparts = n;
	return 0;
}

/* One ListParts page from marker on; *pnext is 0 after the last page. */
static enum s3_status list_page(struct upload *u, int marker, int *pnext,
				struct s3_error *err)
{
	struct s3_part_list pl;
	struct s3_call call;
	char m[16];
	enum s3_status st;

	upload_call(&call, u, "GET");
	snprintf(m, sizeof(m), "%d", marker);
	if (marker > 0)
		call.params[call.nparams++] =
			(struct s3_pair){ "part-number-marker", m };
	call.keep_body = 1;
	*pnext = 0;
	st = s3_call(u->c, &call, err);
	if (st == S3_OK && s3_parse_parts(call.body, call.body_len, &pl)) {
		st = set_err(err, S3_TRANSIENT, 200, "MalformedResponse",
			     "unreadable ListParts answer");
	} else if (st == S3_OK) {
		if (keep_parts(u, &pl))
			st = set_err(err, S3_LOCAL, 0, "OutOfMemory",
				     "out of memory");
		if (pl.truncated && pl.next_marker > marker)
			*pnext = pl.next_marker;
		s3_part_list_free(&pl);
	}
	free(call.body);
	return st;
}

/* Learn which parts S3 already holds for the upload being resumed. */
static enum s3_status list_held(struct upload *u, struct s3_error *err)
{
	enum s3_status st;
	int marker = 0, next = 0;

	do {
		st = list_page(u, marker, &next, err);
		marker = next;
	} while (st == S3_OK && next);
	return st;
}

/* Whether S3 already holds part number n with these bytes. */
static int held(const struct upload *u, int n, uint64_t size,
		const char *md5)
{
	size_t i;

	for (i = 0; i < u->held.nparts; i++)
		if (u->held.parts[i].number == n &&
		    u->held.parts[i].size == size &&
		    !strcasecmp(u->held.parts[i].etag, md5))
			return 1;
	return 0;
}

/* Upload part i (0-based) unless S3 holds it already. */
static enum s3_status upload_part(struct upload *u, int i,
				  struct s3_error *err)
{
	uint64_t off, len;
	struct s3_part *p = &u->parts[i];
	char sha[65], b64[25], num[12];
	struct s3_call call;
	enum s3_status st;
	int e;

	part_span(u->size, u->part_size, i, &off, &len);
	p->number = i + 1;
	p->size = len;
	e = s3_hash_fd(u->fd, off, len, sha, u->md5[i], b64);
	if (e)
		return set_err(err, S3_LOCAL, 0, "ReadFailed",
			       "reading the file to upload: %s", strerror(e));
	if (held(u, p->number, len, u->md5[i])) {
		snprintf(p->etag, sizeof(p->etag), "%s", u->md5[i]);
		return S3_OK;
	}
	upload_call(&call, u, "PUT");
	snprintf(num, sizeof(num), "%d", p->number);
	call.params[call.nparams++] = (struct s3_pair){ "partNumber", num };
	call.fd = u->fd;
	call.off = off;
	call.size = len;
	call.payload_hash = sha;
	call.md5 = b64;
	call.want_etag = u->md5[i];
	st = s3_call(u->c, &call, err);
	if (st == S3_OK)
		snprintf(p->etag, sizeof(p->etag), "%s",
			 call.info.etag[0] ? call.info.etag : u->md5[i]);
	return st;
}

/* The headers of one UploadPartCopy.  0, or -1 without memory. */
static int copy_part_headers(const struct upload *u, int i,
			     struct s3_hlist *h)
{
	char range[64];

	s3_mp_copy_range(u->size, u->part_size, i, range, sizeof(range));
	if (s3_hlist_add(h, "x-amz-copy-source", u->src->copy_source) ||
	    s3_hlist_add(h, "x-amz-copy-source-range", range))
		return -1;
	if (u->src->if_match &&
	    s3_hlist_add(h, "x-amz-copy-source-if-match", u->src->if_match))
		return -1;
	return 0;
}

/*
 * Have S3 copy part i (0-based) from the source.  The part's ETag is the
 * MD5 of its bytes (unless encryption makes it opaque), which lets the
 * object's ETag be checked as an upload's is.
 */
static enum s3_status copy_part(struct upload *u, int i,
				struct s3_error *err)
{
	struct s3_part *p = &u->parts[i];
	struct s3_hlist h = { 0 };
	struct s3_call call;
	char num[12];
	uint64_t off;
	enum s3_status st;

	part_span(u->size, u->part_size, i, &off, &p->size);
	p->number = i + 1;
	if (copy_part_headers(u, i, &h)) {
		st = set_err(err, S3_LOCAL, 0, "OutOfMemory", "out of memory");
		goto out;
	}
	upload_call(&call, u, "PUT");
	snprintf(num, sizeof(num), "%d", p->number);
	call.params[call.nparams++] = (struct s3_pair){ "partNumber", num };
	call.headers = &h;
	call.keep_body = 1;
	st = s3_call(u->c, &call, err);
	if (st == S3_OK && s3_parse_copy_result(call.body, call.body_len,
						"CopyPart", p->etag,
						sizeof(p->etag), NULL))
		st = set_err(err, S3_TRANSIENT, 200, "MalformedResponse",
			     "no ETag in the UploadPartCopy answer");
	if (st == S3_OK && !call.etag_opaque && strlen(p->etag) == 32 &&
	    strspn(p->etag, "0123456789abcdefABCDEF") == 32)
		snprintf(u->md5[i], sizeof(u->md5[i]), "%s", p->etag);
	free(call.body);
out:
	s3_hlist_free(&h);
	return st;
}

/* Send part i (0-based): upload it, or have S3 copy it. */
static enum s3_status send_part(struct upload *u, int i,
				struct s3_error *err)
{
	return u->src ? copy_part(u, i, err) : upload_part(u, i, err);
}

/* The index of the next part to send, or -1 when none is left. */
static int take_part(struct upload *u)
{
	int i = -1;

	pthread_mutex_lock(&u->lock);
	if (!u->failed && u->next < u->nparts)
		i = u->next++;
	pthread_mutex_unlock(&u->lock);
	return i;
}

/* Record the first failure of a part; the others stop taking parts. */
static void part_failed(struct upload *u, const struct s3_error *err)
{
	pthread_mutex_lock(&u->lock);
	if (!u->failed)
		u->err = *err;
	u->failed = 1;
	pthread_mutex_unlock(&u->lock);
}

/* A part thread: send parts until none is left or one failed. */
static void *part_worker(void *arg)
{
	struct upload *u = arg;
	struct s3_error err;
	int i;

	if (u->background)
		s3_background(u->c);
	while ((i = take_part(u)) >= 0)
		if (send_part(u, i, &err) != S3_OK)
			part_failed(u, &err);
	return NULL;
}

/* Send every part, a few at once; the calling thread is one of them. */
static enum s3_status send_parts(struct upload *u, struct s3_error *err)
{
	struct s3_mp_conf mc;
	pthread_t tids[16];
	int n, i, started = 0;

	s3_client_mp_conf(u->c, &mc);
	u->background = s3_is_background(u->c);
	n = mc.threads < u->nparts ? mc.threads : u->nparts;
	if (n > 16)
		n = 16;
	for (i = 1; i < n; i++)
		if (!pthread_create(&tids[started], NULL, part_worker, u))
			started++;
	part_worker(u);
	for (i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	if (!u->failed)
		return S3_OK;
	*err = u->err;
	return err->status;
}

/* Send CompleteMultipartUpload; etag gets the object's ETag. */
static enum s3_status send_complete(struct upload *u, char *etag,
				    size_t size, int *popaque,
				    struct s3_error *err)
{
	char *body = s3_mp_complete_body(u->parts, (size_t)u->nparts);
	char sha[65], b64[25];
	struct s3_call call;
	enum s3_status st;

	if (!body)
		return set_err(err, S3_LOCAL, 0, "OutOfMemory",
			       "out of memory");
	upload_call(&call, u, "POST");
	call.content_type = "application/xml";
	call.data = body;
	call.size = strlen(body);
	s3_sha256_hex(body, call.size, sha);
	s3_md5_base64(body, call.size, b64);
	call.payload_hash = sha;
	call.md5 = b64;
	call.keep_body = 1;
	st = s3_call(u->c, &call, err);
	*popaque = call.etag_opaque;
	if (st == S3_OK && s3_parse_complete(call.body, call.body_len, etag,
					     size))
		etag[0] = '\0';
	free(call.body);
	free(body);
	return st;
}

/*
 * Complete the upload and check the ETag.  A Complete whose answer was
 * lost may have worked: NoSuchUpload then, and the object is there with
 * the ETag these parts make.
 */
static enum s3_status complete(struct upload *u, char *etag, size_t size,
			       struct s3_error *err)
{
	char want[48];
	struct s3_object_info info;
	struct s3_error herr;
	enum s3_status st;
	int opaque = 0;

	/* a part whose MD5 is unknown (opaque ETags) leaves nothing to check */
	if (s3_mp_etag((const char (*)[33])u->md5, (size_t)u->nparts, want,
		       sizeof(want)))
		want[0] = '\0';
	st = send_complete(u, etag, size, &opaque, err);
	if (st == S3_NOT_FOUND && want[0] &&
	    s3_head(u->c, u->key, &info, &herr) == S3_OK &&
	    !strcmp(info.etag, want)) {
		snprintf(etag, size, "%s", info.etag);
		memset(err, 0, sizeof(*err));
		st = S3_OK;
	}
	if (st != S3_OK)
		return st;
	u->completed = 1;
	/* S3 assembled something else than the parts sent */
	if (want[0] && !opaque && strchr(etag, '-') && strcasecmp(etag, want))
		return set_err(err, S3_TRANSIENT, 200, "ETagMismatch",
			       "multipart ETag %s is not %s", etag, want);
	return S3_OK;
}

/* Abort the upload, so that S3 keeps none of its parts. */
static void abort_upload(struct upload *u)
{
	struct s3_call call;
	struct s3_error err;
	char kb[512];
	enum s3_status st;

	upload_call(&call, u, "DELETE");
	st = s3_call(u->c, &call, &err);
	if (st != S3_OK && st != S3_NOT_FOUND)
		log_warn("s3", "multipart: bucket=%s key=%s: abort failed: "
			 "%ld %s; S3 may keep the parts",
			 s3_client_bucket(u->c), log_key(u->key, kb,
							 sizeof(kb)),
			 err.http, err.code);
}

/* Set the upload up: part size, count, and the arrays. */
static enum s3_status plan(struct upload *u, struct s3_error *err)
{
	struct s3_mp_conf mc;

	s3_client_mp_conf(u->c, &mc);
	u->part_size = s3_mp_part_size(u->size, mc.part_size);
	u->nparts = s3_mp_part_count(u->size, u->part_size);
	if (u->size > MAX_OBJECT || u->nparts > MAX_PARTS)
		return set_err(err, S3_INVALID, 0, "EntityTooLarge",
			       "%llu bytes is over S3's 5 TiB limit",
			       (unsigned long long)u->size);
	u->parts = calloc((size_t)u->nparts, sizeof(*u->parts));
	u->md5 = calloc((size_t)u->nparts, sizeof(*u->md5));
	if (!u->parts || !u->md5)
		return set_err(err, S3_LOCAL, 0, "OutOfMemory",
			       "out of memory");
	return S3_OK;
}

/*
 * Resume the upload the caller names when S3 still has it, else start a
 * new one; either way the caller learns the id in use.  A resumed upload
 * keeps the metadata it was started with: S3 takes it only from the
 * CreateMultipartUpload.
 */
static enum s3_status begin(struct upload *u, const char *content_type,
			    const struct s3_put_opts *opts,
			    struct s3_error *err)
{
	enum s3_status st = S3_NOT_FOUND;
	char kb[512];

	if (opts && opts->resume_upload_id && *opts->resume_upload_id) {
		u->upload_id = strdup(opts->resume_upload_id);
		st = u->upload_id ? list_held(u, err)
				  : set_err(err, S3_LOCAL, 0, "OutOfMemory",
					    "out of memory");
		if (st == S3_NOT_FOUND)
			log_info("s3", "multipart: bucket=%s key=%s: upload "
				 "to resume is gone; starting anew",
				 s3_client_bucket(u->c),
				 log_key(u->key, kb, sizeof(kb)));
	}
	if (st == S3_NOT_FOUND) {
		free(u->upload_id);
		u->upload_id = NULL;
		s3_part_list_free(&u->held);
		st = initiate(u, content_type, err);
	}
	if (st == S3_OK && opts && opts->on_upload_id)
		opts->on_upload_id(opts->arg, u->upload_id);
	return st;
}

/* Log how a multipart upload or copy ended. */
static void log_end(const struct upload *u, enum s3_status st,
		    const struct s3_error *err, int kept)
{
	const char *what = u->src ? "multipart copy" : "multipart";
	char kb[512];

	if (st == S3_OK) {
		log_info("s3", "%s: bucket=%s key=%s: %d parts of %llu bytes "
			 "done", what, s3_client_bucket(u->c),
			 log_key(u->key, kb, sizeof(kb)), u->nparts,
			 (unsigned long long)u->part_size);
		return;
	}
	log_warn("s3", "%s: bucket=%s key=%s: %ld %s: %s; %s", what,
		 s3_client_bucket(u->c), log_key(u->key, kb, sizeof(kb)),
		 err->http, err->code, err->message,
		 kept ? "upload kept to resume" : "upload aborted");
}

/* Free what the upload holds. */
static void upload_free(struct upload *u)
{
	pthread_mutex_destroy(&u->lock);
	free(u->upload_id);
	free(u->parts);
	free(u->md5);
	s3_part_list_free(&u->held);
}

/* Send the parts and complete; etag gets the object's ETag. */
static enum s3_status run_upload(struct upload *u, char *etag, size_t size,
				 struct s3_error *err)
{
	enum s3_status st = send_parts(u, err);

	if (st == S3_OK)
		st = complete(u, etag, size, err);
	return st;
}

/*
 * Send the parts of a started upload and complete it.  On failure abort
 * it, unless keep (the caller can resume it) and attempts ran out.
 */
static enum s3_status finish(struct upload *u, int keep, char *etag,
			     size_t size, struct s3_error *err)
{
	enum s3_status st = run_upload(u, etag, size, err);
	int kept = st == S3_TRANSIENT && keep;

	/* after a Complete there is no upload left to abort */
	if (st != S3_OK && !kept && !u->completed)
		abort_upload(u);
	log_end(u, st, err, kept);
	return st;
}

/* What a multipart upload made. */
static void upload_info(const struct upload *u, const char *etag,
			const char *content_type, const struct s3_meta *meta,
			struct s3_object_info *pinfo)
{
	memset(pinfo, 0, sizeof(*pinfo));
	pinfo->size = u->size;
	pinfo->mtime = time(NULL);
	snprintf(pinfo->etag, sizeof(pinfo->etag), "%s", etag);
	snprintf(pinfo->content_type, sizeof(pinfo->content_type), "%s",
		 content_type);
	if (meta)
		pinfo->meta = *meta;
}

/* Upload fd by multipart; the engine behind s3_put_file_ex. */
enum s3_status s3_mp_upload(struct s3_client *c, const char *key, int fd,
			    uint64_t size, const char *content_type,
			    const struct s3_put_opts *opts,
			    struct s3_object_info *pinfo,
			    struct s3_error *err)
{
	struct upload u = { .c = c, .key = key, .fd = fd, .size = size };
	const struct s3_meta *meta = opts ? opts->meta : NULL;
	struct s3_hlist h = { 0 };
	char etag[80] = "";
	enum s3_status st;

	if (!content_type)
		content_type = "application/octet-stream";
	if (strpbrk(content_type, "\r\n"))
		return set_err(err, S3_INVALID, 0, "BadArgument",
			       "content type holds a line break");
	pthread_mutex_init(&u.lock, NULL);
	u.headers = &h;
	st = plan(&u, err);
	if (st == S3_OK && (s3_client_object_headers(c, 0, &h) ||
			    s3_meta_add_headers(meta, &h)))
		st = set_err(err, S3_LOCAL, 0, "OutOfMemory", "out of memory");
	if (st == S3_OK)
		st = begin(&u, content_type, opts, err);
	if (st == S3_OK)
		st = finish(&u, opts && opts->on_upload_id, etag,
			    sizeof(etag), err);
	if (st == S3_OK && pinfo)
		upload_info(&u, etag, content_type, meta, pinfo);
	s3_hlist_free(&h);
	upload_free(&u);
	return st;
}

/* Copy src to key in parts; aborted when it fails. */
enum s3_status s3_mp_copy(struct s3_client *c, const char *key,
			  const struct s3_mp_source *src,
			  const char *content_type,
			  const struct s3_hlist *headers, char *etag,
			  size_t esize, struct s3_error *err)
{
	struct upload u = { .c = c, .key = key, .fd = -1, .src = src,
			    .headers = headers, .size = src->size };
	enum s3_status st;

	if (content_type && strpbrk(content_type, "\r\n"))
		return set_err(err, S3_INVALID, 0, "BadArgument",
			       "content type holds a line break");
	pthread_mutex_init(&u.lock, NULL);
	etag[0] = '\0';
	st = plan(&u, err);
	if (st == S3_OK)
		st = initiate(&u, content_type, err);
	if (st == S3_OK)
		st = finish(&u, 0, etag, esize, err);
	upload_free(&u);
	return st;
}
