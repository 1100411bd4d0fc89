/*
 * s3-client.c - S3 requests over libcurl: the transfer engine.
 *
 * Each request waits for a slot of the bucket's rate limiter, is built,
 * signed with Signature V4, performed on the calling thread's own curl
 * handle (kept for keep-alive) and classified through
 * s3_error_from_response.  Transient failures are sent again after a
 * capped, fully jittered exponential backoff, for a bounded number of
 * attempts; redirects teach the client the bucket's region (or endpoint)
 * and are re-signed and re-sent without counting as failures.  Query
 * parameters live in one array that both the URL and the signature are
 * made from, so the two cannot disagree; headers likewise, the ones a new
 * object gets (Cache-Control, ACL, storage class, x-amz-meta-*) and a
 * copy's among them.  Bodies go straight to the caller's buffer or file;
 * error bodies never do, they are kept (bounded) for their <Code>.  No
 * secret ever reaches err or a log line.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <libxml/parser.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "log.h"
#include "s3_i.h"

#ifndef BLITFS_VERSION
#define BLITFS_VERSION "dev"
#endif

#define USER_AGENT "blitfs/" BLITFS_VERSION
#define CONNECT_TIMEOUT 10L	/* seconds */
#define DEFAULT_TIMEOUT 30L	/* seconds without progress */
#define ERROR_BODY_MAX (64 * 1024)
#define LIST_BODY_MAX (32 * 1024 * 1024)
#define MAX_PARAMS 6
#define BASE_HEADERS 7		/* the most signed_headers adds itself */
/*
 * An answer's header line is cut here.  S3 refuses requests with more
 * than 8 KiB of headers (2 KiB of user metadata), so no header a copy
 * must carry over can be longer; a longer one fails the copy instead of
 * being cut.
 */
#define HEADER_LINE_MAX 8192
#define DEFAULT_CONTENT_TYPE "application/octet-stream"

#define DEFAULT_WRITE_RATE 10.0	/* S3 throttles a bucket past about this */
#define DEFAULT_READ_RATE 100.0
/*
 * Small bursts: a server that counts requests per second at arrival sees
 * no more than the rate from evenly spaced slots, and a burst only adds to
 * that after a pause.
 */
#define WRITE_BURST 2.0
#define READ_BURST 10.0
#define DEFAULT_CONCURRENCY 8
#define DEFAULT_RETRIES 5
#define MIB (1024ULL * 1024)
#define DEFAULT_MP_THRESHOLD (64 * MIB)
#define DEFAULT_PART_SIZE (16 * MIB)
#define MAX_COPY_CUTOFF (5 * 1024 * MIB)	/* S3's largest CopyObject */
#define MAX_PART_THREADS 4

#define BACKOFF_BASE_MS 200L
#define BACKOFF_CAP_MS 20000L
#define CALL_DEADLINE_S 300	/* no call waits longer between attempts */
#define MAX_REDIRECTS 3		/* per call; more count as failures */
/*
 * Seconds a kept-alive connection may idle before it is not reused: S3
 * closes idle ones after about 20 s, and a request that finds its
 * connection dead costs an attempt (see on_seek).
 */
#define MAX_CONN_AGE 15L

/* One thread's curl handle; the client lists them all to free them. */
struct handle {
	CURL *curl;
	struct s3_client *client;
	int background;		/* an upload worker: see s3_background */
	int has_turn;		/* a write slot taken by s3_write_turn */
	double turn;		/* that slot's time */
	struct handle *prev;
	struct handle *next;
};

/*
 * Fields are written by s3_client_new and only read afterwards, except
 * those under lock: the handle list, the route (region, base_url, host:
 * a redirect may change them while requests run; requests copy them) and
 * the counters.  share_locks are curl's, one per kind of shared data.
 */
struct s3_client {
	char *endpoint;		/* scheme://host[:port], for messages */
	char *base_url;		/* scheme://[bucket.]host[:port]; lock */
	char *host;		/* the Host header, as base_url has it; lock */
	char *bucket;
	char *region;		/* what requests are signed for; lock */
	int https;
	struct s3_limit *limit;
	int retries;
	int concurrency;
	uint64_t mp_threshold;
	uint64_t part_size;
	uint64_t copy_cutoff;
	char *cache_control;	/* for new objects; NULL: none */
	char *acl;
	char *storage_class;
	uint64_t nretries;	/* lock */
	uint64_t nredirects;	/* lock */
	char *access_key;	/* NULL: anonymous, requests go unsigned */
	char *secret_key;
	char *session_token;
	char *ca_file;
	int path_style;
	int insecure;
	long timeout;
	int have_key;
	pthread_key_t key;
	CURLSH *share;
	pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
	pthread_mutex_t lock;
	struct handle *handles;
};

/* Where the body of a successful answer goes. */
enum sink {
	SINK_NONE,		/* dropped (PUT, DELETE answers) */
	SINK_BUF,		/* the caller's buffer (s3_get_range) */
	SINK_FD,		/* the caller's file (s3_get_to_fd) */
	SINK_MEM,		/* memory, to be parsed (s3_list) */
};

/* A growing, NUL-terminated byte buffer. */
struct mem {
	char *p;
	size_t len;
	size_t cap;
};

/* One request and what came back for it. */
struct request {
	struct s3_client *c;
	const char *method;
	const char *key;		/* NULL: the bucket itself */
	struct s3_pair params[MAX_PARAMS];
	size_t nparams;
	char range[64];			/* Range header value, or "" */
	const char *content_type;	/* sent when set */
	const struct s3_hlist *headers;	/* more to send and sign */
	struct s3_hlist *kept;		/* gets headers a copy carries */
	int kept_cut;			/* one of those was too long */
	time_t when;
	char amz_date[17];
	char payload_hash[65];
	char md5[25];			/* Content-MD5, sent when set */
	char want_etag[33];		/* hex MD5 the ETag must be, or "" */
	enum s3_class klass;

	/* the route of this attempt, copied from the client */
	char region[64];
	char *base_url;
	char *host;
	/* a 307's target, for the rest of this call */
	char *moved_base_url;
	char *moved_host;

	/* the body sent: from memory when in_fd < 0, else from a file */
	const char *data;
	int in_fd;
	uint64_t in_base;		/* where the body starts in in_fd */
	uint64_t in_size;
	uint64_t in_off;
	int in_errno;

	/* the answer */
	long http;
	struct s3_object_info info;
	int64_t range_start;		/* from Content-Range, or -1 */
	enum sink sink;
	uint64_t seen;			/* body bytes received */
	char *buf;			/* SINK_BUF */
	size_t buf_len;
	uint64_t buf_off;		/* object offset of buf[0] */
	size_t got;
	int done;			/* all wanted bytes are in: stop */
	int out_fd;			/* SINK_FD */
	uint64_t out_base;		/* where a 206 answer's bytes go */
	int out_errno;
	struct mem mem;			/* SINK_MEM, and error bodies */
	int too_big;
	int nomem;
	int etag_opaque;		/* SSE-KMS or SSE-C: ETag is no MD5 */
	char bucket_region[64];		/* x-amz-bucket-region */
	char location[1024];		/* Location, of a 307 */
	char errbuf[CURL_ERROR_SIZE];
};

/* A curl failure: its class and the short code err carries. */
struct curl_class {
	CURLcode res;
	enum s3_status status;
	const char *code;
};

static const struct curl_class curl_classes[] = {
	{ CURLE_COULDNT_RESOLVE_HOST, S3_TRANSIENT, "ResolveFailed" },
	{ CURLE_COULDNT_CONNECT, S3_TRANSIENT, "ConnectFailed" },
	{ CURLE_OPERATION_TIMEDOUT, S3_TRANSIENT, "Timeout" },
	{ CURLE_SEND_ERROR, S3_TRANSIENT, "SendFailed" },
	{ CURLE_RECV_ERROR, S3_TRANSIENT, "RecvFailed" },
	{ CURLE_GOT_NOTHING, S3_TRANSIENT, "EmptyReply" },
	{ CURLE_PARTIAL_FILE, S3_TRANSIENT, "ShortBody" },
	{ CURLE_SEND_FAIL_REWIND, S3_TRANSIENT, "Reset" },
	{ CURLE_SSL_CONNECT_ERROR, S3_TRANSIENT, "TLSHandshake" },
	{ CURLE_HTTP2, S3_TRANSIENT, "HTTP2" },
	{ CURLE_HTTP2_STREAM, S3_TRANSIENT, "HTTP2" },
	{ CURLE_PEER_FAILED_VERIFICATION, S3_HARD, "TLSVerify" },
	{ CURLE_SSL_CACERT_BADFILE, S3_HARD, "TLSCAFile" },
	{ CURLE_OUT_OF_MEMORY, S3_LOCAL, "OutOfMemory" },
};

/* Fill err with a class, a code and a message (no HTTP status). */
enum s3_status s3_set_error(struct s3_error *err, enum s3_status st,
			    const char *code, const char *fmt, ...)
{
	va_list ap;

	memset(err, 0, sizeof(*err));
	err->status = st;
	snprintf(err->code, sizeof(err->code), "%s", code);
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return st;
}

