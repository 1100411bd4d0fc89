/*
 * s3-parse.c - what S3's answers mean: error classes and listings.
 *
 * s3_error_from_response is the one place where an HTTP status and an
 * error body become an enum s3_status; every request in s3/ goes through
 * it, so the retry policy in the transfer engine sees one consistent set of
 * classes.  Redirect bodies, multipart answers (InitiateMultipartUpload,
 * CompleteMultipartUpload, ListParts) and copy answers (CopyObject,
 * UploadPartCopy) are read here too.  The XML is parsed with libxml2
 * without network access or outside entities, and elements are matched on
 * their local names, so the S3 namespace (or its absence on some servers)
 * makes no difference.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "s3_i.h"

/* An S3 error code whose class does not follow from the HTTP status. */
struct code_class {
	const char *code;
	enum s3_status status;
};

/*
 * Codes first, status second: S3 sends RequestTimeout as a 400 and
 * NoSuchBucket as a 404, and neither means what its status says.
 */
static const struct code_class code_classes[] = {
	{ "NoSuchKey", S3_NOT_FOUND },
	{ "NoSuchBucket", S3_HARD },
	{ "AccessDenied", S3_HARD },
	{ "AllAccessDisabled", S3_HARD },
	{ "AccountProblem", S3_HARD },
	{ "InvalidAccessKeyId", S3_HARD },
	{ "SignatureDoesNotMatch", S3_HARD },
	{ "AuthorizationHeaderMalformed", S3_HARD },
	{ "ExpiredToken", S3_HARD },
	{ "InvalidToken", S3_HARD },
	{ "PermanentRedirect", S3_HARD },
	{ "SlowDown", S3_TRANSIENT },
	{ "RequestTimeout", S3_TRANSIENT },
	/* the body was damaged on the way: sending it again cures that */
	{ "BadDigest", S3_TRANSIENT },
	{ "IncompleteBody", S3_TRANSIENT },
	{ "XAmzContentSHA256Mismatch", S3_TRANSIENT },
	{ "NoSuchUpload", S3_NOT_FOUND },
	{ "InternalError", S3_TRANSIENT },
	{ "ServiceUnavailable", S3_TRANSIENT },
	{ "OperationAborted", S3_TRANSIENT },
	/*
	 * Sent as 4xx these are S3_INVALID by their status anyway; inside a
	 * 200 (CopyObject, CompleteMultipartUpload) a retry cannot help them
	 * either.  PreconditionFailed: a copy's source is not the version
	 * asked for.
	 */
	{ "PreconditionFailed", S3_INVALID },
	{ "InvalidRequest", S3_INVALID },
	{ "InvalidArgument", S3_INVALID },
};

/* What to say about a status when the answer has no body to say it. */
struct status_text {
	long http;
	const char *code;	/* NULL: "HTTP <status>" */
	const char *reason;
};

static const struct status_text status_texts[] = {
	{ 301, NULL, "Moved Permanently" },
	{ 304, "NotModified", "Not Modified" },
	{ 307, NULL, "Temporary Redirect" },
	{ 400, "BadRequest", "Bad Request" },
	{ 403, "Forbidden", "Forbidden" },
	{ 404, "NotFound", "Not Found" },
	{ 405, NULL, "Method Not Allowed" },
	{ 409, NULL, "Conflict" },
	{ 411, NULL, "Length Required" },
	{ 412, "PreconditionFailed", "Precondition Failed" },
	{ 416, "InvalidRange", "Range Not Satisfiable" },
	{ 429, NULL, "Too Many Requests" },
	{ 500, NULL, "Internal Server Error" },
	{ 501, NULL, "Not Implemented" },
	{ 502, NULL, "Bad Gateway" },
	{ 503, NULL, "Service Unavailable" },
	{ 504, NULL, "Gateway Timeout" },
};

/*
 * Parse a body into a tree, refusing the network and outside entities.
 * recover keeps what precedes a flaw: an error body cut at its cap still
 * has its <Code>.  Leading white space is skipped: S3 sends some to keep
 * the connection of a slow answer alive (CompleteMultipartUpload, whose
 * 200 comes first, like a CopyObject's), and an XML declaration after it
 * would not parse.
 */
