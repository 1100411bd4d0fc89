/*
 * test_sign.c - Signature V4 and the hashes of s3/s3-sign.c, checked
 * against AWS's published known answers.
 *
 * argv[1] is the vectors directory (tests/vectors).  Every case of AWS's
 * Signature Version 4 test suite and every S3 worked example becomes its
 * own test, so a failure names the case; each step (canonical request,
 * string to sign, signature, Authorization) is compared byte for byte and
 * a mismatch prints both strings with their newlines shown.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "s3_i.h"

#define MAX_PAIRS 32
#define EMPTY_SHA256 \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* Set A: AWS's Signature Version 4 test suite. */
#define SUITE_DIR "sigv4/aws-sig-v4-test-suite"
#define SUITE_ACCESS "AKIDEXAMPLE"
#define SUITE_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define SUITE_DATE "20150830T123600Z"

/* Set B: the worked examples of the S3 API Reference. */
#define EXAMPLES_DIR "sigv4/s3-examples"

/* One vector case: which set, where its files are, and its test name. */
struct vcase {
	char name[128];
	char dir[512];		/* case folder */
	char base[128];		/* file name stem, set A only */
	int normalize;		/* set A's normalize-path cases */
};

/* A parsed request file; every string is owned. */
struct req {
	char *method;
	char *path;
	char *hname[MAX_PAIRS];
	char *hvalue[MAX_PAIRS];
	size_t nheaders;
	char *pname[MAX_PAIRS];
	char *pvalue[MAX_PAIRS];
	size_t nparams;
	char *body;
	size_t bodylen;
	struct s3_pair headers[MAX_PAIRS];
	struct s3_pair params[MAX_PAIRS];
};

static const char *vectors_dir;

/* Read a whole file as a NUL-terminated string, or NULL; plen may be NULL. */
static char *read_file(const char *dir, const char *name, size_t *plen)
{
	char path[1024];
	char *data = NULL;
	long size;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "rb");
	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) || (size = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET))
		goto out;
	data = malloc((size_t)size + 1);
	if (!data || fread(data, 1, (size_t)size, f) != (size_t)size) {
		free(data);
		data = NULL;
		goto out;
	}
	data[size] = '\0';
	if (plen)
		*plen = (size_t)size;
out:
	fclose(f);
	return data;
}

/* Like read_file, but a missing file fails the test. */
static char *must_read(const char *dir, const char *name, size_t *plen)
{
	char *data = read_file(dir, name, plen);

	if (!data)
		fail_msg("cannot read %s/%s", dir, name);
	return data;
}

/* A copy of n bytes as a C string; allocation failure fails the test. */
static char *dupn(const char *s, size_t n)
{
	char *p = strndup(s, n);

	assert_non_null(p);
	return p;
}

/* Append a name/value pair to one of a request's lists. */
static void add_pair(char **names, char **values, size_t *pn, char *name,
		     char *value)
{
	assert_true(*pn < MAX_PAIRS);
	names[*pn] = name;
	values[*pn] = value;
	(*pn)++;
}

/* Split a raw query at '&' and '=' (a bare name gets a NULL value). */
static void parse_query(struct req *r, const char *q, size_t len)
{
	const char *end = q + len;

	while (q < end) {
		const char *amp = memchr(q, '&', (size_t)(end - q));
		const char *stop = amp ? amp : end;
		const char *eq = memchr(q, '=', (size_t)(stop - q));
		char *value = NULL;

		if (eq)
			value = dupn(eq + 1, (size_t)(stop - eq - 1));
		if (stop > q)
			add_pair(r->pname, r->pvalue, &r->nparams,
				 dupn(q, (size_t)((eq ? eq : stop) - q)),
				 value);
		q = stop + 1;
	}
}

