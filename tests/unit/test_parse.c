/*
 * test_parse.c - what S3's answers mean: error classes, ListObjectsV2
 * results, and the errno each class becomes.  Exercises s3/s3-parse.c.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "s3_i.h"

#define S3_NS "http://s3.amazonaws.com/doc/2006-03-01/"

/* Parse an error answer whose body is a C string (NULL: no body). */
static void parse_error(long http, const char *body, struct s3_error *err)
{
	memset(err, 0x55, sizeof(*err));
	s3_error_from_response(http, body, body ? strlen(body) : 0, err);
}

/* An S3 error document with the given code and message. */
static char *error_doc(const char *code, const char *message)
{
	static char doc[1024];

	snprintf(doc, sizeof(doc),
		 "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		 "<Error><Code>%s</Code><Message>%s</Message>"
		 "<RequestId>4442587FB7D0A2F9</RequestId></Error>",
		 code, message);
	return doc;
}

/* Check one answer's class, code and message. */
static void expect_error(long http, const char *body, enum s3_status st,
			 const char *code, const char *message)
{
	struct s3_error err;

	parse_error(http, body, &err);
	assert_int_equal(err.status, st);
	assert_int_equal(err.http, http);
	assert_string_equal(err.code, code);
	assert_string_equal(err.message, message);
}

static void test_slow_down(void **state)
{
	(void)state;
	expect_error(503, error_doc("SlowDown", "Please reduce your rate."),
		     S3_TRANSIENT, "SlowDown", "Please reduce your rate.");
}

static void test_no_such_key(void **state)
{
	(void)state;
	expect_error(404, error_doc("NoSuchKey", "The key does not exist."),
		     S3_NOT_FOUND, "NoSuchKey", "The key does not exist.");
}

static void test_no_such_bucket_is_hard(void **state)
{
	(void)state;
	expect_error(404, error_doc("NoSuchBucket", "No bucket."), S3_HARD,
		     "NoSuchBucket", "No bucket.");
}

static void test_credentials_are_hard(void **state)
{
	(void)state;
	expect_error(403, error_doc("AccessDenied", "Access Denied"), S3_HARD,
		     "AccessDenied", "Access Denied");
	expect_error(403, error_doc("SignatureDoesNotMatch", "Bad signature."),
		     S3_HARD, "SignatureDoesNotMatch", "Bad signature.");
	expect_error(403, error_doc("InvalidAccessKeyId", "Unknown key."),
		     S3_HARD, "InvalidAccessKeyId", "Unknown key.");
	expect_error(403, error_doc("AllAccessDisabled", "Disabled."), S3_HARD,
		     "AllAccessDisabled", "Disabled.");
	expect_error(301, error_doc("PermanentRedirect", "Use the endpoint."),
		     S3_HARD, "PermanentRedirect", "Use the endpoint.");
}

static void test_no_body(void **state)
{
	(void)state;
	expect_error(500, NULL, S3_TRANSIENT, "HTTP 500",
		     "Internal Server Error");
	/* HEAD answers have no body: the status alone decides */
	expect_error(404, NULL, S3_NOT_FOUND, "NotFound", "Not Found");
	expect_error(403, "", S3_HARD, "Forbidden", "Forbidden");
	expect_error(502, NULL, S3_TRANSIENT, "HTTP 502", "Bad Gateway");
	expect_error(504, NULL, S3_TRANSIENT, "HTTP 504", "Gateway Timeout");
	expect_error(400, NULL, S3_INVALID, "BadRequest", "Bad Request");
	expect_error(412, NULL, S3_INVALID, "PreconditionFailed",
		     "Precondition Failed");
}

static void test_garbage_body(void **state)
{
	(void)state;
	expect_error(503, "<html><body>upstream gone</bo", S3_TRANSIENT,
		     "HTTP 503", "Service Unavailable");
	expect_error(502, "\x01\x02 not xml at all", S3_TRANSIENT, "HTTP 502",
		     "Bad Gateway");
}

static void test_cut_body(void **state)
{
	(void)state;
	/* a body cut at the client's cap still names its code */
	expect_error(503, "<Error><Code>SlowDown</Code><Message>Please re",
		     S3_TRANSIENT, "SlowDown", "Please re");
}

