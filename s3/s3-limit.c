/*
 * s3-limit.c - the per-bucket rate limiter and the retry backoff.
 *
 * S3 throttles a bucket that gets more than about 10 write requests a
 * second, so every request first takes a slot here.  Each class (write,
 * read) is a token bucket kept as a theoretical arrival time (GCRA): slots
 * are handed out evenly spaced at the current rate, with at most `burst`
 * of them at once after a pause, and a caller sleeps until its slot.
 * Evenly spaced slots matter: a server that counts requests per second
 * sees the configured rate and no clumps.  The rate adapts like TCP's
 * window (AIMD): a SlowDown halves it, each success adds a little back,
 * up to the configured rate.  The clock is replaceable so that the unit
 * tests drive all of it without sleeping.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "s3_i.h"

#define CUT_FACTOR 0.5		/* a SlowDown multiplies the rate by this */
#define FLOOR_RATE 0.5		/* requests/s the rate never drops below */
#define RAISE_PER_S 0.5		/* requests/s regained per second of success */

/* One class of requests: its bucket, its adaptive rate, its counters. */
struct klass {
	double rate;		/* current requests/s */
	double max_rate;	/* configured requests/s */
	double burst;		/* slots at once after a pause, >= 1 */
	double tat;		/* when the next slot is due (GCRA) */
	double last_cut;	/* when the rate was last cut */
	int in_flight;
	int max_in_flight;	/* 0: no cap */
	int fg_waiting;		/* foreground callers waiting for a place */
	uint64_t sent;
	uint64_t throttled;
};

/*
 * lock guards everything in classes; cv wakes callers waiting for an
 * in-flight place.  The clock is set before the limiter is shared.
 */
struct s3_limit {
	pthread_mutex_t lock;
	pthread_cond_t cv;
	struct klass classes[S3_NCLASSES];
	double (*now)(void *arg);
	void (*sleep)(void *arg, double seconds);
	void *clock_arg;
};