/* The request line: method before the first space, target to the last. */
static const char *parse_request_line(struct req *r, const char *text)
{
	const char *eol = strchrnul(text, '\n');
	const char *sp1 = memchr(text, ' ', (size_t)(eol - text));
	const char *sp2 = eol;
	const char *q;

	assert_non_null(sp1);
	while (sp2 > sp1 && *--sp2 != ' ')
		;
	assert_true(sp2 > sp1);
	r->method = dupn(text, (size_t)(sp1 - text));
	q = memchr(sp1 + 1, '?', (size_t)(sp2 - sp1 - 1));
	r->path = dupn(sp1 + 1, (size_t)((q ? q : sp2) - sp1 - 1));
	if (q)
		parse_query(r, q + 1, (size_t)(sp2 - q - 1));
	return eol;
}

/* Whether a byte is a space or a tab. */
static int blank(char c)
{
	return c == ' ' || c == '\t';
}

/* A continuation line: append its trimmed text to the last value. */
static void continue_header(struct req *r, const char *s, size_t n)
{
	char **value;
	char *joined;

	assert_true(r->nheaders > 0);
	value = &r->hvalue[r->nheaders - 1];
	while (n && blank(*s)) {
		s++;
		n--;
	}
	while (n && blank(s[n - 1]))
		n--;
	assert_true(asprintf(&joined, "%s,%.*s", *value, (int)n, s) >= 0);
	free(*value);
	*value = joined;
}

/* One header line: "Name:value", or a continuation of the one before. */
static void parse_header(struct req *r, const char *s, size_t n)
{
	const char *colon;

	if (blank(*s)) {
		continue_header(r, s, n);
		return;
	}
	colon = memchr(s, ':', n);
	assert_non_null(colon);
	add_pair(r->hname, r->hvalue, &r->nheaders,
		 dupn(s, (size_t)(colon - s)),
		 dupn(colon + 1, n - (size_t)(colon - s) - 1));
}

/* Point the s3_pair views at the owned strings. */
static void req_sync_pairs(struct req *r)
{
	size_t i;

	for (i = 0; i < r->nheaders; i++) {
		r->headers[i].name = r->hname[i];
		r->headers[i].value = r->hvalue[i];
	}
	for (i = 0; i < r->nparams; i++) {
		r->params[i].name = r->pname[i];
		r->params[i].value = r->pvalue[i];
	}
}

/* Parse a .req / request.txt: request line, headers, blank line, body. */
static void parse_request(struct req *r, const char *text)
{
	const char *p = parse_request_line(r, text);

	while (*p == '\n') {
		const char *eol;

		p++;
		if (*p == '\n') {
			r->bodylen = strlen(p + 1);
			r->body = dupn(p + 1, r->bodylen);
			break;
		}
		eol = strchrnul(p, '\n');
		parse_header(r, p, (size_t)(eol - p));
		p = eol;
	}
	if (!r->body)
		r->body = dupn("", 0);
	req_sync_pairs(r);
}

/* Free everything a parsed request owns. */
static void req_free(struct req *r)
{
	size_t i;

	for (i = 0; i < r->nheaders; i++) {
		free(r->hname[i]);
		free(r->hvalue[i]);
	}
	for (i = 0; i < r->nparams; i++) {
		free(r->pname[i]);
		free(r->pvalue[i]);
	}
	free(r->method);
	free(r->path);
	free(r->body);
}

/* A copy of s with newlines shown as "\n" and other control bytes as hex. */
static char *visible(const char *s)
{
	char *out = malloc(strlen(s) * 12 + 1);
	char *o = out;

	assert_non_null(out);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '\n')
			o += sprintf(o, "\\n\n           ");
		else if (c < 0x20 || c == 0x7f)
			o += sprintf(o, "\\x%02x", c);
		else
			*o++ = (char)c;
	}
	*o = '\0';
	return out;
}

/* Compare one step's output; on a mismatch print both and return 1. */
static int differs(const char *cname, const char *step, const char *want,
		   const char *got)
{
	char *w, *g;

	if (want && got && !strcmp(want, got))
		return 0;
	w = visible(want ? want : "(null)");
	g = visible(got ? got : "(null)");
	print_error("%s: %s differs\n  expected: %s\n  got:      %s\n", cname,
		    step, w, g);
	free(w);
	free(g);
	return 1;
}

/* The value after "Signature=" in an Authorization value. */
static const char *authz_signature(const char *authz)
{
	const char *s = strstr(authz, "Signature=");

	assert_non_null(s);
	return s + strlen("Signature=");
}

