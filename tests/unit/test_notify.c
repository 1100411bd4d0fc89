/*
 * test_notify.c - postbacks (notify/): which requests are refused, the
 * JSON body, the signature against a value computed by openssl, delivery
 * ids, the durable queue across a close and reopen, the backoff's bounds,
 * and whole deliveries against a small HTTP listener in this process that
 * answers with scripted statuses.  Exercises notify/notify.c,
 * notify/pb-body.c, notify/pb-send.c and notify/pb-store.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "notify_i.h"

/* ---- pb_check_request ---- */

struct req_case {
	const char *request;
	int ok;
	const char *reason_has;	/* part of the reason when refused */
};

static const struct req_case req_cases[] = {
	{ "http://127.0.0.1:8080/hook", 1, NULL },
	{ "https://hooks.example.com/done?token=x", 1, NULL },
	{ "  HTTPS://hooks.example.com/done\n", 1, NULL },
	{ "http://[::1]:9/x", 1, NULL },
	{ "{\"url\": \"https://h.example/x\"}", 1, NULL },
	{ "{\"url\": \"https://h.example/x\", \"data\": {\"j\": 7}}", 1, NULL },
	{ "{\"url\": \"https://h.example/x\", \"data\": null}\n", 1, NULL },
	{ "file:///etc/passwd", 0, "only http:// and https:// are allowed" },
	{ "ftp://x", 0, "'ftp://x': only http:// and https://" },
	{ "gopher://h.example:70/1", 0, "only http:// and https://" },
	{ "javascript:alert(1)", 0, "only http:// and https://" },
	{ "h.example/x", 0, "only http:// and https://" },
	{ "", 0, "empty" },
	{ " \n\t", 0, "empty" },
	{ "http://", 0, "no host" },
	{ "http:///path", 0, "no host" },
	{ "http://h.example/a b", 0, "space" },
	{ "http://h.example/\x01", 0, "control" },
	{ "{\"data\": {}}", 0, "\"url\" is missing" },
	{ "{\"url\": 5}", 0, "\"url\" is missing or not a string" },
	{ "{\"url\": \"http://h/x\", \"data\": [1]}", 0, "\"data\" must be" },
	{ "{\"url\": \"http://h/x\", \"data\": \"s\"}", 0, "\"data\" must be" },
	{ "{\"url\": \"ftp://h/x\"}", 0, "only http:// and https://" },
	{ "{\"url\": \"http://h/x\", \"URL\": 1}", 0, "unknown field 'URL'" },
	{ "{\"url\": \"http://h/x\"", 0, "not valid JSON" },
	{ "{\"url\": \"http://a/\", \"url\": \"http://b/\"}", 0,
	  "not valid JSON" },
	{ "[\"http://h/x\"]", 0, "must be a URL or a JSON object" },
	{ "\x89PNG\r\n\x1a\n", 0, "only http:// and https://" },
};

/* Every case of the table is accepted or refused with its reason. */
static void test_check_request(void **state)
{
	char reason[256];
	size_t i;
	int rc;

	(void)state;
	for (i = 0; i < sizeof(req_cases) / sizeof(req_cases[0]); i++) {
		const struct req_case *c = &req_cases[i];

		reason[0] = '\0';
		rc = pb_check_request(c->request, reason, sizeof(reason));
		if (c->ok != (rc == 0) ||
		    (!c->ok && !strstr(reason, c->reason_has)))
			fail_msg("case %zu '%s': rc=%d reason='%s'", i,
				 c->request, rc, reason);
		if (!c->ok)
			assert_int_equal(rc, -EINVAL);
	}
}

/* The lead's callers pass no buffer when they only want the verdict. */
static void test_check_request_no_reason(void **state)
{
	(void)state;
	assert_int_equal(pb_check_request("http://h/x", NULL, 0), 0);
	assert_int_equal(pb_check_request("ftp://h/x", NULL, 0), -EINVAL);
	assert_int_equal(pb_check_request(NULL, NULL, 0), -EINVAL);
}