/* Clear err for a call that succeeded after all. */
static enum s3_status set_ok(struct s3_error *err, long http)
{
	memset(err, 0, sizeof(*err));
	err->http = http;
	return S3_OK;
}

/* Report that memory ran out. */
static enum s3_status set_nomem(struct s3_error *err)
{
	return s3_set_error(err, S3_LOCAL, "OutOfMemory", "out of memory");
}

/* ---- the client ---- */

/* Lock one kind of data that curl shares between the handles. */
static void share_lock(CURL *curl, curl_lock_data data,
		       curl_lock_access access, void *ud)
{
	struct s3_client *c = ud;

	(void)curl;
	(void)access;
	pthread_mutex_lock(&c->share_locks[data]);
}

/* Unlock what share_lock locked. */
static void share_unlock(CURL *curl, curl_lock_data data, void *ud)
{
	struct s3_client *c = ud;

	(void)curl;
	pthread_mutex_unlock(&c->share_locks[data]);
}

/* Unlink a handle from the client's list and free it. */
static void handle_free(struct handle *h)
{
	struct s3_client *c = h->client;

	pthread_mutex_lock(&c->lock);
	if (h->prev)
		h->prev->next = h->next;
	else
		c->handles = h->next;
	if (h->next)
		h->next->prev = h->prev;
	pthread_mutex_unlock(&c->lock);
	curl_easy_cleanup(h->curl);
	free(h);
}

/* The thread-specific key's destructor: a thread ends, its handle goes. */
static void handle_destroy(void *p)
{
	handle_free(p);
}

/* The calling thread's state, made on its first request. */
static struct handle *thread_state(struct s3_client *c)
{
	struct handle *h = pthread_getspecific(c->key);

	if (h)
		return h;
	h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->client = c;
	h->curl = curl_easy_init();
	if (!h->curl || pthread_setspecific(c->key, h)) {
		curl_easy_cleanup(h->curl);
		free(h);
		return NULL;
	}
	pthread_mutex_lock(&c->lock);
	h->next = c->handles;
	if (h->next)
		h->next->prev = h;
	c->handles = h;
	pthread_mutex_unlock(&c->lock);
	return h;
}

/* The calling thread's curl handle. */
static CURL *thread_handle(struct s3_client *c)
{
	struct handle *h = thread_state(c);

	return h ? h->curl : NULL;
}

void s3_background(struct s3_client *c)
{
	struct handle *h = thread_state(c);

	if (h)
		h->background = 1;
}

int s3_is_background(struct s3_client *c)
{
	struct handle *h = pthread_getspecific(c->key);

	return h && h->background;
}

void s3_write_turn(struct s3_client *c)
{
	struct handle *h = thread_state(c);

	if (!h || h->has_turn)
		return;
	h->turn = s3_limit_acquire(c->limit, S3_CLASS_WRITE, h->background);
	h->has_turn = 1;
}

void s3_write_turn_cancel(struct s3_client *c)
{
	struct handle *h = pthread_getspecific(c->key);

	if (!h || !h->has_turn)
		return;
	h->has_turn = 0;
	s3_limit_cancel(c->limit, S3_CLASS_WRITE);
}

/* A write slot for this attempt: the thread's turn if it holds one. */
static double acquire_slot(struct request *r)
{
	struct handle *h = pthread_getspecific(r->c->key);

	if (r->klass == S3_CLASS_WRITE && h && h->has_turn) {
		h->has_turn = 0;
		return h->turn;
	}
	return s3_limit_acquire(r->c->limit, r->klass, h && h->background);
}

/* Whether an optional setting is given at all. */
static int is_set(const char *s)
{
	return s && *s;
}

/* strdup of an optional setting: NULL when it is not set. */
static char *dup_opt(const char *s)
{
	return is_set(s) ? strdup(s) : NULL;
}

/* Whether a setting sent as a header would break the header's line. */
static int has_line_break(const char *s)
{
	return s && strpbrk(s, "\r\n");
}

/* Check the parts of cfg that have no default. */
static int check_config(const struct s3_config *cfg, struct s3_error *err)
{
	const char *bad = NULL;

	if (!is_set(cfg->bucket))
		bad = "bucket is not set";
	else if (!is_set(cfg->region))
		bad = "region is not set";
	else if (!s3_region_ok(cfg->region))
		bad = "region must be lowercase letters, digits and '-'";
	else if (is_set(cfg->access_key) != is_set(cfg->secret_key))
		bad = "access key and secret key go together";
	else if (cfg->write_rate < 0 || cfg->read_rate < 0)
		bad = "request rates must not be negative";
	else if (has_line_break(cfg->cache_control) ||
		 has_line_break(cfg->acl) ||
		 has_line_break(cfg->storage_class))
		bad = "cache control, ACL and storage class are one line each";
	if (!bad)
		return 0;
	s3_set_error(err, S3_INVALID, "BadConfig", "%s", bad);
	return -1;
}

/* Copy the settings of cfg into c.  0, or -1 without memory. */
static int copy_config(struct s3_client *c, const struct s3_config *cfg)
{
	c->bucket = strdup(cfg->bucket);
	c->region = strdup(cfg->region);
	c->access_key = dup_opt(cfg->access_key);
	c->secret_key = dup_opt(cfg->secret_key);
	c->session_token = dup_opt(cfg->session_token);
	c->ca_file = dup_opt(cfg->ca_file);
	c->path_style = cfg->path_style;
	c->insecure = cfg->insecure;
	c->timeout = cfg->timeout > 0 ? cfg->timeout : DEFAULT_TIMEOUT;
	c->retries = cfg->retries > 0 ? cfg->retries : DEFAULT_RETRIES;
	c->concurrency = cfg->concurrency > 0 ? cfg->concurrency
					      : DEFAULT_CONCURRENCY;
	c->mp_threshold = cfg->multipart_threshold ? cfg->multipart_threshold
						   : DEFAULT_MP_THRESHOLD;
	c->part_size = cfg->part_size ? cfg->part_size : DEFAULT_PART_SIZE;
	/* no single CopyObject can take more, whatever is configured */
	c->copy_cutoff = cfg->copy_cutoff && cfg->copy_cutoff < MAX_COPY_CUTOFF
			 ? cfg->copy_cutoff : MAX_COPY_CUTOFF;
	c->cache_control = dup_opt(cfg->cache_control);
	c->acl = dup_opt(cfg->acl);
	c->storage_class = dup_opt(cfg->storage_class);
	if (!c->bucket || !c->region)
		return -1;
	if (is_set(cfg->access_key) && (!c->access_key || !c->secret_key))
		return -1;
	if ((is_set(cfg->session_token) && !c->session_token) ||
	    (is_set(cfg->ca_file) && !c->ca_file))
		return -1;
	if ((is_set(cfg->cache_control) && !c->cache_control) ||
	    (is_set(cfg->acl) && !c->acl) ||
	    (is_set(cfg->storage_class) && !c->storage_class))
		return -1;
	return 0;
}

/* Set up the mutexes, the thread key and the curl share (DNS, TLS). */
static int init_sharing(struct s3_client *c)
{
	int i;

	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&c->share_locks[i], NULL);
	pthread_mutex_init(&c->lock, NULL);
	if (pthread_key_create(&c->key, handle_destroy))
		return -1;
	c->have_key = 1;
	c->share = curl_share_init();
	if (!c->share)
		return -1;
	curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(c->share, CURLSHOPT_USERDATA, c);
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(c->share, CURLSHOPT_SHARE,
			  CURL_LOCK_DATA_SSL_SESSION);
	return 0;
}

