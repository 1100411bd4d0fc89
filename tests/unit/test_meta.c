/*
 * test_meta.c - user metadata and server-side copies, without a network:
 * x-amz-meta-* written and read (s3fs's integer and rclone's fractional
 * mtime, malformed values left out), the x-amz-copy-source encoding, the
 * CopyObject and UploadPartCopy answers (a 200 holding an <Error>
 * among them), the part ranges of a copy in parts, the client's copy
 * cutoff, and that the headers a new object gets are signed.  Exercises
 * s3/s3-meta.c, s3/s3-copy.c, s3/s3-parse.c, s3/s3-multipart.c and
 * s3/s3-client.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "s3_i.h"

#define MIB (1024ULL * 1024)
#define GIB (1024 * MIB)
#define S3_NS "http://s3.amazonaws.com/doc/2006-03-01/"

/* ---- writing metadata ---- */

/* A meta with every field set. */
static struct s3_meta full_meta(long nsec)
{
	struct timespec t = { 1700000000, nsec };
	struct s3_meta m;

	s3_meta_from_stat(&m, 0100644, 1000, 100, &t);
	return m;
}

static void test_meta_headers(void **state)
{
	struct s3_meta m = full_meta(123456789);
	struct s3_hlist l = { 0 };

	(void)state;
	assert_int_equal(s3_meta_add_headers(&m, &l), 0);
	assert_int_equal(l.n, 4);
	assert_string_equal(s3_hlist_get(&l, "x-amz-meta-mode"), "33188");
	assert_string_equal(s3_hlist_get(&l, "x-amz-meta-uid"), "1000");
	assert_string_equal(s3_hlist_get(&l, "x-amz-meta-gid"), "100");
	assert_string_equal(s3_hlist_get(&l, "X-Amz-Meta-Mtime"),
			    "1700000000.123456789");
	s3_hlist_free(&l);
	assert_int_equal(l.n, 0);
}

static void test_meta_headers_partial(void **state)
{
	struct s3_meta m = full_meta(0);
	struct s3_hlist l = { 0 };

	(void)state;
	m.has_uid = m.has_gid = 0;
	assert_int_equal(s3_meta_add_headers(&m, &l), 0);
	assert_int_equal(l.n, 2);
	assert_null(s3_hlist_get(&l, "x-amz-meta-uid"));
	assert_null(s3_hlist_get(&l, "x-amz-meta-gid"));
	/* no fraction when there are no nanoseconds: s3fs's own form */
	assert_string_equal(s3_hlist_get(&l, "x-amz-meta-mtime"),
			    "1700000000");
	s3_hlist_free(&l);
	assert_int_equal(s3_meta_add_headers(NULL, &l), 0);
	assert_int_equal(l.n, 0);
}

static void test_meta_from_stat(void **state)
{
	struct timespec t = { 5, 6 };
	struct s3_meta m;

	(void)state;
	memset(&m, 0xff, sizeof(m));
	s3_meta_from_stat(&m, 040755, 0, 4294967295u, &t);
	assert_true(m.has_mode && m.has_uid && m.has_gid && m.has_mtime);
	assert_int_equal(m.mode, 040755);
	assert_int_equal(m.uid, 0);
	assert_int_equal(m.gid, 4294967295u);
	assert_int_equal(m.mtime.tv_sec, 5);
	assert_int_equal(m.mtime.tv_nsec, 6);
}

/* The text of one mtime. */
static void expect_mtime_text(time_t s, long ns, const char *want)
{
	struct timespec t = { s, ns }, back;
	char buf[48];

	s3_meta_mtime_text(&t, buf, sizeof(buf));
	assert_string_equal(buf, want);
	/* and it reads back as it was */
	assert_int_equal(s3_meta_parse_mtime(buf, &back), 0);
	assert_int_equal(back.tv_sec, s);
	assert_int_equal(back.tv_nsec, ns);
}

