/*
 * test_limit.c - the traffic side of s3/: the per-bucket token buckets and
 * their AIMD rate on a fake clock (nothing sleeps, no wall-clock timing),
 * the retry backoff's bounds, credentials from the AWS shared files, the
 * CompleteMultipartUpload body and the multipart answers, part sizes and
 * ETags, and what redirects say.  Exercises s3/s3-limit.c,
 * s3/s3-creds.c, s3/s3-multipart.c and s3/s3-parse.c.
 */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "s3_i.h"

#define MIB (1024ULL * 1024)

/* ---- a fake clock: sleeping moves it on ---- */

struct fake_clock {
	double now;
	double slept;
	int sleeps;
};

static double fake_now(void *arg)
{
	return ((struct fake_clock *)arg)->now;
}

static void fake_sleep(void *arg, double s)
{
	struct fake_clock *fc = arg;

	fc->now += s;
	fc->slept += s;
	fc->sleeps++;
}

/* A limiter on a fake clock at t = 100 s. */
static struct s3_limit *new_limit(double wrate, double wburst,
				  struct fake_clock *fc)
{
	struct s3_limit_conf lc = {
		.rate = { wrate, 100 },
		.burst = { wburst, 10 },
		.concurrency = 4,
	};
	struct s3_limit *l = s3_limit_new(&lc);

	assert_non_null(l);
	memset(fc, 0, sizeof(*fc));
	fc->now = 100;
	s3_limit_set_clock(l, fake_now, fake_sleep, fc);
	return l;
}

/* The current write rate. */
static double write_rate(struct s3_limit *l)
{
	struct s3_stats st;

	s3_limit_stats(l, &st);
	return st.write_rate;
}

/* After a pause, burst slots at once, then one every 1/rate. */
static void test_burst_then_even(void **state)
{
	struct fake_clock fc;
	struct s3_limit *l = new_limit(10, 3, &fc);
	double slot;
	int i;

	(void)state;
	for (i = 0; i < 3; i++)
		assert_true(fabs(s3_limit_reserve(l, S3_CLASS_WRITE, 100) -
				 100) < 1e-9);
	for (i = 1; i <= 20; i++) {
		slot = s3_limit_reserve(l, S3_CLASS_WRITE, 100);
		assert_true(fabs(slot - (100 + i * 0.1)) < 1e-9);
	}
	s3_limit_free(l);
}

/*
 * Paced callers never see more than rate slots in any one second past
 * the burst: the count in [t, t + 1) is at most rate + burst - 1.
 */
static void test_window_bound(void **state)
{
	struct fake_clock fc;
	struct s3_limit *l = new_limit(10, 2, &fc);
	double slots[300];
	int i, j, n;

	(void)state;
	for (i = 0; i < 300; i++) {
		/* callers arrive in clumps, every 0.37 s */
		if (i % 7 == 0)
			fc.now += 0.37;
		slots[i] = s3_limit_acquire(l, S3_CLASS_WRITE, 0);
		s3_limit_done(l, S3_CLASS_WRITE, slots[i], S3_OUTCOME_OK);
	}
	for (i = 0; i < 300; i++) {
		for (n = 0, j = i; j < 300 && slots[j] < slots[i] + 1; j++)
			n++;
		assert_true(n <= 10 + 2 - 1);
	}
	s3_limit_free(l);
}

/* Acquire sleeps until its slot instead of spinning. */
static void test_acquire_sleeps(void **state)
{
	struct fake_clock fc;
	struct s3_limit *l = new_limit(4, 1, &fc);
	double slot;
	int i;

	(void)state;
	for (i = 0; i < 9; i++) {
		slot = s3_limit_acquire(l, S3_CLASS_WRITE, 0);
		assert_true(fabs(slot - (100 + i * 0.25)) < 1e-9);
		assert_true(fabs(fc.now - slot) < 1e-9);
		s3_limit_done(l, S3_CLASS_WRITE, slot, S3_OUTCOME_OK);
	}
	assert_int_equal(fc.sleeps, 8);
	assert_true(fabs(fc.slept - 2.0) < 1e-9);
	s3_limit_free(l);
}

/* ---- foreground callers pass waiting background ones ---- */

struct waiter {
	struct s3_limit *l;
	int background;
	pthread_mutex_t *lock;
	int *order;		/* shared: how many got a place so far */
	int got;		/* this one's place in that order, from 1 */
};