/* A reason names the URL, cut short if it is long, on one line. */
static void test_reason_shape(void **state)
{
	char url[3000];
	char reason[256];

	(void)state;
	memset(url, 'a', sizeof(url) - 1);
	memcpy(url, "gopher://", 9);
	url[sizeof(url) - 1] = '\0';
	assert_int_equal(pb_check_request(url, reason, sizeof(reason)),
			 -EINVAL);
	assert_non_null(strstr(reason, "postback URL 'gopher://aaa"));
	assert_non_null(strstr(reason, "...'"));
	assert_null(strchr(reason, '\n'));
}

/* ---- the body ---- */

static const struct pb_event sample = {
	.event = "visible",
	.request = "{\"url\": \"https://hooks.example.com/done\", "
		   "\"data\": {\"job\": \"j-42\", \"n\": 3}}",
	.bucket = "photos",
	.key = "out/a.jpg",
	.object_url = "https://s3.example.com/photos/out/a.jpg",
	.etag = "\"9e107d9d372bb6826bd81d3542a419d6\"",
	.content_type = "image/jpeg",
	.size = 123456,
	.version = 7,
	.visible = 1,
	.waited_ms = 1520,
	.attempts = 2,
	.error = NULL,
};

/* The body pb_enqueue would store for ev at now, parsed back. */
static json_t *body_of(const struct pb_event *ev, int64_t now)
{
	struct pb_request req;
	char reason[256];
	char id[PB_ID_LEN + 1];
	char *body;
	json_t *j;

	assert_int_equal(pb_request_parse(ev->request, &req, reason,
					  sizeof(reason)), 0);
	pb_delivery_id(ev, req.url, id);
	body = pb_body(ev, req.data, id, now);
	assert_non_null(body);
	j = json_loads(body, 0, NULL);
	assert_non_null(j);
	free(body);
	pb_request_free(&req);
	return j;
}

/* Member name of o is the string want. */
static void want_str(json_t *o, const char *name, const char *want)
{
	json_t *v = json_object_get(o, name);

	assert_true(json_is_string(v));
	assert_string_equal(json_string_value(v), want);
}

/* Member name of o is the integer want. */
static void want_int(json_t *o, const char *name, long long want)
{
	json_t *v = json_object_get(o, name);

	assert_true(json_is_integer(v));
	assert_int_equal(json_integer_value(v), want);
}

/* A visible event: every member, with its type and value. */
static void test_body(void **state)
{
	/* 2026-12-03T16:31:53.123Z */
	json_t *o = body_of(&sample, 1796315513123LL);
	json_t *data;

	(void)state;
	assert_int_equal(json_object_size(o), 14);
	want_str(o, "event", "visible");
	want_str(o, "bucket", "photos");
	want_str(o, "key", "out/a.jpg");
	want_str(o, "url", "https://s3.example.com/photos/out/a.jpg");
	want_str(o, "etag", "\"9e107d9d372bb6826bd81d3542a419d6\"");
	want_int(o, "size", 123456);
	want_str(o, "content_type", "image/jpeg");
	assert_true(json_is_true(json_object_get(o, "visible")));
	want_int(o, "waited_ms", 1520);
	want_int(o, "attempts", 2);
	assert_true(json_is_null(json_object_get(o, "error")));
	data = json_object_get(o, "data");
	assert_true(json_is_object(data));
	want_str(data, "job", "j-42");
	want_int(data, "n", 3);
	want_str(o, "delivery_id", "6c8445204c57ed54d4f7529ef1f5c7fa");
	want_str(o, "timestamp", "2026-12-03T16:31:53.123Z");
	json_decref(o);
}

/* A failed event: no ETag, not visible, the error, no data. */
static void test_body_failed(void **state)
{
	struct pb_event ev = sample;
	json_t *o;

	(void)state;
	ev.event = "failed";
	ev.request = "http://h.example/x";
	ev.etag = NULL;
	ev.visible = 0;
	ev.error = "403 AccessDenied: bucket photos";
	o = body_of(&ev, 0);
	want_str(o, "event", "failed");
	assert_true(json_is_null(json_object_get(o, "etag")));
	assert_true(json_is_false(json_object_get(o, "visible")));
	want_str(o, "error", "403 AccessDenied: bucket photos");
	assert_true(json_is_null(json_object_get(o, "data")));
	want_str(o, "timestamp", "1970-01-01T00:00:00.000Z");
	json_decref(o);
}