static void test_mtime_text(void **state)
{
	(void)state;
	expect_mtime_text(1700000000, 0, "1700000000");
	expect_mtime_text(1700000000, 1, "1700000000.000000001");
	expect_mtime_text(1700000000, 999999999, "1700000000.999999999");
	expect_mtime_text(0, 0, "0");
	/* before 1970 the text is a decimal number like any other */
	expect_mtime_text(-1, 0, "-1");
	expect_mtime_text(-2, 500000000, "-1.500000000");
	expect_mtime_text(-1, 250000000, "-0.750000000");
}

/* ---- reading metadata ---- */

/* Feed one header into a fresh meta; returns it. */
static struct s3_meta take(const char *name, const char *value, int ours)
{
	struct s3_meta m;

	memset(&m, 0, sizeof(m));
	assert_int_equal(s3_meta_take_header(&m, name, value), ours);
	return m;
}

static void test_meta_parse(void **state)
{
	struct s3_meta m;

	(void)state;
	m = take("x-amz-meta-mode", "33188", 1);
	assert_true(m.has_mode);
	assert_int_equal(m.mode, 0100644);
	m = take("X-AMZ-META-UID", "4294967295", 1);
	assert_true(m.has_uid);
	assert_int_equal(m.uid, 4294967295u);
	m = take("x-amz-meta-Gid", "0", 1);
	assert_true(m.has_gid);
	assert_int_equal(m.gid, 0);
	/* s3fs: integer seconds */
	m = take("x-amz-meta-mtime", "1700000000", 1);
	assert_true(m.has_mtime);
	assert_int_equal(m.mtime.tv_sec, 1700000000);
	assert_int_equal(m.mtime.tv_nsec, 0);
	assert_false(m.has_mode || m.has_uid || m.has_gid);
}

static void test_meta_parse_rclone(void **state)
{
	struct s3_meta m;

	(void)state;
	m = take("X-Amz-Meta-Mtime", "1700000000.123456789", 1);
	assert_true(m.has_mtime);
	assert_int_equal(m.mtime.tv_sec, 1700000000);
	assert_int_equal(m.mtime.tv_nsec, 123456789);
	/* fewer digits are tenths, hundredths ... */
	m = take("x-amz-meta-mtime", "1700000000.5", 1);
	assert_int_equal(m.mtime.tv_nsec, 500000000);
	/* more than nanoseconds are cut */
	m = take("x-amz-meta-mtime", "1700000000.1234567899", 1);
	assert_int_equal(m.mtime.tv_nsec, 123456789);
	m = take("x-amz-meta-mtime", "1.000000000", 1);
	assert_int_equal(m.mtime.tv_sec, 1);
	assert_int_equal(m.mtime.tv_nsec, 0);
}

/* A value that must be left out: the name is ours, has_ stays 0. */
static void expect_ignored(const char *name, const char *value)
{
	struct s3_meta m = take(name, value, 1);

	assert_false(m.has_mode || m.has_uid || m.has_gid || m.has_mtime);
}

static void test_meta_malformed(void **state)
{
	static const char *const bad_numbers[] = {
		"", "abc", "12x", "-1", "+1", " 1", "1 ", "0x10", "1.5",
		"4294967296", "99999999999999999999999",
	};
	static const char *const bad_times[] = {
		"", "abc", "1700000000.", ".5", "1.2.3", "-", "1e9",
		"1700000000,5", "1700000000.12a", "+1700000000",
		"99999999999999999999999", "2023-11-14T22:13:20Z",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad_numbers) / sizeof(bad_numbers[0]); i++) {
		expect_ignored("x-amz-meta-mode", bad_numbers[i]);
		expect_ignored("x-amz-meta-uid", bad_numbers[i]);
		expect_ignored("x-amz-meta-gid", bad_numbers[i]);
	}
	for (i = 0; i < sizeof(bad_times) / sizeof(bad_times[0]); i++)
		expect_ignored("x-amz-meta-mtime", bad_times[i]);
}