/* Lowercase an ASCII string in place. */
static void lower(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

/*
 * Drop a port that is the scheme's default: curl leaves it out of the Host
 * header it would write, and the one we sign must be the one S3 sees.
 */
static void drop_default_port(char *host, int https)
{
	char *colon = strrchr(host, ':');

	if (!colon || strchr(colon, ']'))
		return;
	if (!strcmp(colon + 1, https ? "443" : "80"))
		*colon = '\0';
}

/*
 * The host[:port] of an endpoint of the form scheme://host[:port][/], or
 * NULL with err set; *phttps tells the scheme.
 */
static char *endpoint_host(const char *endpoint, int *phttps,
			   struct s3_error *err)
{
	const char *auth, *rest;
	size_t n;
	char *host;

	*phttps = !strncasecmp(endpoint, "https://", 8);
	if (!*phttps && strncasecmp(endpoint, "http://", 7)) {
		s3_set_error(err, S3_INVALID, "BadConfig",
			  "endpoint must start with http:// or https://");
		return NULL;
	}
	auth = strstr(endpoint, "://") + 3;
	n = strcspn(auth, "/?#");
	rest = auth + n;
	if (!n || memchr(auth, '@', n) || strspn(rest, "/") != strlen(rest)) {
		s3_set_error(err, S3_INVALID, "BadConfig",
			  "endpoint must be scheme://host[:port] alone");
		return NULL;
	}
	host = strndup(auth, n);
	if (!host) {
		set_nomem(err);
		return NULL;
	}
	lower(host);
	drop_default_port(host, *phttps);
	return host;
}

/* Whether host[:port] is an IP address, which has no subdomains. */
static int is_ip_literal(const char *host)
{
	return host[0] == '[' ||
	       strspn(host, "0123456789.") == strcspn(host, ":");
}

/* a, b and c joined into a new string, or NULL without memory. */
static char *join3(const char *a, const char *b, const char *c)
{
	char *s;

	return asprintf(&s, "%s%s%s", a, b, c) < 0 ? NULL : s;
}

/* Set endpoint, host and base_url from the endpoint and the addressing. */
static int set_endpoint(struct s3_client *c, const char *endpoint,
			struct s3_error *err)
{
	int https = 0;
	char *host = endpoint_host(endpoint ? endpoint : "", &https, err);
	const char *scheme = https ? "https://" : "http://";
	int result = -1;

	if (!host)
		return -1;
	if (!c->path_style && is_ip_literal(host)) {
		s3_set_error(err, S3_INVALID, "BadConfig",
			  "an IP endpoint needs path-style addressing");
		goto out;
	}
	c->https = https;
	c->endpoint = join3(scheme, "", host);
	if (c->path_style)
		c->host = join3(host, "", "");
	else
		c->host = join3(c->bucket, ".", host);
	if (c->host)
		c->base_url = join3(scheme, "", c->host);
	if (!c->endpoint || !c->base_url) {
		set_nomem(err);
		goto out;
	}
	result = 0;
out:
	free(host);
	return result;
}

/* The limiter for the configured rates and concurrency. */
static struct s3_limit *new_limit(const struct s3_config *cfg)
{
	struct s3_limit_conf lc = {
		.rate = { cfg->write_rate > 0 ? cfg->write_rate
					      : DEFAULT_WRITE_RATE,
			  cfg->read_rate > 0 ? cfg->read_rate
					     : DEFAULT_READ_RATE },
		.burst = { WRITE_BURST, READ_BURST },
		.concurrency = cfg->concurrency > 0 ? cfg->concurrency
						    : DEFAULT_CONCURRENCY,
	};

	return s3_limit_new(&lc);
}

/* Free a string that may hold a secret, wiping it first. */
static void free_secret(char *s)
{
	if (s)
		OPENSSL_cleanse(s, strlen(s));
	free(s);
}

/* The client copies what it needs from cfg; NULL on bad configuration. */
struct s3_client *s3_client_new(const struct s3_config *cfg,
				struct s3_error *err)
{
	struct s3_client *c;

	if (check_config(cfg, err))
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c || init_sharing(c) || copy_config(c, cfg))
		goto out_nomem;
	c->limit = new_limit(cfg);
	if (!c->limit)
		goto out_nomem;
	if (set_endpoint(c, cfg->endpoint, err))
		goto out_free;
	return c;

out_nomem:
	set_nomem(err);
out_free:
	s3_client_free(c);
	return NULL;
}

/*
 * Free the client and every thread's handle.  No thread may be inside a
 * call on it any more, nor exiting with a handle of it.
 */
void s3_client_free(struct s3_client *c)
{
	int i;

	if (!c)
		return;
	if (c->have_key)
		pthread_key_delete(c->key);
	while (c->handles)
		handle_free(c->handles);
	if (c->share)
		curl_share_cleanup(c->share);
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&c->share_locks[i]);
	pthread_mutex_destroy(&c->lock);
	free(c->endpoint);
	free(c->base_url);
	free(c->host);
	free(c->bucket);
	free(c->region);
	free(c->access_key);
	free_secret(c->secret_key);
	free_secret(c->session_token);
	free(c->ca_file);
	free(c->cache_control);
	free(c->acl);
	free(c->storage_class);
	s3_limit_free(c->limit);
	free(c);
}

/* The bucket the client works on. */
const char *s3_client_bucket(const struct s3_client *c)
{
	return c->bucket;
}

/* The endpoint as scheme://host[:port], for messages. */
const char *s3_client_endpoint(const struct s3_client *c)
{
	return c->endpoint;
}

/* Rates and counters of the client's traffic so far. */
void s3_client_stats(struct s3_client *c, struct s3_stats *st)
{
	memset(st, 0, sizeof(*st));
	s3_limit_stats(c->limit, st);
	pthread_mutex_lock(&c->lock);
	st->retries = c->nretries;
	st->redirects = c->nredirects;
	snprintf(st->region, sizeof(st->region), "%s", c->region);
	pthread_mutex_unlock(&c->lock);
}

/* The multipart settings of a client. */
void s3_client_mp_conf(const struct s3_client *c, struct s3_mp_conf *mc)
{
	mc->threshold = c->mp_threshold;
	mc->part_size = c->part_size;
	mc->copy_cutoff = c->copy_cutoff;
	mc->threads = c->concurrency < MAX_PART_THREADS ? c->concurrency
						       : MAX_PART_THREADS;
}

/* Add what the configuration gives every new object. */
int s3_client_object_headers(const struct s3_client *c, int keep_meta,
			     struct s3_hlist *l)
{
	if (c->cache_control && !keep_meta &&
	    s3_hlist_add(l, "Cache-Control", c->cache_control))
		return -1;
	if (c->acl && s3_hlist_add(l, "x-amz-acl", c->acl))
		return -1;
	if (c->storage_class &&
	    s3_hlist_add(l, "x-amz-storage-class", c->storage_class))
		return -1;
	return 0;
}

/* Process-wide setup of curl and libxml2; 0, or -1 if curl failed. */
int s3_global_init(void)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return -1;
	xmlInitParser();
	return 0;
}

/* Undo s3_global_init, once every client is freed. */
void s3_global_cleanup(void)
{
	xmlCleanupParser();
	curl_global_cleanup();
}

/* ---- building a request ---- */

/* Start a request of method on key (NULL for the bucket itself). */
static void request_init(struct request *r, struct s3_client *c,
			 const char *method, const char *key)
{
	memset(r, 0, sizeof(*r));
	r->c = c;
	r->method = method;
	r->key = key;
	r->in_fd = -1;
	r->out_fd = -1;
	r->range_start = -1;
}

/* Add a query parameter; name and value must outlive the request. */
static void add_param(struct request *r, const char *name, const char *value)
{
	r->params[r->nparams].name = name;
	r->params[r->nparams].value = value;
	r->nparams++;
}

/* The raw (unencoded) path: /bucket/key path-style, /key virtual-hosted. */
static char *raw_path(const struct request *r)
{
	const struct s3_client *c = r->c;
	char *p;
	int n;

	if (!c->path_style)
		n = asprintf(&p, "/%s", r->key ? r->key : "");
	else if (!r->key)
		n = asprintf(&p, "/%s", c->bucket);
	else
		n = asprintf(&p, "/%s/%s", c->bucket, r->key);
	return n < 0 ? NULL : p;
}

/*
 * Append "?name=value&..." to url, encoded exactly as the canonical query
 * encodes it ('/' as %2F), so that what is sent is what was signed.
 */
static void append_query(char *url, const struct request *r)
{
	size_t i;

	for (i = 0; i < r->nparams; i++) {
		char *n = s3_uri_encode(r->params[i].name, 0);
		char *v = s3_uri_encode(r->params[i].value, 0);

		strcat(url, i ? "&" : "?");
		strcat(url, n);
		strcat(url, "=");
		strcat(url, v);
		free(n);
		free(v);
	}
}

/* The request's URL for a raw path; NULL without memory. */
static char *build_url(const struct request *r, const char *path)
{
	char *epath = s3_uri_encode(path, 1);
	size_t n = strlen(r->base_url) + strlen(epath) + 1;
	size_t i;
	char *url;

	/* each byte encodes to three at most; plus '?' or '&', and '=' */
	for (i = 0; i < r->nparams; i++)
		n += 2 + 3 * (strlen(r->params[i].name) +
			      strlen(r->params[i].value));
	url = malloc(n);
	if (url) {
		strcpy(url, r->base_url);
		strcat(url, epath);
		append_query(url, r);
	}
	free(epath);
	return url;
}

/*
 * Append "name: value" to a curl header list.  An empty value is written
 * "name;": curl would take "name:" as an order to drop the header, and
 * an empty x-amz-meta-* of a copy's source must still be sent and signed.
 * 0, or -1 without memory.
 */
static int add_header(struct curl_slist **plist, const char *name,
		      const char *value)
{
	struct curl_slist *l;
	char *line;
	int n = *value ? asprintf(&line, "%s: %s", name, value)
		       : asprintf(&line, "%s;", name);

	if (n < 0)
		return -1;
	l = curl_slist_append(*plist, line);
	free(line);
	if (!l)
		return -1;
	*plist = l;
	return 0;
}