/* Seconds on the monotonic clock. */
static double mono_now(void *arg)
{
	struct timespec ts;

	(void)arg;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sleep for a number of seconds, resuming after signals. */
static void mono_sleep(void *arg, double seconds)
{
	struct timespec ts;

	(void)arg;
	if (seconds <= 0)
		return;
	ts.tv_sec = (time_t)seconds;
	ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* Set one class up from its configured rate and burst. */
static void klass_init(struct klass *k, double rate, double burst, int cap)
{
	k->max_rate = rate > 0 ? rate : 1;
	k->rate = k->max_rate;
	k->burst = burst >= 1 ? burst : 1;
	k->max_in_flight = cap > 0 ? cap : 0;
	k->tat = -INFINITY;
	k->last_cut = -INFINITY;
}

/* A limiter with the configured rates, on the monotonic clock. */
struct s3_limit *s3_limit_new(const struct s3_limit_conf *conf)
{
	struct s3_limit *l = calloc(1, sizeof(*l));
	int i;

	if (!l)
		return NULL;
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->cv, NULL);
	for (i = 0; i < S3_NCLASSES; i++)
		klass_init(&l->classes[i], conf->rate[i], conf->burst[i],
			   conf->concurrency);
	l->now = mono_now;
	l->sleep = mono_sleep;
	return l;
}

/* Free a limiter nobody waits on any more. */
void s3_limit_free(struct s3_limit *l)
{
	if (!l)
		return;
	pthread_cond_destroy(&l->cv);
	pthread_mutex_destroy(&l->lock);
	free(l);
}

/* Replace the clock; for unit tests, before the limiter is shared. */
void s3_limit_set_clock(struct s3_limit *l, double (*now)(void *),
			void (*sleep)(void *, double), void *arg)
{
	l->now = now;
	l->sleep = sleep;
	l->clock_arg = arg;
}

/* The limiter's clock, in seconds. */
double s3_limit_now(const struct s3_limit *l)
{
	return l->now(l->clock_arg);
}

/*
 * Hand out the next slot of class k at time now: the earliest moment,
 * not before now, that keeps the class within rate and burst.  The slot
 * is taken whether the caller waits for it or not.
 */
double s3_limit_reserve(struct s3_limit *l, enum s3_class k, double now)
{
	struct klass *c = &l->classes[k];
	double interval, slot;

	pthread_mutex_lock(&l->lock);
	interval = 1.0 / c->rate;
	/* a pause earns at most burst slots at once, no more */
	slot = c->tat - (c->burst - 1) * interval;
	if (slot < now)
		slot = now;
	c->tat = (c->tat > slot ? c->tat : slot) + interval;
	c->sent++;
	pthread_mutex_unlock(&l->lock);
	return slot;
}

/*
 * Wait for an in-flight place of class k; lock held.  A background
 * caller (an upload worker) also waits while a foreground one (a FUSE
 * request: mkdir, a lookup) does, so a program waiting on the mount
 * gets the next free place, not the queue's ninth upload.
 */
static void enter(struct s3_limit *l, struct klass *c, int background)
{
	if (!background)
		c->fg_waiting++;
	while ((c->max_in_flight && c->in_flight >= c->max_in_flight) ||
	       (background && c->fg_waiting > 0))
		pthread_cond_wait(&l->cv, &l->lock);
	if (!background)
		c->fg_waiting--;
	c->in_flight++;
	if (!background && c->fg_waiting == 0)
		pthread_cond_broadcast(&l->cv);
}

/*
 * Take an in-flight place and a slot of class k, and sleep until the
 * slot.  Returns the slot's time, to hand back to s3_limit_done.
 */
double s3_limit_acquire(struct s3_limit *l, enum s3_class k,
			int background)
{
	double slot, now;

	pthread_mutex_lock(&l->lock);
	enter(l, &l->classes[k], background);
	pthread_mutex_unlock(&l->lock);
	now = l->now(l->clock_arg);
	slot = s3_limit_reserve(l, k, now);
	if (slot > now)
		l->sleep(l->clock_arg, slot - now);
	return slot;
}

/* Cut the rate for a SlowDown, once per round of requests; lock held. */
static void cut(struct klass *c, double sent, double now)
{
	double floor = FLOOR_RATE < c->max_rate ? FLOOR_RATE : c->max_rate;

	c->throttled++;
	/*
	 * Requests sent before the last cut were paced at the old rate:
	 * their SlowDowns say nothing new, like TCP's one cut per window.
	 */
	if (sent < c->last_cut)
		return;
	c->rate *= CUT_FACTOR;
	if (c->rate < floor)
		c->rate = floor;
	c->last_cut = now;
}

/* Raise the rate a little for a success; lock held. */
static void raise_rate(struct klass *c)
{
	/* about rate successes a second: RAISE_PER_S regained per second */
	c->rate += RAISE_PER_S / c->rate;
	if (c->rate > c->max_rate)
		c->rate = c->max_rate;
}

/*
 * Feed the outcome of a request of class k sent at `sent` back into the
 * rate, at time now.  No in-flight place changes.
 */
void s3_limit_feedback(struct s3_limit *l, enum s3_class k, double sent,
		       enum s3_outcome o, double now)
{
	struct klass *c = &l->classes[k];

	pthread_mutex_lock(&l->lock);
	if (o == S3_OUTCOME_THROTTLED)
		cut(c, sent, now);
	else if (o == S3_OUTCOME_OK)
		raise_rate(c);
	pthread_mutex_unlock(&l->lock);
}

/* Give back a slot taken and never used: it sent nothing. */
void s3_limit_cancel(struct s3_limit *l, enum s3_class k)
{
	pthread_mutex_lock(&l->lock);
	l->classes[k].sent--;
	l->classes[k].in_flight--;
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->lock);
}

/* Give back the in-flight place of a request and feed its outcome in. */
void s3_limit_done(struct s3_limit *l, enum s3_class k, double sent,
		   enum s3_outcome o)
{
	s3_limit_feedback(l, k, sent, o, l->now(l->clock_arg));
	pthread_mutex_lock(&l->lock);
	l->classes[k].in_flight--;
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->lock);
}

/* Current and configured rates and the counters, for status reports. */
void s3_limit_stats(struct s3_limit *l, struct s3_stats *st)
{
	const struct klass *w = &l->classes[S3_CLASS_WRITE];
	const struct klass *r = &l->classes[S3_CLASS_READ];

	pthread_mutex_lock(&l->lock);
	st->write_rate = w->rate;
	st->write_rate_max = w->max_rate;
	st->read_rate = r->rate;
	st->read_rate_max = r->max_rate;
	st->write_requests = w->sent;
	st->read_requests = r->sent;
	st->slowdowns = w->throttled + r->throttled;
	pthread_mutex_unlock(&l->lock);
}

/*
 * The wait before retry number attempt (1 for the first retry): full
 * jitter, u * min(cap, base * 2^(attempt - 1)) for u uniform in [0, 1).
 */
long s3_backoff_ms(unsigned attempt, long base_ms, long cap_ms, double u)
{
	long ceiling = base_ms;
	unsigned i;

	for (i = 1; i < attempt && ceiling < cap_ms; i++)
		ceiling *= 2;
	if (ceiling > cap_ms)
		ceiling = cap_ms;
	if (u < 0 || u >= 1)
		u = 0;
	return (long)(u * (double)ceiling);
}