static xmlDocPtr read_xml(const char *body, size_t len, int recover)
{
	int opts = XML_PARSE_NONET | XML_PARSE_NOBLANKS | XML_PARSE_NOERROR |
		   XML_PARSE_NOWARNING;

	while (body && len && *body && strchr(" \t\r\n", *body)) {
		body++;
		len--;
	}
	if (!body || !len || len > INT_MAX)
		return NULL;
	if (recover)
		opts |= XML_PARSE_RECOVER;
	return xmlReadMemory(body, (int)len, NULL, NULL, opts);
}

/* Whether n is an element with this local name, in any namespace. */
static int is_named(const xmlNode *n, const char *name)
{
	return n && n->type == XML_ELEMENT_NODE &&
	       !strcmp((const char *)n->name, name);
}

/* The first child element of n with this local name, or NULL. */
static xmlNode *child_named(const xmlNode *n, const char *name)
{
	xmlNode *c;

	for (c = n ? n->children : NULL; c; c = c->next)
		if (is_named(c, name))
			return c;
	return NULL;
}

/* The text of n as a malloc'd string ("" when empty), NULL without memory. */
static char *dup_text(const xmlNode *n)
{
	xmlChar *x = xmlNodeGetContent(n);
	char *s = strdup(x ? (const char *)x : "");

	xmlFree(x);
	return s;
}

/*
 * Copy untrusted text into a fixed field: control bytes become '?', so a
 * message cannot break a log line, and a cut never splits a UTF-8 sequence.
 */
static void copy_field(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);
	size_t i;

	if (n >= size) {
		n = size - 1;
		while (n > 0 && ((unsigned char)src[n] & 0xc0) == 0x80)
			n--;
	}
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)src[i];

		dst[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	dst[n] = '\0';
}

/* Copy the text of the child element called name into a fixed field. */
static void copy_child(char *dst, size_t size, const xmlNode *n,
		       const char *name)
{
	xmlNode *c = child_named(n, name);
	char *s;

	if (!c)
		return;
	s = dup_text(c);
	if (s)
		copy_field(dst, size, s);
	free(s);
}

/* Fill code and message from an <Error> body; fields stay "" otherwise. */
static void parse_error_body(const char *body, size_t len,
			     struct s3_error *err)
{
	xmlDocPtr doc = read_xml(body, len, 1);
	xmlNode *e;

	if (!doc)
		return;
	e = xmlDocGetRootElement(doc);
	/* IAM and STS wrap it: <ErrorResponse><Error>... */
	if (!is_named(e, "Error"))
		e = child_named(e, "Error");
	if (e) {
		copy_child(err->code, sizeof(err->code), e, "Code");
		copy_child(err->message, sizeof(err->message), e, "Message");
	}
	xmlFreeDoc(doc);
}

/* The fixed texts for a status, or NULL when there are none. */
static const struct status_text *status_text(long http)
{
	size_t i;

	for (i = 0; i < sizeof(status_texts) / sizeof(status_texts[0]); i++)
		if (status_texts[i].http == http)
			return &status_texts[i];
	return NULL;
}

/* Give a body-less answer a code and a message from its status alone. */
static void synthesize_texts(long http, struct s3_error *err)
{
	const struct status_text *t = status_text(http);

	if (!err->code[0]) {
		if (t && t->code)
			snprintf(err->code, sizeof(err->code), "%s", t->code);
		else
			snprintf(err->code, sizeof(err->code), "HTTP %ld",
				 http);
	}
	if (!err->message[0])
		snprintf(err->message, sizeof(err->message), "%s",
			 t ? t->reason : "unexpected HTTP status");
}

/* The class an S3 error code forces, or S3_OK when the status decides. */
static enum s3_status class_of_code(const char *code)
{
	size_t i;

	for (i = 0; i < sizeof(code_classes) / sizeof(code_classes[0]); i++)
		if (!strcmp(code_classes[i].code, code))
			return code_classes[i].status;
	return S3_OK;
}

/* The class of a non-2xx HTTP status on its own. */
static enum s3_status class_of_http(long http)
{
	if (http == 404)
		return S3_NOT_FOUND;
	/* 307 is how S3 answers while a new bucket's DNS name spreads. */
	if (http == 307 || http == 408 || http == 429)
		return S3_TRANSIENT;
	/* Redirects are not followed here: the endpoint is simply wrong. */
	if (http == 403 || (http >= 300 && http < 400))
		return S3_HARD;
	if (http >= 500 && http < 600 && http != 501)
		return S3_TRANSIENT;
	return S3_INVALID;
}

