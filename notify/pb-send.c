/*
 * pb-send.c - one HTTP attempt at a delivery, on a curl easy handle of its
 * own (not s3/'s: postbacks share no connection, limit or retry policy
 * with S3 traffic).
 *
 * No redirect is followed and only http and https are spoken, so that a
 * receiver cannot bounce the daemon to file:// or to a scheme the request
 * was refused for.  The signature covers the send time and the body, so a
 * receiver that checks the time window refuses a captured request played
 * back later.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "notify_i.h"

#ifndef BLITFS_VERSION
#define BLITFS_VERSION "0"
#endif

/* Hex of n bytes of md into out, which holds 2 n + 1. */
static void hex(const unsigned char *md, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[md[i] >> 4];
		out[2 * i + 1] = digits[md[i] & 15];
	}
	out[2 * n] = '\0';
}

/* sha256=<hex HMAC-SHA256(secret, ts "." body)>, or "" if it failed. */
void pb_sign(const char *secret, const char *ts, const char *body, char sig[72])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char *msg = NULL;
	int n;

	sig[0] = '\0';
	n = asprintf(&msg, "%s.%s", ts, body);
	if (n < 0)
		abort();
	if (HMAC(EVP_sha256(), secret, (int)strlen(secret),
		 (const unsigned char *)msg, (size_t)n, md, &mdlen) &&
	    mdlen == 32) {
		memcpy(sig, "sha256=", 7);
		hex(md, mdlen, sig + 7);
	}
	free(msg);
}

/* The URL without user info, query or fragment, for a log line. */
const char *pb_url_for_log(const char *url, char *buf, size_t size)
{
	CURLU *h = curl_url();
	char *query = NULL;
	char *clean = NULL;

	snprintf(buf, size, "(unparsable URL)");
	if (!h || curl_url_set(h, CURLUPART_URL, url, 0) != CURLUE_OK)
		goto out;
	curl_url_get(h, CURLUPART_QUERY, &query, 0);
	curl_url_set(h, CURLUPART_USER, NULL, 0);
	curl_url_set(h, CURLUPART_PASSWORD, NULL, 0);
	curl_url_set(h, CURLUPART_QUERY, NULL, 0);
	curl_url_set(h, CURLUPART_FRAGMENT, NULL, 0);
	if (curl_url_get(h, CURLUPART_URL, &clean, 0) == CURLUE_OK)
		snprintf(buf, size, "%s%s", clean, query ? "?***" : "");
out:
	curl_free(query);
	curl_free(clean);
	curl_url_cleanup(h);
	return buf;
}

/* The answer's body is of no interest: swallow it. */
static size_t discard(char *ptr, size_t size, size_t nmemb, void *arg)
{
	(void)ptr;
	(void)arg;
	return size * nmemb;
}

/* curl asks about once a second: a non-zero answer abandons the request. */
static int keep_going(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut,
		      curl_off_t un)
{
	const atomic_int *stop = arg;

	(void)dt;
	(void)dn;
	(void)ut;
	(void)un;
	return atomic_load(stop);
}

/* Append one header; curl copies it. */
static struct curl_slist *add(struct curl_slist *l, const char *name,
			      const char *value)
{
	char line[256];
	struct curl_slist *n;

	snprintf(line, sizeof(line), "%s: %s", name, value);
	n = curl_slist_append(l, line);
	if (!n)
		abort();
	return n;
}

/* The request's headers; the signature only when there is a secret. */
static struct curl_slist *headers(const struct pb_post *p)
{
	struct curl_slist *l = NULL;
	char ts[24];
	char sig[72];

	snprintf(ts, sizeof(ts), "%lld", (long long)time(NULL));
	l = add(l, "Content-Type", "application/json");
	l = add(l, "User-Agent", "blitfs/" BLITFS_VERSION);
	l = add(l, "X-Blitfs-Delivery", p->id);
	l = add(l, "X-Blitfs-Timestamp", ts);
	if (p->secret && *p->secret) {
		pb_sign(p->secret, ts, p->body, sig);
		l = add(l, "X-Blitfs-Signature", sig);
	}
	/* A small JSON body gains nothing from a 100-continue round trip. */
	l = add(l, "Expect", "");
	return l;
}

/* Restrict curl to http and https, for the request and any redirect. */
static void web_only(CURL *c)
{
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(c, CURLOPT_PROTOCOLS,
			 (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS,
			 (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
}

/* Set up the easy handle for one POST. */
static void setup(CURL *c, const struct pb_post *p, struct curl_slist *h,
		  char *errbuf)
{
	long t = p->timeout_s > 0 ? p->timeout_s : 10;

	web_only(c);
	curl_easy_setopt(c, CURLOPT_URL, p->url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, p->body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
			 (curl_off_t)strlen(p->body));
	curl_easy_setopt(c, CURLOPT_TIMEOUT, t);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, t < 10 ? t : 10L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, keep_going);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, (void *)p->stop);
	if (p->insecure) {
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (p->ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, p->ca_file);
}

/* Sort an HTTP answer: 2xx done, 429 and 5xx again, the rest refused. */
static void judge_status(long status, struct pb_result *r)
{
	r->status = status;
	snprintf(r->error, sizeof(r->error), "HTTP %ld", status);
	if (status >= 200 && status < 300) {
		r->outcome = PB_DELIVERED;
		r->error[0] = '\0';
	} else if (status == 429 || status >= 500) {
		r->outcome = PB_RETRY;
	} else if (status >= 300 && status < 400) {
		r->outcome = PB_REFUSED;
		snprintf(r->error, sizeof(r->error),
			 "HTTP %ld: redirects are not followed", status);
	} else {
		r->outcome = PB_REFUSED;
	}
}

/* Sort a transfer that got no answer: retried unless it cannot work. */
static void judge_error(CURLcode rc, const char *errbuf, int stopped,
			struct pb_result *r)
{
	r->status = 0;
	snprintf(r->error, sizeof(r->error), "%s",
		 *errbuf ? errbuf : curl_easy_strerror(rc));
	if (stopped)
		r->outcome = PB_ABORTED;
	else if (rc == CURLE_UNSUPPORTED_PROTOCOL || rc == CURLE_URL_MALFORMAT)
		r->outcome = PB_REFUSED;
	else
		r->outcome = PB_RETRY;
}

/* POST the body once. */
void pb_send(const struct pb_post *p, struct pb_result *r)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *h = headers(p);
	CURL *c = curl_easy_init();
	long status = 0;
	CURLcode rc;

	memset(r, 0, sizeof(*r));
	if (!c) {
		r->outcome = PB_RETRY;
		snprintf(r->error, sizeof(r->error), "curl: out of memory");
		goto out;
	}
	setup(c, p, h, errbuf);
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK) {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		judge_status(status, r);
	} else {
		judge_error(rc, errbuf, atomic_load(p->stop), r);
	}
out:
	curl_easy_cleanup(c);
	curl_slist_free_all(h);
}
