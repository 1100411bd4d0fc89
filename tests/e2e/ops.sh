#!/usr/bin/env bash
#
# ops.sh - blitfs as operators run it: mounted by mount(8) from an fstab
# line, configured by an INI file with a credentials file, its mistakes
# told in one line each, its man page, its log in a storm of failures,
# and no secret in its debug log.
#
# Exercises fs/main.c and fs/fs-config.c (options, precedence, messages,
# mount options), s3/s3-creds.c (credentials_file), s3/log.c (summaries)
# and doc/blitfs.1.
#
#   tests/e2e/ops.sh [TEST...]      BLITFS=...
#
# The mount(8) cases need root: fuse3's /sbin/mount.fuse3 runs
# "blitfs BUCKET MOUNTPOINT -o OPTS" through /bin/sh with PATH unset, so
# blitfs must sit in sh's default PATH.  The test puts a two-line wrapper
# that runs $BLITFS at /usr/local/sbin/blitfs (marked as the test's own;
# anything else there is left alone and fails the test) and removes it
# afterwards.  Those daemons log to syslog, not to the test's log.

# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# shellcheck source-path=SCRIPTDIR source=../gateway/gateway.sh
source "$(dirname "${BASH_SOURCE[0]}")/../gateway/gateway.sh"

HELPER=/usr/local/sbin/blitfs
HELPER_MARK="# blitfs tests/e2e/ops.sh: runs the binary under test"

# ------------------------------------------------------------- helpers

# A credentials file (mode $2, 0600 by default) with the server's keys
# under [ops], and an [empty] profile without keys.
make_creds()
{
	local file=$1 mode=${2:-600}

	printf '[default]\naws_access_key_id = AKIAWRONG\n%s\n\n' \
		'aws_secret_access_key = wrong' >"$file"
	printf '[ops]\naws_access_key_id = %s\naws_secret_access_key = %s\n' \
		"$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" >>"$file"
	printf '\n[empty]\nregion = us-east-1\n' >>"$file"
	chmod "$mode" "$file"
}

# Put the wrapper where mount.fuse3's sh finds it; remove it on exit.
# A lock held until the test's end keeps two runs from sharing it.
helper_install()
{
	exec {HELPER_LOCK}>/tmp/blitfs-mount-helper.lock
	flock -w 120 "$HELPER_LOCK" || fail "another run holds $HELPER"
	if [[ -e $HELPER ]] && ! grep -qF "$HELPER_MARK" "$HELPER"; then
		fail "$HELPER exists and is not the test's; not touching it"
		return 1
	fi
	printf '#!/bin/sh\n%s\nexec %q "$@"\n' "$HELPER_MARK" "$BLITFS" \
		>"$HELPER.tmp"
	chmod 755 "$HELPER.tmp"
	mv "$HELPER.tmp" "$HELPER"
	# Also on a timeout (TERM), not only at a normal exit.
	trap 'helper_remove; exit 143' TERM
	trap 'rc=$?; helper_remove; (exit $rc); e2e_child_exit' EXIT
}

helper_remove()
{
	if [[ -e $HELPER ]] && grep -qF "$HELPER_MARK" "$HELPER"; then
		rm -f "$HELPER"
	fi
}