/* Line n (from 0) of a multi-line string, as a new string. */
static char *line_of(const char *s, int n)
{
	while (n-- > 0) {
		s = strchr(s, '\n');
		assert_non_null(s);
		s++;
	}
	return dupn(s, (size_t)(strchrnul(s, '\n') - s));
}

/* Check string to sign and signature, from our output and from the files. */
static int check_sts_and_signature(const struct vcase *c,
				   const struct s3_sign_input *in,
				   const char *creq, const char *want_creq,
				   const char *want_sts, const char *want_sig)
{
	char *sts = s3_sign_string_to_sign(in, creq);
	char *sts_file = s3_sign_string_to_sign(in, want_creq);
	char sig[65], sig_file[65];
	int bad = 0;

	s3_sign_signature(in, sts, sig);
	s3_sign_signature(in, want_sts, sig_file);
	bad += differs(c->name, "string to sign", want_sts, sts);
	bad += differs(c->name, "string to sign (from expected creq)",
		       want_sts, sts_file);
	bad += differs(c->name, "signature", want_sig, sig);
	bad += differs(c->name, "signature (from expected sts)", want_sig,
		       sig_file);
	free(sts);
	free(sts_file);
	return bad;
}

/* Read one of a set A case's five files. */
static char *suite_file(const struct vcase *c, const char *ext)
{
	char name[160];

	snprintf(name, sizeof(name), "%s.%s", c->base, ext);
	return must_read(c->dir, name, NULL);
}

/* The signer input for a set A case. */
static void suite_input(const struct vcase *c, const struct req *r,
			char hash[65], struct s3_sign_input *in)
{
	s3_sha256_hex(r->body, r->bodylen, hash);
	memset(in, 0, sizeof(*in));
	in->method = r->method;
	in->path = r->path;
	in->params = r->params;
	in->nparams = r->nparams;
	in->headers = r->headers;
	in->nheaders = r->nheaders;
	in->payload_hash = hash;
	in->region = "us-east-1";
	in->service = "service";
	in->amz_date = SUITE_DATE;
	in->access_key = SUITE_ACCESS;
	in->secret_key = SUITE_SECRET;
	in->normalize_path = c->normalize;
}

/* .sreq must carry our Authorization value as a header line. */
static int check_sreq(const struct vcase *c, const char *authz)
{
	char *sreq = suite_file(c, "sreq");
	char *line;
	int bad = 0;

	assert_true(asprintf(&line, "\nAuthorization: %s", authz) >= 0);
	if (!strstr(sreq, line)) {
		print_error("%s: .sreq lacks \"%s\"\n", c->name, line + 1);
		bad = 1;
	}
	free(line);
	free(sreq);
	return bad;
}

/* One case of AWS's suite, from .req to .authz. */
static void test_suite_case(void **state)
{
	const struct vcase *c = *state;
	char *text = suite_file(c, "req");
	char *want_creq = suite_file(c, "creq");
	char *want_sts = suite_file(c, "sts");
	char *want_authz = suite_file(c, "authz");
	struct req r = { 0 };
	struct s3_sign_input in;
	char hash[65];
	char *creq, *authz;
	int bad = 0;

	parse_request(&r, text);
	suite_input(c, &r, hash, &in);
	creq = s3_sign_canonical_request(&in);
	bad += differs(c->name, "canonical request", want_creq, creq);
	bad += check_sts_and_signature(c, &in, creq, want_creq, want_sts,
				       authz_signature(want_authz));
	authz = s3_sign_authorization(&in, ", ");
	bad += differs(c->name, "authorization", want_authz, authz);
	bad += check_sreq(c, authz);
	free(creq);
	free(authz);
	req_free(&r);
	free(text);
	free(want_creq);
	free(want_sts);
	free(want_authz);
	if (bad)
		fail_msg("%s: %d check(s) failed", c->name, bad);
}

