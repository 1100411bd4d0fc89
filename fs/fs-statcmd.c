/*
 * fs-statcmd.c - `blitfs status` and `blitfs wait`: the client side.
 *
 *   blitfs status [--json] [--once] MOUNTPOINT
 *   blitfs wait [--timeout SECONDS] MOUNTPOINT
 *
 * Both read the mount root's user.blitfs.status attribute (JSON, made by
 * fs-status.c in the daemon), so they need neither a socket nor the
 * mount's options.  wait notes the highest close sequence number at the
 * call and polls until the lowest number still pending is above it; see
 * README.md, "Status and waiting".
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "fs-status.h"

/* Exit codes of both commands (README, "Status and waiting"). */
enum {
	EXIT_DONE = 0,
	EXIT_FAILED = 1,	/* wait: some versions FAILED */
	EXIT_TIMEOUT = 2,	/* wait: --timeout passed first */
	EXIT_USAGE = 3,		/* bad arguments, or not a blitfs mount */
};

#define POLL_MS 200	/* wait: between readings */
#define REFRESH_MS 500	/* status on a terminal: between redraws */
#define SETTLE_MS 300	/* wait: longest wait for closes in flight */
#define BAR_WIDTH 30
#define FUSE_SUPER_MAGIC 0x65735546	/* statfs(2) */
#define LIVE_LINES 9	/* lines of the live display */

static const char *const shown_states[] = {
	"queued", "uploading", "uploaded", "visible", "unconfirmed", "failed",
};
#define NSHOWN (sizeof(shown_states) / sizeof(shown_states[0]))

/* One reading of the status attribute. */
struct reading {
	char text[FS_STATUS_MAX + 4096];
	json_t *doc;
};

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---------------------------------------------------- reading the mount */

/*
 * The root of the FUSE mount that holds path: the highest directory above
 * it on the same device.  The commands may be given any directory in the
 * mount, the attribute lives on its root only.
 */
static int mount_root(const char *path, char *root, size_t size)
{
	char parent[PATH_MAX + 4];
	struct stat st, pst;
	struct statfs sf;
	char *slash;

	if (!realpath(path, root) || stat(root, &st) < 0 ||
	    statfs(root, &sf) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if (sf.f_type != FUSE_SUPER_MAGIC)
		return -ENODATA;
	while (strcmp(root, "/") != 0) {
		snprintf(parent, sizeof(parent), "%s", root);
		slash = strrchr(parent, '/');
		slash[slash == parent ? 1 : 0] = '\0';
		if (stat(parent, &pst) < 0 || pst.st_dev != st.st_dev)
			break;
		snprintf(root, size, "%s", parent);
	}
	return 0;
}

/* Why a reading failed, in words for the user. */
static const char *read_reason(int err)
{
	if (err == ENODATA || err == ENOTSUP)
		return "not a blitfs mount (it has no " FS_STATUS_XATTR ")";
	if (err == ENOTCONN)
		return "the blitfs daemon of this mount is gone";
	return strerror(err);
}

/* mount_root, or -1 after a message on stderr. */
static int find_root(const char *cmd, const char *path, char *root,
		     size_t size)
{
	int ret = mount_root(path, root, size);

	if (ret < 0)
		fprintf(stderr, "blitfs %s: %s: %s\n", cmd, path,
			read_reason(-ret));
	return ret < 0 ? -1 : 0;
}

/* Read and parse the attribute; 0, or -1 after a message on stderr. */
static int take_reading(const char *cmd, const char *root,
			struct reading *r)
{
	json_error_t jerr;
	ssize_t n;

	json_decref(r->doc);
	r->doc = NULL;
	n = getxattr(root, FS_STATUS_XATTR, r->text, sizeof(r->text) - 1);
	if (n < 0) {
		fprintf(stderr, "blitfs %s: %s: %s\n", cmd, root,
			read_reason(errno));
		return -1;
	}
	r->text[n] = '\0';
	r->doc = json_loadb(r->text, (size_t)n, 0, &jerr);
	if (!r->doc || json_integer_value(json_object_get(r->doc,
							  "format")) != 1) {
		fprintf(stderr, "blitfs %s: %s: unreadable %s: %s\n", cmd,
			root, FS_STATUS_XATTR,
			r->doc ? "unknown format" : jerr.text);
		return -1;
	}
	return 0;
}

/* doc.a or doc.a.b as a number; 0 when it is not there. */
static double num(json_t *doc, const char *a, const char *b)
{
	json_t *v = json_object_get(doc, a);

	return json_number_value(b ? json_object_get(v, b) : v);
}

static uint64_t count(json_t *doc, const char *a, const char *b)
{
	double v = num(doc, a, b);

	return v > 0 ? (uint64_t)v : 0;
}

/* Files being written now (their close has not reached blitfs yet). */
static uint64_t open_files(json_t *doc)
{
	return count(json_object_get(doc, "states"), "open", "files");
}

static const char *str(json_t *doc, const char *a)
{
	const char *s = json_string_value(json_object_get(doc, a));

	return s ? s : "";
}

/* --------------------------------------------------------- formatting */

static const char *fmt_bytes(uint64_t n, char *buf, size_t size)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	int u = -1;

	if (n < 1024) {
		snprintf(buf, size, "%llu B", (unsigned long long)n);
		return buf;
	}
	while (v >= 1024 && u < 3) {
		v /= 1024;
		u++;
	}
	snprintf(buf, size, "%.1f %s", v, units[u]);
	return buf;
}