/* A file name need not be UTF-8; the body must stay valid JSON. */
static void test_body_bad_utf8(void **state)
{
	struct pb_event ev = sample;
	json_t *o;

	(void)state;
	ev.key = "out/\xff\xfe.jpg";
	o = body_of(&ev, 0);
	want_str(o, "key", "out/??.jpg");
	json_decref(o);
}

/* ---- signature and id ---- */

/* The signature matches one computed by openssl. */
static void test_signature(void **state)
{
	/*
	 * From openssl, not from blitfs:
	 *   printf '%s' '1767225600.{"event":"visible","key":"a.jpg"}' |
	 *     openssl dgst -sha256 -hmac 'test-secret'
	 */
	static const char want[] = "sha256=25253532be47b5b569ac97310b16f63e"
				   "fcb83bff051d69a43c5e93138e674032";
	char sig[72];

	(void)state;
	pb_sign("test-secret", "1767225600",
		"{\"event\":\"visible\",\"key\":\"a.jpg\"}", sig);
	assert_string_equal(sig, want);
}

/* The id is fixed by bucket, key, version, event and URL alone. */
static void test_delivery_id(void **state)
{
	/*
	 * From sha256sum, not from blitfs:
	 *   printf 'photos\nout/a.jpg\n7\nvisible\n'\
	 *   'https://hooks.example.com/done' | sha256sum | cut -c1-32
	 */
	struct pb_event ev = sample;
	char a[PB_ID_LEN + 1], b[PB_ID_LEN + 1];
	const char *url = "https://hooks.example.com/done";

	(void)state;
	pb_delivery_id(&ev, url, a);
	assert_string_equal(a, "6c8445204c57ed54d4f7529ef1f5c7fa");
	pb_delivery_id(&ev, url, b);
	assert_string_equal(a, b);
	ev.version = 8;
	pb_delivery_id(&ev, url, b);
	assert_string_not_equal(a, b);
	ev.version = 7;
	ev.event = "unconfirmed";
	pb_delivery_id(&ev, url, b);
	assert_string_not_equal(a, b);
	ev.event = "visible";
	pb_delivery_id(&ev, "https://other.example.com/", b);
	assert_string_not_equal(a, b);
}

/* Logs show neither user info nor the query string. */
static void test_url_for_log(void **state)
{
	char buf[256];

	(void)state;
	assert_string_equal(pb_url_for_log("https://u:pw@h.example:8443/a/b"
					   "?token=s3cret#f", buf, sizeof(buf)),
			    "https://h.example:8443/a/b?***");
	assert_string_equal(pb_url_for_log("http://h/x", buf, sizeof(buf)),
			    "http://h/x");
}

/* Full jitter stays within [0, min(cap, base 2^(n-1))]. */
static void test_backoff(void **state)
{
	unsigned n;

	(void)state;
	assert_int_equal(pb_backoff(1000, 60000, 1, 0), 0);
	assert_int_equal(pb_backoff(1000, 60000, 1, 1000), 1000);
	assert_int_equal(pb_backoff(1000, 60000, 1, 1001), 0);
	assert_int_equal(pb_backoff(1000, 60000, 3, 4000), 4000);
	for (n = 1; n < 100; n++) {
		assert_true(pb_backoff(1000, 60000, n, UINT32_MAX) <= 60000);
		assert_true(pb_backoff(1000, 60000, n, 12345) >= 0);
	}
	assert_int_equal(pb_backoff(1000, 60000, 7, 60000), 60000);
}

/* ---- the durable queue ---- */

/* A fresh directory to stand in for the cache directory. */
static char *tmpdir(void)
{
	char tmpl[] = "/tmp/test_notify.XXXXXX";
	char *d = mkdtemp(tmpl);

	assert_non_null(d);
	return strdup(d);
}

/* Remove a directory from tmpdir, and free its name. */
static void rmtree(char *dir)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	free(dir);
}

