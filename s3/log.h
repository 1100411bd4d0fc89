/*
 * log.h - one logger for every layer of blitfs.
 *
 * It lives at the bottom (s3/) so that fs/, cache/ and s3/ can all use it
 * without an arrow pointing up.  Lines look like
 *   2026-12-03T16:31:53.123Z WARN upq: put: bucket=b key="a.jpg" ...
 * and go to stderr in the foreground, to syslog once daemonised.  Each line
 * is written with one write(2) so that threads never interleave.
 */
#ifndef BLITFS_LOG_H
#define BLITFS_LOG_H

#include <stddef.h>

enum log_level {
	LOG_LVL_ERR = 0,
	LOG_LVL_WARN,
	LOG_LVL_INFO,
	LOG_LVL_DEBUG,
};

extern enum log_level log_threshold;

void log_set_level(enum log_level lvl);
void log_use_syslog(int on);
void log_write(enum log_level lvl, const char *module, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Quote an object key for a log line: control bytes, quotes and
 * backslashes become escapes, so a key holding a newline cannot forge a
 * line.  Returns buf.
 */
const char *log_key(const char *key, char *buf, size_t size);

/* The level is checked before the arguments are evaluated. */
#define LOG_AT(lvl, mod, ...)                                   \
	do {                                                    \
		if ((lvl) <= log_threshold)                     \
			log_write((lvl), (mod), __VA_ARGS__);   \
	} while (0)

#define log_err(mod, ...) LOG_AT(LOG_LVL_ERR, mod, __VA_ARGS__)
#define log_warn(mod, ...) LOG_AT(LOG_LVL_WARN, mod, __VA_ARGS__)
#define log_info(mod, ...) LOG_AT(LOG_LVL_INFO, mod, __VA_ARGS__)
#define log_debug(mod, ...) LOG_AT(LOG_LVL_DEBUG, mod, __VA_ARGS__)

#endif