static void test_meta_other_headers(void **state)
{
	struct s3_meta m;

	(void)state;
	/* not ours: left alone, not claimed */
	take("x-amz-meta-atime", "1700000000", 0);
	take("x-amz-meta-mode2", "1", 0);
	take("x-amz-meta-", "1", 0);
	take("Content-Type", "text/plain", 0);
	take("mode", "1", 0);
	/* a bad value after a good one takes the field back */
	memset(&m, 0, sizeof(m));
	s3_meta_take_header(&m, "x-amz-meta-uid", "7");
	s3_meta_take_header(&m, "x-amz-meta-uid", "seven");
	assert_false(m.has_uid);
}

static void test_kept_headers(void **state)
{
	(void)state;
	assert_true(s3_meta_kept_header("x-amz-meta-mode"));
	assert_true(s3_meta_kept_header("X-Amz-Meta-Anything"));
	assert_true(s3_meta_kept_header("content-type"));
	assert_true(s3_meta_kept_header("Cache-Control"));
	assert_true(s3_meta_kept_header("Content-Disposition"));
	assert_true(s3_meta_kept_header("Content-Encoding"));
	assert_true(s3_meta_kept_header("Content-Language"));
	assert_true(s3_meta_kept_header("Expires"));
	assert_false(s3_meta_kept_header("x-amz-meta-"));
	assert_false(s3_meta_kept_header("ETag"));
	assert_false(s3_meta_kept_header("Content-Length"));
	assert_false(s3_meta_kept_header("x-amz-storage-class"));
	assert_false(s3_meta_kept_header("x-amz-version-id"));
}

static void test_hlist(void **state)
{
	struct s3_hlist a = { 0 }, b = { 0 };
	char name[32];
	int i;

	(void)state;
	for (i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "x-amz-meta-k%d", i);
		assert_int_equal(s3_hlist_add(&a, name, i ? "v" : ""), 0);
	}
	assert_int_equal(s3_hlist_add(&a, "Content-Type", "a/b"), 0);
	assert_string_equal(s3_hlist_get(&a, "X-AMZ-META-K0"), "");
	assert_string_equal(s3_hlist_get(&a, "x-amz-meta-k39"), "v");
	assert_int_equal(s3_hlist_add_all(&b, &a, "content-type"), 0);
	assert_int_equal(b.n, 40);
	assert_null(s3_hlist_get(&b, "Content-Type"));
	assert_int_equal(s3_hlist_add_all(&b, NULL, NULL), 0);
	assert_null(s3_hlist_get(NULL, "x"));
	s3_hlist_free(&a);
	s3_hlist_free(&b);
}

/* ---- the copy source ---- */

static void expect_source(const char *key, const char *want)
{
	char *s = s3_copy_source("my.bucket-1", key);

	assert_non_null(s);
	assert_string_equal(s, want);
	free(s);
}

static void test_copy_source(void **state)
{
	(void)state;
	expect_source("a/b.txt", "/my.bucket-1/a/b.txt");
	expect_source("with space", "/my.bucket-1/with%20space");
	expect_source("a+b", "/my.bucket-1/a%2Bb");
	expect_source("100%", "/my.bucket-1/100%25");
	expect_source("x#y?z=1&w", "/my.bucket-1/x%23y%3Fz%3D1%26w");
	expect_source("caf\xc3\xa9/\xe6\x97\xa5", "/my.bucket-1/caf%C3%A9/"
		      "%E6%97%A5");
	expect_source("~-_.", "/my.bucket-1/~-_.");
	/* slashes are part of the key, leading and trailing ones too */
	expect_source("/lead", "/my.bucket-1//lead");
	expect_source("dir/", "/my.bucket-1/dir/");
	expect_source("a//b", "/my.bucket-1/a//b");
}

/* ---- copy answers ---- */