static void test_too_many_requests(void **state)
{
	(void)state;
	expect_error(429, NULL, S3_TRANSIENT, "HTTP 429", "Too Many Requests");
}

static void test_code_beats_status(void **state)
{
	(void)state;
	/* S3 sends RequestTimeout as a 400, and it is worth retrying */
	expect_error(400, error_doc("RequestTimeout", "Idle too long."),
		     S3_TRANSIENT, "RequestTimeout", "Idle too long.");
	expect_error(500, error_doc("InternalError", "Try again."),
		     S3_TRANSIENT, "InternalError", "Try again.");
	expect_error(400, error_doc("InvalidArgument", "Bad max-keys."),
		     S3_INVALID, "InvalidArgument", "Bad max-keys.");
	expect_error(400, error_doc("EntityTooLarge", "Too big."), S3_INVALID,
		     "EntityTooLarge", "Too big.");
}

static void test_success(void **state)
{
	struct s3_error err;

	(void)state;
	parse_error(200, NULL, &err);
	assert_int_equal(err.status, S3_OK);
	assert_int_equal(err.http, 200);
	assert_string_equal(err.code, "");
	assert_string_equal(err.message, "");
	parse_error(204, NULL, &err);
	assert_int_equal(err.status, S3_OK);
}

static void test_namespaced_and_wrapped(void **state)
{
	(void)state;
	expect_error(503,
		     "<Error xmlns=\"" S3_NS "\"><Code>SlowDown</Code>"
		     "<Message>Slow.</Message></Error>",
		     S3_TRANSIENT, "SlowDown", "Slow.");
	/* IAM and STS style */
	expect_error(403,
		     "<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/\">"
		     "<Error><Type>Sender</Type><Code>InvalidClientTokenId"
		     "</Code><Message>Token.</Message></Error></ErrorResponse>",
		     S3_HARD, "InvalidClientTokenId", "Token.");
	/* a body without <Message> gets the status's reason */
	expect_error(404, "<Error><Code>NoSuchUpload</Code></Error>",
		     S3_NOT_FOUND, "NoSuchUpload", "Not Found");
}

static void test_message_is_cleaned(void **state)
{
	char body[2048], longmsg[600];
	struct s3_error err;
	size_t i;

	(void)state;
	expect_error(500,
		     error_doc("InternalError", "line one&#10;line two&#9;!"),
		     S3_TRANSIENT, "InternalError", "line one?line two?!");

	/* a cut never splits a UTF-8 sequence */
	for (i = 0; i + 2 < sizeof(longmsg); i += 2)
		memcpy(longmsg + i, "\xc3\xa9", 2);
	longmsg[i] = '\0';
	snprintf(body, sizeof(body), "%s", error_doc("SlowDown", longmsg));
	parse_error(503, body, &err);
	assert_int_equal(err.status, S3_TRANSIENT);
	assert_true(strlen(err.message) < sizeof(err.message));
	assert_int_equal(strlen(err.message) % 2, 0);
}

static void test_no_outside_entities(void **state)
{
	struct s3_error err;

	(void)state;
	parse_error(500,
		    "<?xml version=\"1.0\"?>"
		    "<!DOCTYPE Error ["
		    "<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
		    "<Error><Code>InternalError</Code><Message>&x;</Message>"
		    "</Error>",
		    &err);
	assert_int_equal(err.status, S3_TRANSIENT);
	assert_null(strstr(err.message, "root"));
}

