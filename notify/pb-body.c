/*
 * pb-body.c - what a file asks for, and what is sent for it.
 *
 * A request is either a bare URL or a JSON object {"url": ..., "data":
 * {...}}.  Only http:// and https:// URLs with a host pass: a postback is
 * made by the daemon, so a file:// or gopher:// URL would let whoever can
 * write a file make it read local files or talk to arbitrary services.
 * The body is built once, at enqueue time, so every retry of a delivery
 * sends the same bytes.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "notify_i.h"

/* Copy s into buf for a message: cut, control bytes shown as '?'. */
static const char *quote(const char *s, char *buf, size_t size)
{
	size_t n = strlen(s);
	size_t max = size - 4;
	size_t i;

	for (i = 0; i < n && i < max; i++) {
		unsigned char c = (unsigned char)s[i];

		buf[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	if (i < n) {
		memcpy(buf + i, "...", 3);
		i += 3;
	}
	buf[i] = '\0';
	return buf;
}

/* Say why a request is refused; always -EINVAL. */
static int refuse(char *reason, size_t len, const char *why)
{
	snprintf(reason, len, "postback request: %s", why);
	return -EINVAL;
}

/* Say why a URL is refused, quoting it; always -EINVAL. */
static int refuse_url(char *reason, size_t len, const char *url,
		      const char *why)
{
	char q[96];

	snprintf(reason, len, "postback URL '%s': %s",
		 quote(url, q, sizeof(q)), why);
	return -EINVAL;
}

/* The first byte that a URL may not hold, or NULL if all are fine. */
static const char *bad_byte(const char *url)
{
	const unsigned char *p;

	for (p = (const unsigned char *)url; *p; p++)
		if (*p <= 0x20 || *p >= 0x7f)
			return (const char *)p;
	return NULL;
}

/* True if url starts with http:// or https://, in any case. */
static int web_scheme(const char *url)
{
	return !strncasecmp(url, "http://", 7) ||
	       !strncasecmp(url, "https://", 8);
}

/*
 * True if the authority after "://" has a host: curl alone would read
 * http:///x as host "x", which is not what the writer meant.
 */
static int has_host(const char *url)
{
	const char *a = strstr(url, "://") + 3;
	size_t n = strcspn(a, "/?#");
	const char *at = memrchr(a, '@', n);

	if (at) {
		n -= (size_t)(at + 1 - a);
		a = at + 1;
	}
	return n > 0 && *a != ':';
}

/* Let curl's parser judge the rest: a host must be there. */
static int check_host(const char *url, char *reason, size_t len)
{
	char *host = NULL;
	CURLUcode rc;
	CURLU *h;
	int result = 0;

	if (!has_host(url))
		return refuse_url(reason, len, url, "no host");
	h = curl_url();
	if (!h)
		abort();
	rc = curl_url_set(h, CURLUPART_URL, url, 0);
	if (rc == CURLUE_OK)
		rc = curl_url_get(h, CURLUPART_HOST, &host, 0);
	if (rc == CURLUE_NO_HOST || (rc == CURLUE_OK && !*host))
		result = refuse_url(reason, len, url, "no host");
	else if (rc != CURLUE_OK)
		result = refuse_url(reason, len, url, "malformed");
	curl_free(host);
	curl_url_cleanup(h);
	return result;
}

/* Check one URL: http or https, a host, nothing that needs escaping. */
static int check_url(const char *url, char *reason, size_t len)
{
	if (!*url) {
		snprintf(reason, len, "postback URL is empty");
		return -EINVAL;
	}
	if (strlen(url) > PB_URL_MAX)
		return refuse_url(reason, len, url, "longer than 2048 bytes");
	if (!web_scheme(url))
		return refuse_url(reason, len, url,
				  "only http:// and https:// are allowed");
	if (bad_byte(url))
		return refuse_url(reason, len, url,
				  "holds a space, a control character or a "
				  "non-ASCII byte (percent-encode it)");
	return check_host(url, reason, len);
}

/* A copy of s without the white space around it; caller frees. */
static char *trimmed(const char *s)
{
	size_t n;

	while (isspace((unsigned char)*s))
		s++;
	n = strlen(s);
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	return strndup(s, n);
}

/* Only "url" and "data" belong in a request object. */
static int check_fields(json_t *o, char *reason, size_t len)
{
	const char *k;
	json_t *v;
	char q[64];

	json_object_foreach(o, k, v) {
		if (strcmp(k, "url") && strcmp(k, "data"))
			goto unknown;
	}
	return 0;

unknown:
	snprintf(reason, len, "postback request: unknown field '%s' "
		 "(only \"url\" and \"data\")", quote(k, q, sizeof(q)));
	return -EINVAL;
}

/* Take url and data out of a parsed request object. */
static int from_object(json_t *o, struct pb_request *r, char *reason,
		       size_t len)
{
	json_t *url = json_object_get(o, "url");
	json_t *data = json_object_get(o, "data");
	int result;

	if (!json_is_object(o))
		return refuse(reason, len,
			      "JSON must be an object with \"url\"");
	result = check_fields(o, reason, len);
	if (result)
		return result;
	if (!json_is_string(url))
		return refuse(reason, len,
			      "\"url\" is missing or not a string");
	if (data && !json_is_null(data) && !json_is_object(data))
		return refuse(reason, len, "\"data\" must be a JSON object");
	result = check_url(json_string_value(url), reason, len);
	if (result)
		return result;
	r->url = strdup(json_string_value(url));
	r->data = json_is_object(data) ? json_incref(data) : NULL;
	return 0;
}

/* Parse a request that is a JSON object. */
static int parse_json(const char *text, struct pb_request *r, char *reason,
		      size_t len)
{
	json_error_t jerr;
	json_t *o = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
	int result;

	if (!o) {
		snprintf(reason, len, "postback request: not valid JSON: %s "
			 "(line %d, column %d)", jerr.text, jerr.line,
			 jerr.column);
		return -EINVAL;
	}
	result = from_object(o, r, reason, len);
	json_decref(o);
	return result;
}

/* Parse a trimmed, non-empty request. */
static int parse_text(const char *text, struct pb_request *r, char *reason,
		      size_t len)
{
	int result;

	if (*text == '{')
		return parse_json(text, r, reason, len);
	if (*text == '[' || *text == '"')
		return refuse(reason, len, "must be a URL or a JSON object "
			      "with \"url\"");
	result = check_url(text, reason, len);
	if (result)
		return result;
	r->url = strdup(text);
	return 0;
}

/* Parse and check a request: a bare URL or a JSON object. */
int pb_request_parse(const char *request, struct pb_request *r, char *reason,
		     size_t len)
{
	char *text = NULL;
	int result;

	memset(r, 0, sizeof(*r));
	if (!request || strlen(request) > PB_REQUEST_MAX) {
		result = refuse(reason, len, request ? "larger than 64 KiB"
						     : "empty");
		goto out;
	}
	text = trimmed(request);
	if (!text)
		abort();
	if (!*text)
		result = refuse(reason, len, "empty");
	else
		result = parse_text(text, r, reason, len);
	if (!result && !r->url)
		abort();
out:
	free(text);
	if (result)
		pb_request_free(r);
	return result;
}

/* Free what pb_request_parse filled in. */
void pb_request_free(struct pb_request *r)
{
	free(r->url);
	json_decref(r->data);
	r->url = NULL;
	r->data = NULL;
}

/* The public check: parse, and throw the result away. */
int pb_check_request(const char *request, char *reason, size_t len)
{
	struct pb_request r;
	int result = pb_request_parse(request, &r, reason, len);

	if (!result)
		pb_request_free(&r);
	return result;
}

/*
 * Hash the fields that make a delivery what it is: a crash that makes the
 * cache enqueue the same outcome again makes the same id, and receivers
 * can drop the duplicate.  The URL is in it so that two destinations of
 * one outcome are two deliveries.
 */
void pb_delivery_id(const struct pb_event *ev, const char *url,
		    char id[PB_ID_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char *s = NULL;
	int n;
	int i;

	n = asprintf(&s, "%s\n%s\n%llu\n%s\n%s", ev->bucket ? ev->bucket : "",
		     ev->key ? ev->key : "", (unsigned long long)ev->version,
		     ev->event ? ev->event : "", url ? url : "");
	if (n < 0)
		abort();
	if (!EVP_Digest(s, (size_t)n, md, &mdlen, EVP_sha256(), NULL))
		abort();
	free(s);
	for (i = 0; i < PB_ID_LEN / 2; i++) {
		id[2 * i] = hex[md[i] >> 4];
		id[2 * i + 1] = hex[md[i] & 15];
	}
	id[PB_ID_LEN] = '\0';
}

/* ISO 8601 UTC with milliseconds, as in 2026-12-03T16:31:53.123Z. */
void pb_iso8601(int64_t ms, char *buf, size_t size)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	size_t n;

	gmtime_r(&t, &tm);
	n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, size - n, ".%03dZ", (int)(ms % 1000));
}

/*
 * A JSON string, or null for NULL.  A file name need not be UTF-8 and
 * JSON must be: bytes that jansson refuses become '?'.
 */
json_t *pb_json_string(const char *s)
{
	json_t *j;
	char *copy;
	char *p;

	if (!s)
		return json_null();
	j = json_string(s);
	if (j)
		return j;
	copy = strdup(s);
	if (!copy)
		return NULL;
	for (p = copy; *p; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	j = json_string(copy);
	free(copy);
	return j;
}

/* Set a member; a NULL value (no memory) marks the body as broken. */
static void put(json_t *o, const char *name, json_t *v, int *broken)
{
	if (!v || json_object_set_new(o, name, v))
		*broken = 1;
}

/* The JSON body, members in the order the README lists them. */
char *pb_body(const struct pb_event *ev, json_t *data, const char *id,
	      int64_t now_ms)
{
	json_t *o = json_object();
	char ts[40];
	char *body = NULL;
	int broken = !o;

	if (broken)
		return NULL;
	pb_iso8601(now_ms, ts, sizeof(ts));
	put(o, "event", pb_json_string(ev->event), &broken);
	put(o, "bucket", pb_json_string(ev->bucket), &broken);
	put(o, "key", pb_json_string(ev->key), &broken);
	put(o, "url", pb_json_string(ev->object_url), &broken);
	put(o, "etag", pb_json_string(ev->etag), &broken);
	put(o, "size", json_integer((json_int_t)ev->size), &broken);
	put(o, "content_type", pb_json_string(ev->content_type), &broken);
	put(o, "visible", json_boolean(ev->visible), &broken);
	put(o, "waited_ms", json_integer(ev->waited_ms), &broken);
	put(o, "attempts", json_integer(ev->attempts), &broken);
	put(o, "error", pb_json_string(ev->error), &broken);
	put(o, "data", data ? json_incref(data) : json_null(), &broken);
	put(o, "delivery_id", pb_json_string(id), &broken);
	put(o, "timestamp", pb_json_string(ts), &broken);
	if (!broken)
		body = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return body;
}