static void test_copy_result(void **state)
{
	static const char body[] =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<CopyObjectResult xmlns=\"" S3_NS "\">"
		"<LastModified>2023-11-14T22:13:20.000Z</LastModified>"
		"<ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag>"
		"</CopyObjectResult>";
	char etag[80];
	time_t t = 1;

	(void)state;
	assert_int_equal(s3_parse_copy_result(body, strlen(body),
					      "CopyObject", etag,
					      sizeof(etag), &t), 0);
	assert_string_equal(etag, "9b2cf535f27731c974343645a3985328");
	assert_int_equal(t, 1700000000);
	/* an UploadPartCopy answer is not a CopyObject one */
	assert_int_equal(s3_parse_copy_result(body, strlen(body), "CopyPart",
					      etag, sizeof(etag), NULL), -1);
}

static void test_copy_part_result(void **state)
{
	/* S3 may send white space before the answer of a long copy */
	static const char body[] =
		"\n  \n<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<CopyPartResult><ETag>\"b54357faf0632cce46e942fa68356b38"
		"\"</ETag></CopyPartResult>";
	char etag[80];

	(void)state;
	assert_int_equal(s3_parse_copy_result(body, strlen(body), "CopyPart",
					      etag, sizeof(etag), NULL), 0);
	assert_string_equal(etag, "b54357faf0632cce46e942fa68356b38");
}

static void expect_bad_copy_result(const char *body)
{
	char etag[80];
	time_t t;

	assert_int_equal(s3_parse_copy_result(body, strlen(body),
					      "CopyObject", etag,
					      sizeof(etag), &t), -1);
}

static void test_copy_result_malformed(void **state)
{
	(void)state;
	expect_bad_copy_result("");
	expect_bad_copy_result("   ");
	expect_bad_copy_result("<CopyObjectResult></CopyObjectResult>");
	expect_bad_copy_result("<CopyObjectResult><ETag></ETag>"
			       "</CopyObjectResult>");
	expect_bad_copy_result("<CopyObjectResult><ETag>\"x\"</ETag>");
	expect_bad_copy_result("<Error><Code>InternalError</Code></Error>");
	expect_bad_copy_result("<html>proxy page</html>");
}

/* The class of a 200 answer whose body is body; -1 when no error. */
static int class_in_200(const char *body, char *code, size_t n)
{
	struct s3_error err;

	memset(&err, 0x55, sizeof(err));
	if (!s3_error_in_body(body, strlen(body), &err))
		return -1;
	assert_int_equal(err.http, 200);
	snprintf(code, n, "%s", err.code);
	return (int)err.status;
}

/* A 200 answer of a copy that failed while S3 worked on it. */
static const char *error_200(const char *code)
{
	static char doc[512];

	snprintf(doc, sizeof(doc),
		 "\n\n\n<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		 "<Error><Code>%s</Code><Message>m</Message>"
		 "<RequestId>1</RequestId></Error>", code);
	return doc;
}

static void test_copy_error_in_200(void **state)
{
	char code[64];

	(void)state;
	/* transient: the engine sends the copy again */
	assert_int_equal(class_in_200(error_200("InternalError"), code,
				      sizeof(code)), S3_TRANSIENT);
	assert_string_equal(code, "InternalError");
	assert_int_equal(class_in_200(error_200("SlowDown"), code,
				      sizeof(code)), S3_TRANSIENT);
	/* the others by their code */
	assert_int_equal(class_in_200(error_200("AccessDenied"), code,
				      sizeof(code)), S3_HARD);
	assert_int_equal(class_in_200(error_200("NoSuchKey"), code,
				      sizeof(code)), S3_NOT_FOUND);
	assert_int_equal(class_in_200(error_200("PreconditionFailed"), code,
				      sizeof(code)), S3_INVALID);
	assert_int_equal(class_in_200(error_200("InvalidRequest"), code,
				      sizeof(code)), S3_INVALID);
	/* a real answer is no error */
	assert_int_equal(class_in_200("<CopyObjectResult><ETag>\"e\"</ETag>"
				      "</CopyObjectResult>", code,
				      sizeof(code)), -1);
	assert_int_equal(class_in_200("  \n", code, sizeof(code)), -1);
}