/*
 * The headers to send and sign, in a new array (NULL without memory);
 * *pn is how many.  The caller's extra headers come last.
 */
static struct s3_pair *signed_headers(const struct request *r, size_t *pn)
{
	size_t extra = r->headers ? r->headers->n : 0;
	struct s3_pair *h = malloc((BASE_HEADERS + extra) * sizeof(*h));
	size_t n = 0, i;

	if (!h)
		return NULL;

	h[n++] = (struct s3_pair){ "Host", r->host };
	h[n++] = (struct s3_pair){ "x-amz-date", r->amz_date };
	h[n++] = (struct s3_pair){ "x-amz-content-sha256", r->payload_hash };
	if (r->c->session_token)
		h[n++] = (struct s3_pair){ "x-amz-security-token",
					   r->c->session_token };
	if (r->range[0])
		h[n++] = (struct s3_pair){ "Range", r->range };
	if (r->md5[0])
		h[n++] = (struct s3_pair){ "Content-MD5", r->md5 };
	if (r->content_type)
		h[n++] = (struct s3_pair){ "Content-Type", r->content_type };
	for (i = 0; i < extra; i++)
		h[n++] = r->headers->h[i];
	*pn = n;
	return h;
}

/* What Signature V4 needs to sign the request with headers h. */
static void sign_input(const struct request *r, const char *path,
		       const struct s3_pair *h, size_t nh,
		       struct s3_sign_input *in)
{
	memset(in, 0, sizeof(*in));
	in->method = r->method;
	in->path = path;
	in->params = r->params;
	in->nparams = r->nparams;
	in->headers = h;
	in->nheaders = nh;
	in->payload_hash = r->payload_hash;
	in->region = r->region;
	in->service = "s3";
	in->amz_date = r->amz_date;
	in->access_key = r->c->access_key;
	in->secret_key = r->c->secret_key;
}

/* The Authorization value for the request, or NULL when anonymous. */
static char *authorization(const struct request *r, const char *path,
			   const struct s3_pair *h, size_t nh)
{
	struct s3_sign_input in;

	if (!r->c->access_key)
		return NULL;
	sign_input(r, path, h, nh, &in);
	return s3_sign_authorization(&in, ", ");
}

/* The full header list, signed; NULL without memory. */
static struct curl_slist *build_headers(const struct request *r,
					const char *path)
{
	struct curl_slist *list = NULL;
	size_t nh = 0, i;
	struct s3_pair *h = signed_headers(r, &nh);
	char *auth = h ? authorization(r, path, h, nh) : NULL;
	int fail = !h;

	for (i = 0; i < nh && !fail; i++)
		fail = add_header(&list, h[i].name, h[i].value);
	if (auth && !fail)
		fail = add_header(&list, "Authorization", auth);
	/* an empty Expect: keeps curl from waiting for "100 Continue" */
	if (!fail && !curl_slist_append(list, "Expect:"))
		fail = 1;
	free(auth);
	free(h);
	if (fail) {
		curl_slist_free_all(list);
		return NULL;
	}
	return list;
}

/* ---- the transfer ---- */

/* Whether the answer is a success, whose body belongs to the caller. */
static int answer_ok(const struct request *r)
{
	return r->http >= 200 && r->http < 300;
}

/*
 * Keep body bytes in memory.  An error body past its cap is cut (its
 * <Code> comes first); a listing past its cap fails the request.
 */
static size_t write_mem(struct request *r, const char *data, size_t n)
{
	struct mem *m = &r->mem;
	size_t max = answer_ok(r) ? LIST_BODY_MAX : ERROR_BODY_MAX;
	size_t cap;
	char *p;

	if (m->len + n + 1 > max) {
		r->too_big = answer_ok(r);
		n = max - m->len - 1;
	}
	if (m->len + n + 1 > m->cap) {
		cap = 2 * (m->len + n + 1) < max ? 2 * (m->len + n + 1) : max;
		p = realloc(m->p, cap);
		if (!p) {
			r->nomem = 1;
			return 0;
		}
		m->p = p;
		m->cap = cap;
	}
	memcpy(m->p + m->len, data, n);
	m->len += n;
	m->p[m->len] = '\0';
	return n;
}

/*
 * Copy what falls inside the caller's window into buf.  A server that
 * ignores Range answers 200 with the whole object: its leading bytes are
 * skipped, and the transfer stops once the window is full.
 */
static size_t write_buf(struct request *r, const char *data, size_t n)
{
	uint64_t at = (r->http == 206 ? r->buf_off : 0) + r->seen;
	uint64_t end = r->buf_off + r->buf_len;
	uint64_t lo = at > r->buf_off ? at : r->buf_off;
	uint64_t hi = at + n < end ? at + n : end;

	r->seen += n;
	if (at >= end) {
		r->done = 1;
		return 0;
	}
	if (lo < hi) {
		memcpy(r->buf + (lo - r->buf_off), data + (lo - at), hi - lo);
		r->got = (size_t)(hi - r->buf_off);
	}
	return n;
}

/*
 * Write body bytes to the caller's file where the last ones ended: at
 * their own offsets in the object (a 200 to a ranged GET is the whole
 * object, which lands in place all the same).
 */
static size_t write_fd(struct request *r, const char *data, size_t n)
{
	uint64_t base = r->http == 206 ? r->out_base : 0;
	size_t done = 0;
	ssize_t w;

	while (done < n) {
		w = pwrite(r->out_fd, data + done, n - done,
			   (off_t)(base + r->seen + done));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			r->out_errno = w < 0 ? errno : EIO;
			return 0;
		}
		done += (size_t)w;
	}
	r->seen += n;
	return n;
}

/* curl's write callback: route the body by the answer's status. */
static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
	struct request *r = ud;
	size_t n = size * nmemb;

	if (!answer_ok(r))
		return write_mem(r, data, n) == 0 && r->nomem ? 0 : n;
	switch (r->sink) {
	case SINK_BUF:
		return write_buf(r, data, n);
	case SINK_FD:
		return write_fd(r, data, n);
	case SINK_MEM:
		return write_mem(r, data, n) == n ? n : 0;
	case SINK_NONE:
		break;
	}
	return n;
}

/* Copy a header value without the quotes around it (ETags have them). */
static void copy_unquoted(char *dst, size_t size, const char *v)
{
	size_t n = strlen(v);

	if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
		v++;
		n -= 2;
	}
	snprintf(dst, size, "%.*s", (int)n, v);
}

/*
 * Take what redirects and the ETag check need from one header: where a
 * bucket lives, where a 307 points, and whether the object is encrypted
 * in a way that makes its ETag something else than the MD5.
 */
static void take_routing_header(struct request *r, const char *name,
				const char *v)
{
	if (!strcasecmp(name, "x-amz-bucket-region") && s3_region_ok(v))
		snprintf(r->bucket_region, sizeof(r->bucket_region), "%s", v);
	else if (!strcasecmp(name, "Location"))
		snprintf(r->location, sizeof(r->location), "%s", v);
	else if ((!strcasecmp(name, "x-amz-server-side-encryption") &&
		  !strncasecmp(v, "aws:kms", 7)) ||
		 !strcasecmp(name,
			     "x-amz-server-side-encryption-customer-algorithm"))
		r->etag_opaque = 1;
}

/* Take what the object info needs from one header. */
static void take_header(struct request *r, const char *name, const char *v)
{
	struct s3_object_info *info = &r->info;
	unsigned long long a;
	time_t t;

	if (!strcasecmp(name, "ETag")) {
		copy_unquoted(info->etag, sizeof(info->etag), v);
	} else if (!strcasecmp(name, "Content-Type")) {
		snprintf(info->content_type, sizeof(info->content_type), "%s",
			 v);
	} else if (!strcasecmp(name, "Content-Length")) {
		info->size = strtoull(v, NULL, 10);
	} else if (!strcasecmp(name, "Last-Modified")) {
		t = curl_getdate(v, NULL);
		info->mtime = t < 0 ? 0 : t;
	} else if (!strcasecmp(name, "Content-Range") &&
		   sscanf(v, "bytes %llu-", &a) == 1) {
		r->range_start = (int64_t)a;
	} else if (!s3_meta_take_header(&info->meta, name, v)) {
		take_routing_header(r, name, v);
	}
}

/* Keep a header a copy carries over, when the request keeps them. */
static void keep_header(struct request *r, const char *name, const char *v,
			int cut)
{
	if (!r->kept || !s3_meta_kept_header(name))
		return;
	if (cut)
		r->kept_cut = 1;
	else if (s3_hlist_add(r->kept, name, v))
		r->nomem = 1;
}

/* Forget the headers an earlier answer (a redirect, an attempt) gave. */
static void forget_headers(struct request *r)
{
	memset(&r->info, 0, sizeof(r->info));
	r->range_start = -1;
	r->etag_opaque = 0;
	r->bucket_region[0] = '\0';
	r->location[0] = '\0';
	r->kept_cut = 0;
	if (r->kept)
		s3_hlist_free(r->kept);
}