/* Turn an HTTP status and an S3 error body into err. */
void s3_error_from_response(long http, const char *body, size_t len,
			    struct s3_error *err)
{
	enum s3_status st;

	memset(err, 0, sizeof(*err));
	err->http = http;
	if (http >= 200 && http < 300)
		return;

	parse_error_body(body, len, err);
	synthesize_texts(http, err);
	st = class_of_code(err->code);
	err->status = st != S3_OK ? st : class_of_http(http);
}

/*
 * Whether a 2xx body is an <Error> after all: CompleteMultipartUpload
 * answers 200 at once and may fail while it assembles the parts.
 */
int s3_error_in_body(const char *body, size_t len, struct s3_error *err)
{
	xmlDocPtr doc = read_xml(body, len, 1);
	int found;
	enum s3_status st;

	if (!doc)
		return 0;
	found = is_named(xmlDocGetRootElement(doc), "Error");
	xmlFreeDoc(doc);
	if (!found)
		return 0;
	memset(err, 0, sizeof(*err));
	err->http = 200;
	parse_error_body(body, len, err);
	if (!err->code[0])
		snprintf(err->code, sizeof(err->code), "InternalError");
	if (!err->message[0])
		snprintf(err->message, sizeof(err->message),
			 "error in a 200 answer");
	st = class_of_code(err->code);
	err->status = st != S3_OK ? st : S3_TRANSIENT;
	return 1;
}

/* Whether s can be a region name: [a-z0-9-], 1 to 63 bytes. */
int s3_region_ok(const char *s)
{
	size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-");

	return n > 0 && n < 64 && !s[n];
}

/* The <Region> and <Endpoint> of a redirect's error body, or "". */
void s3_parse_redirect(const char *body, size_t len, char *region,
		       size_t rsize, char *endpoint, size_t esize)
{
	xmlDocPtr doc = read_xml(body, len, 1);
	xmlNode *e;

	region[0] = '\0';
	endpoint[0] = '\0';
	if (!doc)
		return;
	e = xmlDocGetRootElement(doc);
	if (is_named(e, "Error")) {
		copy_child(region, rsize, e, "Region");
		copy_child(endpoint, esize, e, "Endpoint");
	}
	xmlFreeDoc(doc);
}

/*
 * The new capacity of an array of n that must take one more element, or 0
 * when it still has room: arrays hold 16, then 32, 64 ... elements.
 */
static size_t new_capacity(size_t n)
{
	if (n && (n < 16 || (n & (n - 1))))
		return 0;
	return n ? 2 * n : 16;
}

/* The value of one hex digit, or -1. */
int s3_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Undo encoding-type=url in place.  S3 writes a space as '+' there (and a
 * '+' as %2B); other servers use %20.  Returns the decoded length;
 * strlen(s) comes out shorter than that when the key held a NUL byte.
 */
static size_t url_decode(char *s)
{
	char *o = s;
	const char *p = s;

	while (*p) {
		int hi = *p == '%' ? s3_hex_digit(p[1]) : -1;
		int lo = hi >= 0 ? s3_hex_digit(p[2]) : -1;

		if (lo >= 0) {
			*o++ = (char)(hi << 4 | lo);
			p += 3;
		} else {
			*o++ = *p == '+' ? ' ' : *p;
			p++;
		}
	}
	*o = '\0';
	return (size_t)(o - s);
}

/*
 * The text of a key-like element, decoded when the listing is url-encoded.
 * *pskip is set for a key that a C string cannot hold (a NUL in it).
 */
static char *dup_key(const xmlNode *n, int url, int *pskip)
{
	char *s = dup_text(n);

	*pskip = 0;
	if (s && url && url_decode(s) != strlen(s))
		*pskip = 1;
	return s;
}

/* Parse a whole decimal number; -1 unless all of s is digits. */
static int parse_u64(const char *s, uint64_t *pv)
{
	char *end;
	unsigned long long v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return -1;
	*pv = v;
	return 0;
}