static const char *fmt_eta(json_t *doc, char *buf, size_t size)
{
	json_t *v = json_object_get(doc, "eta_s");
	long s;

	if (!json_is_number(v)) {
		snprintf(buf, size, "unknown");
		return buf;
	}
	s = (long)(json_number_value(v) + 0.5);
	if (s < 60)
		snprintf(buf, size, "%ld s", s);
	else if (s < 3600)
		snprintf(buf, size, "%ld min %02ld s", s / 60, s % 60);
	else
		snprintf(buf, size, "%ld h %02ld min", s / 3600, s / 60 % 60);
	return buf;
}

/* "write rate 9.8/s (limit 10/s), 8.1 files/s, 300.0 KiB/s, ETA 12 s" */
static void fmt_pace(json_t *doc, char *buf, size_t size)
{
	char b[32], e[32];

	snprintf(buf, size,
		 "write rate %.1f/s (limit %g/s), %.1f files/s, %s/s, ETA %s",
		 num(doc, "write_rate", "current"),
		 num(doc, "write_rate", "limit"),
		 num(doc, "throughput", "files_per_s"),
		 fmt_bytes(count(doc, "throughput", "bytes_per_s"), b,
			   sizeof(b)),
		 fmt_eta(doc, e, sizeof(e)));
}

/* ------------------------------------------------------------- status */

/* The one line for pipes and logs. */
static void print_line(const char *root, json_t *doc)
{
	json_t *states = json_object_get(doc, "states");
	char b[32], pace[160];
	size_t i;

	printf("%s:", root);
	for (i = 0; i < NSHOWN; i++)
		printf(" %s %llu (%s)%s", shown_states[i],
		       (unsigned long long)count(states, shown_states[i],
						 "files"),
		       fmt_bytes(count(states, shown_states[i], "bytes"), b,
				 sizeof(b)),
		       i + 1 < NSHOWN ? "," : ";");
	fmt_pace(doc, pace, sizeof(pace));
	printf(" %s\n", pace);
}

/* Where a live display started: its progress counts from there. */
struct progress {
	uint64_t pending0;	/* files pending at the start */
	uint64_t seq0;		/* close sequence at the start */
	uint64_t total;		/* those, and the files closed since */
	uint64_t sent;		/* of which S3 has the bytes */
	uint64_t final;		/* of which S3 shows them, or FAILED */
};