/* curl's header callback: a status line, then "Name: value" lines. */
static size_t on_header(char *data, size_t size, size_t nmemb, void *ud)
{
	struct request *r = ud;
	size_t n = size * nmemb;
	char line[HEADER_LINE_MAX];
	char *v, *end;

	snprintf(line, sizeof(line), "%.*s", (int)n, data);
	line[strcspn(line, "\r\n")] = '\0';
	if (!strncmp(line, "HTTP/", 5)) {
		/* a new answer begins: forget what an earlier one said */
		forget_headers(r);
		r->http = 0;
		sscanf(line, "%*s %ld", &r->http);
		return n;
	}
	v = strchr(line, ':');
	if (!v)
		return n;
	*v++ = '\0';
	v += strspn(v, " \t");
	end = v + strlen(v);
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';
	take_header(r, line, v);
	keep_header(r, line, v, n >= sizeof(line));
	return n;
}

/* curl's read callback: the next bytes of the body, from memory or file. */
static size_t on_read(char *dst, size_t size, size_t nmemb, void *ud)
{
	struct request *r = ud;
	uint64_t left = r->in_size - r->in_off;
	size_t n = size * nmemb < left ? size * nmemb : (size_t)left;
	ssize_t got;

	if (!n)
		return 0;
	if (r->in_fd < 0) {
		memcpy(dst, r->data + r->in_off, n);
		r->in_off += n;
		return n;
	}
	do
		got = pread(r->in_fd, dst, n, (off_t)(r->in_base + r->in_off));
	while (got < 0 && errno == EINTR);
	if (got <= 0) {
		/* a file that shrank under us is not the one we hashed */
		r->in_errno = got < 0 ? errno : ENODATA;
		return CURL_READFUNC_ABORT;
	}
	r->in_off += (uint64_t)got;
	return (size_t)got;
}

/*
 * curl's seek callback.  When a kept-alive connection dies under a
 * request, curl would send it again at once on a new one: unpaced,
 * uncounted, and twice at a server that did see the first.  Refusing the
 * rewind once bytes went out turns that into a failed attempt ("Reset"),
 * which the engine sends again through the limiter.
 */
static int on_seek(void *ud, curl_off_t off, int origin)
{
	struct request *r = ud;

	if (origin != SEEK_SET || off != 0)
		return CURL_SEEKFUNC_FAIL;
	return r->in_off == 0 ? CURL_SEEKFUNC_OK : CURL_SEEKFUNC_FAIL;
}

/* Options every request has (the handle comes reset). */
static void setup_common(CURL *curl, struct request *r, const char *url,
			 struct curl_slist *headers)
{
	curl_easy_setopt(curl, CURLOPT_SHARE, r->c->share);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, USER_AGENT);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	/* keys are signed as they are: "a/../b" must reach S3 unchanged */
	curl_easy_setopt(curl, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT);
	curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, r->c->timeout);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(curl, CURLOPT_MAXAGE_CONN, MAX_CONN_AGE);
}

/* TLS verification and the extra CA bundle. */
static void setup_tls(CURL *curl, const struct s3_client *c)
{
	if (c->insecure) {
		curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (c->ca_file)
		curl_easy_setopt(curl, CURLOPT_CAINFO, c->ca_file);
}

/* Where a PUT's or a POST's body comes from. */
static void setup_body(CURL *curl, struct request *r)
{
	curl_easy_setopt(curl, CURLOPT_READFUNCTION, on_read);
	curl_easy_setopt(curl, CURLOPT_READDATA, r);
	curl_easy_setopt(curl, CURLOPT_SEEKFUNCTION, on_seek);
	curl_easy_setopt(curl, CURLOPT_SEEKDATA, r);
}

/* The method, and for PUT and POST where the body comes from. */
static void setup_method(CURL *curl, struct request *r)
{
	if (!strcmp(r->method, "HEAD")) {
		curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
	} else if (!strcmp(r->method, "DELETE")) {
		curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, "DELETE");
	} else if (!strcmp(r->method, "PUT")) {
		curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE,
				 (curl_off_t)r->in_size);
		setup_body(curl, r);
	} else if (!strcmp(r->method, "POST")) {
		curl_easy_setopt(curl, CURLOPT_POST, 1L);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)r->in_size);
		setup_body(curl, r);
	}
}

/* The class and code of a curl failure. */
static const struct curl_class *curl_class(CURLcode res)
{
	static const struct curl_class other = { CURLE_OK, S3_TRANSIENT,
						 "CurlError" };
	size_t i;

	for (i = 0; i < sizeof(curl_classes) / sizeof(curl_classes[0]); i++)
		if (curl_classes[i].res == res)
			return &curl_classes[i];
	return &other;
}

/* Fill err for a request that got no complete answer. */
static enum s3_status curl_failure(const struct request *r, CURL *curl,
				   CURLcode res, struct s3_error *err)
{
	const struct curl_class *k = curl_class(res);
	const char *code = k->code;
	long os_errno = 0;

	/* the handle's errno may be left from an earlier transfer */
	if (res == CURLE_COULDNT_CONNECT || res == CURLE_SEND_ERROR ||
	    res == CURLE_RECV_ERROR)
		curl_easy_getinfo(curl, CURLINFO_OS_ERRNO, &os_errno);
	if (os_errno == ECONNREFUSED)
		code = "ConnectionRefused";
	else if (os_errno == ECONNRESET || os_errno == EPIPE)
		code = "Reset";
	s3_set_error(err, k->status, code, "%s (%s)%s%s", curl_easy_strerror(res),
		  r->c->endpoint, r->errbuf[0] ? ": " : "", r->errbuf);
	err->http = r->http;
	return k->status;
}

/* Decide what the request came to: local trouble, curl's, or S3's answer. */
static enum s3_status classify(struct request *r, CURL *curl, CURLcode res,
			       struct s3_error *err)
{
	if (r->in_errno)
		return s3_set_error(err, S3_LOCAL, "ReadFailed",
				 "reading the file to upload: %s",
				 strerror(r->in_errno));
	if (r->out_errno)
		return s3_set_error(err, S3_LOCAL, "WriteFailed",
				 "writing the download: %s",
				 strerror(r->out_errno));
	if (r->nomem)
		return set_nomem(err);
	if (r->kept_cut)
		return s3_set_error(err, S3_INVALID, "MetadataTooLarge",
				 "a metadata header from %s is over %d bytes",
				 r->c->endpoint, HEADER_LINE_MAX - 1);
	if (r->too_big)
		return s3_set_error(err, S3_INVALID, "ResponseTooLarge",
				 "answer from %s over %d bytes",
				 r->c->endpoint, LIST_BODY_MAX);
	if (res != CURLE_OK && !(res == CURLE_WRITE_ERROR && r->done))
		return curl_failure(r, curl, res, err);
	s3_error_from_response(r->http, r->mem.p, r->mem.len, err);
	return err->status;
}

/* Stamp the request with the time it is signed at. */
static void stamp(struct request *r)
{
	struct tm tm;

	r->when = time(NULL);
	gmtime_r(&r->when, &tm);
	strftime(r->amz_date, sizeof(r->amz_date), "%Y%m%dT%H%M%SZ", &tm);
	if (!r->payload_hash[0])
		s3_sha256_hex("", 0, r->payload_hash);
}

/* Set the handle up for the request from scratch and perform it. */
static CURLcode run(CURL *curl, struct request *r, const char *url,
		    struct curl_slist *headers)
{
	curl_easy_reset(curl);
	setup_common(curl, r, url, headers);
	setup_tls(curl, r->c);
	setup_method(curl, r);
	return curl_easy_perform(curl);
}

/*
 * Sign, send and receive one request, and classify the outcome into err.
 * The body kept in r->mem (a listing, an error) stays for the engine.
 */
static enum s3_status perform(struct request *r, struct s3_error *err)
{
	CURL *curl = thread_handle(r->c);
	struct curl_slist *headers = NULL;
	char *path = NULL, *url = NULL;
	enum s3_status st;

	if (!curl)
		return set_nomem(err);
	stamp(r);
	path = raw_path(r);
	url = path ? build_url(r, path) : NULL;
	headers = url ? build_headers(r, path) : NULL;
	if (!headers) {
		st = set_nomem(err);
		goto out;
	}
	st = classify(r, curl, run(curl, r, url, headers), err);
	/* no pointer into this request may outlive it in the handle */
	curl_easy_reset(curl);
out:
	curl_slist_free_all(headers);
	free(url);
	free(path);
	return st;
}

/* ---- the engine: pacing, retries, redirects ---- */

/* A call's progress through its attempts. */
struct retry {
	unsigned failures;	/* failed attempts so far */
	unsigned redirects;
	double deadline;	/* no retry waits past this (limiter clock) */
};

/* The limiter class of a method's requests. */
static enum s3_class class_of(const char *method)
{
	if (!strcmp(method, "GET") || !strcmp(method, "HEAD"))
		return S3_CLASS_READ;
	return S3_CLASS_WRITE;
}

