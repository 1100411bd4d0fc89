/*
 * s3-meta.c - a file's attributes in an object's user metadata, and the
 * header lists that carry them.
 *
 * blitfs keeps mode, owner and mtime where s3fs keeps them
 * (x-amz-meta-mode, -uid, -gid, -mtime, all decimal), so that either can
 * mount what the other wrote; mtime is also read the way rclone writes it,
 * with a fraction of a second.  What comes from the server is untrusted:
 * a value that does not parse is left out, never an error, because a
 * foreign tool's odd metadata must not make an object unreadable.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "s3_i.h"

#define META_PREFIX "x-amz-meta-"
#define NSEC_PER_SEC 1000000000L

/*
 * What a single CopyObject keeps of its source besides the bytes, and so
 * what a copy in parts, which keeps nothing, must send again itself.
 */
static const char *const kept_headers[] = {
	"Content-Type",
	"Cache-Control",
	"Content-Disposition",
	"Content-Encoding",
	"Content-Language",
	"Expires",
};

/* ---- header lists ---- */

/* Add name: value, copied.  0, or -1 without memory. */
int s3_hlist_add(struct s3_hlist *l, const char *name, const char *value)
{
	size_t nn = strlen(name) + 1, nv = strlen(value) + 1;
	struct s3_pair *h;
	char *p;

	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 8;

		h = realloc(l->h, cap * sizeof(*h));
		if (!h)
			return -1;
		l->h = h;
		l->cap = cap;
	}
	/* name and value in one block: freeing the name frees both */
	p = malloc(nn + nv);
	if (!p)
		return -1;
	memcpy(p, name, nn);
	memcpy(p + nn, value, nv);
	l->h[l->n++] = (struct s3_pair){ p, p + nn };
	return 0;
}

/* Add every header of src except the one named skip (or none). */
int s3_hlist_add_all(struct s3_hlist *l, const struct s3_hlist *src,
		     const char *skip)
{
	size_t i;

	for (i = 0; src && i < src->n; i++) {
		if (skip && !strcasecmp(src->h[i].name, skip))
			continue;
		if (s3_hlist_add(l, src->h[i].name, src->h[i].value))
			return -1;
	}
	return 0;
}

/* The value of the first header called name (any case), or NULL. */
const char *s3_hlist_get(const struct s3_hlist *l, const char *name)
{
	size_t i;

	for (i = 0; l && i < l->n; i++)
		if (!strcasecmp(l->h[i].name, name))
			return l->h[i].value;
	return NULL;
}

/* Free what the list holds and leave it empty, ready for use again. */
void s3_hlist_free(struct s3_hlist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free((char *)l->h[i].name);
	free(l->h);
	memset(l, 0, sizeof(*l));
}

/* ---- writing metadata ---- */

/*
 * Decimal seconds of t: "1700000000" when nsec is 0, else nine digits of
 * fraction.  Before 1970 the fraction counts up from the next second
 * down, as a decimal number does: {-2 s, 0.5e9 ns} is "-1.500000000".
 * An nsec out of range is no fraction at all.
 */
void s3_meta_mtime_text(const struct timespec *t, char *buf, size_t size)
{
	long long s = (long long)t->tv_sec;
	long ns = t->tv_nsec;

	if (ns <= 0 || ns >= NSEC_PER_SEC)
		snprintf(buf, size, "%lld", s);
	else if (s >= 0)
		snprintf(buf, size, "%lld.%09ld", s, ns);
	else
		snprintf(buf, size, "-%lld.%09ld", -(s + 1), NSEC_PER_SEC - ns);
}

/* Add one decimal header. 0, or -1 without memory. */
static int add_decimal(struct s3_hlist *l, const char *name, uint32_t v)
{
	char num[16];

	snprintf(num, sizeof(num), "%lu", (unsigned long)v);
	return s3_hlist_add(l, name, num);
}

/* Add the x-amz-meta-* headers of the fields m has; m may be NULL. */
int s3_meta_add_headers(const struct s3_meta *m, struct s3_hlist *l)
{
	char t[48];

	if (!m)
		return 0;
	if (m->has_mode && add_decimal(l, META_PREFIX "mode", m->mode))
		return -1;
	if (m->has_uid && add_decimal(l, META_PREFIX "uid", m->uid))
		return -1;
	if (m->has_gid && add_decimal(l, META_PREFIX "gid", m->gid))
		return -1;
	if (m->has_mtime) {
		s3_meta_mtime_text(&m->mtime, t, sizeof(t));
		if (s3_hlist_add(l, META_PREFIX "mtime", t))
			return -1;
	}
	return 0;
}

