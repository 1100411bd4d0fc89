/*
 * s3-creds.c - credentials the way the AWS tools find them.
 *
 * First AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; else the profile
 * (AWS_PROFILE, else "default") in the shared credentials file, then in
 * the config file, where sections read "[profile NAME]".  The credentials
 * file wins over the config file, as it does for the aws CLI.  Both files
 * are INI files read with inih; lines of other profiles, and lines inih
 * cannot read, do not matter.  Only static keys are understood (no SSO,
 * no credential_process, no assumed roles).  Messages name files and
 * variables, never a secret.
 *
 * A service may instead name one credentials file outright (blitfs's
 * credentials_file); then that file must hold the profile's keys.
 */
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "s3_i.h"

#define ID_VAR "AWS_ACCESS_KEY_ID"
#define SECRET_VAR "AWS_SECRET_ACCESS_KEY"

/* What one pass over one file found for the profile. */
struct profile_read {
	const char *profile;
	int is_config;
	int found;		/* the section is there */
	int nomem;
	struct s3_creds got;
};

/* Wipe and free a string that may be a secret. */
static void free_secret(char *s)
{
	if (s)
		OPENSSL_cleanse(s, strlen(s));
	free(s);
}

/* Free what cr holds and leave it empty. */
void s3_creds_free(struct s3_creds *cr)
{
	free(cr->access_key);
	free_secret(cr->secret_key);
	free_secret(cr->session_token);
	free(cr->region);
	memset(cr, 0, sizeof(*cr));
}

/*
 * Whether an INI section is the profile's: "[NAME]" in the credentials
 * file; "[profile NAME]" in the config file, where the default profile
 * is "[default]" (or "[profile default]").
 */
static int is_section(const struct profile_read *p, const char *section)
{
	const char *s = section;

	if (!p->is_config)
		return !strcmp(s, p->profile);
	if (!strcmp(p->profile, "default") && !strcmp(s, "default"))
		return 1;
	if (strncmp(s, "profile", 7) || !isspace((unsigned char)s[7]))
		return 0;
	s += 7;
	while (isspace((unsigned char)*s))
		s++;
	return !strcmp(s, p->profile);
}

/* Replace *field with a copy of value; 0, or -1 without memory. */
static int take(char **field, const char *value)
{
	char *s = strdup(value);

	if (!s)
		return -1;
	free_secret(*field);
	*field = s;
	return 0;
}

/* inih's handler: keep the profile's keys and region, skip the rest. */
static int on_line(void *user, const char *section, const char *name,
		   const char *value)
{
	struct profile_read *p = user;
	char **field = NULL;

	if (!is_section(p, section))
		return 1;
	p->found = 1;
	if (!strcmp(name, "aws_access_key_id"))
		field = &p->got.access_key;
	else if (!strcmp(name, "aws_secret_access_key"))
		field = &p->got.secret_key;
	else if (!strcmp(name, "aws_session_token"))
		field = &p->got.session_token;
	else if (!strcmp(name, "region") && s3_region_ok(value))
		field = &p->got.region;
	if (field && *value && take(field, value))
		p->nomem = 1;
	/* never stop: a line inih cannot read elsewhere is not ours */
	return 1;
}

/* Move a string from *from to *to unless *to is set already. */
static void move_if_unset(char **to, char **from)
{
	if (*to || !*from)
		return;
	*to = *from;
	*from = NULL;
}

/*
 * Read one profile from a credentials or config file into cr, filling
 * only what cr lacks; the keys go together or not at all.  1 when the
 * profile was found, 0 when not (or no file), -1 without memory.
 */
int s3_creds_read_file(struct s3_creds *cr, const char *path,
		       const char *profile, int is_config)
{
	struct profile_read p = { profile, is_config, 0, 0, { 0 } };
	FILE *f = path ? fopen(path, "r") : NULL;

	if (!f)
		return 0;
	ini_parse_file(f, on_line, &p);
	fclose(f);
	if (!p.nomem && !cr->access_key && p.got.access_key) {
		move_if_unset(&cr->access_key, &p.got.access_key);
		move_if_unset(&cr->secret_key, &p.got.secret_key);
		move_if_unset(&cr->session_token, &p.got.session_token);
		snprintf(cr->source, sizeof(cr->source),
			 "profile %s in %s", profile, path);
	}
	move_if_unset(&cr->region, &p.got.region);
	s3_creds_free(&p.got);
	if (p.nomem)
		return -1;
	return p.found;
}

/* A file named by variable env, else ~/.aws/name; NULL without HOME. */
static char *aws_file(const char *env, const char *name)
{
	const char *v = getenv(env);
	const char *home = getenv("HOME");
	char *s = NULL;
	int n = -1;

	if (v && *v && !strncmp(v, "~/", 2) && home)
		n = asprintf(&s, "%s%s", home, v + 1);
	else if (v && *v)
		n = asprintf(&s, "%s", v);
	else if (home && *home)
		n = asprintf(&s, "%s/.aws/%s", home, name);
	return n < 0 ? NULL : s;
}