/* Forget what an earlier attempt received, and rewind the body. */
static void reset_answer(struct request *r)
{
	free(r->mem.p);
	memset(&r->mem, 0, sizeof(r->mem));
	forget_headers(r);
	r->http = 0;
	r->seen = 0;
	r->got = 0;
	r->done = 0;
	r->in_off = 0;
	r->in_errno = 0;
	r->out_errno = 0;
	r->too_big = 0;
	r->nomem = 0;
	r->errbuf[0] = '\0';
}

/* Copy the client's route (or a 307's target) into the request. */
static int take_route(struct request *r)
{
	struct s3_client *c = r->c;

	free(r->base_url);
	free(r->host);
	pthread_mutex_lock(&c->lock);
	snprintf(r->region, sizeof(r->region), "%s", c->region);
	r->base_url = strdup(r->moved_base_url ? r->moved_base_url
					       : c->base_url);
	r->host = strdup(r->moved_host ? r->moved_host : c->host);
	pthread_mutex_unlock(&c->lock);
	return r->base_url && r->host ? 0 : -1;
}

/* Whether an ETag is 32 hex digits, as a plain object's MD5 is. */
static int is_md5_etag(const char *e)
{
	return strlen(e) == 32 && strspn(e, "0123456789abcdefABCDEF") == 32;
}

/*
 * Check a 2xx answer: an <Error> in a write's kept body, or an ETag that
 * S3's rules make comparable and that is not the MD5 of what was sent.
 */
static enum s3_status check_answer(struct request *r, struct s3_error *err)
{
	if (r->klass == S3_CLASS_WRITE && r->sink == SINK_MEM &&
	    s3_error_in_body(r->mem.p, r->mem.len, err))
		return err->status;
	if (!r->want_etag[0] || r->etag_opaque || !is_md5_etag(r->info.etag))
		return S3_OK;
	if (!strcasecmp(r->info.etag, r->want_etag))
		return S3_OK;
	s3_set_error(err, S3_TRANSIENT, "ETagMismatch",
		  "ETag %s is not the MD5 %s of the body sent", r->info.etag,
		  r->want_etag);
	err->http = r->http;
	return S3_TRANSIENT;
}

/* What an answer tells the limiter about the server's load. */
static enum s3_outcome outcome_of(enum s3_status st,
				  const struct s3_error *err)
{
	if (err->http == 503 || err->http == 429 ||
	    !strcmp(err->code, "SlowDown"))
		return S3_OUTCOME_THROTTLED;
	if (st == S3_OK || (err->http >= 200 && err->http < 500))
		return S3_OUTCOME_OK;
	return S3_OUTCOME_OTHER;
}

/*
 * One attempt: wait for a slot, take the route as it is now (a redirect
 * elsewhere may have changed it meanwhile), sign, send, check.
 */
static enum s3_status attempt(struct request *r, struct s3_error *err)
{
	double sent;
	enum s3_status st;

	reset_answer(r);
	sent = acquire_slot(r);
	if (take_route(r))
		st = set_nomem(err);
	else
		st = perform(r, err);
	if (st == S3_OK)
		st = check_answer(r, err);
	s3_limit_done(r->c->limit, r->klass, sent, outcome_of(st, err));
	return st;
}

/* The host part of an AWS endpoint in a region, or NULL if not AWS's. */
static char *aws_host_for(const char *host, const char *region)
{
	const char *tail = ".amazonaws.com";
	size_t n = strlen(host), t = strlen(tail);
	char *s;

	if (n <= t || strcmp(host + n - t, tail) ||
	    (strncmp(host, "s3.", 3) && strncmp(host, "s3-", 3)))
		return NULL;
	return asprintf(&s, "s3.%s%s", region, tail) < 0 ? NULL : s;
}

/* Point the client at host (scheme kept); lock held.  0, or -1. */
static int set_route_host(struct s3_client *c, const char *host)
{
	char *h = c->path_style ? strdup(host) : join3(c->bucket, ".", host);
	char *base = h ? join3(c->https ? "https://" : "http://", "", h)
		       : NULL;

	if (!base) {
		free(h);
		return -1;
	}
	free(c->host);
	free(c->base_url);
	c->host = h;
	c->base_url = base;
	return 0;
}

/*
 * Where an endpoint named by a redirect goes: a virtual-hosted client
 * takes "BUCKET.host" as its host; an AWS endpoint follows the region.
 * A path-style client of some other server (a gateway, MinIO) keeps its
 * endpoint: only the signing region changes.  Lock held.
 */
static void learn_host(struct s3_client *c, const char *region,
		       const char *endpoint)
{
	size_t nb = strlen(c->bucket);
	const char *bare = c->host;
	char *aws;

	if (!c->path_style && !strncmp(endpoint, c->bucket, nb) &&
	    endpoint[nb] == '.' && strcmp(endpoint, c->host) &&
	    !strpbrk(endpoint, "/@?#\\ ")) {
		set_route_host(c, endpoint + nb + 1);
		return;
	}
	if (!c->path_style)
		bare += nb + 1;
	aws = aws_host_for(bare, region);
	if (aws && strcmp(aws, bare))
		set_route_host(c, aws);
	free(aws);
}

/*
 * Learn a bucket's region (and endpoint) from a redirect.  1 when the
 * request is worth sending again: the route changed, or changed since it
 * was signed.
 */
static int learn_route(struct request *r, const char *region,
		       const char *endpoint)
{
	struct s3_client *c = r->c;
	char old[64];
	int changed = 0;

	pthread_mutex_lock(&c->lock);
	snprintf(old, sizeof(old), "%s", c->region);
	if (s3_region_ok(region) && strcmp(region, c->region)) {
		char *s = strdup(region);

		if (s) {
			free(c->region);
			c->region = s;
			learn_host(c, region, endpoint);
			changed = 1;
		}
	}
	changed |= strcmp(c->region, r->region) != 0;
	pthread_mutex_unlock(&c->lock);
	/* a warning: the configuration names the wrong region */
	if (changed && strcmp(old, region) && s3_region_ok(region))
		log_warn("s3", "bucket=%s: lives in region %s, not %s: "
			 "requests are signed for %s from now on",
			 c->bucket, region, old, region);
	return changed;
}

/* The scheme://authority of an absolute URL; NULL if it is none. */
static char *url_authority(const char *url, int *phttps)
{
	const char *a;
	size_t n;
	char *s;

	*phttps = !strncasecmp(url, "https://", 8);
	if (!*phttps && strncasecmp(url, "http://", 7))
		return NULL;
	a = strstr(url, "://") + 3;
	n = strcspn(a, "/?#");
	if (!n || memchr(a, '@', n) || memchr(a, ' ', n))
		return NULL;
	s = strndup(a, n);
	if (s) {
		lower(s);
		drop_default_port(s, *phttps);
	}
	return s;
}

/*
 * Follow a 307 for the rest of this call: same path, re-signed for the
 * host the Location names.  Never from https down to http.
 */
static int follow_temporary(struct request *r)
{
	int https = 0;
	char *host = r->location[0] ? url_authority(r->location, &https)
				    : NULL;
	char *base;

	if (!r->location[0])
		return 1;	/* no target: the same one, signed anew */
	if (!host || (r->c->https && !https)) {
		free(host);
		return 0;
	}
	base = join3(https ? "https://" : "http://", "", host);
	if (!base) {
		free(host);
		return 0;
	}
	free(r->moved_host);
	free(r->moved_base_url);
	r->moved_host = host;
	r->moved_base_url = base;
	return 1;
}

/* Whether an answer is a redirect worth following; learn from it. */
static int follow_redirect(struct request *r, const struct s3_error *err)
{
	char region[64], endpoint[256];

	if (r->http == 307)
		return follow_temporary(r);
	/* a HEAD's 400 has no body: its region comes in a header */
	if (r->http != 301 && strcmp(err->code, "PermanentRedirect") &&
	    strcmp(err->code, "AuthorizationHeaderMalformed") &&
	    !(r->http == 400 && r->bucket_region[0]))
		return 0;
	s3_parse_redirect(r->mem.p, r->mem.len, region, sizeof(region),
			  endpoint, sizeof(endpoint));
	if (r->bucket_region[0])
		snprintf(region, sizeof(region), "%s", r->bucket_region);
	return learn_route(r, region, endpoint);
}

/* A short name of what the request does, for log lines. */
static const char *describe(const struct request *r, char *buf, size_t n)
{
	const char *m = r->method;
	size_t i;

	/* a copy is a PUT that names its source */
	if (s3_hlist_get(r->headers, "x-amz-copy-source"))
		m = "COPY";
	else if (!r->key && !strcmp(m, "GET"))
		m = "LIST";
	snprintf(buf, n, "%s", m);
	for (i = 0; i < r->nparams; i++)
		if (!strcmp(r->params[i].name, "partNumber"))
			snprintf(buf, n, "%s part %s", m, r->params[i].value);
	return buf;
}