/* Seconds east of UTC for a "Z", "+hh:mm", "-hhmm" suffix; 0 if none. */
static long zone_offset(const char *s)
{
	int hh = 0, mm = 0;
	long sign;

	if (*s != '+' && *s != '-')
		return 0;
	sign = *s == '-' ? -1 : 1;
	if (sscanf(s + 1, "%2d:%2d", &hh, &mm) < 1 &&
	    sscanf(s + 1, "%2d%2d", &hh, &mm) < 1)
		return 0;
	return sign * (hh * 3600L + mm * 60L);
}

/* ISO 8601 ("2024-05-01T12:00:00.000Z") to UTC seconds; 0 if unreadable. */
static time_t parse_iso8601(const char *s)
{
	struct tm tm = { 0 };
	int n = 0;
	time_t t;

	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon,
		   &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec,
		   &n) != 6)
		return 0;
	if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 ||
	    tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
	    tm.tm_sec > 60)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	s += n;
	if (*s == '.')
		s += 1 + strspn(s + 1, "0123456789");
	t = timegm(&tm);
	return t == (time_t)-1 ? 0 : t - zone_offset(s);
}

/* Copy an ETag without the quotes S3 puts around it. */
static void copy_etag(char *dst, size_t size, const char *etag)
{
	size_t n = strlen(etag);

	if (n >= 2 && etag[0] == '"' && etag[n - 1] == '"') {
		etag++;
		n -= 2;
	}
	if (n >= size)
		n = size - 1;
	memcpy(dst, etag, n);
	dst[n] = '\0';
}

/* Read Size, LastModified and ETag of a <Contents> into e. 0 or -1. */
static int parse_entry_fields(const xmlNode *n, struct s3_list_entry *e)
{
	xmlNode *size = child_named(n, "Size");
	xmlNode *mtime = child_named(n, "LastModified");
	xmlNode *etag = child_named(n, "ETag");
	char *s;
	int result = -1;

	s = size ? dup_text(size) : NULL;
	if (size && (!s || parse_u64(s, &e->size)))
		goto out;
	free(s);
	s = mtime ? dup_text(mtime) : NULL;
	if (s)
		e->mtime = parse_iso8601(s);
	free(s);
	s = etag ? dup_text(etag) : NULL;
	if (s)
		copy_etag(e->etag, sizeof(e->etag), s);
	result = 0;
out:
	free(s);
	return result;
}

/* Append one <Contents> to the page.  0 on success, -1 if malformed. */
static int add_object(struct s3_list_page *page, const xmlNode *n, int url)
{
	struct s3_list_entry e = { 0 };
	struct s3_list_entry *p;
	xmlNode *k = child_named(n, "Key");
	size_t cap = new_capacity(page->nobjects);
	int skip;

	if (!k)
		return -1;
	e.key = dup_key(k, url, &skip);
	if (!e.key || parse_entry_fields(n, &e))
		goto fail;
	if (skip) {
		free(e.key);
		return 0;
	}
	if (cap) {
		p = realloc(page->objects, cap * sizeof(*p));
		if (!p)
			goto fail;
		page->objects = p;
	}
	page->objects[page->nobjects++] = e;
	return 0;
fail:
	free(e.key);
	return -1;
}

/* Append the <Prefix> of one <CommonPrefixes>.  0 on success, -1 if not. */
static int add_prefix(struct s3_list_page *page, const xmlNode *n, int url)
{
	xmlNode *k = child_named(n, "Prefix");
	size_t cap = new_capacity(page->nprefixes);
	char **p;
	char *s;
	int skip;

	if (!k)
		return -1;
	s = dup_key(k, url, &skip);
	if (!s)
		return -1;
	if (skip) {
		free(s);
		return 0;
	}
	if (cap) {
		p = realloc(page->prefixes, cap * sizeof(*p));
		if (!p) {
			free(s);
			return -1;
		}
		page->prefixes = p;
	}
	page->prefixes[page->nprefixes++] = s;
	return 0;
}

/* Whether the element's text is exactly word. */
static int text_is(const xmlNode *n, const char *word)
{
	char *s = dup_text(n);
	int r = s && !strcmp(s, word);

	free(s);
	return r;
}

