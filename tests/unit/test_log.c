/*
 * test_log.c - the logger: storms of alike lines become one line and a
 * summary, lines of other shapes and debug lines are never held back,
 * windows end and grow, and keys are quoted so that a key cannot forge a
 * line.  stderr is sent to a file that each test reads back.  Exercises
 * s3/log.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"

/* Each test captures into a fresh file made from this template. */
#define PATH_TEMPLATE "/tmp/blitfs-test-log.XXXXXX"

static char path[sizeof(PATH_TEMPLATE)];
static int saved_stderr = -1;

/* Send stderr to a fresh file; the default windows. */
static int capture(void **state)
{
	int fd;

	(void)state;
	memcpy(path, PATH_TEMPLATE, sizeof(PATH_TEMPLATE));
	fd = mkstemp(path);
	if (fd < 0)
		return -1;
	saved_stderr = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	close(fd);
	log_set_level(LOG_LVL_DEBUG);
	log_set_window(10000, 600000);
	return 0;
}

static int release(void **state)
{
	(void)state;
	log_flush();
	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	unlink(path);
	return 0;
}

/* The captured lines, each without its timestamp and level. */
static int read_lines(char lines[][512], int max)
{
	char buf[4096];
	FILE *f = fopen(path, "r");
	int n = 0;

	assert_non_null(f);
	while (n < max && fgets(buf, sizeof(buf), f)) {
		char *text = strchr(buf, ' ');

		text = text ? strchr(text + 1, ' ') : NULL;
		buf[strcspn(buf, "\n")] = '\0';
		snprintf(lines[n++], 512, "%s", text ? text + 1 : buf);
	}
	fclose(f);
	return n;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static void fail_key(int i)
{
	char kb[64], key[32];

	snprintf(key, sizeof(key), "img-%d.jpg", i);
	log_err("upq", "upload failed: bucket=b key=%s http=403 "
		"code=AccessDenied: Access Denied; given up",
		log_key(key, kb, sizeof(kb)));
}

/* 10,000 failures alike: the first line, then one summary. */
static void test_storm(void **state)
{
	char lines[8][512];
	int i;

	(void)state;
	for (i = 0; i < 10000; i++)
		fail_key(i);
	log_flush();
	assert_int_equal(read_lines(lines, 8), 2);
	assert_string_equal(lines[0], "upq: upload failed: bucket=b "
			    "key=\"img-0.jpg\" http=403 code=AccessDenied: "
			    "Access Denied; given up");
	assert_non_null(strstr(lines[1], "upq: message repeated 9999 times "
			       "in "));
	assert_non_null(strstr(lines[1], "; the last: upload failed: "
			       "bucket=b key=\"img-9999.jpg\" http=403"));
}

/* Another code, module or level is another shape; debug is never held. */
static void test_shapes_apart(void **state)
{
	char lines[16][512];
	int i;

	(void)state;
	for (i = 0; i < 3; i++) {
		log_err("upq", "key=\"k%d\" http=403 code=AccessDenied", i);
		log_err("upq", "key=\"k%d\" http=500 code=InternalError", i);
		log_warn("upq", "key=\"k%d\" http=403 code=AccessDenied", i);
		log_err("s3", "key=\"k%d\" http=403 code=AccessDenied", i);
		log_debug("upq", "key=\"k%d\" uploaded", i);
	}
	assert_int_equal(read_lines(lines, 16), 4 + 3);
	assert_string_equal(lines[0], "upq: key=\"k0\" http=403 "
			    "code=AccessDenied");
	assert_string_equal(lines[1], "upq: key=\"k0\" http=500 "
			    "code=InternalError");
	assert_string_equal(lines[4], "upq: key=\"k0\" uploaded");
	assert_string_equal(lines[5], "upq: key=\"k1\" uploaded");
}

/* Quotes escaped inside a key do not end it early. */
static void test_quoted_keys(void **state)
{
	char lines[4][512], kb[64];

	(void)state;
	log_err("upq", "key=%s failed", log_key("a\"b c", kb, sizeof(kb)));
	log_err("upq", "key=%s failed", log_key("plain", kb, sizeof(kb)));
	log_flush();
	assert_int_equal(read_lines(lines, 4), 2);
	assert_string_equal(lines[0], "upq: key=\"a\\\"b c\" failed");
	assert_non_null(strstr(lines[1], "repeated 1 time in"));
}

/*
 * A window that ends writes its summary with the next line; the storm
 * goes on in a window twice as long, and a quiet window forgets it.
 */
static void test_windows(void **state)
{
	char lines[16][512];
	int i;

	(void)state;
	log_set_window(100, 1000);
	for (i = 0; i < 5; i++)
		fail_key(i);
	sleep_ms(150);
	fail_key(5);		/* ends the first window: summary of 4 */
	for (i = 6; i < 9; i++)
		fail_key(i);	/* held in the second, 200 ms long */
	sleep_ms(120);
	log_info("fs", "something else");
	sleep_ms(120);
	log_info("fs", "something else again");	/* 4 more summarised */
	sleep_ms(450);
	log_info("fs", "quiet");	/* a quiet window: forgotten */
	fail_key(10);		/* so this is written in full */
	assert_int_equal(read_lines(lines, 16), 7);
	assert_non_null(strstr(lines[1], "message repeated 4 times"));
	assert_non_null(strstr(lines[1], "img-4.jpg"));
	assert_string_equal(lines[2], "fs: something else");
	assert_non_null(strstr(lines[3], "message repeated 4 times"));
	assert_non_null(strstr(lines[3], "img-8.jpg"));
	assert_non_null(strstr(lines[6], "key=\"img-10.jpg\""));
	assert_null(strstr(lines[6], "repeated"));
}

/* The ticker writes a summary without any further line. */
static void test_ticker(void **state)
{
	char lines[4][512];
	int i;

	(void)state;
	log_set_window(100, 1000);
	assert_int_equal(log_start(), 0);
	for (i = 0; i < 50; i++)
		fail_key(i);
	sleep_ms(1500);
	assert_int_equal(read_lines(lines, 4), 2);
	assert_non_null(strstr(lines[1], "message repeated 49 times"));
	log_stop();
	assert_int_equal(read_lines(lines, 4), 2);
}

/* Control bytes, quotes and backslashes are escaped; long keys cut. */
static void test_log_key(void **state)
{
	char kb[32];

	(void)state;
	assert_string_equal(log_key("a\nb\"c\\", kb, sizeof(kb)),
			    "\"a\\x0ab\\\"c\\\\\"");
	assert_string_equal(log_key("0123456789012345678901234567890123",
				    kb, sizeof(kb)),
			    "\"012345678901234567890...\"");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_storm, capture, release),
		cmocka_unit_test_setup_teardown(test_shapes_apart, capture,
						release),
		cmocka_unit_test_setup_teardown(test_quoted_keys, capture,
						release),
		cmocka_unit_test_setup_teardown(test_windows, capture,
						release),
		cmocka_unit_test_setup_teardown(test_ticker, capture, release),
		cmocka_unit_test(test_log_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