/*
 * Log a call that ends in failure: what, where, why, and what next.  Only
 * at INFO: the caller decides what the failure means and says so.
 */
static void log_final(const struct request *r, const struct s3_error *err,
		      const char *next)
{
	char kb[512], what[48];

	log_info("s3", "%s: bucket=%s key=%s: %ld %s: %s; %s",
		 describe(r, what, sizeof(what)), r->c->bucket,
		 r->key ? log_key(r->key, kb, sizeof(kb)) : "-", err->http,
		 err->code, err->message, next);
}

/* Sleep for ms milliseconds, resuming after signals. */
static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* A uniform number in [0, 1) from a random state of the thread's own. */
static double rand01(void)
{
	static _Thread_local unsigned short seed[3];
	static _Thread_local int seeded;
	struct timespec ts;

	if (!seeded) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		seed[0] = (unsigned short)ts.tv_nsec;
		seed[1] = (unsigned short)(ts.tv_nsec >> 16);
		seed[2] = (unsigned short)((uintptr_t)&seeded ^ getpid());
		seeded = 1;
	}
	return erand48(seed);
}

/*
 * After a transient failure: wait the backoff and return 1 to try again,
 * or return 0 when the attempts or the time are used up.
 */
static int retry_wait(struct request *r, struct retry *rt,
		      const struct s3_error *err)
{
	struct s3_client *c = r->c;
	long ms;
	char next[96], kb[512], what[48];

	rt->failures++;
	if (rt->failures >= (unsigned)c->retries) {
		snprintf(next, sizeof(next), "given up after %u attempts",
			 rt->failures);
		log_final(r, err, next);
		return 0;
	}
	ms = s3_backoff_ms(rt->failures, BACKOFF_BASE_MS, BACKOFF_CAP_MS,
			   rand01());
	if (s3_limit_now(c->limit) + (double)ms / 1000 > rt->deadline) {
		log_final(r, err, "given up: retries took too long");
		return 0;
	}
	log_info("s3", "%s: bucket=%s key=%s: %ld %s; retry %u/%d in %ld ms",
		 describe(r, what, sizeof(what)), c->bucket,
		 r->key ? log_key(r->key, kb, sizeof(kb)) : "-", err->http,
		 err->code, rt->failures + 1, c->retries, ms);
	pthread_mutex_lock(&c->lock);
	c->nretries++;
	pthread_mutex_unlock(&c->lock);
	sleep_ms(ms);
	return 1;
}

/* Count a redirect followed. */
static void count_redirect(struct s3_client *c)
{
	pthread_mutex_lock(&c->lock);
	c->nredirects++;
	pthread_mutex_unlock(&c->lock);
}

/*
 * Run a request to its end: attempts paced by the limiter, redirects
 * followed (not counted as failures, but bounded), transient failures
 * retried after a backoff.  A kept body stays in r->mem for the caller.
 */
static enum s3_status execute(struct request *r, struct s3_error *err)
{
	struct retry rt = { 0, 0, 0 };
	enum s3_status st;

	r->klass = class_of(r->method);
	rt.deadline = s3_limit_now(r->c->limit) + CALL_DEADLINE_S;
	for (;;) {
		st = attempt(r, err);
		if (st == S3_OK)
			break;
		if (rt.redirects < MAX_REDIRECTS && follow_redirect(r, err)) {
			rt.redirects++;
			count_redirect(r->c);
			continue;
		}
		if (st == S3_HARD)
			log_final(r, err, "not retried");
		if (st != S3_TRANSIENT || !retry_wait(r, &rt, err))
			break;
	}
	if (st != S3_OK || r->sink != SINK_MEM) {
		free(r->mem.p);
		memset(&r->mem, 0, sizeof(r->mem));
	}
	return st;
}

/* Free what a request owns after the call. */
static void request_done(struct request *r)
{
	free(r->base_url);
	free(r->host);
	free(r->moved_base_url);
	free(r->moved_host);
	free(r->mem.p);
	r->base_url = r->host = r->moved_base_url = r->moved_host = NULL;
	r->mem.p = NULL;
}

/* Execute and free: for calls that need nothing of r afterwards. */
static enum s3_status run_request(struct request *r, struct s3_error *err)
{
	enum s3_status st = execute(r, err);

	request_done(r);
	return st;
}

/* ---- the operations ---- */

/* Reject a key that names no object. */
static enum s3_status check_key(const char *key, struct s3_error *err)
{
	if (key && *key)
		return S3_OK;
	return s3_set_error(err, S3_INVALID, "BadArgument", "empty object key");
}

/* What a PUT made: the answer's ETag, and what was sent. */
static void put_info(const struct request *r, const struct s3_meta *meta,
		     struct s3_object_info *pinfo)
{
	*pinfo = r->info;
	pinfo->size = r->in_size;
	/* S3 dates the object when the request arrived; near enough */
	if (!pinfo->mtime)
		pinfo->mtime = r->when;
	snprintf(pinfo->content_type, sizeof(pinfo->content_type), "%s",
		 r->content_type);
	if (meta)
		pinfo->meta = *meta;
}

/*
 * Send a PUT whose body and hashes are set in r, with what a new object
 * gets (the configured headers, the user metadata); fill pinfo on
 * success.
 */
static enum s3_status put(struct request *r, const char *content_type,
			  const struct s3_meta *meta,
			  struct s3_object_info *pinfo, struct s3_error *err)
{
	struct s3_hlist h = { 0 };
	enum s3_status st;

	if (content_type && strpbrk(content_type, "\r\n")) {
		st = s3_set_error(err, S3_INVALID, "BadArgument",
			       "content type holds a line break");
		goto out;
	}
	if (s3_client_object_headers(r->c, 0, &h) ||
	    s3_meta_add_headers(meta, &h)) {
		st = set_nomem(err);
		goto out;
	}
	r->headers = &h;
	r->content_type = content_type ? content_type : DEFAULT_CONTENT_TYPE;
	st = execute(r, err);
	if (st == S3_OK && pinfo)
		put_info(r, meta, pinfo);
out:
	request_done(r);
	s3_hlist_free(&h);
	return st;
}

/* PUT the first size bytes of fd (read with pread from offset 0). */
enum s3_status s3_put_file(struct s3_client *c, const char *key, int fd,
			   uint64_t size, const char *content_type,
			   struct s3_object_info *pinfo, struct s3_error *err)
{
	return s3_put_file_ex(c, key, fd, size, content_type, NULL, pinfo,
			      err);
}

/*
 * Upload the first size bytes of fd: one PUT below the multipart
 * threshold, a multipart upload from it on.
 */
enum s3_status s3_put_file_ex(struct s3_client *c, const char *key, int fd,
			      uint64_t size, const char *content_type,
			      const struct s3_put_opts *opts,
			      struct s3_object_info *pinfo,
			      struct s3_error *err)
{
	struct request r;
	int e;

	if (check_key(key, err))
		return err->status;
	if (size >= c->mp_threshold)
		return s3_mp_upload(c, key, fd, size, content_type, opts,
				    pinfo, err);
	request_init(&r, c, "PUT", key);
	r.in_fd = fd;
	r.in_size = size;
	e = s3_hash_fd(fd, 0, size, r.payload_hash, r.want_etag, r.md5);
	if (e)
		return s3_set_error(err, S3_LOCAL, "ReadFailed",
				 "reading the file to upload: %s",
				 strerror(e));
	return put(&r, content_type, opts ? opts->meta : NULL, pinfo, err);
}