/* Take one child of <ListBucketResult> into the page.  0 or -1. */
static int parse_list_child(struct s3_list_page *page, const xmlNode *n,
			    int url)
{
	if (is_named(n, "Contents"))
		return add_object(page, n, url);
	if (is_named(n, "CommonPrefixes"))
		return add_prefix(page, n, url);
	if (is_named(n, "IsTruncated"))
		page->truncated = text_is(n, "true");
	if (is_named(n, "NextContinuationToken")) {
		free(page->next_token);
		page->next_token = dup_text(n);
		if (!page->next_token)
			return -1;
	}
	return 0;
}

/* Parse a ListObjectsV2 result. 0 on success, -1 on a malformed body. */
int s3_parse_list(const char *body, size_t len, struct s3_list_page *page)
{
	xmlDocPtr doc = read_xml(body, len, 0);
	xmlNode *root, *n;
	int result = -1;
	int url;

	memset(page, 0, sizeof(*page));
	if (!doc)
		return -1;
	root = xmlDocGetRootElement(doc);
	if (!is_named(root, "ListBucketResult"))
		goto out;
	n = child_named(root, "EncodingType");
	url = n && text_is(n, "url");
	for (n = root->children; n; n = n->next)
		if (parse_list_child(page, n, url))
			goto out;
	result = 0;
out:
	xmlFreeDoc(doc);
	if (result)
		s3_list_page_free(page);
	return result;
}

/* Free what a page holds and leave it empty. */
void s3_list_page_free(struct s3_list_page *page)
{
	size_t i;

	for (i = 0; i < page->nobjects; i++)
		free(page->objects[i].key);
	for (i = 0; i < page->nprefixes; i++)
		free(page->prefixes[i]);
	free(page->objects);
	free(page->prefixes);
	free(page->next_token);
	memset(page, 0, sizeof(*page));
}

/* The negative errno that best describes a failed call. */
int s3_status_errno(enum s3_status st)
{
	switch (st) {
	case S3_OK:
		return 0;
	case S3_NOT_FOUND:
		return -ENOENT;
	case S3_HARD:
		return -EACCES;
	case S3_INVALID:
		return -EINVAL;
	case S3_TRANSIENT:
	case S3_LOCAL:
		break;
	}
	/* a reader cannot retry an -EAGAIN from read(); it is an I/O error */
	return -EIO;
}

/* A short lowercase name for a status, for logs and xattrs. */
const char *s3_status_name(enum s3_status st)
{
	switch (st) {
	case S3_OK:
		return "ok";
	case S3_NOT_FOUND:
		return "not found";
	case S3_TRANSIENT:
		return "transient";
	case S3_HARD:
		return "hard";
	case S3_INVALID:
		return "invalid";
	case S3_LOCAL:
		return "local";
	}
	return "unknown";
}

/*
 * Whether n is the root element of an answer to an operation: S3 calls
 * it "<Operation>Result"; moto says "<Operation>Response" for some.
 */
static int is_answer(const xmlNode *n, const char *op)
{
	size_t k = strlen(op);

	return n && n->type == XML_ELEMENT_NODE &&
	       !strncmp((const char *)n->name, op, k) &&
	       (!strcmp((const char *)n->name + k, "Result") ||
		!strcmp((const char *)n->name + k, "Response"));
}

/* The text of the child element called name of the answer to op. */
static char *root_child_text(const char *body, size_t len, const char *op,
			     const char *name)
{
	xmlDocPtr doc = read_xml(body, len, 0);
	xmlNode *r, *n;
	char *s = NULL;

	if (!doc)
		return NULL;
	r = xmlDocGetRootElement(doc);
	n = is_answer(r, op) ? child_named(r, name) : NULL;
	if (n)
		s = dup_text(n);
	xmlFreeDoc(doc);
	return s;
}

/* The UploadId of an InitiateMultipartUploadResult; caller frees. */
char *s3_parse_upload_id(const char *body, size_t len)
{
	char *id = root_child_text(body, len, "InitiateMultipartUpload",
				   "UploadId");

	/* it goes into a query and a log line: printable ASCII only */
	if (id && (!*id || strspn(id, "!\"#$%&'()*+,-./0123456789:;<=>?@"
				  "ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`"
				  "abcdefghijklmnopqrstuvwxyz{|}~") !=
			   strlen(id))) {
		free(id);
		id = NULL;
	}
	return id;
}

