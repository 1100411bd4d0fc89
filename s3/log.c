/*
 * log.c - timestamped, leveled log lines on stderr or syslog.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

enum log_level log_threshold = LOG_LVL_INFO;
static int use_syslog;

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

/* Write one whole line; a line longer than the buffer is cut, not split. */
void log_write(enum log_level lvl, const char *module, const char *fmt, ...)
{
	char line[2048];
	char ts[40];
	va_list ap;
	int n;
	int m;

	n = snprintf(line, sizeof(line), "%s: ", module);
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	if (m < 0)
		return;
	n += m;
	if (n >= (int)sizeof(line) - 1)
		n = sizeof(line) - 2;

	if (use_syslog) {
		line[n] = '\0';
		syslog(syslog_prio[lvl], "%s", line);
		return;
	}

	char out[sizeof(line) + 64];
	format_now(ts, sizeof(ts));
	m = snprintf(out, sizeof(out), "%s %s %.*s\n", ts, level_names[lvl],
		     n, line);
	if (m > 0 && write(STDERR_FILENO, out, (size_t)m) < 0)
		return;
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
