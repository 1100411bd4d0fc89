/*
 * log.c - timestamped, leveled log lines on stderr or syslog, with storms
 * of alike lines summarised (see log.h).
 *
 * Lock: `lock` guards the storm table, the window lengths and the ticker
 * state; lines other than debug ones are written with it held, so that a
 * summary never overtakes the line it counts.
 */
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define LINE_LEN 2048
#define NSTORMS 32		/* shapes followed at once */
#define MODULE_LEN 24

/* Lines of one shape seen lately, and how many were held back. */
struct storm {
	int used;
	uint64_t shape;		/* hash of level, module and shape */
	enum log_level lvl;
	long start_ms;		/* when this window began (monotonic) */
	long window_ms;
	unsigned long held;	/* lines held back in this window */
	char module[MODULE_LEN];
	char last[LINE_LEN];	/* the last line held back */
};

enum log_level log_threshold = LOG_LVL_INFO;
static int use_syslog;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t tick_cv = PTHREAD_COND_INITIALIZER;
static struct storm storms[NSTORMS];
static long first_window_ms = 10000;
static long max_window_ms = 600000;
static pthread_t ticker;
static int ticker_on;
static int ticker_stop;

static const char *const level_names[] = { "ERROR", "WARN", "INFO", "DEBUG" };
static const int syslog_prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };

/* Set the most verbose level that is still written. */
void log_set_level(enum log_level lvl)
{
	log_threshold = lvl;
}

/* After daemonising there is no terminal: send lines to syslog instead. */
void log_use_syslog(int on)
{
	use_syslog = on;
	if (on)
		openlog("blitfs", LOG_PID, LOG_DAEMON);
}

/* Window lengths; the unit tests shorten them. */
void log_set_window(long first_ms, long max_ms)
{
	pthread_mutex_lock(&lock);
	first_window_ms = first_ms > 0 ? first_ms : 1;
	max_window_ms = max_ms > first_window_ms ? max_ms : first_window_ms;
	pthread_mutex_unlock(&lock);
}

/* Format the UTC time of now as ISO 8601 with milliseconds. */
static void format_now(char *buf, size_t size)
{
	struct timeval tv;
	struct tm tm;
	size_t n;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, size - n, ".%03ldZ", (long)(tv.tv_usec / 1000));
}

/* Milliseconds on the monotonic clock. */
static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Write "module: text" as one line; a long one is cut, never split. */
static void emit(enum log_level lvl, const char *module, const char *text)
{
	char out[LINE_LEN + 64];
	char ts[40];
	int n;

	if (use_syslog) {
		syslog(syslog_prio[lvl], "%s: %s", module, text);
		return;
	}
	format_now(ts, sizeof(ts));
	n = snprintf(out, sizeof(out), "%s %s %s: %s", ts, level_names[lvl],
		     module, text);
	if (n < 0)
		return;
	if (n > (int)sizeof(out) - 2)
		n = sizeof(out) - 2;
	out[n++] = '\n';
	if (write(STDERR_FILENO, out, (size_t)n) < 0)
		return;
}

/* One step of FNV-1a. */
static uint64_t fnv(uint64_t h, unsigned char c)
{
	return (h ^ c) * 0x100000001b3ULL;
}

/*
 * The shape of a line: runs of digits count as one '#', and a "quoted"
 * string (an object key, see log_key) as '"', so the same failure of
 * another file or after another number of seconds looks alike.
 */
static uint64_t shape_of(enum log_level lvl, const char *module,
			 const char *text)
{
	uint64_t h = fnv(0xcbf29ce484222325ULL, (unsigned char)lvl);
	const char *p;

	for (p = module; *p; p++)
		h = fnv(h, (unsigned char)*p);
	h = fnv(h, 0);
	for (p = text; *p; p++) {
		if (*p >= '0' && *p <= '9') {
			while (p[1] >= '0' && p[1] <= '9')
				p++;
			h = fnv(h, '#');
			continue;
		}
		if (*p == '"') {
			for (p++; *p && *p != '"'; p++)
				if (*p == '\\' && p[1])
					p++;
			h = fnv(h, '"');
			if (!*p)
				break;
			continue;
		}
		h = fnv(h, (unsigned char)*p);
	}
	return h;
}

/* Say how many lines of s's shape were held back, and show the last. */
static void summarise(struct storm *s, long now)
{
	char text[LINE_LEN];

	snprintf(text, sizeof(text),
		 "message repeated %lu time%s in %.1f s; the last: %s",
		 s->held, s->held == 1 ? "" : "s",
		 (double)(now - s->start_ms) / 1000, s->last);
	emit(s->lvl, s->module, text);
	s->held = 0;
}

/*
 * Close the windows that are over.  A storm that goes on gets a longer
 * window; a shape that stayed quiet for a whole window is forgotten.
 */
