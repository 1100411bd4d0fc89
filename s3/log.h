/*
 * log.h - one logger for every layer of blitfs.
 *
 * It lives at the bottom (s3/) so that fs/, cache/ and s3/ can all use it
 * without an arrow pointing up.  Lines look like
 *   2026-12-03T16:31:53.123Z WARN upq: put: bucket=b key="a.jpg" ...
 * and go to stderr in the foreground, to syslog once daemonised.  Each line
 * is written with one write(2) so that threads never interleave.
 *
 * Storms are summarised: lines of the same level, module and shape (the
 * text with its numbers and "quoted" keys blanked out) are written once
 * per window; the others are counted, and when the window ends one line
 * says how many there were and shows the last.  A window lasts 10 s and
 * doubles while the storm goes on, up to 10 min, so 10,000 uploads that
 * fail alike make a handful of lines.  Debug lines are never summarised.
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
 * Start a thread that writes the summaries of windows that ended, so a
 * storm that stopped is reported within a second or so even when nothing
 * else is logged.  After daemonising: threads do not survive fork().
 * 0, or -1 when the thread could not start (summaries then wait for the
 * next line logged, or log_stop).
 */
int log_start(void);

/* Stop that thread and write every pending summary now. */
void log_stop(void);

/* Write every pending summary now (the windows start again). */
void log_flush(void);

/* The first window and the longest, in ms; the unit tests shorten them. */
void log_set_window(long first_ms, long max_ms);

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

/*
 * A line never summarised, for callers that already write it once per
 * subject (each key left out of listings is named, however many there
 * are).
 */
void log_write_each(enum log_level lvl, const char *module,
		    const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
#define log_warn_each(mod, ...)                                     \
	do {                                                        \
		if (LOG_LVL_WARN <= log_threshold)                  \
			log_write_each(LOG_LVL_WARN, (mod), __VA_ARGS__); \
	} while (0)

#endif