/* A ListObjectsV2 answer as S3 writes it, in its namespace. */
static const char list_doc[] =
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	"<ListBucketResult xmlns=\"" S3_NS "\">"
	"<Name>bucket</Name><Prefix>photos/</Prefix>"
	"<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOw="
	"</NextContinuationToken>"
	"<KeyCount>4</KeyCount><MaxKeys>4</MaxKeys><Delimiter>/</Delimiter>"
	"<IsTruncated>true</IsTruncated>"
	"<Contents><Key>photos/salt &amp; pepper.jpg</Key>"
	"<LastModified>2024-05-01T12:34:56.000Z</LastModified>"
	"<ETag>&quot;599bab3ed2c697f1d26842727561fd94&quot;</ETag>"
	"<Size>142863</Size><StorageClass>STANDARD</StorageClass></Contents>"
	"<Contents><Key>photos/\xc3\xbcn\xc3\xaf \xe2\x82\xac.png</Key>"
	"<LastModified>2023-11-30T23:00:01Z</LastModified>"
	"<ETag>\"9b2cf535f27731c974343645a3985328-3\"</ETag>"
	"<Size>0</Size><StorageClass>STANDARD</StorageClass></Contents>"
	"<CommonPrefixes><Prefix>photos/2023/</Prefix></CommonPrefixes>"
	"<CommonPrefixes><Prefix>photos/2024/</Prefix></CommonPrefixes>"
	"</ListBucketResult>";

static void test_list(void **state)
{
	struct s3_list_page page;

	(void)state;
	assert_int_equal(s3_parse_list(list_doc, strlen(list_doc), &page), 0);
	assert_int_equal(page.nobjects, 2);
	assert_string_equal(page.objects[0].key, "photos/salt & pepper.jpg");
	assert_int_equal(page.objects[0].size, 142863);
	assert_int_equal(page.objects[0].mtime, 1714566896);
	assert_string_equal(page.objects[0].etag,
			    "599bab3ed2c697f1d26842727561fd94");
	assert_string_equal(page.objects[1].key,
			    "photos/\xc3\xbcn\xc3\xaf \xe2\x82\xac.png");
	assert_int_equal(page.objects[1].size, 0);
	assert_int_equal(page.objects[1].mtime, 1701385201);
	assert_string_equal(page.objects[1].etag,
			    "9b2cf535f27731c974343645a3985328-3");
	assert_int_equal(page.nprefixes, 2);
	assert_string_equal(page.prefixes[0], "photos/2023/");
	assert_string_equal(page.prefixes[1], "photos/2024/");
	assert_true(page.truncated);
	assert_string_equal(page.next_token,
			    "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOw=");
	s3_list_page_free(&page);
	assert_null(page.objects);
	assert_int_equal(page.nobjects, 0);
	assert_null(page.next_token);
}

static void test_list_empty(void **state)
{
	static const char doc[] =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<ListBucketResult xmlns=\"" S3_NS "\"><Name>bucket</Name>"
		"<Prefix>none/</Prefix><KeyCount>0</KeyCount>"
		"<MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>"
		"</ListBucketResult>";
	struct s3_list_page page;

	(void)state;
	assert_int_equal(s3_parse_list(doc, strlen(doc), &page), 0);
	assert_int_equal(page.nobjects, 0);
	assert_int_equal(page.nprefixes, 0);
	assert_false(page.truncated);
	assert_null(page.next_token);
	s3_list_page_free(&page);
}

static void test_list_url_encoded(void **state)
{
	static const char doc[] =
		"<ListBucketResult xmlns=\"" S3_NS "\">"
		"<EncodingType>url</EncodingType>"
		"<Contents><Key>a+b%2Bc%20d%01e</Key><Size>1</Size></Contents>"
		"<Contents><Key>nul%00byte</Key><Size>1</Size></Contents>"
		"<Contents><Key>%C3%A9t%C3%A9</Key><Size>2</Size></Contents>"
		"<CommonPrefixes><Prefix>dir+1%2F</Prefix></CommonPrefixes>"
		"<IsTruncated>false</IsTruncated></ListBucketResult>";
	struct s3_list_page page;

	(void)state;
	assert_int_equal(s3_parse_list(doc, strlen(doc), &page), 0);
	/* a key holding a NUL byte cannot be a C string: it is left out */
	assert_int_equal(page.nobjects, 2);
	assert_string_equal(page.objects[0].key, "a b+c d\x01" "e");
	assert_string_equal(page.objects[1].key, "\xc3\xa9t\xc3\xa9");
	assert_int_equal(page.nprefixes, 1);
	assert_string_equal(page.prefixes[0], "dir 1/");
	s3_list_page_free(&page);
}

