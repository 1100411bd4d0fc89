/*
 * test_config.c - the options: the exact message for each kind of bad
 * value from each source, -o lists with FUSE's and mount(8)'s options,
 * precedence (-o over the environment over the INI file over defaults),
 * credentials_file and the profile, and --help covering the table.
 * Exercises fs/fs-config.c and s3/s3-creds.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "fs-config.h"

/* Each test gets a fresh directory made from this template. */
#define DIR_TEMPLATE "/tmp/blitfs-test-config.XXXXXX"

static char dir[sizeof(DIR_TEMPLATE)];

static const char *const cleared[] = {
	"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
	"AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION",
	"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_CONFIG_FILE",
	"AWS_SHARED_CREDENTIALS_FILE", "BLITFS_CONCURRENCY", "BLITFS_REGION",
	"BLITFS_CONFIG", "BLITFS_POSTBACK_SECRET", "BLITFS_CREDENTIALS_FILE",
	NULL
};

/* A private HOME and none of the variables blitfs reads. */
static int setup(void **state)
{
	const char *const *v;

	(void)state;
	memcpy(dir, DIR_TEMPLATE, sizeof(DIR_TEMPLATE));
	if (!mkdtemp(dir))
		return -1;
	setenv("HOME", dir, 1);
	for (v = cleared; *v; v++)
		unsetenv(*v);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Write a file in the test's directory with mode; its path in path. */
static void put(const char *name, const char *text, int mode, char *path,
		size_t size)
{
	FILE *f;

	snprintf(path, size, "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	chmod(path, (mode_t)mode);
}

/* One -o list into a fresh configuration; err gets the message. */
static int opts(const char *list, char *err)
{
	struct fs_config cfg;
	char *fuse = NULL;
	int ret;

	fs_config_defaults(&cfg);
	ret = fs_config_opts(&cfg, list, &fuse, err, 512);
	free(fuse);
	fs_config_free(&cfg);
	return ret;
}

static void test_defaults(void **state)
{
	struct fs_config cfg;

	(void)state;
	fs_config_defaults(&cfg);
	assert_int_equal(cfg.concurrency, 8);
	assert_int_equal(cfg.cache_size, 4ULL << 30);
	assert_int_equal(cfg.visibility_poll_ms, 2000);
	assert_int_equal(cfg.tls_verify, 1);
	assert_null(cfg.endpoint);
	fs_config_free(&cfg);
}

/* Each kind of bad -o item, with the message it must give. */
static void test_bad_opts(void **state)
{
	static const char *const cases[][2] = {
		{ "concurrency=many",
		  "-o concurrency='many': not a whole number" },
		{ "concurrency=0",
		  "-o concurrency='0': must be 1 to 256 uploads" },
		{ "timeout=0", "-o timeout='0': must be 1 to 3600 s" },
		{ "part_size=1M", "-o part_size='1M': must be 5M to 5G" },
		{ "cache_size=4Q",
		  "-o cache_size='4Q': unknown unit 'Q' (K, M, G or T)" },
		{ "write_rate=0", "-o write_rate='0': must be above 0 and at "
		  "most 10000 requests/s" },
		{ "read_wait=soon", "-o read_wait='soon': not a number" },
		{ "visibility_poll=-1",
		  "-o visibility_poll='-1': must be 0 to 3600 s" },
		{ "path_style=maybe", "-o path_style='maybe': not a boolean "
		  "(1/0, yes/no, true/false, on/off)" },
		{ "endpoint=ftp://h", "-o endpoint='ftp://h': must start "
		  "with http:// or https://" },
		{ "endpoint=http://", "-o endpoint='http://': has no host" },
		{ "region=EU",
		  "-o region='EU': not a region name (like eu-west-1)" },
		{ "cache_dir=", "-o cache_dir='': must not be empty" },
		{ "concurency=4", "-o concurency='4': unknown option" },
		{ "debug", "-o debug: unknown option" },
		{ "concurrency", "-o concurrency: needs a value "
		  "(concurrency=N)" },
		{ "uid=bob", "-o uid='bob': not a number" },
		{ "umask=9", "-o umask='9': not an octal number" },
		{ "secret_key=SEKRIT", "-o secret_key: a secret on the "
		  "command line is visible to every user; use "
		  "credentials_file or the environment" },
		{ "aws_secret_access_key=SEKRIT", "-o aws_secret_access_key: "
		  "a secret on the command line is visible to every user; "
		  "use credentials_file or the environment" },
		{ "postback_secret=SEKRIT", "-o postback_secret: a secret on "
		  "the command line is visible to every user; use "
		  "postback_secret_file or the INI file" },
	};
	char err[512];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = '\0';
		assert_int_equal(opts(cases[i][0], err), -1);
		assert_string_equal(err, cases[i][1]);
	}
}

/* FUSE's options go on, mount(8)'s are dropped, blitfs's are set. */
static void test_fuse_opts(void **state)
{
	struct fs_config cfg;
	char *fuse = NULL;
	char err[512];

	(void)state;
	fs_config_defaults(&cfg);
	assert_int_equal(fs_config_opts(&cfg, "allow_other,rw,nodev,"
					"defaults,_netdev,nofail,noauto,"
					"x-systemd.automount,comment=x,user,"
					"uid=1000,umask=022,concurrency=4,"
					"path_style,noatime", &fuse, err,
					sizeof(err)), 0);
	assert_string_equal(fuse, "allow_other,rw,nodev,uid=1000,umask=022,"
			    "noatime");
	assert_int_equal(cfg.concurrency, 4);
	assert_int_equal(cfg.path_style, 1);
	free(fuse);
	fs_config_free(&cfg);
}

/* -o over the environment over the INI file, read in any order. */
static void test_precedence(void **state)
{
	struct fs_config cfg;
	char *fuse = NULL;
	char *lists[] = { "concurrency=5", NULL };
	char err[512], ini[256], arg[300];

	(void)state;
	put("b.ini", "concurrency = 3\nregion = eu-west-1\nretries = 7\n"
	    "upload_delay = 50\n", 0644, ini, sizeof(ini));
	setenv("BLITFS_CONCURRENCY", "4", 1);
	setenv("AWS_REGION", "us-west-2", 1);
	setenv("BLITFS_UPLOAD_DELAY", "60", 1);
	snprintf(arg, sizeof(arg), "config=%s", ini);
	lists[1] = arg;
	fs_config_defaults(&cfg);
	assert_int_equal(fs_config_read(&cfg, lists, 2, &fuse, err,
					sizeof(err)), 0);
	assert_int_equal(cfg.concurrency, 5);
	assert_string_equal(cfg.region, "us-west-2");
	assert_int_equal(cfg.retries, 7);
	assert_int_equal(cfg.upload_delay, 60);
	assert_int_equal(cfg.timeout, 30);
	fs_config_free(&cfg);

	/* BLITFS_REGION is more particular than AWS_REGION. */
	setenv("BLITFS_REGION", "ap-south-1", 1);
	fs_config_defaults(&cfg);
	assert_int_equal(fs_config_read(&cfg, lists, 1, &fuse, err,
					sizeof(err)), 0);
	assert_string_equal(cfg.region, "ap-south-1");
	fs_config_free(&cfg);
	free(fuse);
	unsetenv("BLITFS_CONCURRENCY");
	unsetenv("BLITFS_REGION");
	unsetenv("BLITFS_UPLOAD_DELAY");
	unsetenv("AWS_REGION");
}

/* Read an INI file holding text; 0 or -1 with the message in err. */
static int load(const char *text, char *err, char *path, size_t size)
{
	struct fs_config cfg;
	int ret;

	put("t.ini", text, 0644, path, size);
	fs_config_defaults(&cfg);
	ret = fs_config_load(&cfg, path, err, 512);
	fs_config_free(&cfg);
	return ret;
}

/* INI messages name the file and the line. */
static void test_ini_errors(void **state)
{
	static const char *const cases[][2] = {
		{ "[blitfs]\n; note\nconcurrency = 4\nconcurrrency = 4\n",
		  "%s:4: concurrrency='4': unknown option" },
		{ "retries = 2\n\nretries = x\n",
		  "%s:3: retries='x': not a whole number" },
		{ "[other]\nretries = 2\n", "%s:2: unknown section [other]" },
		{ "secret_key = SEKRIT\n", "%s:1: secret_key: keys do not go "
		  "in the INI file; put them in credentials_file" },
		{ "config = /x.ini\n",
		  "%s:1: config='/x.ini': not inside the INI file" },
		{ "retries = 2\nretries\n", "%s:2: not a 'key = value' line" },
	};
	char err[512], want[512], path[256];
	struct fs_config cfg;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(load(cases[i][0], err, path, sizeof(path)),
				 -1);
		snprintf(want, sizeof(want), cases[i][1], path);
		assert_string_equal(err, want);
	}
	fs_config_defaults(&cfg);
	assert_int_equal(fs_config_load(&cfg, "/nonexistent/b.ini", err,
					sizeof(err)), -1);
	assert_string_equal(err, "config /nonexistent/b.ini: cannot read: "
			    "No such file or directory");
	fs_config_free(&cfg);
}