/* The value of key in a params.txt, or NULL. */
static char *param_get(const char *params, const char *key)
{
	size_t klen = strlen(key);
	const char *s = params;

	while (*s) {
		const char *eol = strchrnul(s, '\n');

		if (!strncmp(s, key, klen) && s[klen] == '=')
			return dupn(s + klen + 1, (size_t)(eol - s - klen - 1));
		s = *eol ? eol + 1 : eol;
	}
	return NULL;
}

/* A params.txt value that must be there. */
static char *param_must(const struct vcase *c, const char *params,
			const char *key)
{
	char *v = param_get(params, key);

	if (!v)
		fail_msg("%s: params.txt has no %s", c->name, key);
	return v;
}

/* What a set B example signs with, all taken from its params.txt. */
struct example {
	char *access;
	char *secret;
	char *region;
	char *service;
	char *date;
	char *payload_hash;
	char *signed_headers;
	char *expires;		/* presign examples only */
};

/* Load params.txt into e. */
static void example_load(const struct vcase *c, struct example *e)
{
	char *params = must_read(c->dir, "params.txt", NULL);

	e->access = param_must(c, params, "access_key_id");
	e->secret = param_must(c, params, "secret_access_key");
	e->region = param_must(c, params, "region");
	e->service = param_must(c, params, "service");
	e->date = param_must(c, params, "amz_date");
	e->payload_hash = param_must(c, params, "payload_hash");
	e->signed_headers = param_must(c, params, "signed_headers");
	e->expires = param_get(params, "expires");
	free(params);
}

/* Free what example_load allocated. */
static void example_free(struct example *e)
{
	free(e->access);
	free(e->secret);
	free(e->region);
	free(e->service);
	free(e->date);
	free(e->payload_hash);
	free(e->signed_headers);
	free(e->expires);
}

/* The signer input for a set B example. */
static void example_input(const struct example *e, const struct req *r,
			  struct s3_sign_input *in)
{
	memset(in, 0, sizeof(*in));
	in->method = r->method;
	in->path = r->path;
	in->params = r->params;
	in->nparams = r->nparams;
	in->headers = r->headers;
	in->nheaders = r->nheaders;
	in->payload_hash = e->payload_hash;
	in->region = e->region;
	in->service = e->service;
	in->amz_date = e->date;
	in->access_key = e->access;
	in->secret_key = e->secret;
}

/* Add the query parameters a presigned URL signs, as the S3 page lists. */
static void add_presign_params(struct req *r, const struct example *e)
{
	char *cred;

	assert_true(asprintf(&cred, "%s/%.8s/%s/%s/aws4_request", e->access,
			     e->date, e->region, e->service) >= 0);
	add_pair(r->pname, r->pvalue, &r->nparams, dupn("X-Amz-Algorithm", 15),
		 dupn("AWS4-HMAC-SHA256", 16));
	add_pair(r->pname, r->pvalue, &r->nparams,
		 dupn("X-Amz-Credential", 16), cred);
	add_pair(r->pname, r->pvalue, &r->nparams, dupn("X-Amz-Date", 10),
		 dupn(e->date, strlen(e->date)));
	add_pair(r->pname, r->pvalue, &r->nparams, dupn("X-Amz-Expires", 13),
		 dupn(e->expires, strlen(e->expires)));
	add_pair(r->pname, r->pvalue, &r->nparams,
		 dupn("X-Amz-SignedHeaders", 19),
		 dupn(e->signed_headers, strlen(e->signed_headers)));
	req_sync_pairs(r);
}

/* The Host header of a parsed request, leading blanks skipped. */
static const char *req_host(const struct req *r)
{
	size_t i;

	for (i = 0; i < r->nheaders; i++) {
		if (!strcasecmp(r->hname[i], "host")) {
			const char *v = r->hvalue[i];

			while (blank(*v))
				v++;
			return v;
		}
	}
	fail_msg("request has no Host header");
	return NULL;
}