static void test_list_many(void **state)
{
	size_t cap = 200 * 80 + 200, n = 0, i;
	char *doc = malloc(cap);
	struct s3_list_page page;
	char key[32];

	(void)state;
	n += snprintf(doc + n, cap - n, "<ListBucketResult>");
	for (i = 0; i < 150; i++)
		n += snprintf(doc + n, cap - n,
			      "<Contents><Key>k%03zu</Key><Size>%zu</Size>"
			      "</Contents>",
			      i, i);
	for (i = 0; i < 40; i++)
		n += snprintf(doc + n, cap - n,
			      "<CommonPrefixes><Prefix>p%02zu/</Prefix>"
			      "</CommonPrefixes>",
			      i);
	snprintf(doc + n, cap - n, "</ListBucketResult>");
	assert_int_equal(s3_parse_list(doc, strlen(doc), &page), 0);
	assert_int_equal(page.nobjects, 150);
	assert_int_equal(page.nprefixes, 40);
	for (i = 0; i < 150; i++) {
		snprintf(key, sizeof(key), "k%03zu", i);
		assert_string_equal(page.objects[i].key, key);
		assert_int_equal(page.objects[i].size, i);
	}
	assert_string_equal(page.prefixes[39], "p39/");
	s3_list_page_free(&page);
	free(doc);
}

/* Check that a body is refused and leaves the page empty. */
static void expect_malformed(const char *body)
{
	struct s3_list_page page;

	assert_int_equal(s3_parse_list(body, strlen(body), &page), -1);
	assert_null(page.objects);
	assert_null(page.prefixes);
	assert_null(page.next_token);
	assert_int_equal(page.nobjects, 0);
	s3_list_page_free(&page);
}

static void test_list_malformed(void **state)
{
	(void)state;
	expect_malformed("");
	expect_malformed("<ListBucketResult><Contents><Key>a</Key>");
	expect_malformed("<html><body>not S3</body></html>");
	expect_malformed(error_doc("AccessDenied", "Access Denied"));
	expect_malformed("<ListBucketResult><Contents><Key>a</Key><Size>1"
			 "</Size></Contents><Contents><Size>2</Size>"
			 "</Contents></ListBucketResult>");
	expect_malformed("<ListBucketResult><Contents><Key>a</Key>"
			 "<Size>12x</Size></Contents></ListBucketResult>");
	expect_malformed("<ListBucketResult><CommonPrefixes></CommonPrefixes>"
			 "</ListBucketResult>");
}

static void test_status_errno(void **state)
{
	(void)state;
	assert_int_equal(s3_status_errno(S3_OK), 0);
	assert_int_equal(s3_status_errno(S3_NOT_FOUND), -ENOENT);
	assert_int_equal(s3_status_errno(S3_TRANSIENT), -EIO);
	assert_int_equal(s3_status_errno(S3_HARD), -EACCES);
	assert_int_equal(s3_status_errno(S3_INVALID), -EINVAL);
	assert_int_equal(s3_status_errno(S3_LOCAL), -EIO);
	assert_string_equal(s3_status_name(S3_OK), "ok");
	assert_string_equal(s3_status_name(S3_TRANSIENT), "transient");
	assert_string_equal(s3_status_name((enum s3_status)99), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_slow_down),
		cmocka_unit_test(test_no_such_key),
		cmocka_unit_test(test_no_such_bucket_is_hard),
		cmocka_unit_test(test_credentials_are_hard),
		cmocka_unit_test(test_no_body),
		cmocka_unit_test(test_garbage_body),
		cmocka_unit_test(test_cut_body),
		cmocka_unit_test(test_too_many_requests),
		cmocka_unit_test(test_code_beats_status),
		cmocka_unit_test(test_success),
		cmocka_unit_test(test_namespaced_and_wrapped),
		cmocka_unit_test(test_message_is_cleaned),
		cmocka_unit_test(test_no_outside_entities),
		cmocka_unit_test(test_list),
		cmocka_unit_test(test_list_empty),
		cmocka_unit_test(test_list_url_encoded),
		cmocka_unit_test(test_list_many),
		cmocka_unit_test(test_list_malformed),
		cmocka_unit_test(test_status_errno),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