/* Environment messages name the variable. */
static void test_env_errors(void **state)
{
	struct fs_config cfg;
	char err[512];

	(void)state;
	fs_config_defaults(&cfg);
	setenv("BLITFS_CONCURRENCY", "lots", 1);
	assert_int_equal(fs_config_env(&cfg, err, sizeof(err)), -1);
	assert_string_equal(err, "BLITFS_CONCURRENCY='lots': not a whole "
			    "number");
	unsetenv("BLITFS_CONCURRENCY");
	setenv("AWS_ENDPOINT_URL", "ftp://h", 1);
	assert_int_equal(fs_config_env(&cfg, err, sizeof(err)), -1);
	assert_string_equal(err, "AWS_ENDPOINT_URL='ftp://h': must start "
			    "with http:// or https://");
	unsetenv("AWS_ENDPOINT_URL");
	fs_config_free(&cfg);
}

/* Read the list and finish, as main does; -1 with err on failure. */
static int finish(struct fs_config *cfg, const char *list, char *err)
{
	char *l[] = { (char *)list };
	char *fuse = NULL;
	int ret;

	fs_config_defaults(cfg);
	cfg->bucket = strdup("b");
	ret = fs_config_read(cfg, l, list ? 1 : 0, &fuse, err, 512);
	if (ret == 0)
		ret = fs_config_finish(cfg, err, 512);
	free(fuse);
	return ret;
}

