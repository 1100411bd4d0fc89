/*
 * s3-mime.c - Content-Type for uploads, guessed from the file name.
 *
 * S3 hands the stored Content-Type back to every browser and CDN that
 * fetches the object, so images and web files need the right one.  The
 * table is small and sorted; anything unknown is application/octet-stream.
 */
#include <stdlib.h>
#include <string.h>

#include "s3.h"

#define DEFAULT_TYPE "application/octet-stream"

struct mime {
	const char *ext;	/* lowercase, without the dot */
	const char *type;
};

/* Sorted by extension (strcmp order) for bsearch. */
static const struct mime types[] = {
	{ "7z", "application/x-7z-compressed" },
	{ "avif", "image/avif" },
	{ "bmp", "image/bmp" },
	{ "bz2", "application/x-bzip2" },
	{ "css", "text/css" },
	{ "csv", "text/csv" },
	{ "doc", "application/msword" },
	{ "docx", "application/vnd.openxmlformats-officedocument"
		  ".wordprocessingml.document" },
	{ "eot", "application/vnd.ms-fontobject" },
	{ "epub", "application/epub+zip" },
	{ "flac", "audio/flac" },
	{ "gif", "image/gif" },
	{ "gz", "application/gzip" },
	{ "heic", "image/heic" },
	{ "heif", "image/heif" },
	{ "htm", "text/html" },
	{ "html", "text/html" },
	{ "ico", "image/vnd.microsoft.icon" },
	{ "ics", "text/calendar" },
	{ "jpeg", "image/jpeg" },
	{ "jpg", "image/jpeg" },
	{ "js", "text/javascript" },
	{ "json", "application/json" },
	{ "jxl", "image/jxl" },
	{ "m4a", "audio/mp4" },
	{ "md", "text/markdown" },
	{ "mjs", "text/javascript" },
	{ "mov", "video/quicktime" },
	{ "mp3", "audio/mpeg" },
	{ "mp4", "video/mp4" },
	{ "oga", "audio/ogg" },
	{ "ogg", "audio/ogg" },
	{ "ogv", "video/ogg" },
	{ "otf", "font/otf" },
	{ "pdf", "application/pdf" },
	{ "png", "image/png" },
	{ "rtf", "application/rtf" },
	{ "svg", "image/svg+xml" },
	{ "tar", "application/x-tar" },
	{ "tif", "image/tiff" },
	{ "tiff", "image/tiff" },
	{ "ttf", "font/ttf" },
	{ "txt", "text/plain" },
	{ "wasm", "application/wasm" },
	{ "wav", "audio/wav" },
	{ "webm", "video/webm" },
	{ "webmanifest", "application/manifest+json" },
	{ "webp", "image/webp" },
	{ "woff", "font/woff" },
	{ "woff2", "font/woff2" },
	{ "xhtml", "application/xhtml+xml" },
	{ "xls", "application/vnd.ms-excel" },
	{ "xlsx", "application/vnd.openxmlformats-officedocument"
		  ".spreadsheetml.sheet" },
	{ "xml", "application/xml" },
	{ "xz", "application/x-xz" },
	{ "yaml", "application/yaml" },
	{ "yml", "application/yaml" },
	{ "zip", "application/zip" },
	{ "zst", "application/zstd" },
};

/* bsearch comparison of a lowercase key against a table entry. */
static int mime_cmp(const void *key, const void *entry)
{
	const struct mime *m = entry;

	return strcmp(key, m->ext);
}

/* The extension of the last path component, or NULL when it has none. */
static const char *extension(const char *name)
{
	const char *base = strrchr(name, '/');
	const char *dot;

	base = base ? base + 1 : name;
	dot = strrchr(base, '.');
	if (!dot || dot == base || !dot[1])
		return NULL;
	return dot + 1;
}

/* Copy an extension in lowercase; -1 when it is too long to be known. */
static int lower_ext(const char *e, char *out, size_t size)
{
	size_t i, n = strlen(e);

	if (n >= size)
		return -1;
	for (i = 0; i <= n; i++) {
		char c = e[i];

		out[i] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
	}
	return 0;
}

/* Content-Type for a file name, from its extension. Never NULL. */
const char *s3_mime_type(const char *name)
{
	const char *e = name ? extension(name) : NULL;
	const struct mime *m;
	char ext[16];

	if (!e || lower_ext(e, ext, sizeof(ext)))
		return DEFAULT_TYPE;
	m = bsearch(ext, types, sizeof(types) / sizeof(types[0]),
		    sizeof(types[0]), mime_cmp);
	return m ? m->type : DEFAULT_TYPE;
}