/* Hex of the MD5 of a buffer; out holds 33 bytes. */
static void md5_hex(const void *data, size_t len, char out[33])
{
	static const char digits[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0, i;

	out[0] = '\0';
	if (!EVP_Digest(data, len, md, &n, EVP_md5(), NULL) || n != 16)
		return;
	for (i = 0; i < n; i++) {
		out[2 * i] = digits[md[i] >> 4];
		out[2 * i + 1] = digits[md[i] & 15];
	}
	out[2 * n] = '\0';
}

/* PUT a small in-memory body (directory markers). */
enum s3_status s3_put_data(struct s3_client *c, const char *key,
			   const void *data, size_t len,
			   const char *content_type, struct s3_error *err)
{
	return s3_put_data_meta(c, key, data, len, content_type, NULL, err);
}

/* PUT a small in-memory body with user metadata (symlinks). */
enum s3_status s3_put_data_meta(struct s3_client *c, const char *key,
				const void *data, size_t len,
				const char *content_type,
				const struct s3_meta *meta,
				struct s3_error *err)
{
	struct request r;

	if (check_key(key, err))
		return err->status;
	request_init(&r, c, "PUT", key);
	r.data = len ? data : "";
	r.in_size = len;
	s3_sha256_hex(r.data, len, r.payload_hash);
	s3_md5_base64(r.data, len, r.md5);
	md5_hex(r.data, len, r.want_etag);
	return put(&r, content_type, meta, NULL, err);
}

/* Check and take what a ranged GET brought; st is the call's outcome. */
static enum s3_status range_result(struct request *r, uint64_t off,
				   enum s3_status st, size_t *pgot,
				   struct s3_error *err)
{
	/* 416: the range starts at or after the end of the object */
	if (st != S3_OK && err->http == 416)
		return set_ok(err, 416);
	if (st == S3_OK && r->http == 206 && r->range_start >= 0 &&
	    (uint64_t)r->range_start != off)
		return s3_set_error(err, S3_INVALID, "BadRange",
				 "%s answered another range than asked",
				 r->c->endpoint);
	if (st == S3_OK)
		*pgot = r->got;
	return st;
}

/* A GET of bytes [off, off + len) of key; -1 with err filled if bad. */
static int range_init(struct request *r, struct s3_client *c,
		      const char *key, uint64_t off, uint64_t len,
		      struct s3_error *err)
{
	if (check_key(key, err))
		return -1;
	if (!len || off > UINT64_MAX - len) {
		s3_set_error(err, S3_INVALID, "BadArgument",
			     "empty or impossible range");
		return -1;
	}
	request_init(r, c, "GET", key);
	snprintf(r->range, sizeof(r->range), "bytes=%llu-%llu",
		 (unsigned long long)off, (unsigned long long)(off + len - 1));
	return 0;
}

/* GET bytes [off, off + len) into buf; *pgot is how many arrived. */
enum s3_status s3_get_range(struct s3_client *c, const char *key,
			    uint64_t off, size_t len, void *buf, size_t *pgot,
			    struct s3_error *err)
{
	struct request r;
	enum s3_status st;

	*pgot = 0;
	if (range_init(&r, c, key, off, len, err))
		return err->status;
	r.sink = SINK_BUF;
	r.buf = buf;
	r.buf_len = len;
	r.buf_off = off;
	st = range_result(&r, off, execute(&r, err), pgot, err);
	request_done(&r);
	return st;
}

enum s3_status s3_get_range_fd(struct s3_client *c, const char *key,
			       uint64_t off, uint64_t len,
			       const char *if_match, int fd, uint64_t *pgot,
			       struct s3_object_info *pinfo,
			       struct s3_error *err)
{
	struct s3_hlist h = { 0 };
	struct request r;
	enum s3_status st;

	*pgot = 0;
	if (if_match && s3_hlist_add(&h, "If-Match", if_match))
		return set_nomem(err);
	if (range_init(&r, c, key, off, len, err)) {
		s3_hlist_free(&h);
		return err->status;
	}
	r.headers = &h;
	r.sink = SINK_FD;
	r.out_fd = fd;
	r.out_base = off;
	st = execute(&r, err);
	if (st != S3_OK && err->http == 416)
		st = set_ok(err, 416);
	else if (st == S3_OK && r.http == 206)
		*pgot = r.seen;
	else if (st == S3_OK)
		*pgot = r.seen > off ? (r.seen - off < len ? r.seen - off : len)
				     : 0;
	if (st == S3_OK && pinfo)
		*pinfo = r.info;
	request_done(&r);
	s3_hlist_free(&h);
	return st;
}

/*
 * GET the whole object into fd from offset 0, and cut fd to its size so
 * that no stale tail of an earlier, longer version stays behind.
 */
enum s3_status s3_get_to_fd(struct s3_client *c, const char *key, int fd,
			    struct s3_object_info *pinfo,
			    struct s3_error *err)
{
	struct request r;
	enum s3_status st;

	if (check_key(key, err))
		return err->status;
	request_init(&r, c, "GET", key);
	r.sink = SINK_FD;
	r.out_fd = fd;
	st = execute(&r, err);
	if (st == S3_OK && ftruncate(fd, (off_t)r.seen))
		st = s3_set_error(err, S3_LOCAL, "WriteFailed",
			       "writing the download: %s", strerror(errno));
	if (st == S3_OK && pinfo) {
		*pinfo = r.info;
		pinfo->size = r.seen;
	}
	request_done(&r);
	return st;
}

/* HEAD an object: its size, date, ETag and type. */
enum s3_status s3_head(struct s3_client *c, const char *key,
		       struct s3_object_info *pinfo, struct s3_error *err)
{
	struct request r;
	enum s3_status st;

	if (check_key(key, err))
		return err->status;
	request_init(&r, c, "HEAD", key);
	st = execute(&r, err);
	if (st == S3_OK && pinfo)
		*pinfo = r.info;
	request_done(&r);
	return st;
}

/* DELETE an object; one that is not there counts as deleted. */
enum s3_status s3_delete(struct s3_client *c, const char *key,
			 struct s3_error *err)
{
	struct request r;
	enum s3_status st;

	if (check_key(key, err))
		return err->status;
	request_init(&r, c, "DELETE", key);
	st = run_request(&r, err);
	if (st == S3_NOT_FOUND)
		return set_ok(err, err->http);
	return st;
}

/*
 * One ListObjectsV2 page.  encoding-type=url lets keys through that XML
 * 1.0 cannot carry (control bytes); the parser decodes them.
 */
enum s3_status s3_list(struct s3_client *c, const char *prefix,
		       const char *delimiter, const char *token, int max_keys,
		       struct s3_list_page *page, struct s3_error *err)
{
	struct request r;
	enum s3_status st;
	char mk[16];

	memset(page, 0, sizeof(*page));
	request_init(&r, c, "GET", NULL);
	add_param(&r, "list-type", "2");
	add_param(&r, "encoding-type", "url");
	if (is_set(prefix))
		add_param(&r, "prefix", prefix);
	if (is_set(delimiter))
		add_param(&r, "delimiter", delimiter);
	if (is_set(token))
		add_param(&r, "continuation-token", token);
	snprintf(mk, sizeof(mk), "%d", max_keys);
	if (max_keys > 0)
		add_param(&r, "max-keys", mk);
	r.sink = SINK_MEM;
	st = execute(&r, err);
	if (st == S3_OK && s3_parse_list(r.mem.p, r.mem.len, page)) {
		st = s3_set_error(err, S3_TRANSIENT, "MalformedResponse",
			       "unreadable listing from %s", c->endpoint);
		err->http = r.http;
	}
	request_done(&r);
	return st;
}

/* Proves the bucket exists and the credentials are accepted. */
enum s3_status s3_check_bucket(struct s3_client *c, struct s3_error *err)
{
	struct s3_list_page page;
	enum s3_status st = s3_list(c, NULL, NULL, NULL, 1, &page, err);

	s3_list_page_free(&page);
	return st;
}

/* Copy a call's description into a request. */
static void request_from_call(struct request *r, struct s3_client *c,
			      const struct s3_call *call)
{
	size_t i;

	request_init(r, c, call->method, call->key);
	for (i = 0; i < call->nparams && i < S3_CALL_MAX_PARAMS; i++)
		add_param(r, call->params[i].name, call->params[i].value);
	r->content_type = call->content_type;
	r->headers = call->headers;
	r->kept = call->kept;
	r->data = call->data ? call->data : "";
	r->in_fd = call->fd;
	r->in_base = call->off;
	r->in_size = call->size;
	if (call->payload_hash)
		snprintf(r->payload_hash, sizeof(r->payload_hash), "%s",
			 call->payload_hash);
	if (call->md5)
		snprintf(r->md5, sizeof(r->md5), "%s", call->md5);
	if (call->want_etag)
		snprintf(r->want_etag, sizeof(r->want_etag), "%s",
			 call->want_etag);
	r->sink = call->keep_body ? SINK_MEM : SINK_NONE;
}

/* Run a request that s3-multipart.c describes, with retries and all. */
enum s3_status s3_call(struct s3_client *c, struct s3_call *call,
		       struct s3_error *err)
{
	struct request r;
	enum s3_status st;

	call->body = NULL;
	call->body_len = 0;
	if (check_key(call->key, err))
		return err->status;
	request_from_call(&r, c, call);
	st = execute(&r, err);
	call->info = r.info;
	call->etag_opaque = r.etag_opaque;
	if (st == S3_OK && call->keep_body) {
		call->body = r.mem.p ? r.mem.p : strdup("");
		call->body_len = r.mem.len;
		r.mem.p = NULL;
		if (!call->body)
			st = set_nomem(err);
	}
	request_done(&r);
	return st;
}

/* The canonical request call would be signed with now (for tests). */
char *s3_call_canonical_request(struct s3_client *c,
				const struct s3_call *call)
{
	struct request r;
	struct s3_sign_input in;
	struct s3_pair *h = NULL;
	char *path = NULL, *out = NULL;
	size_t nh = 0;

	request_from_call(&r, c, call);
	if (take_route(&r))
		goto out;
	stamp(&r);
	path = raw_path(&r);
	h = path ? signed_headers(&r, &nh) : NULL;
	if (!h)
		goto out;
	sign_input(&r, path, h, nh, &in);
	out = s3_sign_canonical_request(&in);
out:
	free(h);
	free(path);
	request_done(&r);
	return out;
}
