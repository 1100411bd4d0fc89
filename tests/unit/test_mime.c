/*
 * test_mime.c - s3_mime_type: the Content-Type blitfs uploads with.
 *
 * Checks the extension lookup (case, dotfiles, dots in directory names)
 * and every image type the table promises.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "s3.h"

#define OCTET "application/octet-stream"

/* Every image extension s3-mime.c lists, with its type. */
static const char *const images[][2] = {
	{ "a.jpg", "image/jpeg" },
	{ "a.jpeg", "image/jpeg" },
	{ "a.png", "image/png" },
	{ "a.gif", "image/gif" },
	{ "a.webp", "image/webp" },
	{ "a.avif", "image/avif" },
	{ "a.tif", "image/tiff" },
	{ "a.tiff", "image/tiff" },
	{ "a.bmp", "image/bmp" },
	{ "a.svg", "image/svg+xml" },
	{ "a.ico", "image/vnd.microsoft.icon" },
	{ "a.heic", "image/heic" },
	{ "a.heif", "image/heif" },
	{ "a.jxl", "image/jxl" },
};

/* Common web and document types. */
static const char *const others[][2] = {
	{ "index.html", "text/html" },
	{ "index.htm", "text/html" },
	{ "site.css", "text/css" },
	{ "app.js", "text/javascript" },
	{ "mod.mjs", "text/javascript" },
	{ "data.json", "application/json" },
	{ "notes.txt", "text/plain" },
	{ "table.csv", "text/csv" },
	{ "feed.xml", "application/xml" },
	{ "paper.pdf", "application/pdf" },
	{ "bundle.zip", "application/zip" },
	{ "src.tar.gz", "application/gzip" },
	{ "src.tar", "application/x-tar" },
	{ "clip.mp4", "video/mp4" },
	{ "clip.webm", "video/webm" },
	{ "song.mp3", "audio/mpeg" },
	{ "mod.wasm", "application/wasm" },
};

/* Look up each name of a table and compare with its type. */
static void expect_all(const char *const (*t)[2], size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		assert_string_equal(s3_mime_type(t[i][0]), t[i][1]);
}

/* Every listed image type is known. */
static void test_images(void **state)
{
	(void)state;
	expect_all(images, sizeof(images) / sizeof(images[0]));
}

/* Web and document types are known. */
static void test_web_types(void **state)
{
	(void)state;
	expect_all(others, sizeof(others) / sizeof(others[0]));
}

/* Extensions match whatever their case. */
static void test_case_insensitive(void **state)
{
	(void)state;
	assert_string_equal(s3_mime_type("PHOTO.JPG"), "image/jpeg");
	assert_string_equal(s3_mime_type("Photo.Png"), "image/png");
	assert_string_equal(s3_mime_type("x.SVG"), "image/svg+xml");
	assert_string_equal(s3_mime_type("dir/IMG_0001.HEIC"), "image/heic");
}

/* Names without an extension get the default type. */
static void test_no_extension(void **state)
{
	(void)state;
	assert_string_equal(s3_mime_type("README"), OCTET);
	assert_string_equal(s3_mime_type(""), OCTET);
	assert_string_equal(s3_mime_type("trailing."), OCTET);
	assert_string_equal(s3_mime_type("dir/"), OCTET);
}

/* A dotfile such as ".png" is a name, not an extension. */
static void test_dotfile(void **state)
{
	(void)state;
	assert_string_equal(s3_mime_type(".png"), OCTET);
	assert_string_equal(s3_mime_type("dir/.png"), OCTET);
	assert_string_equal(s3_mime_type(".cache.png"), "image/png");
}

/* Only the last path component counts: dots in directories do not. */
static void test_dots_in_dirs(void **state)
{
	(void)state;
	assert_string_equal(s3_mime_type("a.b/c"), OCTET);
	assert_string_equal(s3_mime_type("photos.jpg/raw"), OCTET);
	assert_string_equal(s3_mime_type("v1.2/img.gif"), "image/gif");
}

/* Unknown or absurdly long extensions get the default type. */
static void test_unknown(void **state)
{
	(void)state;
	assert_string_equal(s3_mime_type("a.xyz"), OCTET);
	assert_string_equal(s3_mime_type("a.jpgx"), OCTET);
	assert_string_equal(s3_mime_type("a.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
			    OCTET);
	assert_string_equal(s3_mime_type(NULL), OCTET);
}

/* Run the tests. */
int main(void)
{
	static const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_images),
		cmocka_unit_test(test_web_types),
		cmocka_unit_test(test_case_insensitive),
		cmocka_unit_test(test_no_extension),
		cmocka_unit_test(test_dotfile),
		cmocka_unit_test(test_dots_in_dirs),
		cmocka_unit_test(test_unknown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