static uint64_t minus(uint64_t a, uint64_t b)
{
	return a > b ? a - b : 0;
}

/*
 * The bar counts the files sent, which move at the write rate; the text
 * also says how many are final, which may lag while S3 is slow to show
 * what it has.
 */
static void progress_update(struct progress *p, json_t *doc)
{
	json_t *st = json_object_get(doc, "states");
	uint64_t pending = count(doc, "pending", "files");
	uint64_t unsent = count(st, "queued", "files") +
			  count(st, "uploading", "files") +
			  count(st, "deleting", "files");

	p->total = p->pending0 + minus(count(doc, "seq", "closed"), p->seq0);
	if (pending > p->total)
		p->total = pending;
	p->sent = minus(p->total, unsent);
	p->final = minus(p->total, pending);
}

static int term_cols(void)
{
	struct winsize ws;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) < 0 || ws.ws_col < 20)
		return 80;
	return ws.ws_col;
}

/*
 * One line of the live display, cut to the terminal's width: a line that
 * wrapped would throw the redraw's cursor moves off.
 */
__attribute__((format(printf, 2, 3)))
static void live_line(int cols, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (strlen(line) >= (size_t)cols)
		line[cols - 1] = '\0';
	printf("\r\033[K%s\n", line);
}

static void draw_bar(int cols, const struct progress *p)
{
	int fill = p->total ? (int)(p->sent * BAR_WIDTH / p->total)
			    : BAR_WIDTH;
	int pct = p->total ? (int)(p->sent * 100 / p->total) : 100;
	char bar[BAR_WIDTH + 1];

	memset(bar, '#', (size_t)fill);
	memset(bar + fill, '-', (size_t)(BAR_WIDTH - fill));
	bar[BAR_WIDTH] = '\0';
	live_line(cols, "[%s] %3d%%  %llu of %llu files sent, %llu final",
		  bar, pct, (unsigned long long)p->sent,
		  (unsigned long long)p->total, (unsigned long long)p->final);
}

static void draw_state(int cols, json_t *states, const char *name)
{
	char b[32];

	live_line(cols, "  %-12s %8llu files %12s%s", name,
		  (unsigned long long)count(states, name, "files"),
		  fmt_bytes(count(states, name, "bytes"), b, sizeof(b)),
		  strcmp(name, "uploaded") == 0 ? "  (waiting to be visible)"
						: "");
}

/* The live display: LIVE_LINES lines, drawn over the last ones. */
static void draw_live(const char *root, json_t *doc, struct progress *p,
		      int again)
{
	json_t *states = json_object_get(doc, "states");
	int cols = term_cols();
	char pace[160];
	size_t i;

	if (again)
		printf("\033[%dA", LIVE_LINES);
	progress_update(p, doc);
	live_line(cols, "%s (bucket %s)", root, str(doc, "bucket"));
	draw_bar(cols, p);
	for (i = 0; i < NSHOWN; i++)
		draw_state(cols, states, shown_states[i]);
	fmt_pace(doc, pace, sizeof(pace));
	live_line(cols, "%s", pace);
	fflush(stdout);
}

/* Redraw until nothing is pending or Ctrl-C. */
static int status_live(const char *root, struct reading *r)
{
	struct progress p = {
		.pending0 = count(r->doc, "pending", "files"),
		.seq0 = count(r->doc, "seq", "closed"),
	};
	struct sigaction sa = { .sa_handler = on_sigint };
	int again = 0;

	sigaction(SIGINT, &sa, NULL);
	for (;;) {
		draw_live(root, r->doc, &p, again);
		again = 1;
		if (!count(r->doc, "pending", "files") || interrupted)
			return EXIT_DONE;
		sleep_ms(REFRESH_MS);
		if (interrupted)
			return EXIT_DONE;
		if (take_reading("status", root, r) < 0)
			return EXIT_USAGE;
	}
}