/* Fill m from a struct stat's mode, owner and mtime (NULL: none). */
void s3_meta_from_stat(struct s3_meta *m, uint32_t mode, uint32_t uid,
		       uint32_t gid, const struct timespec *mtime)
{
	memset(m, 0, sizeof(*m));
	m->mode = mode;
	m->uid = uid;
	m->gid = gid;
	m->has_mode = m->has_uid = m->has_gid = 1;
	if (mtime) {
		m->mtime = *mtime;
		m->has_mtime = 1;
	}
}

/* ---- reading metadata ---- */

/* A whole decimal number of at most max; 0, or -1 if s is none. */
static int parse_dec(const char *s, size_t n, unsigned long long max,
		     unsigned long long *pv)
{
	unsigned long long v = 0;
	size_t i;

	if (!n)
		return -1;
	for (i = 0; i < n; i++) {
		unsigned d = (unsigned)(s[i] - '0');

		if (d > 9 || v > (max - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*pv = v;
	return 0;
}

/*
 * Decimal seconds, "[-]S" or "[-]S.F": digits on both sides of the point.
 * A fraction longer than nine digits is cut to nanoseconds.
 */
int s3_meta_parse_mtime(const char *s, struct timespec *t)
{
	int neg = *s == '-';
	const char *p = s + neg;
	size_t ni = strspn(p, "0123456789");
	const char *f = p + ni;
	size_t nf = 0, i;
	unsigned long long sec, ns = 0;

	if (*f == '.') {
		nf = strspn(++f, "0123456789");
		if (!nf)
			return -1;
	}
	if (f[nf] || parse_dec(p, ni, INT64_MAX - 1, &sec))
		return -1;
	for (i = 0; i < 9; i++)
		ns = ns * 10 + (i < nf ? (unsigned)(f[i] - '0') : 0);
	if ((time_t)sec < 0 || (unsigned long long)(time_t)sec != sec)
		return -1;
	t->tv_sec = neg ? -(time_t)sec : (time_t)sec;
	t->tv_nsec = (long)ns;
	if (neg && ns) {
		t->tv_sec--;
		t->tv_nsec = NSEC_PER_SEC - (long)ns;
	}
	return 0;
}

/* A uint32 header value; 0, or -1 if malformed. */
static int parse_u32(const char *v, uint32_t *pv)
{
	unsigned long long x;

	if (parse_dec(v, strlen(v), UINT32_MAX, &x))
		return -1;
	*pv = (uint32_t)x;
	return 0;
}

/*
 * Take one answer header into m when it is one of ours: 1 when the name
 * is one of ours (whether or not its value parsed), else 0.
 */
int s3_meta_take_header(struct s3_meta *m, const char *name, const char *v)
{
	struct timespec t;
	const char *f;

	if (strncasecmp(name, META_PREFIX, strlen(META_PREFIX)))
		return 0;
	f = name + strlen(META_PREFIX);
	if (!strcasecmp(f, "mode")) {
		m->has_mode = !parse_u32(v, &m->mode);
	} else if (!strcasecmp(f, "uid")) {
		m->has_uid = !parse_u32(v, &m->uid);
	} else if (!strcasecmp(f, "gid")) {
		m->has_gid = !parse_u32(v, &m->gid);
	} else if (!strcasecmp(f, "mtime")) {
		m->has_mtime = !s3_meta_parse_mtime(v, &t);
		if (m->has_mtime)
			m->mtime = t;
	} else {
		return 0;
	}
	return 1;
}

/* Whether a copy in parts must send this header of its source again. */
int s3_meta_kept_header(const char *name)
{
	size_t i;

	if (!strncasecmp(name, META_PREFIX, strlen(META_PREFIX)) &&
	    name[strlen(META_PREFIX)])
		return 1;
	for (i = 0; i < sizeof(kept_headers) / sizeof(kept_headers[0]); i++)
		if (!strcasecmp(name, kept_headers[i]))
			return 1;
	return 0;
}
