/*
 * fs-metrics.c - the optional Prometheus endpoint (metrics_listen).
 *
 * libmicrohttpd serves GET /metrics from a thread of its own; the text is
 * made per request by fs_status_metrics.  The socket is bound before the
 * mount, so that a bad or busy address fails the mount with a message on
 * stderr, and handed to libmicrohttpd once the daemon runs.  Only
 * loopback addresses are accepted: the endpoint has no authentication
 * and names the bucket.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fs-status.h"
#include "fs.h"
#include "log.h"

#define MAX_CONNECTIONS 16
#define CONNECTION_TIMEOUT_S 10
#define PROM_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* One endpoint per process: a daemon serves one mount. */
static int listen_fd = -1;
static int listen_v6;
static struct MHD_Daemon *mhd;

/* Split "HOST:PORT" or "[HOST]:PORT"; 0, or -1 with a reason. */
static int split_address(char *spec, char **phost, char **pport,
			 const char **preason)
{
	char *colon = strrchr(spec, ':');

	if (!colon || colon == spec || !colon[1]) {
		*preason = "expected HOST:PORT, e.g. 127.0.0.1:9100";
		return -1;
	}
	*colon = '\0';
	*pport = colon + 1;
	*phost = spec;
	if (*spec == '[' && colon[-1] == ']') {
		colon[-1] = '\0';
		*phost = spec + 1;
	}
	return 0;
}

static int is_loopback(const struct sockaddr *sa)
{
	const struct sockaddr_in *v4 = (const struct sockaddr_in *)sa;
	const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)sa;

	if (sa->sa_family == AF_INET)
		return (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
	return sa->sa_family == AF_INET6 &&
	       IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr);
}

/* Resolve spec to a loopback address; NULL with a reason otherwise. */
static struct addrinfo *resolve(const char *spec, const char **preason)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_NUMERICSERV | AI_PASSIVE,
	};
	struct addrinfo *ai = NULL;
	char *copy = strdup(spec);
	char *host, *port;

	if (!copy)
		abort();
	if (split_address(copy, &host, &port, preason) < 0)
		goto out;
	if (getaddrinfo(host, port, &hints, &ai) != 0 || !ai) {
		*preason = "not an address and port (HOST:PORT)";
		ai = NULL;
		goto out;
	}
	if (!is_loopback(ai->ai_addr)) {
		*preason = "not a loopback address: the metrics have no "
			   "authentication, so only 127.0.0.0/8 and [::1] "
			   "are allowed";
		freeaddrinfo(ai);
		ai = NULL;
	}
out:
	free(copy);
	return ai;
}

/* A listening socket on ai's address, or -1 with errno set. */
static int open_listener(const struct addrinfo *ai)
{
	int one = 1;
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
	int saved;

	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 16) < 0) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

int fs_metrics_bind(const char *spec, char *err, size_t errlen)
{
	const char *reason = NULL;
	struct addrinfo *ai;

	if (!spec || !*spec)
		return 0;
	ai = resolve(spec, &reason);
	if (!ai) {
		snprintf(err, errlen, "metrics_listen '%s': %s", spec, reason);
		return -1;
	}
	listen_fd = open_listener(ai);
	listen_v6 = ai->ai_family == AF_INET6;
	freeaddrinfo(ai);
	if (listen_fd < 0) {
		snprintf(err, errlen, "metrics_listen '%s': %s", spec,
			 strerror(errno));
		return -1;
	}
	return 0;
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status,
			     char *body, size_t len,
			     enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(len, body, mode);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
				status == MHD_HTTP_OK ? PROM_TYPE
						      : "text/plain");
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result reply_text(struct MHD_Connection *conn,
				  unsigned status, const char *text)
{
	return reply(conn, status, (char *)text, strlen(text),
		     MHD_RESPMEM_PERSISTENT);
}

/* GET (or HEAD) /metrics; anything else is refused. */
static enum MHD_Result answer(void *cls, struct MHD_Connection *conn,
			      const char *url, const char *method,
			      const char *version, const char *upload_data,
			      size_t *upload_size, void **state)
{
	struct fs_ctx *x = cls;
	char *text;
	size_t len = 0;

	(void)version;
	(void)upload_data;
	(void)upload_size;
	(void)state;
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
	    strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return reply_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
				  "only GET /metrics\n");
	if (strcmp(url, "/metrics") != 0)
		return reply_text(conn, MHD_HTTP_NOT_FOUND,
				  "not found; the metrics are at /metrics\n");
	text = fs_status_metrics(x, &len);
	if (!text)
		return reply_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
				  "out of memory\n");
	return reply(conn, MHD_HTTP_OK, text, len, MHD_RESPMEM_MUST_FREE);
}

static void mhd_log(void *arg, const char *fmt, va_list ap)
{
	char msg[512];

	(void)arg;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	log_warn("metrics", "%s", msg);
}

int fs_metrics_start(struct fs_ctx *x)
{
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
	sigset_t all, old;

	if (listen_fd < 0)
		return 0;
	if (listen_v6)
		flags |= MHD_USE_IPv6;
	/* Signals belong to the FUSE loop: the server's thread blocks them. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	/* The logger first: libmicrohttpd logs the options after it. */
	mhd = MHD_start_daemon(
		flags, 0, NULL, NULL, answer, x, MHD_OPTION_EXTERNAL_LOGGER,
		mhd_log, NULL, MHD_OPTION_LISTEN_SOCKET, listen_fd,
		MHD_OPTION_CONNECTION_LIMIT, MAX_CONNECTIONS,
		MHD_OPTION_CONNECTION_TIMEOUT, CONNECTION_TIMEOUT_S,
		MHD_OPTION_END);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!mhd) {
		log_err("metrics", "cannot serve the metrics endpoint");
		return -1;
	}
	return 0;
}

void fs_metrics_stop(void)
{
	/* libmicrohttpd closes the socket it was handed. */
	if (mhd)
		MHD_stop_daemon(mhd);
	else if (listen_fd >= 0)
		close(listen_fd);
	mhd = NULL;
	listen_fd = -1;
}