static void *wait_place(void *arg)
{
	struct waiter *w = arg;

	s3_limit_acquire(w->l, S3_CLASS_READ, w->background);
	pthread_mutex_lock(w->lock);
	w->got = ++*w->order;
	pthread_mutex_unlock(w->lock);
	return NULL;
}

/*
 * Every in-flight place is taken; three upload workers (background)
 * start waiting, then a program's request (foreground).  The first place
 * given back goes to the program.  The short real sleeps only let each
 * thread reach its wait; the slots stay within the burst, so the fake
 * clock never moves.
 */
static void test_foreground_first(void **state)
{
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	struct fake_clock fc;
	struct s3_limit *l = new_limit(1, 1, &fc);
	struct waiter w[4];
	pthread_t t[4];
	int order = 0, got[4], i;

	(void)state;
	for (i = 0; i < 4; i++)
		s3_limit_acquire(l, S3_CLASS_READ, 0);
	for (i = 0; i < 4; i++) {
		/* w[3], the last to come, is the foreground one */
		w[i] = (struct waiter){ l, i < 3, &lock, &order, 0 };
		assert_int_equal(pthread_create(&t[i], NULL, wait_place,
						&w[i]), 0);
		usleep(30000);
	}
	assert_int_equal(order, 0);

	s3_limit_done(l, S3_CLASS_READ, 100, S3_OUTCOME_OK);
	for (i = 0; i < 200 && order < 1; i++)
		usleep(10000);
	usleep(50000);
	pthread_mutex_lock(&lock);
	for (i = 0; i < 4; i++)
		got[i] = w[i].got;
	pthread_mutex_unlock(&lock);

	for (i = 0; i < 3; i++)
		s3_limit_done(l, S3_CLASS_READ, 100, S3_OUTCOME_OK);
	for (i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	s3_limit_free(l);
	assert_int_equal(got[3], 1);
	assert_int_equal(got[0] + got[1] + got[2], 0);
}

/* Reads have their own budget: writes waiting do not slow them. */
static void test_classes_apart(void **state)
{
	struct fake_clock fc;
	struct s3_limit *l = new_limit(1, 1, &fc);
	int i;

	(void)state;
	for (i = 0; i < 5; i++)
		s3_limit_reserve(l, S3_CLASS_WRITE, 100);
	for (i = 0; i < 10; i++)
		assert_true(fabs(s3_limit_reserve(l, S3_CLASS_READ, 100) -
				 100) < 1e-9);
	s3_limit_free(l);
}

/* A SlowDown halves the rate, down to a floor. */
static void test_cut(void **state)
{
	struct fake_clock fc;
	struct s3_limit *l = new_limit(10, 2, &fc);
	int i;

	(void)state;
	s3_limit_feedback(l, S3_CLASS_WRITE, 100, S3_OUTCOME_THROTTLED, 100);
	assert_true(fabs(write_rate(l) - 5) < 1e-9);
	for (i = 1; i < 10; i++)
		s3_limit_feedback(l, S3_CLASS_WRITE, 100 + i,
				  S3_OUTCOME_THROTTLED, 100 + i);
	assert_true(fabs(write_rate(l) - 0.5) < 1e-9);
	s3_limit_free(l);
}

/* SlowDowns of requests sent before the last cut cut nothing more. */
static void test_one_cut_per_round(void **state)
{
	struct fake_clock fc;
	struct s3_limit *l = new_limit(10, 2, &fc);
	struct s3_stats st;

	(void)state;
	s3_limit_feedback(l, S3_CLASS_WRITE, 100.0, S3_OUTCOME_THROTTLED,
			  100.2);
	s3_limit_feedback(l, S3_CLASS_WRITE, 100.1, S3_OUTCOME_THROTTLED,
			  100.3);
	assert_true(fabs(write_rate(l) - 5) < 1e-9);
	s3_limit_feedback(l, S3_CLASS_WRITE, 100.4, S3_OUTCOME_THROTTLED,
			  100.5);
	assert_true(fabs(write_rate(l) - 2.5) < 1e-9);
	s3_limit_stats(l, &st);
	assert_int_equal(st.slowdowns, 3);
	s3_limit_free(l);
}

/* Successes climb back slowly, never past the configured rate. */
static void test_raise(void **state)
{
	struct fake_clock fc;
	struct s3_limit *l = new_limit(10, 2, &fc);
	double t = 100, r;
	int n = 0;

	(void)state;
	s3_limit_feedback(l, S3_CLASS_WRITE, t, S3_OUTCOME_THROTTLED, t);
	/* successes at the current rate, one a slot */
	while ((r = write_rate(l)) < 10 - 1e-9) {
		t += 1 / r;
		s3_limit_feedback(l, S3_CLASS_WRITE, t, S3_OUTCOME_OK, t);
		assert_true(write_rate(l) <= 10);
		n++;
		assert_true(n < 1000);
	}
	/* 5/s back to 10/s takes about 10 s: slow, but not forever */
	assert_true(t - 100 > 7 && t - 100 < 13);
	s3_limit_feedback(l, S3_CLASS_WRITE, t, S3_OUTCOME_OTHER, t);
	assert_true(fabs(write_rate(l) - 10) < 1e-9);
	s3_limit_free(l);
}

/* A cut rate spaces the following slots further apart. */
static void test_cut_spaces_slots(void **state)
{
	struct fake_clock fc;
	struct s3_limit *l = new_limit(10, 1, &fc);
	double a, b;

	(void)state;
	s3_limit_reserve(l, S3_CLASS_WRITE, 100);
	s3_limit_feedback(l, S3_CLASS_WRITE, 100, S3_OUTCOME_THROTTLED, 100);
	a = s3_limit_reserve(l, S3_CLASS_WRITE, 100);
	b = s3_limit_reserve(l, S3_CLASS_WRITE, 100);
	assert_true(fabs(b - a - 0.2) < 1e-9);
	s3_limit_free(l);
}

/* Full jitter: within [0, min(cap, base * 2^(n-1))), spread over it. */
static void test_backoff_bounds(void **state)
{
	unsigned n;
	long ceiling, w;
	double u;

	(void)state;
	for (n = 1; n <= 40; n++) {
		ceiling = 200L << (n - 1 < 20 ? n - 1 : 20);
		if (ceiling > 20000 || n > 20)
			ceiling = 20000;
		assert_int_equal(s3_backoff_ms(n, 200, 20000, 0), 0);
		for (u = 0.05; u < 1; u += 0.1) {
			w = s3_backoff_ms(n, 200, 20000, u);
			assert_true(w >= 0 && w < ceiling);
			assert_true(labs(w - (long)(u * ceiling)) <= 1);
		}
		w = s3_backoff_ms(n, 200, 20000, 0.999999);
		assert_true(w >= ceiling - 1 && w < ceiling);
	}
	/* out-of-range randomness waits nothing rather than too long */
	assert_int_equal(s3_backoff_ms(3, 200, 20000, 1.0), 0);
}

/* ---- credentials files ---- */

static char dir[64];

/* A file in the temporary directory with the given text. */
static void write_file(const char *name, const char *text, char *path,
		       size_t size)
{
	FILE *f;

	snprintf(path, size, "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static const char creds_text[] =
	"[default]\n"
	"aws_access_key_id = AKIDDEFAULT\n"
	"aws_secret_access_key = secretdefault\n"
	"\n"
	"# a comment\n"
	"[work]\n"
	"aws_access_key_id=AKIDWORK\n"
	"aws_secret_access_key=secret/work+1\n"
	"aws_session_token = tok\n"
	"[half]\n"
	"aws_access_key_id = AKIDHALF\n";

static const char config_text[] =
	"[default]\n"
	"region = eu-west-1\n"
	"[profile work]\n"
	"region = ap-south-1\n"
	"aws_access_key_id = AKIDFROMCONFIG\n"
	"aws_secret_access_key = notthisone\n"
	"s3 =\n"
	"  max_concurrent_requests = 20\n"
	"[profile cfgonly]\n"
	"aws_access_key_id = AKIDCFG\n"
	"aws_secret_access_key = secretcfg\n"
	"region = us-west-2\n"
	"[sso]\n"
	"region = nowhere-1\n";

/* Temporary files and an environment without keys of its own. */
static int creds_setup(void **state)
{
	char p[128];

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/blitfs-test-creds.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	write_file("credentials", creds_text, p, sizeof(p));
	setenv("AWS_SHARED_CREDENTIALS_FILE", p, 1);
	write_file("config", config_text, p, sizeof(p));
	setenv("AWS_CONFIG_FILE", p, 1);
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("AWS_SESSION_TOKEN");
	unsetenv("AWS_PROFILE");
	return 0;
}

/* Remove the temporary files. */
static int creds_teardown(void **state)
{
	char p[128];

	(void)state;
	snprintf(p, sizeof(p), "%s/credentials", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/config", dir);
	unlink(p);
	rmdir(dir);
	return 0;
}

/* Resolve with AWS_PROFILE set to profile (NULL: unset). */
static int resolve(const char *profile, struct s3_creds *cr, char *err,
		   size_t errlen)
{
	if (profile)
		setenv("AWS_PROFILE", profile, 1);
	else
		unsetenv("AWS_PROFILE");
	return s3_creds_resolve(cr, NULL, err, errlen);
}

/* The default profile: keys from credentials, region from config. */
static void test_creds_default(void **state)
{
	struct s3_creds cr;
	char err[256];

	(void)state;
	assert_int_equal(resolve(NULL, &cr, err, sizeof(err)), 0);
	assert_string_equal(cr.access_key, "AKIDDEFAULT");
	assert_string_equal(cr.secret_key, "secretdefault");
	assert_null(cr.session_token);
	assert_string_equal(cr.region, "eu-west-1");
	assert_non_null(strstr(cr.source, "profile default"));
	s3_creds_free(&cr);
}

/* The credentials file wins over the config file for keys. */
static void test_creds_precedence(void **state)
{
	struct s3_creds cr;
	char err[256];

	(void)state;
	assert_int_equal(resolve("work", &cr, err, sizeof(err)), 0);
	assert_string_equal(cr.access_key, "AKIDWORK");
	assert_string_equal(cr.secret_key, "secret/work+1");
	assert_string_equal(cr.session_token, "tok");
	assert_string_equal(cr.region, "ap-south-1");
	s3_creds_free(&cr);

	assert_int_equal(resolve("cfgonly", &cr, err, sizeof(err)), 0);
	assert_string_equal(cr.access_key, "AKIDCFG");
	assert_string_equal(cr.region, "us-west-2");
	s3_creds_free(&cr);
}

/* The environment's keys win; the profile still gives the region. */
static void test_creds_env(void **state)
{
	struct s3_creds cr;
	char err[256];

	(void)state;
	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "secretenv", 1);
	assert_int_equal(resolve("work", &cr, err, sizeof(err)), 0);
	assert_string_equal(cr.access_key, "AKIDENV");
	assert_string_equal(cr.secret_key, "secretenv");
	assert_null(cr.session_token);
	assert_string_equal(cr.region, "ap-south-1");
	assert_string_equal(cr.source, "environment");
	s3_creds_free(&cr);

	unsetenv("AWS_SECRET_ACCESS_KEY");
	assert_int_equal(resolve(NULL, &cr, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "AWS_SECRET_ACCESS_KEY"));
	unsetenv("AWS_ACCESS_KEY_ID");
}

/* Failures name the profile and the files, never a secret. */
static void test_creds_errors(void **state)
{
	struct s3_creds cr;
	char err[512];

	(void)state;
	assert_int_equal(resolve("nosuch", &cr, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "profile nosuch not found"));
	assert_int_equal(resolve("half", &cr, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "aws_secret_access_key"));
	/* "[sso]" in the config file is no profile section */
	assert_int_equal(resolve("sso", &cr, err, sizeof(err)), -1);
	assert_null(strstr(err, "secret/work"));
	assert_null(strstr(err, "secretdefault"));

	setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
	setenv("AWS_CONFIG_FILE", "/nonexistent/config", 1);
	assert_int_equal(resolve(NULL, &cr, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "no credentials"));
}

/* s3_creds_read_file fills only what is missing. */
static void test_creds_read_file(void **state)
{
	struct s3_creds cr;
	char p[128];

	(void)state;
	memset(&cr, 0, sizeof(cr));
	snprintf(p, sizeof(p), "%s/config", dir);
	assert_int_equal(s3_creds_read_file(&cr, p, "default", 1), 1);
	assert_null(cr.access_key);
	assert_string_equal(cr.region, "eu-west-1");
	assert_int_equal(s3_creds_read_file(&cr, p, "work", 1), 1);
	assert_string_equal(cr.region, "eu-west-1");
	assert_string_equal(cr.access_key, "AKIDFROMCONFIG");
	assert_int_equal(s3_creds_read_file(&cr, p, "none", 1), 0);
	assert_int_equal(s3_creds_read_file(&cr, "/nonexistent", "x", 0), 0);
	s3_creds_free(&cr);
}

/* ---- multipart ---- */

/* The Complete body lists the parts in order, ETags quoted, escaped. */
static void test_complete_body(void **state)
{
	struct s3_part parts[3] = {
		{ 1, 5 * MIB, "0123456789abcdef0123456789abcdef" },
		{ 2, 5 * MIB, "fedcba9876543210fedcba9876543210" },
		{ 3, 1, "a<b&c" },
	};
	char *body;

	(void)state;
	body = s3_mp_complete_body(parts, 3);
	assert_non_null(body);
	assert_non_null(strstr(body, "<CompleteMultipartUpload xmlns=\""
				     "http://s3.amazonaws.com/doc/"
				     "2006-03-01/\">"));
	assert_non_null(strstr(body,
			       "<Part><PartNumber>1</PartNumber><ETag>\""
			       "0123456789abcdef0123456789abcdef\"</ETag>"
			       "</Part><Part><PartNumber>2</PartNumber>"));
	assert_non_null(strstr(body, "<ETag>\"a&lt;b&amp;c\"</ETag>"));
	assert_non_null(strstr(body, "</CompleteMultipartUpload>"));
	free(body);
}

/* Part sizes keep to 5 MiB at least and 10,000 parts at most. */
static void test_part_size(void **state)
{
	uint64_t tib = 1024 * 1024 * MIB;

	(void)state;
	assert_int_equal(s3_mp_part_size(1024 * MIB, 16 * MIB), 16 * MIB);
	assert_int_equal(s3_mp_part_size(1024 * MIB, 1 * MIB), 5 * MIB);
	/* 1 TiB in 16 MiB parts would be 65,536 parts */
	assert_true(s3_mp_part_size(tib, 16 * MIB) * 10000 >= tib);
	assert_int_equal(s3_mp_part_size(tib, 16 * MIB) % MIB, 0);
	assert_true(s3_mp_part_size(5 * tib, 16 * MIB) * 10000 >= 5 * tib);
}

/* The multipart ETag: MD5 of the binary part MD5s, dash, count. */
static void test_mp_etag(void **state)
{
	/* the MD5s of "a" and "b"; the MD5 of their 32 binary bytes */
	const char md5s[2][33] = { "0cc175b9c0f1b6a831c399e269772661",
				   "92eb5ffee6ae2fec3ad71c777531578f" };
	char out[48];

	(void)state;
	assert_int_equal(s3_mp_etag(md5s, 2, out, sizeof(out)), 0);
	assert_string_equal(out, "96e024ba2074fe77e8e965ba43a704be-2");
	assert_int_equal(s3_mp_etag((const char (*)[33])"zz", 1, out,
				    sizeof(out)),
			 -1);
}

/* Initiate, Complete and ListParts answers. */
static void test_mp_answers(void **state)
{
	static const char init[] =
		"<?xml version=\"1.0\"?><InitiateMultipartUploadResult "
		"xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
		"<Bucket>b</Bucket><Key>k</Key><UploadId>VXBsb2FkSUQ-x_1"
		"</UploadId></InitiateMultipartUploadResult>";
	static const char done[] =
		"<CompleteMultipartUploadResult><ETag>\"3858f62230ac3c915f30"
		"0c664312c11f-9\"</ETag></CompleteMultipartUploadResult>";
	static const char parts[] =
		"<ListPartsResult><IsTruncated>true</IsTruncated>"
		"<NextPartNumberMarker>2</NextPartNumberMarker>"
		"<Part><PartNumber>1</PartNumber><ETag>\"aa\"</ETag>"
		"<Size>5242880</Size></Part>"
		"<Part><PartNumber>2</PartNumber><ETag>&quot;bb&quot;</ETag>"
		"<Size>7</Size></Part></ListPartsResult>";
	struct s3_part_list pl;
	char etag[80];
	char *id;

	(void)state;
	id = s3_parse_upload_id(init, strlen(init));
	assert_string_equal(id, "VXBsb2FkSUQ-x_1");
	free(id);
	assert_null(s3_parse_upload_id(done, strlen(done)));
	assert_int_equal(s3_parse_complete(done, strlen(done), etag,
					   sizeof(etag)), 0);
	assert_string_equal(etag, "3858f62230ac3c915f300c664312c11f-9");
	assert_int_equal(s3_parse_parts(parts, strlen(parts), &pl), 0);
	assert_int_equal(pl.nparts, 2);
	assert_int_equal(pl.truncated, 1);
	assert_int_equal(pl.next_marker, 2);
	assert_int_equal(pl.parts[1].number, 2);
	assert_int_equal(pl.parts[1].size, 7);
	assert_string_equal(pl.parts[1].etag, "bb");
	s3_part_list_free(&pl);
}

/* A 200 whose body is an <Error> is a failure (Complete does that). */
static void test_error_in_ok(void **state)
{
	static const char e[] =
		"<?xml version=\"1.0\"?>\n\n<Error><Code>InternalError</Code>"
		"<Message>We encountered an internal error.</Message></Error>";
	static const char ok[] = "<CompleteMultipartUploadResult/>";
	struct s3_error err;

	(void)state;
	assert_int_equal(s3_error_in_body(e, strlen(e), &err), 1);
	assert_int_equal(err.status, S3_TRANSIENT);
	assert_int_equal(err.http, 200);
	assert_string_equal(err.code, "InternalError");
	assert_int_equal(s3_error_in_body(ok, strlen(ok), &err), 0);
	assert_int_equal(s3_error_in_body(NULL, 0, &err), 0);
}

/* ---- redirects ---- */

/* 301 PermanentRedirect and 400 AuthorizationHeaderMalformed bodies. */
static void test_redirect_bodies(void **state)
{
	static const char moved[] =
		"<Error><Code>PermanentRedirect</Code><Message>The bucket "
		"you are attempting to access must be addressed using the "
		"specified endpoint.</Message><Endpoint>b.s3.eu-west-1."
		"amazonaws.com</Endpoint><Bucket>b</Bucket></Error>";
	static const char malformed[] =
		"<Error><Code>AuthorizationHeaderMalformed</Code><Message>the "
		"region 'us-east-1' is wrong; expecting 'ap-southeast-2'"
		"</Message><Region>ap-southeast-2</Region></Error>";
	char region[64], endpoint[256];

	(void)state;
	s3_parse_redirect(moved, strlen(moved), region, sizeof(region),
			  endpoint, sizeof(endpoint));
	assert_string_equal(region, "");
	assert_string_equal(endpoint, "b.s3.eu-west-1.amazonaws.com");
	s3_parse_redirect(malformed, strlen(malformed), region,
			  sizeof(region), endpoint, sizeof(endpoint));
	assert_string_equal(region, "ap-southeast-2");
	assert_string_equal(endpoint, "");
	s3_parse_redirect(NULL, 0, region, sizeof(region), endpoint,
			  sizeof(endpoint));
	assert_string_equal(region, "");
}

/* Region names: what may go into a credential scope. */
static void test_region_ok(void **state)
{
	(void)state;
	assert_true(s3_region_ok("eu-west-1"));
	assert_true(s3_region_ok("us-gov-west-1"));
	assert_false(s3_region_ok(""));
	assert_false(s3_region_ok("eu-west-1/s3"));
	assert_false(s3_region_ok("EU"));
	assert_false(s3_region_ok("a b"));
}

/* Codes that mean a damaged body are worth sending again. */
static void test_digest_transient(void **state)
{
	static const char bad[] = "<Error><Code>BadDigest</Code>"
				  "<Message>m</Message></Error>";
	struct s3_error err;

	(void)state;
	s3_error_from_response(400, bad, strlen(bad), &err);
	assert_int_equal(err.status, S3_TRANSIENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_burst_then_even),
		cmocka_unit_test(test_window_bound),
		cmocka_unit_test(test_acquire_sleeps),
		cmocka_unit_test(test_classes_apart),
		cmocka_unit_test(test_foreground_first),
		cmocka_unit_test(test_cut),
		cmocka_unit_test(test_one_cut_per_round),
		cmocka_unit_test(test_raise),
		cmocka_unit_test(test_cut_spaces_slots),
		cmocka_unit_test(test_backoff_bounds),
		cmocka_unit_test_setup_teardown(test_creds_default,
						creds_setup, creds_teardown),
		cmocka_unit_test_setup_teardown(test_creds_precedence,
						creds_setup, creds_teardown),
		cmocka_unit_test_setup_teardown(test_creds_env, creds_setup,
						creds_teardown),
		cmocka_unit_test_setup_teardown(test_creds_errors,
						creds_setup, creds_teardown),
		cmocka_unit_test_setup_teardown(test_creds_read_file,
						creds_setup, creds_teardown),
		cmocka_unit_test(test_complete_body),
		cmocka_unit_test(test_part_size),
		cmocka_unit_test(test_mp_etag),
		cmocka_unit_test(test_mp_answers),
		cmocka_unit_test(test_error_in_ok),
		cmocka_unit_test(test_redirect_bodies),
		cmocka_unit_test(test_region_ok),
		cmocka_unit_test(test_digest_transient),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