/* A queue in dir with small limits: 2 threads, 3 attempts. */
static struct pb *open_in(const char *dir, const char *secret)
{
	struct pb_opts o = {
		.dir = dir,
		.secret = secret,
		.timeout_s = 5,
		.max_inflight = 2,
		.retries = 3,
	};
	char err[256] = "";
	struct pb *p = pb_open(&o, err, sizeof(err));

	if (!p)
		fail_msg("pb_open: %s", err);
	return p;
}

/* How many deliveries wait. */
static unsigned pending(struct pb *p)
{
	struct pb_counts n;

	pb_counts(p, &n);
	return n.pending;
}

/* Deliveries outlive a close; duplicates and bad requests are not added. */
static void test_durable(void **state)
{
	char *dir = tmpdir();
	struct pb *p = open_in(dir, NULL);
	struct pb_event ev = sample;
	char path[512];
	struct stat st;

	(void)state;
	assert_int_equal(pb_enqueue(p, &ev), 0);
	assert_int_equal(pb_enqueue(p, &ev), 0);	/* same id: once */
	ev.event = "unconfirmed";
	assert_int_equal(pb_enqueue(p, &ev), 0);
	ev.request = "ftp://h/x";
	assert_int_equal(pb_enqueue(p, &ev), -EINVAL);
	ev.request = "http://h/x";
	ev.event = "done";
	assert_int_equal(pb_enqueue(p, &ev), -EINVAL);
	assert_int_equal(pending(p), 2);
	pb_close(p);

	snprintf(path, sizeof(path), "%s/postbacks.db", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	p = open_in(dir, NULL);
	assert_int_equal(pending(p), 2);
	pb_close(p);
	rmtree(dir);
}

/* ---- deliveries against a listener in this process ---- */

enum { HANG = -1 };

/* Answers each request with the next status of a script (last repeats). */
struct listener {
	int fd;
	int port;
	pthread_t thread;
	pthread_mutex_t lock;
	int stop;
	int script[8];
	int nscript;
	int served;
	char last[8192];	/* the last request, headers and body */
};

/* Read one request: headers, then Content-Length bytes of body. */
static int read_request(int c, char *buf, size_t size)
{
	size_t n = 0;
	ssize_t r;
	char *end;
	char *cl;

	for (;;) {
		r = recv(c, buf + n, size - 1 - n, 0);
		if (r <= 0)
			return -1;
		n += (size_t)r;
		buf[n] = '\0';
		end = strstr(buf, "\r\n\r\n");
		if (!end)
			continue;
		cl = strcasestr(buf, "\r\nContent-Length: ");
		if (!cl || (size_t)(end + 4 - buf) + strtoul(cl + 18, NULL, 10)
				   <= n)
			return 0;
	}
}

/* Hold a request unanswered until the client gives up or we stop. */
static void hang(struct listener *l, int c)
{
	struct pollfd pfd = { .fd = c, .events = POLLIN };
	char b[64];

	for (;;) {
		if (poll(&pfd, 1, 50) == 1 && recv(c, b, sizeof(b), 0) <= 0)
			return;
		pthread_mutex_lock(&l->lock);
		if (l->stop) {
			pthread_mutex_unlock(&l->lock);
			return;
		}
		pthread_mutex_unlock(&l->lock);
	}
}

/* Serve one connection with the next status of the script. */
static void answer(struct listener *l, int c)
{
	char req[sizeof(l->last)];
	char resp[256];
	int status;
	int i;

	if (read_request(c, req, sizeof(req)) < 0)
		return;
	pthread_mutex_lock(&l->lock);
	i = l->served < l->nscript ? l->served : l->nscript - 1;
	status = l->script[i];
	l->served++;
	memcpy(l->last, req, sizeof(req));
	pthread_mutex_unlock(&l->lock);
	if (status == HANG) {
		hang(l, c);
		return;
	}
	snprintf(resp, sizeof(resp),
		 "HTTP/1.1 %d X\r\nContent-Length: 2\r\nLocation: "
		 "file:///etc/passwd\r\nConnection: close\r\n\r\nok",
		 status);
	if (send(c, resp, strlen(resp), MSG_NOSIGNAL) < 0)
		return;
}

/* Accept connections one at a time until told to stop. */
static void *listener_main(void *arg)
{
	struct listener *l = arg;
	struct pollfd pfd = { .fd = l->fd, .events = POLLIN };
	int c;

	for (;;) {
		pthread_mutex_lock(&l->lock);
		if (l->stop) {
			pthread_mutex_unlock(&l->lock);
			return NULL;
		}
		pthread_mutex_unlock(&l->lock);
		if (poll(&pfd, 1, 50) != 1)
			continue;
		c = accept(l->fd, NULL, NULL);
		if (c < 0)
			continue;
		answer(l, c);
		close(c);
	}
}

/* Listen on a free loopback port and answer with script. */
static struct listener *listen_start(const int *script, int n)
{
	struct listener *l = calloc(1, sizeof(*l));
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);

	assert_non_null(l);
	memcpy(l->script, script, (size_t)n * sizeof(*script));
	l->nscript = n;
	pthread_mutex_init(&l->lock, NULL);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l->fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(l->fd >= 0);
	assert_int_equal(bind(l->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(l->fd, 16), 0);
	assert_int_equal(getsockname(l->fd, (struct sockaddr *)&a, &len), 0);
	l->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&l->thread, NULL, listener_main, l),
			 0);
	return l;
}