/* Assemble the unsigned and presigned URLs and compare with the files. */
static int check_presigned_urls(const struct vcase *c, const struct req *r,
				const char *creq, const char *sig)
{
	char *uri = line_of(creq, 1), *query = line_of(creq, 2);
	char *want_plain = must_read(c->dir, "unsigned-url.txt", NULL);
	char *want_url = must_read(c->dir, "presigned-url.txt", NULL);
	char *plain, *url;
	int bad = 0;

	assert_true(asprintf(&plain, "https://%s%s", req_host(r), uri) >= 0);
	assert_true(asprintf(&url, "%s?%s&X-Amz-Signature=%s", plain, query,
			     sig) >= 0);
	bad += differs(c->name, "unsigned URL", want_plain, plain);
	bad += differs(c->name, "presigned URL", want_url, url);
	free(uri);
	free(query);
	free(want_plain);
	free(want_url);
	free(plain);
	free(url);
	return bad;
}

/* The last step of a set B example: the header, or the presigned URL. */
static int check_example_result(const struct vcase *c, const struct req *r,
				const struct s3_sign_input *in,
				const char *creq, int presign)
{
	char *want, *authz, *sts;
	char sig[65];
	int bad;

	if (!presign) {
		want = must_read(c->dir, "authorization.txt", NULL);
		authz = s3_sign_authorization(in, ",");
		bad = differs(c->name, "authorization", want, authz);
		free(want);
		free(authz);
		return bad;
	}
	sts = s3_sign_string_to_sign(in, creq);
	s3_sign_signature(in, sts, sig);
	free(sts);
	return check_presigned_urls(c, r, creq, sig);
}

/* A PUT example's payload.txt must hash to the documented payload hash. */
static int check_payload(const struct vcase *c, const struct example *e)
{
	size_t len;
	char *payload = read_file(c->dir, "payload.txt", &len);
	char hash[65];
	int bad;

	if (!payload)
		return 0;
	s3_sha256_hex(payload, len, hash);
	bad = differs(c->name, "payload hash", e->payload_hash, hash);
	free(payload);
	return bad;
}

/* One worked example of the S3 API Reference. */
static void test_s3_example(void **state)
{
	const struct vcase *c = *state;
	char *text = must_read(c->dir, "request.txt", NULL);
	char *want_creq = must_read(c->dir, "canonical-request.txt", NULL);
	char *want_sts = must_read(c->dir, "string-to-sign.txt", NULL);
	char *want_sig = must_read(c->dir, "signature.txt", NULL);
	struct example e = { 0 };
	struct req r = { 0 };
	struct s3_sign_input in;
	char *creq, *signed_headers;
	int bad = 0;

	example_load(c, &e);
	parse_request(&r, text);
	if (e.expires)
		add_presign_params(&r, &e);
	example_input(&e, &r, &in);
	bad += check_payload(c, &e);
	signed_headers = s3_sign_signed_headers(&in);
	bad += differs(c->name, "signed headers", e.signed_headers,
		       signed_headers);
	creq = s3_sign_canonical_request(&in);
	bad += differs(c->name, "canonical request", want_creq, creq);
	bad += check_sts_and_signature(c, &in, creq, want_creq, want_sts,
				       want_sig);
	bad += check_example_result(c, &r, &in, creq, e.expires != NULL);
	free(signed_headers);
	free(creq);
	example_free(&e);
	req_free(&r);
	free(text);
	free(want_creq);
	free(want_sts);
	free(want_sig);
	if (bad)
		fail_msg("%s: %d check(s) failed", c->name, bad);
}