/* Take the keys from the environment when both are set.  1, 0 or -1. */
static int from_env(struct s3_creds *cr, char *err, size_t errlen)
{
	const char *id = getenv(ID_VAR);
	const char *secret = getenv(SECRET_VAR);
	const char *token = getenv("AWS_SESSION_TOKEN");
	int have_id = id && *id, have_secret = secret && *secret;

	if (!have_id && !have_secret)
		return 0;
	if (have_id != have_secret) {
		snprintf(err, errlen, "%s is set but %s is not",
			 have_id ? ID_VAR : SECRET_VAR,
			 have_id ? SECRET_VAR : ID_VAR);
		return -1;
	}
	if (take(&cr->access_key, id) || take(&cr->secret_key, secret) ||
	    (token && *token && take(&cr->session_token, token))) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	snprintf(cr->source, sizeof(cr->source), "environment");
	return 1;
}

/* Explain why the profile gave no usable keys. */
static void explain(const struct s3_creds *cr, const char *profile,
		    int explicit, int found, const char *cred_path,
		    const char *conf_path, char *err, size_t errlen)
{
	const char *a = cred_path ? cred_path : "~/.aws/credentials";
	const char *b = conf_path ? conf_path : "~/.aws/config";

	if (cr->access_key && !cr->secret_key)
		snprintf(err, errlen, "%s: aws_access_key_id without "
			 "aws_secret_access_key", cr->source);
	else if (explicit && !found)
		snprintf(err, errlen, "profile %s not found in %s or %s",
			 profile, a, b);
	else if (found)
		snprintf(err, errlen, "profile %s in %s / %s has no static "
			 "keys (aws_access_key_id, aws_secret_access_key)",
			 profile, a, b);
	else
		snprintf(err, errlen, "no credentials: set AWS_ACCESS_KEY_ID "
			 "and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with %s",
			 a);
}

/* Read the profile from both files; 0, or -1 with err set. */
static int from_files(struct s3_creds *cr, const char *profile,
		      int explicit, int need_keys, char *err, size_t errlen)
{
	char *cred_path = aws_file("AWS_SHARED_CREDENTIALS_FILE",
				   "credentials");
	char *conf_path = aws_file("AWS_CONFIG_FILE", "config");
	int a = s3_creds_read_file(cr, cred_path, profile, 0);
	int b = a < 0 ? -1 : s3_creds_read_file(cr, conf_path, profile, 1);
	int result = 0;

	if (a < 0 || b < 0) {
		snprintf(err, errlen, "out of memory");
		result = -1;
	} else if (need_keys && (!cr->access_key || !cr->secret_key)) {
		explain(cr, profile, explicit, a || b, cred_path, conf_path,
			err, errlen);
		result = -1;
	}
	free(cred_path);
	free(conf_path);
	return result;
}

/* One profile's keys from a file named outright (see s3.h). */
int s3_creds_from_file(struct s3_creds *out, const char *path,
		       const char *profile, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	int found;

	memset(out, 0, sizeof(*out));
	if (!profile || !*profile)
		profile = "default";
	if (!f) {
		snprintf(err, errlen, "%s: cannot read: %s", path,
			 strerror(errno));
		return -1;
	}
	fclose(f);
	found = s3_creds_read_file(out, path, profile, 0);
	if (found < 0)
		snprintf(err, errlen, "%s: out of memory", path);
	else if (!found)
		snprintf(err, errlen, "%s: no profile [%s]", path, profile);
	else if (!out->access_key || !out->secret_key)
		snprintf(err, errlen, "%s: profile [%s] lacks "
			 "aws_access_key_id or aws_secret_access_key", path,
			 profile);
	else
		return 0;
	s3_creds_free(out);
	return -1;
}

/*
 * Find credentials: the environment's keys, else the profile's in the
 * shared files; the profile's region either way.  0, or -1 with err.
 */
int s3_creds_resolve(struct s3_creds *out, const char *profile, char *err,
		     size_t errlen)
{
	const char *env_profile = getenv("AWS_PROFILE");
	int explicit = 1;
	int env;

	memset(out, 0, sizeof(*out));
	if (!profile || !*profile)
		profile = env_profile;
	if (!profile || !*profile) {
		profile = "default";
		explicit = 0;
	}
	env = from_env(out, err, errlen);
	if (env < 0 ||
	    from_files(out, profile, explicit, !env, err, errlen) < 0) {
		s3_creds_free(out);
		return -1;
	}
	return 0;
}