static int usage(FILE *out, int code)
{
	fprintf(out,
		"usage: blitfs status [--json] [--once] MOUNTPOINT\n"
		"       blitfs wait [--timeout SECONDS] MOUNTPOINT\n\n"
		"status  what is queued, uploading, waiting to be visible, "
		"visible,\n"
		"        unconfirmed and failed; live on a terminal, one "
		"line (--once,\n"
		"        or not a terminal) or JSON (--json) otherwise\n"
		"wait    until every file closed before the call is in S3 "
		"(VISIBLE or\n"
		"        UNCONFIRMED); exit 0, 1 if some FAILED (listed on "
		"stderr),\n"
		"        2 on timeout, 3 on bad arguments or no blitfs "
		"mount\n");
	return code;
}

static int cmd_status(int argc, char **argv)
{
	static const struct option longs[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "once", no_argument, NULL, '1' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int json = 0, once = 0, c, ret;
	char root[PATH_MAX];
	struct reading *r;

	while ((c = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
		if (c == 'j')
			json = 1;
		else if (c == '1')
			once = 1;
		else
			return usage(c == 'h' ? stdout : stderr,
				     c == 'h' ? EXIT_DONE : EXIT_USAGE);
	}
	if (argc - optind != 1)
		return usage(stderr, EXIT_USAGE);
	if (find_root("status", argv[optind], root, sizeof(root)) < 0)
		return EXIT_USAGE;
	r = calloc(1, sizeof(*r));
	if (!r)
		abort();
	ret = EXIT_USAGE;
	if (take_reading("status", root, r) < 0)
		goto out;
	ret = EXIT_DONE;
	if (json)
		printf("%s\n", r->text);
	else if (once || !isatty(STDOUT_FILENO))
		print_line(root, r->doc);
	else
		ret = status_live(root, r);
out:
	json_decref(r->doc);
	free(r);
	return ret;
}

/* --------------------------------------------------------------- wait */

struct waiter {
	const char *root;
	struct reading r;
	uint64_t seq0;		/* the highest number closed at the call */
	json_int_t pid;		/* of the daemon that gave seq0 */
	double deadline;	/* monotonic; 0: none */
};

/*
 * The kernel tells blitfs of a close (the release) just after close()
 * returned, so a file a writer closed a moment before the call may still
 * count as open.  While some are, read again for a little while: the
 * number then noted covers them (and maybe a few closed later, which only
 * makes the wait a little longer).
 */
static int settle(struct waiter *w)
{
	double end = now_s() + SETTLE_MS / 1000.0;

	while (open_files(w->r.doc) && now_s() < end) {
		sleep_ms(50);
		if (take_reading("wait", w->root, &w->r) < 0)
			return -1;
	}
	w->seq0 = count(w->r.doc, "seq", "closed");
	w->pid = json_integer_value(json_object_get(w->r.doc, "pid"));
	return 0;
}

/*
 * A remount is a new daemon with a sequence of its own, in which the
 * versions it took over from the journal have number 0: everything the
 * call was waiting for is among them.
 */
static void follow_remount(struct waiter *w)
{
	json_int_t pid = json_integer_value(json_object_get(w->r.doc, "pid"));

	if (pid == w->pid)
		return;
	fprintf(stderr, "blitfs wait: %s was mounted again (pid %lld); "
		"waiting for what the new mount took over\n", w->root,
		(long long)pid);
	w->pid = pid;
	w->seq0 = 0;
}

/* Name on stderr the FAILED versions closed before the call; how many. */
static unsigned report_failed(const struct waiter *w)
{
	json_t *list = json_object_get(w->r.doc, "failed");
	json_t *f;
	size_t i;
	unsigned n = 0;

	json_array_foreach(list, i, f) {
		if (count(f, "seq", NULL) > w->seq0)
			continue;
		fprintf(stderr, "blitfs wait: FAILED %s%s (key \"%s\"): %s\n",
			strcmp(w->root, "/") ? w->root : "", str(f, "path"),
			str(f, "key"), str(f, "error"));
		n++;
	}
	if (n && count(w->r.doc, "failed_count", NULL) >
			 count(w->r.doc, "failed_listed", NULL))
		fprintf(stderr, "blitfs wait: and maybe more: %llu files are "
			"FAILED in all, the status lists %llu\n",
			(unsigned long long)count(w->r.doc, "failed_count",
						  NULL),
			(unsigned long long)count(w->r.doc, "failed_listed",
						  NULL));
	return n;
}

static int wait_timed_out(const struct waiter *w, double timeout)
{
	json_t *st = json_object_get(w->r.doc, "states");

	report_failed(w);
	fprintf(stderr, "blitfs wait: %s: timed out after %g s; pending now: "
		"%llu queued, %llu uploading, %llu waiting to be visible\n",
		w->root, timeout,
		(unsigned long long)count(st, "queued", "files"),
		(unsigned long long)count(st, "uploading", "files"),
		(unsigned long long)count(st, "uploaded", "files"));
	return EXIT_TIMEOUT;
}

static int wait_loop(struct waiter *w, double timeout)
{
	unsigned failed;

	for (;;) {
		follow_remount(w);
		if (count(w->r.doc, "seq", "pending") > w->seq0)
			break;
		if (w->deadline && now_s() >= w->deadline)
			return wait_timed_out(w, timeout);
		sleep_ms(POLL_MS);
		if (take_reading("wait", w->root, &w->r) < 0)
			return EXIT_USAGE;
	}
	failed = report_failed(w);
	if (!failed)
		return EXIT_DONE;
	fprintf(stderr, "blitfs wait: %u of the files closed before the call "
		"FAILED; their bytes stay in the cache\n", failed);
	return EXIT_FAILED;
}

/* --timeout: seconds above 0, fractions allowed. */
static int parse_timeout(const char *v, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(v, &end);
	if (errno || end == v || *end || !(*out > 0) || *out > 1e9) {
		fprintf(stderr, "blitfs wait: --timeout '%s': not a number of "
			"seconds above 0\n", v);
		return -1;
	}
	return 0;
}

static int cmd_wait(int argc, char **argv)
{
	static const struct option longs[] = {
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	double timeout = 0;
	char root[PATH_MAX];
	struct waiter *w;
	int c, ret;

	while ((c = getopt_long(argc, argv, "ht:", longs, NULL)) != -1) {
		if (c == 't' && parse_timeout(optarg, &timeout) < 0)
			return EXIT_USAGE;
		if (c != 't')
			return usage(c == 'h' ? stdout : stderr,
				     c == 'h' ? EXIT_DONE : EXIT_USAGE);
	}
	if (argc - optind != 1)
		return usage(stderr, EXIT_USAGE);
	if (find_root("wait", argv[optind], root, sizeof(root)) < 0)
		return EXIT_USAGE;
	w = calloc(1, sizeof(*w));
	if (!w)
		abort();
	w->root = root;
	w->deadline = timeout > 0 ? now_s() + timeout : 0;
	ret = EXIT_USAGE;
	if (take_reading("wait", root, &w->r) == 0 && settle(w) == 0)
		ret = wait_loop(w, timeout);
	json_decref(w->r.doc);
	free(w);
	return ret;
}

int fs_statcmd_is(const char *word)
{
	return word && (strcmp(word, "status") == 0 ||
			strcmp(word, "wait") == 0);
}

/* argv[1] is the command; its options and MOUNTPOINT follow. */
int fs_statcmd_main(int argc, char **argv)
{
	optind = 1;
	if (strcmp(argv[1], "status") == 0)
		return cmd_status(argc - 1, argv + 1);
	return cmd_wait(argc - 1, argv + 1);
}