static void test_precondition_failed(void **state)
{
	static const char body[] =
		"<Error><Code>PreconditionFailed</Code><Message>At least one "
		"of the pre-conditions you specified did not hold</Message>"
		"<Condition>x-amz-copy-source-If-Match</Condition></Error>";
	struct s3_error err;

	(void)state;
	s3_error_from_response(412, body, strlen(body), &err);
	assert_int_equal(err.status, S3_INVALID);
	assert_string_equal(err.code, "PreconditionFailed");
	s3_error_from_response(412, NULL, 0, &err);
	assert_int_equal(err.status, S3_INVALID);
	assert_string_equal(err.code, "PreconditionFailed");
	s3_error_from_response(404, NULL, 0, &err);
	assert_int_equal(err.status, S3_NOT_FOUND);
}

/* ---- the parts of a copy in parts ---- */

/* Check the count and the first and last ranges of a copy in parts. */
static void expect_parts(uint64_t size, uint64_t wanted, int count,
			 const char *first, const char *last)
{
	uint64_t part = s3_mp_part_size(size, wanted);
	char buf[64];

	assert_int_equal(s3_mp_part_count(size, part), count);
	s3_mp_copy_range(size, part, 0, buf, sizeof(buf));
	assert_string_equal(buf, first);
	s3_mp_copy_range(size, part, count - 1, buf, sizeof(buf));
	assert_string_equal(buf, last);
}

static void test_copy_ranges(void **state)
{
	(void)state;
	/* just above S3's single-copy limit, 16 MiB parts */
	expect_parts(5 * GIB + 1, 16 * MIB, 321, "bytes=0-16777215",
		     "bytes=5368709120-5368709120");
	expect_parts(5 * GIB, 16 * MIB, 320, "bytes=0-16777215",
		     "bytes=5351931904-5368709119");
	expect_parts(5 * GIB - 1, 16 * MIB, 320, "bytes=0-16777215",
		     "bytes=5351931904-5368709118");
	/* the moto check's object: 12 MiB in 5 MiB parts */
	expect_parts(12 * MIB, 5 * MIB, 3, "bytes=0-5242879",
		     "bytes=10485760-12582911");
	/* below S3's smallest part, the part grows to it */
	expect_parts(6 * MIB, 1 * MIB, 2, "bytes=0-5242879",
		     "bytes=5242880-6291455");
	expect_parts(1, 16 * MIB, 1, "bytes=0-0", "bytes=0-0");
}

static void test_copy_ranges_many(void **state)
{
	uint64_t size = 5 * 1024 * GIB;	/* 5 TiB, S3's largest object */
	uint64_t part = s3_mp_part_size(size, 16 * MIB);
	int n = s3_mp_part_count(size, part);
	char buf[64], end[32];

	(void)state;
	/* the part grows so that 10,000 parts suffice */
	assert_true(n <= 10000);
	assert_true(part % MIB == 0);
	/* and the last one ends at the object's last byte */
	s3_mp_copy_range(size, part, n - 1, buf, sizeof(buf));
	snprintf(end, sizeof(end), "-%llu", (unsigned long long)(size - 1));
	assert_string_equal(buf + strlen(buf) - strlen(end), end);
	assert_int_equal(s3_mp_part_count(0, 16 * MIB), 1);
}

/* ---- the client: cutoff and signed headers ---- */

/* A client of a local server that no test reaches. */
static struct s3_client *new_client(struct s3_config *cfg)
{
	struct s3_error err;
	struct s3_client *c;

	cfg->endpoint = "http://127.0.0.1:9";
	cfg->region = "us-east-1";
	cfg->bucket = "bkt";
	cfg->path_style = 1;
	cfg->access_key = "AKIDEXAMPLE";
	cfg->secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
	c = s3_client_new(cfg, &err);
	assert_non_null(c);
	return c;
}

/* The copy cutoff a client ends up with for a configured one. */
static uint64_t cutoff_for(uint64_t configured)
{
	struct s3_config cfg = { .copy_cutoff = configured };
	struct s3_client *c = new_client(&cfg);
	struct s3_mp_conf mc;

	s3_client_mp_conf(c, &mc);
	s3_client_free(c);
	return mc.copy_cutoff;
}