# The pid of the blitfs daemon serving $MNT (started by mount(8), so no
# child of ours); it joins the pids the runner ends after the test.
daemon_of_mnt()
{
	local p pid

	for p in /proc/[0-9]*; do
		pid=${p#/proc/}
		if is_daemon_of "$pid" "$MNT" &&
			[[ $(readlink "$p/exe" 2>/dev/null) == "$BLITFS" ]]
		then
			echo "$pid" >>"$T/daemon.pids"
			echo "$pid"
			return 0
		fi
	done
	fail "no blitfs daemon serving $MNT"
}

# umount(8) as an operator would, then wait for the daemon to end.
umount_and_wait()
{
	local pid=$1 i

	umount "$MNT"
	for ((i = 0; i < 600; i++)); do
		[[ -d /proc/$pid ]] || return 0
		sleep 0.1
	done
	fail "the daemon $pid still runs 60 s after umount"
}

# ----------------------------------------------------------------- tests

# mount -t fuse.blitfs, as by hand and from an fstab line, with the
# credentials in a file and none in the environment; files written
# through the mount land in the bucket.
test_fstab_mount()
{
	local pid want opts

	make_creds "$T/creds"
	helper_install
	mkdir -p "$MNT"
	opts=endpoint=$S3_ENDPOINT,region=us-east-1,path_style
	opts+=,cache_dir=$T/cache1,credentials_file=$T/creds,profile=ops
	opts+=,noatime,_netdev,nofail
	env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY \
		mount -t fuse.blitfs "$BUCKET" "$MNT" -o "$opts"
	is_mounted "$MNT" || fail "mount -t fuse.blitfs mounted nothing"
	pid=$(daemon_of_mnt)
	want="fuse.blitfs blitfs:$BUCKET"
	findmnt -rn -o FSTYPE,SOURCE "$MNT" | grep -x "$want" >/dev/null ||
		fail "findmnt says: $(findmnt -rn -o FSTYPE,SOURCE "$MNT")"
	echo "by hand $(date)" >"$MNT/by-hand.txt"
	wait_object by-hand.txt "$(md5_of "$MNT/by-hand.txt")"
	umount_and_wait "$pid"

	# The same from /etc/fstab's format, options in an INI file.
	cat >"$T/blitfs.ini" <<-INI
		[blitfs]
		endpoint = $S3_ENDPOINT
		region = us-east-1
		path_style = 1
		cache_dir = $T/cache2
		credentials_file = $T/creds
		profile = ops
	INI
	opts=config=$T/blitfs.ini,allow_other,_netdev,nofail,noauto
	opts+=,x-systemd.automount
	printf '%s %s fuse.blitfs %s 0 0\n' "$BUCKET" "$MNT" "$opts" \
		>"$T/fstab"
	env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY \
		mount -T "$T/fstab" "$MNT"
	is_mounted "$MNT" || fail "mount from the fstab line mounted nothing"
	pid=$(daemon_of_mnt)
	findmnt -rn -o OPTIONS "$MNT" | grep allow_other >/dev/null ||
		fail "allow_other did not reach the kernel"
	head -c 200000 /dev/urandom >"$T/want.bin"
	cp "$T/want.bin" "$MNT/from-fstab.bin"
	wait_object from-fstab.bin "$(md5_of "$T/want.bin")"
	want=$(md5_of "$MNT/by-hand.txt")
	assert_eq "$want" "$(s3_md5 by-hand.txt)" "by-hand.txt in the bucket"
	umount_and_wait "$pid"
	helper_remove
}

# Options after the operands, as mount.fuse3 passes them; mount(8)'s own
# options dropped, the kernel's passed on: nosuid, ro, uid/gid/umask.
test_mount_options()
{
	local opts=endpoint=$S3_ENDPOINT,region=us-east-1,path_style i all

	all=rw,nosuid,nodev,noexec,noatime,relatime,defaults,auto,user,nouser
	all+=,_netdev,nofail,comment=x,x-systemd.device-timeout=9
	all+=,uid=1234,gid=2345,umask=027,$opts,cache_dir=$T/c1
	mkdir -p "$MNT"
	"$BLITFS" "$BUCKET" "$MNT" -f -o "$all" >>"$BLITFS_LOG" 2>&1 &
	BLITFS_PID=$!
	echo "$BLITFS_PID" >>"$T/daemon.pids"
	for ((i = 0; i < 100; i++)); do
		! mountpoint -q "$MNT" || break
		sleep 0.1
	done
	mountpoint -q "$MNT" || fail "not mounted"
	findmnt -rn -o OPTIONS "$MNT" | tr , '\n' >"$T/kopts"
	for i in rw nosuid nodev noexec; do
		grep -qx "$i" "$T/kopts" ||
			fail "no $i among the mount's options:" \
				"$(paste -sd, "$T/kopts")"
	done
	echo hello >"$MNT/a.txt"
	assert_eq "1234:2345" "$(stat -c %u:%g "$MNT/a.txt")" \
		"owner with uid and gid"
	(((8#$(stat -c %a "$MNT/a.txt") & 8#027) == 0)) ||
		fail "umask=027 left mode $(stat -c %a "$MNT/a.txt")"
	wait_object a.txt "$(echo hello | md5sum | cut -c1-32)"
	blitfs_umount

	blitfs_mount "ro,$opts"
	findmnt -rn -o OPTIONS "$MNT" | tr , '\n' | grep -x ro >/dev/null ||
		fail "ro did not reach the kernel"
	assert_eq hello "$(cat "$MNT/a.txt")" "a.txt read on a ro mount"
	if echo no 2>"$T/ro.err" >"$MNT/b.txt"; then
		fail "a write on a ro mount succeeded"
	fi
	grep -q "Read-only file system" "$T/ro.err" ||
		fail "a write on a ro mount said: $(cat "$T/ro.err")"
}

# Run blitfs with the environment in $1 (NAME=VALUE ..., or -) and the
# rest as arguments; it must fail with exactly the line $EXPECT on
# stderr, mount nothing, and say nothing on stdout.
expect_error()
{
	local envs=$1 rc=0
	shift

	[[ $envs != - ]] || envs=
	# shellcheck disable=SC2086 # NAME=VALUE words, split on purpose
	timeout 30 env $envs "$BLITFS" "$@" "$BUCKET" "$MNT" \
		>"$T/err.out" 2>"$T/err.txt" </dev/null || rc=$?
	{
		echo "--- $(date +%T) $envs $BLITFS $* (rc $rc)"
		cat "$T/err.out" "$T/err.txt"
	} >>"$BLITFS_LOG"
	if is_mounted "$MNT"; then
		fusermount3 -u "$MNT" || fusermount3 -uz "$MNT"
		fail "mounted although it should not have: $*"
	fi
	((rc == 1)) || fail "exit status $rc, not 1, for: $*"
	[[ ! -s $T/err.out ]] || fail "stdout not empty for: $*"
	assert_eq "$EXPECT" "$(cat "$T/err.txt")" "stderr of: $envs $*"
}

# Every kind of mistake in the configuration: one line naming where,
# the key and the value (never a secret's value: the SEKRIT* values are
# in no expected line), exit 1, nothing mounted.  The messages are
# written from their specification (fs/fs-config.c, bad()), not copied
# from the program.
test_config_errors()
{
	local ok=endpoint=$S3_ENDPOINT,region=us-east-1,path_style
	local ENOENT="No such file or directory"
	local HTTP="must start with http:// or https://"
	local VISIBLE="a secret on the command line is visible to every user"

	mkdir -p "$MNT"
	make_creds "$T/creds"
	printf '[blitfs]\n; a comment\nconcurency = 4\n' >"$T/unknown.ini"
	printf '[blitfs]\nretries = many\n' >"$T/value.ini"
	printf 'concurrency = 0\n' >"$T/range.ini"
	printf '[blitfs]\nsecret_key = SEKRIT1\n' >"$T/keys.ini"
	printf '[blitfs]\ntimeout\n' >"$T/syntax.ini"
	printf '[mount]\ntimeout = 3\n' >"$T/section.ini"

	EXPECT="blitfs: $T/unknown.ini:3: concurency='4': unknown option"
	expect_error - -c "$T/unknown.ini" -o "$ok"
	EXPECT="blitfs: $T/value.ini:2: retries='many': not a whole number"
	expect_error - -o "$ok,config=$T/value.ini"
	EXPECT="blitfs: $T/range.ini:1: concurrency='0': must be 1 to 256"
	EXPECT+=" uploads"
	expect_error - -c "$T/range.ini" -o "$ok"
	EXPECT="blitfs: $T/keys.ini:2: secret_key: keys do not go in the INI"
	EXPECT+=" file; put them in credentials_file"
	expect_error - -c "$T/keys.ini" -o "$ok"
	EXPECT="blitfs: $T/syntax.ini:2: not a 'key = value' line"
	expect_error - -c "$T/syntax.ini" -o "$ok"
	EXPECT="blitfs: $T/section.ini:2: unknown section [mount]"
	expect_error - -c "$T/section.ini" -o "$ok"
	EXPECT="blitfs: config $T/none.ini: cannot read: $ENOENT"
	expect_error - -c "$T/none.ini" -o "$ok"

	EXPECT="blitfs: -o timeout='99999': must be 1 to 3600 s"
	expect_error - -o "$ok,timeout=99999"
	EXPECT="blitfs: -o part_size='1M': must be 5M to 5G"
	expect_error - -o "$ok,part_size=1M"
	EXPECT="blitfs: -o cache_size='2X': unknown unit 'X' (K, M, G or T)"
	expect_error - -o "$ok,cache_size=2X"
	EXPECT="blitfs: -o concurency='4': unknown option"
	expect_error - -o "$ok,concurency=4"
	EXPECT="blitfs: -o allow_others: unknown option"
	expect_error - -o "$ok,allow_others"
	EXPECT="blitfs: -o read_rate: needs a value (read_rate=N)"
	expect_error - -o "$ok,read_rate"
	EXPECT="blitfs: -o uid='root': not a number"
	expect_error - -o "$ok,uid=root"
	EXPECT="blitfs: -o endpoint='s3.example.com': $HTTP"
	expect_error - -o "endpoint=s3.example.com"

	EXPECT="blitfs: BLITFS_TIMEOUT='soon': not a whole number"
	expect_error BLITFS_TIMEOUT=soon -o "$ok"
	EXPECT="blitfs: AWS_REGION='Mars': not a region name (like eu-west-1)"
	expect_error AWS_REGION=Mars -o "endpoint=$S3_ENDPOINT,path_style"
	EXPECT="blitfs: AWS_ENDPOINT_URL='ftp://x': $HTTP"
	expect_error AWS_ENDPOINT_URL=ftp://x -o region=us-east-1

	EXPECT="blitfs: -o secret_key: $VISIBLE; use credentials_file or the"
	EXPECT+=" environment"
	expect_error - -o "$ok,secret_key=SEKRIT2"
	EXPECT="blitfs: -o postback_secret: $VISIBLE; use postback_secret_file"
	EXPECT+=" or the INI file"
	expect_error - -o "$ok,postback_secret=SEKRIT3"

	EXPECT="blitfs: credentials_file $T/nocreds: cannot read: $ENOENT"
	expect_error - -o "$ok,credentials_file=$T/nocreds"
	EXPECT="blitfs: credentials_file $T/creds: no profile [nosuch]"
	expect_error - -o "$ok,credentials_file=$T/creds,profile=nosuch"
	EXPECT="blitfs: credentials_file $T/creds: profile [empty] lacks"
	EXPECT+=" aws_access_key_id or aws_secret_access_key"
	expect_error AWS_PROFILE=empty -o "$ok,credentials_file=$T/creds"
	EXPECT="blitfs: credentials_file $T: not a regular file"
	expect_error - -o "$ok,credentials_file=$T"
}

# Precedence end to end: -o over the environment over the INI file; and
# a credentials file others can read is warned about.
test_precedence()
{
	local want

	make_creds "$T/creds" 644
	printf 'upload_delay = 40000\nread_wait = 7\nretries = 9\n' \
		>"$T/p.ini"
	want=config=$T/p.ini,retries=2,credentials_file=$T/creds,profile=ops
	BLITFS_DEBUG=1 BLITFS_READ_WAIT=3 BLITFS_RETRIES=4 blitfs_mount "$want"
	grep -q "config: retries=2 (-o)" "$BLITFS_LOG" ||
		fail "retries is not -o's"
	grep -q "config: read_wait=3 (environment)" "$BLITFS_LOG" ||
		fail "read_wait is not the environment's"
	grep -q "config: upload_delay=40000 (INI file)" "$BLITFS_LOG" ||
		fail "upload_delay is not the INI file's"
	grep -q "config: timeout=30 (default)" "$BLITFS_LOG" ||
		fail "timeout is not the default"
	want="WARN config: credentials_file $T/creds holds a secret and is"
	want+=" readable by every user (mode 0644): chmod 600 it"
	grep -qF "$want" "$BLITFS_LOG" ||
		fail "no warning about a readable credentials file"
	grep -q "credentials from profile ops in $T/creds" "$BLITFS_LOG" ||
		fail "the keys did not come from credentials_file"
}

# The man page renders without a warning and lists exactly the options
# the program accepts, as it says with --list-options.
test_man_page()
{
	local man=$E2E_REPO/doc/blitfs.1

	groff -man -Tutf8 -ww -z "$man" 2>"$T/groff.err"
	[[ ! -s $T/groff.err ]] || fail "groff: $(head -n 5 "$T/groff.err")"
	MANWIDTH=80 MANPAGER=cat man --warnings -l "$man" \
		>"$T/man.txt" 2>"$T/man.err"
	[[ ! -s $T/man.err ]] || fail "man: $(head -n 5 "$T/man.err")"
	grep -q '^SYNOPSIS' "$T/man.txt" || fail "no SYNOPSIS in the rendering"
	python3 - "$T/man.txt" <<'PY' || fail "rendered lines wider than 80"
import sys
sys.exit(max(len(l.rstrip("\n")) for l in open(sys.argv[1])) > 80)
PY

	# Names in the man page's OPTIONS sections: the bold words of the
	# tag of each .TP; a name's value (after '=') is not part of it.
	python3 - "$man" >"$T/man.names" <<'PY'
import re, sys
names, section = set(), ""
lines = open(sys.argv[1]).read().split("\n")
for i, line in enumerate(lines):
    if line.startswith(".SH"):
        section = line
    if "OPTIONS" not in section or line != ".TP" or i + 1 >= len(lines):
        continue
    macro, _, rest = lines[i + 1].partition(" ")
    if macro not in (".B", ".BI", ".BR"):
        continue
    words = [w.strip('"') for w in re.findall(r'"[^"]*"|\S+', rest)]
    for w in words[::2] if macro != ".B" else words[:1]:
        w = w.replace("\\-", "-").replace("\\&", "")
        if w.strip(", "):
            print(w.split("=")[0] + ("=" if "=" in w else ""))
PY
	"$BLITFS" --list-options | sed 's/=.*/=/' | sort -u >"$T/prog.names"
	sed -i 's/=$//' "$T/prog.names" "$T/man.names"
	sort -u -o "$T/prog.names" "$T/prog.names"
	sort -u -o "$T/man.names" "$T/man.names"
	diff "$T/prog.names" "$T/man.names" >"$T/names.diff" ||
		fail "options the program accepts (<) and the man page" \
			"lists (>) differ: $(grep '^[<>]' "$T/names.diff" |
			paste -sd' ')"
	# --help too names every option of the table.
	"$BLITFS" --help >"$T/help.txt"
	while read -r n; do
		grep -qF -- "$n" "$T/help.txt" || fail "--help lacks $n"
	done <"$T/prog.names"
}

# blitfs.ini.example names every option --help does, and its values,
# all uncommented, are valid: the mount gets as far as the bucket.
test_example_config()
{
	local ex=$E2E_REPO/blitfs.ini.example name rc=0

	"$BLITFS" --help | sed -n 's/^  \([a-z_]*\)=[A-Z0-9].*/\1/p' >"$T/opts"
	(($(wc -l <"$T/opts") > 20)) || fail "no options in --help"
	while read -r name; do
		[[ $name != config ]] || continue
		grep -q "^;$name = " "$ex" ||
			fail "blitfs.ini.example does not show $name"
	done <"$T/opts"
	sed -e 's/^;\([a-z_]* = \)/\1/' -e '/^postback_secret_file/d' \
		"$ex" >"$T/all.ini"
	chmod 600 "$T/all.ini"
	mkdir -p "$MNT"
	timeout 60 "$BLITFS" -c "$T/all.ini" -o "endpoint=http://127.0.0.1:1" \
		-o "path_style,retries=1,cache_dir=$T/c" \
		"$BUCKET" "$MNT" 2>"$T/all.err" || rc=$?
	((rc == 1)) || fail "exit status $rc"
	grep -q "^blitfs: cannot mount bucket $BUCKET at http://127.0.0.1:1" \
		"$T/all.err" ||
		fail "blitfs.ini.example uncommented: $(cat "$T/all.err")"
}

# meson install puts the binary, the man page and the example files
# where they belong (under a scratch DESTDIR).
test_install()
{
	local build dest=$T/dest f

	build=$(dirname "$BLITFS")
	[[ -f $build/build.ninja ]] || fail "$BLITFS is not in a meson build"
	meson install -C "$build" --destdir "$dest" --no-rebuild >"$T/inst.log"
	for f in bin/blitfs share/man/man1/blitfs.1 \
		share/doc/blitfs/blitfs.ini.example \
		share/doc/blitfs/examples/fstab.example \
		share/doc/blitfs/examples/mnt-photos.mount \
		share/doc/blitfs/examples/blitfs@.service; do
		[[ -n $(find "$dest" -path "*/$f" -type f) ]] ||
			fail "meson install did not install $f"
	done
	"$(find "$dest" -path '*/bin/blitfs')" --version >"$T/version" ||
		fail "the installed blitfs does not run"
	# the version, then each library's own idea of its version
	for lib in '^blitfs [0-9]' '^libfuse 3\.' '^libcurl/' '^OpenSSL 3\.' \
		'^SQLite 3\.' '^jansson ' '^libxml2 ' '^inih '; do
		grep -E "$lib" "$T/version" >/dev/null ||
			fail "blitfs --version lacks $lib"
	done
}

# 300 uploads refused alike: a handful of log lines, and the counts in
# the summaries add up to every refused PUT the gateway recorded.
test_log_storm()
{
	local n=300 i

	# The uploads wait 10 s, so that the bucket is refused before the
	# first, even on a slow (sanitizer) build.
	gw_mount '{}' "upload_delay=10000,write_rate=1000,concurrency=16"
	for ((i = 0; i < n; i++)); do
		echo "$i" >"$MNT/f$i.txt"
	done
	gateway_scenario "{\"forbidden_buckets\": [\"$BUCKET\"]}"
	# The first window is 10 s: its summary comes without any help.
	for ((i = 0; i < 120; i++)); do
		grep -q 'upq: message repeated' "$BLITFS_LOG" && break
		sleep 0.5
	done
	blitfs_umount
	save_record
	grep -c AccessDenied "$BLITFS_LOG" >"$T/lines" || true
	grep AccessDenied "$BLITFS_LOG" | cut -c1-160 | sed 's/^/ops: log: /'
	(($(cat "$T/lines") <= 8)) ||
		fail "$(cat "$T/lines") log lines name AccessDenied"
	python3 - "$BLITFS_LOG" "$T/record.json" "$BUCKET" <<'PY'
import json, re, sys
refused = sum(1 for r in json.load(open(sys.argv[2]))
              if r["bucket"] == sys.argv[3] and r["method"] == "PUT"
              and r["status"] == 403)
full = counted = 0
for line in open(sys.argv[1]):
    if "upq: " not in line or "AccessDenied" not in line:
        continue
    m = re.search(r"upq: message repeated (\d+) times? in", line)
    if m:
        counted += int(m.group(1))
    elif "upq: upload failed: bucket=" in line and "; given up" in line:
        full += 1
print(f"ops: {refused} PUTs refused; {full} lines written, "
      f"{counted} counted in summaries")
sys.exit(0 if full + counted == refused >= 250 and full <= 3 else 1)
PY
}

# The debug log of a mount (and of a mount refused for a wrong key)
# holds no secret: not the secret key, the postback secret, an
# Authorization header, nor a signature (64 hex digits).
test_secrets_not_logged()
{
	local pbsecret=pb-secret-$RANDOM$RANDOM port opts s

	port=$(free_port)	# nothing listens: the postback fails
	BLITFS_DEBUG=1 BLITFS_POSTBACK_SECRET=$pbsecret \
		blitfs_mount "postback_url=http://127.0.0.1:$port/hook"
	echo one >"$MNT/one.txt"
	mkdir "$MNT/d"
	cp "$MNT/one.txt" "$MNT/d/two.txt"
	wait_object d/two.txt "$(echo one | md5sum | cut -c1-32)"
	ls -l "$MNT" "$MNT/d" >/dev/null
	cat "$MNT/d/two.txt" >/dev/null
	rm "$MNT/one.txt"
	wait_absent one.txt
	sleep 2
	blitfs_umount
	# A signature refused: the error path, still debug.
	mkdir -p "$MNT"
	opts=endpoint=$S3_ENDPOINT,region=us-east-1,path_style,cache_dir=$T/c2
	AWS_SECRET_ACCESS_KEY=wrong-secret-$RANDOM timeout 60 "$BLITFS" -f -d \
		-o "$opts" "$BUCKET" "$MNT" >>"$BLITFS_LOG" 2>&1 &&
		fail "a wrong secret key mounted"
	grep -q "DEBUG config: postback_secret=(set, not shown)" \
		"$BLITFS_LOG" || fail "no debug line for postback_secret"
	grep -q "DEBUG config: access key $AWS_ACCESS_KEY_ID from environment" \
		"$BLITFS_LOG" || fail "no debug line naming the access key id"
	grep -q SignatureDoesNotMatch "$BLITFS_LOG" ||
		fail "the wrong key was not refused"
	for s in "$AWS_SECRET_ACCESS_KEY" "$pbsecret" wrong-secret- \
		Authorization Signature= X-Amz-Signature X-Amz-Credential \
		x-amz-security-token sha256=; do
		! grep -qiF -- "$s" "$BLITFS_LOG" ||
			fail "the log holds '$s':" \
				"$(grep -iF -- "$s" "$BLITFS_LOG" | head -n 1)"
	done
	! grep -qE '[0-9a-f]{64}' "$BLITFS_LOG" ||
		fail "64 hex digits in the log: $(grep -oE '[0-9a-f]{64}' \
			"$BLITFS_LOG" | head -n 1)"
}

e2e_test fstab_mount 180 moto
e2e_test mount_options 120
e2e_test config_errors 180
e2e_test precedence 120
e2e_test man_page 60
e2e_test example_config 60
e2e_test install 120
e2e_test log_storm 240 moto
e2e_test secrets_not_logged 180 moto

[[ ${BASH_SOURCE[0]} != "$0" ]] || e2e_main "$@"