static const char creds[] =
	"[default]\naws_access_key_id = AKIDDEF\n"
	"aws_secret_access_key = secretdef\n"
	"[svc]\naws_access_key_id = AKIDSVC\n"
	"aws_secret_access_key = secretsvc\nregion = eu-north-1\n"
	"[half]\naws_access_key_id = AKIDHALF\n";

/* credentials_file and profile; the environment's keys as the AWS tools. */
static void test_credentials_file(void **state)
{
	struct fs_config cfg;
	char err[512], cf[256], ini[256], list[600];

	(void)state;
	put("creds", creds, 0600, cf, sizeof(cf));
	snprintf(list, sizeof(list), "credentials_file=%s,profile=svc", cf);
	assert_int_equal(finish(&cfg, list, err), 0);
	assert_string_equal(cfg.access_key, "AKIDSVC");
	assert_string_equal(cfg.secret_key, "secretsvc");
	assert_string_equal(cfg.region, "eu-north-1");
	fs_config_free(&cfg);

	/* In the INI file it yields to the environment's keys... */
	snprintf(list, sizeof(list), "credentials_file = %s\n", cf);
	put("c.ini", list, 0644, ini, sizeof(ini));
	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "secretenv", 1);
	snprintf(list, sizeof(list), "config=%s", ini);
	assert_int_equal(finish(&cfg, list, err), 0);
	assert_string_equal(cfg.access_key, "AKIDENV");
	assert_string_equal(cfg.creds_source, "environment");
	fs_config_free(&cfg);

	/* ...as -o it wins over them. */
	snprintf(list, sizeof(list), "credentials_file=%s", cf);
	assert_int_equal(finish(&cfg, list, err), 0);
	assert_string_equal(cfg.access_key, "AKIDDEF");
	fs_config_free(&cfg);
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");

	/* Without the environment's keys the INI file's is used. */
	snprintf(list, sizeof(list), "config=%s", ini);
	assert_int_equal(finish(&cfg, list, err), 0);
	assert_string_equal(cfg.access_key, "AKIDDEF");
	fs_config_free(&cfg);
}