static void test_copy_cutoff(void **state)
{
	(void)state;
	assert_true(cutoff_for(0) == 5368709120ULL);
	assert_true(cutoff_for(5 * MIB) == 5 * MIB);
	assert_true(cutoff_for(5 * GIB) == 5 * GIB);
	/* no single CopyObject takes more than 5 GiB */
	assert_true(cutoff_for(5 * GIB + 1) == 5 * GIB);
	assert_true(cutoff_for(UINT64_MAX) == 5 * GIB);
}

static void test_bad_object_settings(void **state)
{
	struct s3_config cfg = { .endpoint = "http://127.0.0.1:9",
				 .region = "us-east-1", .bucket = "b",
				 .path_style = 1 };
	struct s3_error err;

	(void)state;
	cfg.cache_control = "max-age=1\r\nx-amz-acl: public-read";
	assert_null(s3_client_new(&cfg, &err));
	assert_int_equal(err.status, S3_INVALID);
	cfg.cache_control = NULL;
	cfg.storage_class = "STANDARD\n";
	assert_null(s3_client_new(&cfg, &err));
	assert_int_equal(err.status, S3_INVALID);
}

/* The line of signed header names in a canonical request. */
static const char *signed_line(const char *creq, char *buf, size_t n)
{
	const char *end = creq + strlen(creq);
	const char *p = end;

	/* the last line is the payload hash; the one before it, the names */
	while (p > creq && p[-1] != '\n')
		p--;
	end = p - 1;
	p = end;
	while (p > creq && p[-1] != '\n')
		p--;
	snprintf(buf, n, "%.*s", (int)(end - p), p);
	return buf;
}

/* The canonical request of a PUT to "k" with headers h. */
static char *canonical_put(struct s3_client *c, const struct s3_hlist *h,
			   const char *content_type)
{
	struct s3_call call;
	char *creq;

	memset(&call, 0, sizeof(call));
	call.method = "PUT";
	call.key = "k";
	call.fd = -1;
	call.content_type = content_type;
	call.headers = h;
	creq = s3_call_canonical_request(c, &call);
	assert_non_null(creq);
	return creq;
}

static void test_new_object_headers_signed(void **state)
{
	struct s3_config cfg = { .cache_control = "max-age=60",
				 .acl = "bucket-owner-full-control",
				 .storage_class = "STANDARD_IA" };
	struct s3_client *c = new_client(&cfg);
	struct s3_meta m = full_meta(123456789);
	struct s3_hlist h = { 0 };
	char *creq, names[512];

	(void)state;
	assert_int_equal(s3_client_object_headers(c, 0, &h), 0);
	assert_int_equal(s3_meta_add_headers(&m, &h), 0);
	creq = canonical_put(c, &h, "text/plain");
	assert_non_null(strstr(creq, "\ncache-control:max-age=60\n"));
	assert_non_null(strstr(creq, "\nx-amz-acl:bucket-owner-full-control"
				     "\n"));
	assert_non_null(strstr(creq, "\nx-amz-storage-class:STANDARD_IA\n"));
	assert_non_null(strstr(creq, "\nx-amz-meta-mode:33188\n"));
	assert_non_null(strstr(creq, "\nx-amz-meta-mtime:"
				     "1700000000.123456789\n"));
	assert_string_equal(signed_line(creq, names, sizeof(names)),
			    "cache-control;content-type;host;x-amz-acl;"
			    "x-amz-content-sha256;x-amz-date;x-amz-meta-gid;"
			    "x-amz-meta-mode;x-amz-meta-mtime;x-amz-meta-uid;"
			    "x-amz-storage-class");
	free(creq);
	s3_hlist_free(&h);
	s3_client_free(c);
}