/* Stop the listener thread and free it. */
static void listen_stop(struct listener *l)
{
	pthread_mutex_lock(&l->lock);
	l->stop = 1;
	pthread_mutex_unlock(&l->lock);
	pthread_join(l->thread, NULL);
	close(l->fd);
	pthread_mutex_destroy(&l->lock);
	free(l);
}

/* A request for the listener, with some data. */
static void request_for(struct listener *l, char *buf, size_t size)
{
	snprintf(buf, size,
		 "{\"url\": \"http://127.0.0.1:%d/hook?t=1\", "
		 "\"data\": {\"job\": 9}}", l->port);
}

/* Wait up to ms for the counts to reach delivered and failed. */
static void await(struct pb *p, unsigned delivered, unsigned failed, int ms)
{
	struct timespec t = { 0, 10 * 1000000 };
	struct pb_counts n;
	int i;

	for (i = 0; i < ms / 10; i++) {
		pb_counts(p, &n);
		if (n.delivered == delivered && n.failed == failed)
			return;
		nanosleep(&t, NULL);
	}
	fail_msg("after %d ms: delivered %u (want %u), failed %u (want %u)",
		 ms, n.delivered, delivered, n.failed, failed);
}

/* The value of header name in a raw request; "" if absent. */
static void header(const char *req, const char *name, char *out,
		   size_t size)
{
	char pat[64];
	const char *h;

	snprintf(pat, sizeof(pat), "\r\n%s: ", name);
	out[0] = '\0';
	h = strstr(req, pat);
	if (h)
		snprintf(out, size, "%.*s", (int)strcspn(h + strlen(pat),
							 "\r"),
			 h + strlen(pat));
}

/* Check what arrived: path, headers, a valid signature, the body. */
static void check_request(const char *req, const char *secret)
{
	char ts[32], sig[128], id[64], want[72];
	const char *body = strstr(req, "\r\n\r\n") + 4;
	json_t *j = json_loads(body, 0, NULL);

	assert_true(!strncmp(req, "POST /hook?t=1 HTTP/1.1\r\n", 25));
	header(req, "Content-Type", sig, sizeof(sig));
	assert_string_equal(sig, "application/json");
	header(req, "X-Blitfs-Timestamp", ts, sizeof(ts));
	assert_true(llabs(atoll(ts) - (long long)time(NULL)) < 30);
	header(req, "X-Blitfs-Delivery", id, sizeof(id));
	assert_int_equal(strlen(id), PB_ID_LEN);
	header(req, "X-Blitfs-Signature", sig, sizeof(sig));
	pb_sign(secret, ts, body, want);
	assert_string_equal(sig, want);
	assert_non_null(j);
	want_str(j, "delivery_id", id);
	want_int(json_object_get(j, "data"), "job", 9);
	json_decref(j);
}