/* Encode s and compare with want. */
static void expect_encode(const char *s, int keep_slash, const char *want)
{
	char *got = s3_uri_encode(s, keep_slash);

	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

/* Reserved and special characters are percent-encoded, uppercase hex. */
static void test_encode_reserved(void **state)
{
	(void)state;
	expect_encode(" ", 0, "%20");
	expect_encode("+", 0, "%2B");
	expect_encode("%", 0, "%25");
	expect_encode("#", 0, "%23");
	expect_encode("?", 0, "%3F");
	expect_encode("=&", 0, "%3D%26");
	expect_encode("a b+c", 1, "a%20b%2Bc");
}

/* Unreserved characters pass through untouched; "" stays "". */
static void test_encode_unreserved(void **state)
{
	(void)state;
	expect_encode("~", 0, "~");
	expect_encode("AZaz09-_.~", 0, "AZaz09-_.~");
	expect_encode("", 0, "");
	expect_encode("", 1, "");
}

/* '/' is kept only when asked (paths), encoded otherwise (query). */
static void test_encode_slash(void **state)
{
	(void)state;
	expect_encode("/a/b/", 1, "/a/b/");
	expect_encode("/a/b/", 0, "%2Fa%2Fb%2F");
}

/* UTF-8 is encoded byte by byte. */
static void test_encode_utf8(void **state)
{
	(void)state;
	expect_encode("\xc3\xa9", 0, "%C3%A9");
	expect_encode("caf\xc3\xa9/x", 1, "caf%C3%A9/x");
	expect_encode("\xe1\x88\xb4", 1, "%E1%88%B4");
}

/* Content-MD5 of the empty string and of the S3 PUT example's body. */
static void test_md5_base64(void **state)
{
	static const char body[] = "Welcome to Amazon S3.";
	char out[25];

	(void)state;
	s3_md5_base64("", 0, out);
	assert_string_equal(out, "1B2M2Y8AsgTpgAmY7PhCfg==");
	s3_md5_base64(body, strlen(body), out);
	assert_string_equal(out, "1EfQ6PKJ8WoS/2AnznfCWA==");
}

/* SHA-256 of the empty string and of the S3 PUT example's body. */
static void test_sha256_hex(void **state)
{
	static const char body[] = "Welcome to Amazon S3.";
	char out[65];

	(void)state;
	s3_sha256_hex("", 0, out);
	assert_string_equal(out, EMPTY_SHA256);
	s3_sha256_hex(body, strlen(body), out);
	assert_string_equal(out, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b"
				 "4b4e99e42034a8b803f8b072");
}

/* A minimal GET input for the small canonical-request tests below. */
static void minimal_input(struct s3_sign_input *in, const char *path)
{
	static const struct s3_pair host[] = {
		{ "Host", "examplebucket.s3.amazonaws.com" },
	};

	memset(in, 0, sizeof(*in));
	in->method = "GET";
	in->path = path;
	in->headers = host;
	in->nheaders = 1;
	in->payload_hash = EMPTY_SHA256;
	in->region = "us-east-1";
	in->service = "s3";
	in->amz_date = "20130524T000000Z";
	in->access_key = "AKIAIOSFODNN7EXAMPLE";
	in->secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
}

/* Line n of the canonical request for in. */
static char *creq_line(const struct s3_sign_input *in, int n)
{
	char *creq = s3_sign_canonical_request(in);
	char *line = line_of(creq, n);

	free(creq);
	return line;
}

/* S3 mode signs "//a/./b/../c" as given; generic mode normalises it. */
static void test_path_normalisation(void **state)
{
	struct s3_sign_input in;
	char *uri;

	(void)state;
	minimal_input(&in, "//a/./b/../c d");
	uri = creq_line(&in, 1);
	assert_string_equal(uri, "//a/./b/../c%20d");
	free(uri);
	in.normalize_path = 1;
	uri = creq_line(&in, 1);
	assert_string_equal(uri, "/a/c%20d");
	free(uri);
	minimal_input(&in, "");
	uri = creq_line(&in, 1);
	assert_string_equal(uri, "/");
	free(uri);
}

/* Query: encoded with '/' as %2F, sorted encoded, bare names as "name=". */
static void test_query_canonical(void **state)
{
	static const struct s3_pair params[] = {
		{ "prefix", "photos/2024 x" },
		{ "list-type", "2" },
		{ "delimiter", "/" },
		{ "uploads", NULL },
		{ "a+b", "" },
	};
	struct s3_sign_input in;
	char *query;

	(void)state;
	minimal_input(&in, "/");
	in.params = params;
	in.nparams = sizeof(params) / sizeof(params[0]);
	query = creq_line(&in, 2);
	assert_string_equal(query, "a%2Bb=&delimiter=%2F&list-type=2&"
				   "prefix=photos%2F2024%20x&uploads=");
	free(query);
}

/* Fill a test entry for one vector case. */
static void set_test(struct CMUnitTest *t, struct vcase *c,
		     CMUnitTestFunction fn)
{
	memset(t, 0, sizeof(*t));
	t->name = c->name;
	t->test_func = fn;
	t->initial_state = c;
}

/* Make a set A case from one line of suite-cases.txt. */
static void suite_case(struct vcase *c, const char *line)
{
	const char *slash = strrchr(line, '/');

	snprintf(c->name, sizeof(c->name), "sigv4-suite/%s", line);
	snprintf(c->dir, sizeof(c->dir), "%s/%s/%s", vectors_dir, SUITE_DIR,
		 line);
	snprintf(c->base, sizeof(c->base), "%s", slash ? slash + 1 : line);
	c->normalize = !strncmp(line, "normalize-path/", 15);
}

/* Add every case listed in suite-cases.txt; -1 if it cannot be read. */
static int add_suite_cases(struct CMUnitTest *t, struct vcase *c,
			   size_t max, size_t *pn)
{
	char dir[512];
	char *list, *line, *save = NULL;

	snprintf(dir, sizeof(dir), "%s/sigv4", vectors_dir);
	list = read_file(dir, "suite-cases.txt", NULL);
	if (!list)
		return -1;
	for (line = strtok_r(list, "\r\n", &save); line && *pn < max;
	     line = strtok_r(NULL, "\r\n", &save)) {
		suite_case(&c[*pn], line);
		set_test(&t[*pn], &c[*pn], test_suite_case);
		(*pn)++;
	}
	free(list);
	return 0;
}

/* Make a set B case for folder name under dir; -1 if a name is too long. */
static int example_case(struct vcase *c, const char *dir, const char *name)
{
	int n1 = snprintf(c->name, sizeof(c->name), "s3-example/%s", name);
	int n2 = snprintf(c->dir, sizeof(c->dir), "%s/%s", dir, name);

	if (n1 < 0 || (size_t)n1 >= sizeof(c->name) || n2 < 0 ||
	    (size_t)n2 >= sizeof(c->dir))
		return -1;
	return 0;
}

/* Add every folder of s3-examples, in name order; -1 if none. */
static int add_s3_examples(struct CMUnitTest *t, struct vcase *c,
			   size_t max, size_t *pn)
{
	char dir[512];
	struct dirent **ents;
	int i, n;

	snprintf(dir, sizeof(dir), "%s/%s", vectors_dir, EXAMPLES_DIR);
	n = scandir(dir, &ents, NULL, alphasort);
	if (n < 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (ents[i]->d_name[0] != '.' && *pn < max) {
			struct vcase *v = &c[*pn];

			if (example_case(v, dir, ents[i]->d_name) == 0) {
				set_test(&t[*pn], v, test_s3_example);
				(*pn)++;
			}
		}
		free(ents[i]);
	}
	free(ents);
	return 0;
}

static const struct CMUnitTest fixed_tests[] = {
	cmocka_unit_test(test_encode_reserved),
	cmocka_unit_test(test_encode_unreserved),
	cmocka_unit_test(test_encode_slash),
	cmocka_unit_test(test_encode_utf8),
	cmocka_unit_test(test_md5_base64),
	cmocka_unit_test(test_sha256_hex),
	cmocka_unit_test(test_path_normalisation),
	cmocka_unit_test(test_query_canonical),
};

#define NFIXED (sizeof(fixed_tests) / sizeof(fixed_tests[0]))
#define MAX_CASES 128

/* Run the fixed tests and one test per vector case. */
int main(int argc, char **argv)
{
	static struct CMUnitTest tests[NFIXED + MAX_CASES];
	static struct vcase cases[MAX_CASES];
	size_t ncases = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s VECTORS-DIR\n", argv[0]);
		return 1;
	}
	vectors_dir = argv[1];
	if (add_suite_cases(tests + NFIXED, cases, MAX_CASES, &ncases) ||
	    add_s3_examples(tests + NFIXED, cases, MAX_CASES, &ncases)) {
		fprintf(stderr, "%s: cannot read the vectors under %s\n",
			argv[0], vectors_dir);
		return 1;
	}
	memcpy(tests, fixed_tests, sizeof(fixed_tests));
	return _cmocka_run_group_tests("sign", tests, NFIXED + ncases, NULL,
				       NULL);
}