static void test_credentials_errors(void **state)
{
	struct fs_config cfg;
	char err[512], cf[256], list[600], want[600];

	(void)state;
	put("creds", creds, 0600, cf, sizeof(cf));
	assert_int_equal(finish(&cfg, "credentials_file=/nonexistent/c", err),
			 -1);
	assert_string_equal(err, "credentials_file /nonexistent/c: cannot "
			    "read: No such file or directory");
	fs_config_free(&cfg);

	snprintf(list, sizeof(list), "credentials_file=%s,profile=nosuch",
		 cf);
	assert_int_equal(finish(&cfg, list, err), -1);
	snprintf(want, sizeof(want), "credentials_file %s: no profile "
		 "[nosuch]", cf);
	assert_string_equal(err, want);
	fs_config_free(&cfg);

	snprintf(list, sizeof(list), "credentials_file=%s,profile=half", cf);
	assert_int_equal(finish(&cfg, list, err), -1);
	snprintf(want, sizeof(want), "credentials_file %s: profile [half] "
		 "lacks aws_access_key_id or aws_secret_access_key", cf);
	assert_string_equal(err, want);
	fs_config_free(&cfg);

	assert_int_equal(finish(&cfg, "credentials_file=/tmp", err), -1);
	assert_string_equal(err, "credentials_file /tmp: not a regular file");
	fs_config_free(&cfg);
}

/* --help shows every option with a default; --list-options names it. */
static void test_help(void **state)
{
	const char *name, *help, *def;
	char *text = NULL, *list = NULL, want[128], line[512];
	size_t len = 0, llen = 0;
	FILE *f = open_memstream(&text, &len);
	FILE *g = open_memstream(&list, &llen);
	int i;

	(void)state;
	fs_config_help(f);
	fs_config_list(g);
	fclose(f);
	fclose(g);
	for (i = 0; (name = fs_config_option(i, &help, &def)); i++) {
		snprintf(want, sizeof(want), "\n  %s=", name);
		assert_non_null(strstr(text, want));
		snprintf(want, sizeof(want), "\n%s\n", name);
		assert_true(i == 0 ? !strncmp(list, name, strlen(name))
				   : strstr(list, want) != NULL);
	}
	assert_non_null(strstr(text, "(default: 8 uploads)"));
	assert_non_null(strstr(list, "\nallow_other\n"));
	assert_non_null(strstr(list, "\nx-*\n"));
	for (f = fmemopen(text, len, "r"); fgets(line, sizeof(line), f);)
		assert_true(strlen(line) <= 80);
	fclose(f);
	free(text);
	free(list);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_bad_opts),
		cmocka_unit_test(test_fuse_opts),
		cmocka_unit_test_setup_teardown(test_precedence, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_ini_errors, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_env_errors, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_credentials_file, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_credentials_errors,
						setup, teardown),
		cmocka_unit_test(test_help),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