static void test_copy_headers_signed(void **state)
{
	struct s3_config cfg = { .cache_control = "no-cache",
				 .acl = "private",
				 .storage_class = "GLACIER_IR" };
	struct s3_client *c = new_client(&cfg);
	struct s3_meta m = full_meta(0);
	struct s3_hlist h = { 0 };
	char *creq, names[512];

	(void)state;
	/* COPY: the source keeps its metadata, Cache-Control included */
	assert_int_equal(s3_copy_headers(c, "/bkt/a%20b", NULL, "abc", &h),
			 0);
	creq = canonical_put(c, &h, NULL);
	assert_non_null(strstr(creq, "\nx-amz-copy-source:/bkt/a%20b\n"));
	assert_non_null(strstr(creq, "\nx-amz-copy-source-if-match:"
				     "\"abc\"\n"));
	assert_non_null(strstr(creq, "\nx-amz-metadata-directive:COPY\n"));
	assert_string_equal(signed_line(creq, names, sizeof(names)),
			    "host;x-amz-acl;x-amz-content-sha256;"
			    "x-amz-copy-source;x-amz-copy-source-if-match;"
			    "x-amz-date;x-amz-metadata-directive;"
			    "x-amz-storage-class");
	free(creq);
	s3_hlist_free(&h);

	/* REPLACE: new metadata, type and Cache-Control */
	assert_int_equal(s3_copy_headers(c, "/bkt/k", &m, "\"abc\"", &h), 0);
	creq = canonical_put(c, &h, "image/png");
	assert_non_null(strstr(creq, "\nx-amz-copy-source-if-match:"
				     "\"abc\"\n"));
	assert_non_null(strstr(creq, "\nx-amz-metadata-directive:REPLACE\n"));
	assert_non_null(strstr(creq, "\nx-amz-meta-mtime:1700000000\n"));
	assert_string_equal(signed_line(creq, names, sizeof(names)),
			    "cache-control;content-type;host;x-amz-acl;"
			    "x-amz-content-sha256;x-amz-copy-source;"
			    "x-amz-copy-source-if-match;x-amz-date;"
			    "x-amz-meta-gid;x-amz-meta-mode;x-amz-meta-mtime;"
			    "x-amz-meta-uid;x-amz-metadata-directive;"
			    "x-amz-storage-class");
	free(creq);
	s3_hlist_free(&h);
	s3_client_free(c);
}

static void test_no_object_settings(void **state)
{
	struct s3_config cfg = { .cache_control = "" };
	struct s3_client *c = new_client(&cfg);
	struct s3_hlist h = { 0 };

	(void)state;
	/* unset and empty settings send nothing */
	assert_int_equal(s3_client_object_headers(c, 0, &h), 0);
	assert_int_equal(h.n, 0);
	assert_int_equal(s3_copy_headers(c, "/bkt/k", NULL, NULL, &h), 0);
	assert_int_equal(h.n, 2);
	s3_hlist_free(&h);
	s3_client_free(c);
}

static int setup(void **state)
{
	(void)state;
	return s3_global_init();
}

static int teardown(void **state)
{
	(void)state;
	s3_global_cleanup();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_meta_headers),
		cmocka_unit_test(test_meta_headers_partial),
		cmocka_unit_test(test_meta_from_stat),
		cmocka_unit_test(test_mtime_text),
		cmocka_unit_test(test_meta_parse),
		cmocka_unit_test(test_meta_parse_rclone),
		cmocka_unit_test(test_meta_malformed),
		cmocka_unit_test(test_meta_other_headers),
		cmocka_unit_test(test_kept_headers),
		cmocka_unit_test(test_hlist),
		cmocka_unit_test(test_copy_source),
		cmocka_unit_test(test_copy_result),
		cmocka_unit_test(test_copy_part_result),
		cmocka_unit_test(test_copy_result_malformed),
		cmocka_unit_test(test_copy_error_in_200),
		cmocka_unit_test(test_precondition_failed),
		cmocka_unit_test(test_copy_ranges),
		cmocka_unit_test(test_copy_ranges_many),
		cmocka_unit_test(test_copy_cutoff),
		cmocka_unit_test(test_bad_object_settings),
		cmocka_unit_test(test_new_object_headers_signed),
		cmocka_unit_test(test_copy_headers_signed),
		cmocka_unit_test(test_no_object_settings),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