static void expire(long now)
{
	struct storm *s;

	for (s = storms; s < storms + NSTORMS; s++) {
		if (!s->used || now - s->start_ms < s->window_ms)
			continue;
		if (!s->held) {
			s->used = 0;
			continue;
		}
		summarise(s, now);
		s->start_ms = now;
		s->window_ms *= 2;
		if (s->window_ms > max_window_ms)
			s->window_ms = max_window_ms;
	}
}

/* A slot for a new shape; the oldest one makes room when all are used. */
static struct storm *new_storm(long now)
{
	struct storm *s, *oldest = storms;

	for (s = storms; s < storms + NSTORMS; s++) {
		if (!s->used)
			return s;
		if (s->start_ms < oldest->start_ms)
			oldest = s;
	}
	if (oldest->held)
		summarise(oldest, now);
	return oldest;
}

/* 1 if the line is one of a storm and is held back; 0 to write it. */
static int hold_back(enum log_level lvl, const char *module,
		     const char *text, long now)
{
	uint64_t shape = shape_of(lvl, module, text);
	struct storm *s;

	for (s = storms; s < storms + NSTORMS; s++) {
		if (s->used && s->shape == shape) {
			s->held++;
			snprintf(s->last, sizeof(s->last), "%s", text);
			return 1;
		}
	}
	s = new_storm(now);
	s->used = 1;
	s->shape = shape;
	s->lvl = lvl;
	s->start_ms = now;
	s->window_ms = first_window_ms;
	s->held = 0;
	snprintf(s->module, sizeof(s->module), "%s", module);
	return 0;
}

/* Format a line and write it, unless it is one of a storm. */
/* Write one line; alike lines are summarised unless each is wanted. */
static void vlog(enum log_level lvl, const char *module, int each,
		 const char *fmt, va_list ap)
{
	char text[LINE_LEN];
	long now;

	if (vsnprintf(text, sizeof(text), fmt, ap) < 0)
		text[0] = '\0';
	if (lvl == LOG_LVL_DEBUG) {
		emit(lvl, module, text);
		return;
	}
	pthread_mutex_lock(&lock);
	now = now_ms();
	expire(now);
	if (each || !hold_back(lvl, module, text, now))
		emit(lvl, module, text);
	pthread_mutex_unlock(&lock);
}

void log_write(enum log_level lvl, const char *module, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(lvl, module, 0, fmt, ap);
	va_end(ap);
}

void log_write_each(enum log_level lvl, const char *module,
		    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(lvl, module, 1, fmt, ap);
	va_end(ap);
}

/* Summarise every storm now and forget them. */
void log_flush(void)
{
	long now = now_ms();
	struct storm *s;

	pthread_mutex_lock(&lock);
	for (s = storms; s < storms + NSTORMS; s++) {
		if (s->used && s->held)
			summarise(s, now);
		s->used = 0;
	}
	pthread_mutex_unlock(&lock);
}

/* Once a second, close the windows that are over. */
static void *tick_main(void *arg)
{
	struct timespec until;
	sigset_t set;

	(void)arg;
	/* Signals belong to the FUSE loop. */
	sigfillset(&set);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	pthread_mutex_lock(&lock);
	while (!ticker_stop) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec++;
		pthread_cond_timedwait(&tick_cv, &lock, &until);
		expire(now_ms());
	}
	pthread_mutex_unlock(&lock);
	return NULL;
}

/* Start the ticker thread (see log.h). */
int log_start(void)
{
	int ret = 0;

	pthread_mutex_lock(&lock);
	if (!ticker_on) {
		ticker_stop = 0;
		ret = pthread_create(&ticker, NULL, tick_main, NULL) ? -1 : 0;
		ticker_on = ret == 0;
	}
	pthread_mutex_unlock(&lock);
	return ret;
}

/* Stop the ticker, then flush. */
void log_stop(void)
{
	pthread_mutex_lock(&lock);
	ticker_stop = 1;
	pthread_cond_signal(&tick_cv);
	pthread_mutex_unlock(&lock);
	if (ticker_on)
		pthread_join(ticker, NULL);
	ticker_on = 0;
	log_flush();
}

/* Escape a key so that it reads as one token on one line. */
const char *log_key(const char *key, char *buf, size_t size)
{
	size_t o = 0;
	const unsigned char *p;

	if (size < 16) {
		if (size)
			buf[0] = '\0';
		return buf;
	}

	buf[o++] = '"';
	for (p = (const unsigned char *)key; *p && o + 10 < size; p++) {
		if (*p < 0x20 || *p == 0x7f)
			o += snprintf(buf + o, size - o, "\\x%02x", *p);
		else if (*p == '"' || *p == '\\')
			o += snprintf(buf + o, size - o, "\\%c", *p);
		else
			buf[o++] = (char)*p;
	}
	if (*p)
		o += snprintf(buf + o, size - o, "...");
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}
