/*
 * test_path.c - the mapping between mount paths and bucket keys
 * (fs/fs-path.c): prefixes, keys, and which listed keys make entries.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fs-path.h"

static void check_prefix(const char *raw, const char *want)
{
	const char *reason = NULL;
	char *p = fs_path_prefix(raw, &reason);

	if (!want) {
		assert_null(p);
		assert_non_null(reason);
		return;
	}
	assert_non_null(p);
	assert_string_equal(p, want);
	free(p);
}

static void test_prefix(void **state)
{
	(void)state;
	check_prefix("", "");
	check_prefix("/", "");
	check_prefix("out", "out/");
	check_prefix("/out/", "out/");
	check_prefix("a/b//", "a/b/");
	check_prefix("a//b", NULL);
	check_prefix("a/../b", NULL);
	check_prefix("./a", NULL);
}

static void check_key(const char *prefix, const char *path, const char *key,
		      const char *dir)
{
	char *k = fs_path_to_key(prefix, path);
	char *d = fs_path_to_dir(prefix, path);

	assert_string_equal(k, key);
	assert_string_equal(d, dir);
	free(k);
	free(d);
}

static void test_keys(void **state)
{
	(void)state;
	check_key("", "/", "", "");
	check_key("", "/a.jpg", "a.jpg", "a.jpg/");
	check_key("pre/", "/", "pre/", "pre/");
	check_key("pre/", "/a/b c+%#?.jpg", "pre/a/b c+%#?.jpg",
		  "pre/a/b c+%#?.jpg/");
	check_key("", "/\xe6\x97\xa5\xe6\x9c\xac", "\xe6\x97\xa5\xe6\x9c\xac",
		  "\xe6\x97\xa5\xe6\x9c\xac/");
}

/* A directory shown under its alias maps back to its own prefix. */
static void test_aliases(void **state)
{
	(void)state;
	check_key("", "/a.blitfs-dir", "a", "a/");
	check_key("", "/a.blitfs-dir/b.jpg", "a/b.jpg", "a/b.jpg/");
	check_key("p/", "/x/a.blitfs-dir/c.blitfs-dir/d", "p/x/a/c/d",
		  "p/x/a/c/d/");
	/* the suffix alone is a name, not an alias */
	check_key("", "/.blitfs-dir", ".blitfs-dir", ".blitfs-dir/");
	assert_true(fs_path_is_alias("a.blitfs-dir", 12));
	assert_false(fs_path_is_alias(".blitfs-dir", 11));
	assert_false(fs_path_is_alias("a.blitfs-di", 11));
	assert_false(fs_path_name_ok("a.blitfs-dir", 12));
}

/* Returns the entry name, "" for a directory marker, or NULL. */
static const char *child(const char *dir, const char *key, int *is_dir)
{
	static char name[256];

	if (!fs_path_child(dir, key, name, sizeof(name), is_dir))
		return NULL;
	return name;
}

static void test_children(void **state)
{
	char long_name[300];
	char long_key[310];
	int d;

	(void)state;
	assert_string_equal(child("a/", "a/x.jpg", &d), "x.jpg");
	assert_int_equal(d, 0);
	assert_string_equal(child("a/", "a/sub/", &d), "sub");
	assert_int_equal(d, 1);
	assert_string_equal(child("", "top.png", &d), "top.png");

	/* Not entries: the marker itself, dot segments, empty segments. */
	assert_null(child("a/", "a/", &d));
	assert_null(child("a/", "a/./", &d));
	assert_null(child("a/", "a/../", &d));
	assert_null(child("a/", "a/..", &d));
	assert_null(child("a/", "a//", &d));
	assert_null(child("a/", "b/x", &d));

	/* A component over 255 bytes cannot be a file name. */
	memset(long_name, 'x', 256);
	long_name[256] = '\0';
	snprintf(long_key, sizeof(long_key), "a/%s", long_name);
	assert_null(child("a/", long_key, &d));
	long_name[255] = '\0';
	snprintf(long_key, sizeof(long_key), "a/%s", long_name);
	assert_non_null(child("a/", long_key, &d));
}

static void test_name_ok(void **state)
{
	(void)state;
	assert_true(fs_path_name_ok("a b", 3));
	assert_true(fs_path_name_ok("...", 3));
	assert_false(fs_path_name_ok("", 0));
	assert_false(fs_path_name_ok(".", 1));
	assert_false(fs_path_name_ok("..", 2));
	assert_false(fs_path_name_ok("a/b", 3));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prefix),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_aliases),
		cmocka_unit_test(test_children),
		cmocka_unit_test(test_name_ok),
	};

	return cmocka_run_group_tests_name("path", tests, NULL, NULL);
}