/* A 503 then a 200: delivered on the second attempt, signed. */
static void test_deliver_after_retry(void **state)
{
	static const int script[] = { 503, 200 };
	struct listener *l = listen_start(script, 2);
	char *dir = tmpdir();
	struct pb *p = open_in(dir, "test-secret");
	struct pb_event ev = sample;
	char req[256];

	(void)state;
	request_for(l, req, sizeof(req));
	ev.request = req;
	pb_set_backoff(p, 10, 50);
	assert_int_equal(pb_enqueue(p, &ev), 0);
	assert_int_equal(pb_start(p), 0);
	await(p, 1, 0, 5000);
	assert_int_equal(pending(p), 0);
	assert_int_equal(l->served, 2);
	check_request(l->last, "test-secret");
	pb_close(p);
	listen_stop(l);
	rmtree(dir);
}

/* A 404 and a redirect end a delivery at once, and nothing follows. */
static void test_refused(void **state)
{
	static const int script[] = { 404, 302 };
	struct listener *l = listen_start(script, 2);
	char *dir = tmpdir();
	struct pb *p = open_in(dir, NULL);
	struct pb_event ev = sample;
	char req[256];

	(void)state;
	request_for(l, req, sizeof(req));
	ev.request = req;
	assert_int_equal(pb_enqueue(p, &ev), 0);
	ev.version = 8;
	assert_int_equal(pb_enqueue(p, &ev), 0);
	assert_int_equal(pb_start(p), 0);
	await(p, 0, 2, 5000);
	assert_int_equal(pending(p), 0);
	assert_int_equal(l->served, 2);
	pb_close(p);
	listen_stop(l);
	rmtree(dir);
}

/* Out of attempts on 500s: given up after exactly `retries` tries. */
static void test_gives_up(void **state)
{
	static const int script[] = { 500 };
	struct listener *l = listen_start(script, 1);
	char *dir = tmpdir();
	struct pb *p = open_in(dir, NULL);
	struct pb_event ev = sample;
	char req[256];

	(void)state;
	request_for(l, req, sizeof(req));
	ev.request = req;
	pb_set_backoff(p, 10, 20);
	assert_int_equal(pb_enqueue(p, &ev), 0);
	assert_int_equal(pb_start(p), 0);
	await(p, 0, 1, 5000);
	assert_int_equal(l->served, 3);
	pb_close(p);
	listen_stop(l);
	rmtree(dir);
}

/* A receiver that never answers: pb_close is prompt, the row survives. */
static void test_close_abandons(void **state)
{
	static const int script[] = { HANG, 200 };
	struct listener *l = listen_start(script, 2);
	char *dir = tmpdir();
	struct pb *p = open_in(dir, NULL);
	struct pb_event ev = sample;
	struct timespec t0, t1;
	char req[256];
	int served;

	(void)state;
	request_for(l, req, sizeof(req));
	ev.request = req;
	assert_int_equal(pb_enqueue(p, &ev), 0);
	assert_int_equal(pb_start(p), 0);
	do {
		pthread_mutex_lock(&l->lock);
		served = l->served;
		pthread_mutex_unlock(&l->lock);
	} while (!served);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pb_close(p);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_true(t1.tv_sec - t0.tv_sec < 3);

	p = open_in(dir, NULL);
	assert_int_equal(pending(p), 1);
	assert_int_equal(pb_start(p), 0);
	await(p, 1, 0, 5000);
	pb_close(p);
	listen_stop(l);
	rmtree(dir);
}

/* Run the tests in order. */
int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_request),
		cmocka_unit_test(test_check_request_no_reason),
		cmocka_unit_test(test_reason_shape),
		cmocka_unit_test(test_body),
		cmocka_unit_test(test_body_failed),
		cmocka_unit_test(test_body_bad_utf8),
		cmocka_unit_test(test_signature),
		cmocka_unit_test(test_delivery_id),
		cmocka_unit_test(test_url_for_log),
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_durable),
		cmocka_unit_test(test_deliver_after_retry),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_gives_up),
		cmocka_unit_test(test_close_abandons),
	};

	return cmocka_run_group_tests_name("notify", tests, NULL, NULL);
}