/* The ETag of a CompleteMultipartUploadResult, quotes stripped. 0 or -1. */
int s3_parse_complete(const char *body, size_t len, char *etag, size_t size)
{
	char *s = root_child_text(body, len, "CompleteMultipartUpload",
				  "ETag");

	if (!s)
		return -1;
	copy_etag(etag, size, s);
	free(s);
	return 0;
}

/* The ETag and LastModified of a CopyObjectResult or CopyPartResult. */
int s3_parse_copy_result(const char *body, size_t len, const char *op,
			 char *etag, size_t size, time_t *pmtime)
{
	xmlDocPtr doc = read_xml(body, len, 0);
	xmlNode *root, *e, *m;
	char *s = NULL;
	int result = -1;

	if (!doc)
		return -1;
	root = xmlDocGetRootElement(doc);
	e = is_answer(root, op) ? child_named(root, "ETag") : NULL;
	s = e ? dup_text(e) : NULL;
	if (!s || !*s)
		goto out;
	copy_etag(etag, size, s);
	free(s);
	m = pmtime ? child_named(root, "LastModified") : NULL;
	s = m ? dup_text(m) : NULL;
	if (pmtime)
		*pmtime = s ? parse_iso8601(s) : 0;
	result = 0;
out:
	free(s);
	xmlFreeDoc(doc);
	return result;
}

/* Read one <Part> of a ListParts result. 0, or -1 if malformed. */
static int parse_part(const xmlNode *n, struct s3_part *p)
{
	xmlNode *num = child_named(n, "PartNumber");
	xmlNode *etag = child_named(n, "ETag");
	xmlNode *size = child_named(n, "Size");
	char *a = num ? dup_text(num) : NULL;
	char *b = etag ? dup_text(etag) : NULL;
	char *c = size ? dup_text(size) : NULL;
	uint64_t v = 0;
	int result = -1;

	memset(p, 0, sizeof(*p));
	if (!a || !b || !c || parse_u64(a, &v) || v < 1 || v > 10000 ||
	    parse_u64(c, &p->size))
		goto out;
	p->number = (int)v;
	copy_etag(p->etag, sizeof(p->etag), b);
	result = 0;
out:
	free(a);
	free(b);
	free(c);
	return result;
}

/* Append one <Part> to the list.  0, or -1 if malformed or no memory. */
static int add_part(struct s3_part_list *pl, const xmlNode *n)
{
	size_t cap = new_capacity(pl->nparts);
	struct s3_part *p;

	if (cap) {
		p = realloc(pl->parts, cap * sizeof(*p));
		if (!p)
			return -1;
		pl->parts = p;
	}
	if (parse_part(n, &pl->parts[pl->nparts]))
		return -1;
	pl->nparts++;
	return 0;
}

/* Take one child of <ListPartsResult> into the list.  0 or -1. */
static int parse_parts_child(struct s3_part_list *pl, const xmlNode *n)
{
	char *s;
	uint64_t v = 0;

	if (is_named(n, "Part"))
		return add_part(pl, n);
	if (is_named(n, "IsTruncated"))
		pl->truncated = text_is(n, "true");
	if (is_named(n, "NextPartNumberMarker")) {
		s = dup_text(n);
		if (s && !parse_u64(s, &v) && v <= 10000)
			pl->next_marker = (int)v;
		free(s);
	}
	return 0;
}

/* Parse a ListParts page (free with s3_part_list_free).  0 or -1. */
int s3_parse_parts(const char *body, size_t len, struct s3_part_list *pl)
{
	xmlDocPtr doc = read_xml(body, len, 0);
	xmlNode *root, *n;
	int result = -1;

	memset(pl, 0, sizeof(*pl));
	if (!doc)
		return -1;
	root = xmlDocGetRootElement(doc);
	if (!is_answer(root, "ListParts"))
		goto out;
	for (n = root->children; n; n = n->next)
		if (parse_parts_child(pl, n))
			goto out;
	result = 0;
out:
	xmlFreeDoc(doc);
	if (result)
		s3_part_list_free(pl);
	return result;
}

/* Free what a part list holds and leave it empty. */
void s3_part_list_free(struct s3_part_list *pl)
{
	free(pl->parts);
	memset(pl, 0, sizeof(*pl));
}
