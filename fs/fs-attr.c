/*
 * fs-attr.c - the attribute memory: a tsearch tree with a time to live.
 */
#include <pthread.h>
#include <search.h>
#include <stdlib.h>
#include <string.h>

#include "fs-attr.h"

/* Past this many entries the whole memory is dropped: it is only a cache. */
#define MAX_ENTRIES 200000

struct node {
	char *key;
	struct fs_attr_val v;
	double expires;
};

struct fs_attr {
	pthread_mutex_t lock;	/* guards root and count */
	void *root;
	size_t count;
	double ttl;
};

static double now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_node(const void *a, const void *b)
{
	const struct node *x = a, *y = b;

	return strcmp(x->key, y->key);
}

static void free_node(void *p)
{
	struct node *n = p;

	free(n->key);
	free(n);
}

struct fs_attr *fs_attr_new(double ttl_seconds)
{
	struct fs_attr *a = calloc(1, sizeof(*a));

	if (!a)
		abort();
	pthread_mutex_init(&a->lock, NULL);
	a->ttl = ttl_seconds;
	return a;
}

void fs_attr_free(struct fs_attr *a)
{
	if (!a)
		return;
	tdestroy(a->root, free_node);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

double fs_attr_deadline(const struct fs_attr *a)
{
	return now_mono() + a->ttl;
}

void fs_attr_put(struct fs_attr *a, const char *key,
		 const struct fs_attr_val *v)
{
	fs_attr_put_until(a, key, v, fs_attr_deadline(a));
}

void fs_attr_put_until(struct fs_attr *a, const char *key,
		       const struct fs_attr_val *v, double deadline)
{
	struct node probe = { .key = (char *)key };
	struct node **found;
	struct node *n;

	if (a->ttl <= 0)
		return;
	pthread_mutex_lock(&a->lock);
	found = tfind(&probe, &a->root, cmp_node);
	if (found) {
		n = *found;
	} else {
		if (a->count >= MAX_ENTRIES) {
			tdestroy(a->root, free_node);
			a->root = NULL;
			a->count = 0;
		}
		n = calloc(1, sizeof(*n));
		if (!n || !(n->key = strdup(key)))
			abort();
		if (!tsearch(n, &a->root, cmp_node))
			abort();
		a->count++;
	}
	n->v = *v;
	n->expires = deadline;
	pthread_mutex_unlock(&a->lock);
}

int fs_attr_get(struct fs_attr *a, const char *key, struct fs_attr_val *v)
{
	struct node probe = { .key = (char *)key };
	struct node **found;
	int hit = 0;

	pthread_mutex_lock(&a->lock);
	found = tfind(&probe, &a->root, cmp_node);
	if (found && (*found)->expires > now_mono()) {
		*v = (*found)->v;
		hit = 1;
	}
	pthread_mutex_unlock(&a->lock);
	return hit;
}

double fs_attr_expiry(struct fs_attr *a, const char *key)
{
	struct node probe = { .key = (char *)key };
	struct node **found;
	double when = 0;

	pthread_mutex_lock(&a->lock);
	found = tfind(&probe, &a->root, cmp_node);
	if (found && (*found)->expires > now_mono())
		when = (*found)->expires;
	pthread_mutex_unlock(&a->lock);
	return when;
}

void fs_attr_forget(struct fs_attr *a, const char *key)
{
	struct node probe = { .key = (char *)key };
	struct node **found;
	struct node *n;

	pthread_mutex_lock(&a->lock);
	found = tfind(&probe, &a->root, cmp_node);
	if (found) {
		n = *found;
		tdelete(n, &a->root, cmp_node);
		free_node(n);
		a->count--;
	}
	pthread_mutex_unlock(&a->lock);
}

void fs_attr_clear(struct fs_attr *a)
{
	pthread_mutex_lock(&a->lock);
	tdestroy(a->root, free_node);
	a->root = NULL;
	a->count = 0;
	pthread_mutex_unlock(&a->lock);
}
