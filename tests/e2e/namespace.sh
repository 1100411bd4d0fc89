#!/usr/bin/env bash
#
# namespace.sh - the mount as a directory tree: what ordinary tools (ls,
# mv, rsync, chmod, touch, ln) do through it, on buckets that blitfs wrote
# and on buckets other tools prepared.  Every outcome is checked in the
# bucket through the aws CLI, not through the mount.
#
#   tests/e2e/namespace.sh [TEST...]      BLITFS=... E2E_SERVER=moto|s3rver
#
# test_behaviours runs a table of rows on one mount: each row prepares
# its own prefix (through the aws CLI where "prepared by other tools"),
# acts through the mount and checks the bucket.  A failed row prints its
# own output and the test goes on to the next row, so one run shows every
# broken behaviour.

# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# shellcheck source-path=SCRIPTDIR source=../gateway/gateway.sh
source "$(dirname "${BASH_SOURCE[0]}")/../gateway/gateway.sh"

MATE=/usr/share/backgrounds/mate
IMG=$MATE/nature/Garden.jpg

# The user metadata of KEY as "name=value" lines, sorted.
s3_meta()
{
	s3api head-object --bucket "$BUCKET" --key "$1" \
		--query 'Metadata' --output json |
		python3 -c 'import json, sys
for k, v in sorted(json.load(sys.stdin).items()):
    print("%s=%s" % (k, v))'
}

# One field of head-object for KEY (ContentType, CacheControl, ...).
s3_head_field()
{
	s3api head-object --bucket "$BUCKET" --key "$1" --query "$2" \
		--output text
}

# What other tools put shows through the mount once the listing the
# mount made moments ago has expired (3 s; its own changes show at once).
others_wrote()
{
	sleep 3.2
}

s3_put()
{
	s3api put-object --bucket "$BUCKET" --key "$1" --body "${2:-$T/empty}" \
		"${@:3}" >/dev/null
}

s3_absent()
{
	! s3api head-object --bucket "$BUCKET" --key "$1" >/dev/null 2>&1
}

# Wait until KEY is gone from the bucket ($2 seconds at most).
wait_gone()
{
	local deadline=$((SECONDS + ${2:-60}))

	until s3_absent "$1"; do
		((SECONDS < deadline)) || { fail "$1 still in the bucket"; return 1; }
		sleep 0.5
	done
}

# ------------------------------------------------------------------ rows
#
# name|what the row shows.  Each row_NAME works under the prefix NAME/.

ROWS=(
	"implicit_dirs|keys without markers show every directory above them"
	"marker_dirs|markers made by other tools are directories; rmdir drops one"
	"mkdir_marker|mkdir writes DIR/, rmdir of a non-empty one is ENOTEMPTY"
	"same_name|a file and a directory of one name are both reachable"
	"bad_keys|keys that cannot be paths are left out and logged once"
	"names|NFC and NFD names round-trip as distinct keys"
	"rename_remote|mv of a file only in S3 copies it on the server"
	"rename_over|mv over an existing file replaces it"
	"rename_dir|mv of a directory moves every key under it, local or not"
	"append_truncate|append and truncate of objects only in S3 fetch first"
	"metadata_set|chmod, chown, touch -d are kept in x-amz-meta-*"
	"metadata_read|s3fs and rclone metadata show in stat; none: defaults"
	"metadata_remote|chmod and touch of an object only in S3 update it"
	"cp_p|cp -p keeps mode and mtime in the bucket"
	"content_type|Content-Type from the name, or from the xattr"
	"hard_link|ln is refused with EPERM"
	"symlinks|ln -s stores an s3fs link; s3fs links read back"
	"statfs|df shows free space, not zero"
	"fresh_listing|ls right after cp shows the new files"
)

row_implicit_dirs()
{
	s3_put implicit_dirs/a/b/c.jpg "$IMG"
	others_wrote
	assert_eq a "$(ls "$MNT/implicit_dirs")" "ls implicit_dirs"
	[[ -d $MNT/implicit_dirs/a/b ]] || fail "a/b is no directory"
	cmp "$IMG" "$MNT/implicit_dirs/a/b/c.jpg"
	# no markers appeared on the way
	assert_eq implicit_dirs/a/b/c.jpg "$(s3_keys implicit_dirs/)" keys
}

row_marker_dirs()
{
	s3_put marker_dirs/
	s3_put marker_dirs/sub/
	s3_put marker_dirs/full/x.txt
	others_wrote
	assert_eq "full sub" "$(ls "$MNT/marker_dirs" | tr '\n' ' ' |
		sed 's/ $//')" "ls marker_dirs"
	rmdir "$MNT/marker_dirs/sub"
	s3_absent marker_dirs/sub/ || fail "marker_dirs/sub/ still there"
	[[ ! -e $MNT/marker_dirs/sub ]] || fail "sub still listed"
}

row_mkdir_marker()
{
	mkdir "$MNT/mkdir_marker" "$MNT/mkdir_marker/d"
	s3api head-object --bucket "$BUCKET" --key mkdir_marker/d/ >/dev/null
	s3_put mkdir_marker/d/x.txt
	if rmdir "$MNT/mkdir_marker/d" 2>"$T/rmdir.err"; then
		fail "rmdir of a non-empty directory worked"
	fi
	grep -q "not empty" "$T/rmdir.err" ||
		fail "rmdir said: $(cat "$T/rmdir.err")"
}

row_same_name()
{
	printf 'file\n' >"$T/f"
	printf 'inner\n' >"$T/i"
	s3_put same_name/dup "$T/f"
	s3_put same_name/dup/inner.txt "$T/i"
	others_wrote
	assert_eq "dup dup.blitfs-dir" "$(ls "$MNT/same_name" |
		tr '\n' ' ' | sed 's/ $//')" "ls same_name"
	assert_eq file "$(cat "$MNT/same_name/dup")" "the file"
	assert_eq inner "$(cat "$MNT/same_name/dup.blitfs-dir/inner.txt")" \
		"the file in the directory"
	# written through the alias, it lands under the directory
	printf 'new\n' >"$MNT/same_name/dup.blitfs-dir/new.txt"
	wait_object same_name/dup/new.txt "$(printf 'new\n' | md5sum |
		cut -c1-32)" 60
}

row_bad_keys()
{
	local long

	long=$(printf 'x%.0s' {1..256})
	s3_put bad_keys/good.txt
	s3_put bad_keys/./dot.txt
	s3_put bad_keys/a//b.txt
	s3_put "bad_keys/$long"
	s3_put bad_keys/trick.blitfs-dir/x
	others_wrote
	# "a" holds only "a//b.txt", whose name under a/ is empty: a shows,
	# empty; the listing of bad_keys/ sees "./" and "trick..." as prefixes
	assert_eq "a good.txt" "$(ls "$MNT/bad_keys" | tr '\n' ' ' |
		sed 's/ $//')" "ls bad_keys"
	assert_eq "" "$(ls "$MNT/bad_keys/a")" "ls bad_keys/a"
	others_wrote
	ls "$MNT/bad_keys" "$MNT/bad_keys/a" >/dev/null
	assert_eq 1 "$(grep -c 'key="bad_keys/\./": left out' \
		"$BLITFS_LOG")" "log lines for bad_keys/./"
	assert_eq 1 "$(grep -c 'key="bad_keys/a//": left out' \
		"$BLITFS_LOG")" "log lines for bad_keys/a//"
	assert_eq 1 "$(grep -c 'key="bad_keys/trick.blitfs-dir/": left out' \
		"$BLITFS_LOG")" "log lines for the alias-like name"
	assert_eq 1 "$(grep -c "key=\"bad_keys/$long\": left out" \
		"$BLITFS_LOG")" "log lines for the long name"
}

row_names()
{
	local nfc nfd

	# (a newline in a name is in basic.sh's newline_name: moto's server
	# answers 404 to any key holding one)
	nfc=$(printf 'caf\xc3\xa9.txt')
	nfd=$(printf 'cafe\xcc\x81.txt')
	mkdir "$MNT/names"
	echo nfc >"$MNT/names/$nfc"
	echo nfd >"$MNT/names/$nfd"
	wait_object "names/$nfc" "$(echo nfc | md5sum | cut -c1-32)" 60
	wait_object "names/$nfd" "$(echo nfd | md5sum | cut -c1-32)" 60
	assert_eq 2 "$(find "$MNT/names" -type f | wc -l)" "files in names"
}

row_rename_remote()
{
	s3_put rename_remote/a.jpg "$IMG" --metadata mtime=1234567890
	others_wrote
	mv "$MNT/rename_remote/a.jpg" "$MNT/rename_remote/b.jpg"
	assert_eq "$(md5_of "$IMG")" "$(s3_md5 rename_remote/b.jpg)" "b.jpg"
	s3_absent rename_remote/a.jpg || fail "a.jpg still there"
	assert_eq mtime=1234567890 "$(s3_meta rename_remote/b.jpg)" metadata
	assert_eq 1234567890 "$(stat -c %Y "$MNT/rename_remote/b.jpg")" \
		"mtime in the mount"
}

row_rename_over()
{
	printf 'A\n' >"$T/a"
	printf 'B\n' >"$T/b"
	s3_put rename_over/a "$T/a"
	s3_put rename_over/b "$T/b"
	others_wrote
	mv "$MNT/rename_over/a" "$MNT/rename_over/b"
	assert_eq A "$(s3api get-object --bucket "$BUCKET" \
		--key rename_over/b "$T/got" >/dev/null && cat "$T/got")" \
		"rename_over/b"
	s3_absent rename_over/a || fail "rename_over/a still there"
	assert_eq A "$(cat "$MNT/rename_over/b")" "b through the mount"
}

row_rename_dir()
{
	s3_put rename_dir/x/
	s3_put rename_dir/x/1.jpg "$IMG"
	s3_put rename_dir/x/sub/2.jpg "$IMG"
	others_wrote
	printf 'local\n' >"$MNT/rename_dir/x/3.txt"
	mv "$MNT/rename_dir/x" "$MNT/rename_dir/y"
	[[ ! -e $MNT/rename_dir/x ]] || fail "x still shows"
	cmp "$IMG" "$MNT/rename_dir/y/sub/2.jpg"
	assert_eq local "$(cat "$MNT/rename_dir/y/3.txt")" "3.txt"
	wait_object rename_dir/y/3.txt "$(printf 'local\n' | md5sum |
		cut -c1-32)" 60
	assert_eq "$(printf '%s\n' rename_dir/y/ rename_dir/y/1.jpg \
		rename_dir/y/3.txt rename_dir/y/sub/2.jpg)" \
		"$(s3_keys rename_dir/ | LC_ALL=C sort)" "keys after the move"
}

row_append_truncate()
{
	printf 'hello\n' >"$T/h"
	s3_put append_truncate/t.txt "$T/h"
	s3_put append_truncate/u.txt "$T/h"
	others_wrote
	echo more >>"$MNT/append_truncate/t.txt"
	truncate -s 2 "$MNT/append_truncate/u.txt"
	wait_object append_truncate/t.txt "$(printf 'hello\nmore\n' |
		md5sum | cut -c1-32)" 60
	wait_object append_truncate/u.txt "$(printf 'he' | md5sum |
		cut -c1-32)" 60
}

row_metadata_set()
{
	local f=$MNT/metadata_set/m.jpg

	mkdir "$MNT/metadata_set"
	cp "$IMG" "$f"
	chmod 640 "$f"
	chown 1234:5678 "$f"
	touch -d "2001-02-03 04:05:06 UTC" "$f"
	wait_object metadata_set/m.jpg "$(md5_of "$IMG")" 60
	# 33184 is S_IFREG | 0640; 981173106 is 2001-02-03 04:05:06 UTC
	assert_eq "$(printf '%s\n' gid=5678 mode=33184 mtime=981173106 \
		uid=1234)" "$(s3_meta metadata_set/m.jpg)" "metadata"
	assert_eq "640 1234 5678 981173106" \
		"$(stat -c '%a %u %g %Y' "$f")" "stat in the mount"
}

row_metadata_read()
{
	s3_put metadata_read/s3fs.sh "$T/empty" \
		--metadata mode=33261,uid=42,gid=43,mtime=1500000000
	s3_put metadata_read/rclone.jpg "$IMG" \
		--metadata mtime=1600000000.123456789
	s3_put metadata_read/plain.txt "$T/empty"
	others_wrote
	assert_eq "755 42 43 1500000000" \
		"$(stat -c '%a %u %g %Y' "$MNT/metadata_read/s3fs.sh")" "s3fs"
	assert_eq "1600000000.123456789" \
		"$(stat -c '%.9Y' "$MNT/metadata_read/rclone.jpg")" "rclone"
	assert_eq 644 "$(stat -c %a "$MNT/metadata_read/plain.txt")" \
		"no metadata: the default mode"
	local lm
	lm=$(s3_head_field metadata_read/plain.txt LastModified)
	assert_eq "$(date -d "$lm" +%s)" \
		"$(stat -c %Y "$MNT/metadata_read/plain.txt")" \
		"no metadata: S3's Last-Modified"
}

row_metadata_remote()
{
	s3_put metadata_remote/r.jpg "$IMG" --content-type image/jpeg
	others_wrote
	chmod 600 "$MNT/metadata_remote/r.jpg"
	touch -d "2001-02-03 04:05:06 UTC" "$MNT/metadata_remote/r.jpg"
	assert_eq "$(printf '%s\n' mode=33152 mtime=981173106)" \
		"$(s3_meta metadata_remote/r.jpg | grep -e ^mode= -e ^mtime=)" \
		"metadata"
	assert_eq "$(md5_of "$IMG")" "$(s3_md5 metadata_remote/r.jpg)" bytes
	assert_eq image/jpeg "$(s3_head_field metadata_remote/r.jpg \
		ContentType)" "content type kept"
}

row_cp_p()
{
	cp "$IMG" "$T/src.jpg"
	chmod 751 "$T/src.jpg"
	touch -d "2010-01-01 00:00:00 UTC" "$T/src.jpg"
	mkdir "$MNT/cp_p"
	cp -p "$T/src.jpg" "$MNT/cp_p/"
	wait_object cp_p/src.jpg "$(md5_of "$IMG")" 60
	# 33257 is S_IFREG | 0751; 1262304000 is 2010-01-01 00:00:00 UTC
	assert_eq "mode=33257 mtime=1262304000" "$(s3_meta cp_p/src.jpg |
		grep -e ^mode= -e ^mtime= | tr '\n' ' ' | sed 's/ $//')" \
		"metadata"
}

row_content_type()
{
	mkdir "$MNT/content_type"
	cp "$IMG" "$MNT/content_type/a.webp"
	cp "$IMG" "$MNT/content_type/b.svg"
	python3 - "$MNT/content_type/c.bin" <<'PY'
import os, sys

with open(sys.argv[1], "wb") as f:
    f.write(b"data")
    os.setxattr(sys.argv[1], "user.blitfs.content_type", b"image/x-test")
PY
	wait_object content_type/c.bin "$(printf data | md5sum | cut -c1-32)" 60
	wait_object content_type/b.svg "$(md5_of "$IMG")" 60
	wait_object content_type/a.webp "$(md5_of "$IMG")" 60
	assert_eq image/webp "$(s3_head_field content_type/a.webp \
		ContentType)" "a.webp"
	assert_eq image/svg+xml "$(s3_head_field content_type/b.svg \
		ContentType)" "b.svg"
	assert_eq image/x-test "$(s3_head_field content_type/c.bin \
		ContentType)" "c.bin"
	assert_eq image/x-test "$(getfattr --only-values -n \
		user.blitfs.content_type "$MNT/content_type/c.bin")" "xattr"
}

row_hard_link()
{
	mkdir "$MNT/hard_link"
	echo x >"$MNT/hard_link/a"
	if ln "$MNT/hard_link/a" "$MNT/hard_link/b" 2>"$T/ln.err"; then
		fail "ln made a hard link"
	fi
	grep -q "Operation not permitted" "$T/ln.err" ||
		fail "ln said: $(cat "$T/ln.err")"
}

row_symlinks()
{
	mkdir "$MNT/symlinks"
	ln -s ../target/file.jpg "$MNT/symlinks/l"
	assert_eq ../target/file.jpg "$(readlink "$MNT/symlinks/l")" readlink
	[[ -L $MNT/symlinks/l ]] || fail "l is no symlink"
	# s3fs: the target is the body; 41471 is S_IFLNK | 0777
	assert_eq ../target/file.jpg "$(s3api get-object --bucket "$BUCKET" \
		--key symlinks/l "$T/l" >/dev/null && cat "$T/l")" "body"
	s3_meta symlinks/l | grep -x mode=41471 >/dev/null || fail "mode is not a link's"
	printf '/etc/hostname' >"$T/t"
	s3_put symlinks/from_s3fs "$T/t" --metadata mode=41471
	others_wrote
	assert_eq /etc/hostname "$(readlink "$MNT/symlinks/from_s3fs")" \
		"an s3fs link"
}

row_statfs()
{
	local avail

	avail=$(df --output=avail -B1 "$MNT" | tail -n 1)
	((avail > 0)) || fail "df shows $avail bytes available"
}

row_fresh_listing()
{
	mkdir "$MNT/fresh_listing"
	ls "$MNT/fresh_listing" >/dev/null
	cp "$IMG" "$MNT/fresh_listing/one.jpg"
	cp "$IMG" "$MNT/fresh_listing/two.jpg"
	assert_eq "one.jpg two.jpg" "$(ls "$MNT/fresh_listing" |
		tr '\n' ' ' | sed 's/ $//')" "ls right after cp"
}

test_behaviours()
{
	local row name failed=0 rc

	blitfs_mount "write_rate=1000"
	for row in "${ROWS[@]}"; do
		name=${row%%|*}
		set +e
		(set -e; "row_$name") >"$T/row.$name" 2>&1
		rc=$?
		set -e
		if ((rc == 0)); then
			echo "row $name: ok"
			continue
		fi
		failed=$((failed + 1))
		echo "row $name: FAILED (${row#*|})"
		sed 's/^/    /' "$T/row.$name"
	done
	((failed == 0)) || fail "$failed of ${#ROWS[@]} rows failed"
}

# Attributes set through one mount are read back by a later one with an
# empty cache, i.e. from the bucket's metadata alone.
test_metadata_remount()
{
	blitfs_mount "write_rate=1000"
	cp "$IMG" "$MNT/m.jpg"
	chmod 604 "$MNT/m.jpg"
	touch -d "2005-05-05 05:05:05.25 UTC" "$MNT/m.jpg"
	ln -s m.jpg "$MNT/link"
	blitfs_umount
	rm -rf "$T"/cache.*
	blitfs_mount
	assert_eq "604 1115269505.250000000" \
		"$(stat -c '%a %.9Y' "$MNT/m.jpg")" "after remount"
	assert_eq m.jpg "$(readlink "$MNT/link")" "link after remount"
	cmp "$IMG" "$MNT/m.jpg"
}

# A tree of 1,000 small images, rsync -a into the mount and again: the
# second run has nothing to send, nor has a third one after a remount
# with an empty cache (sizes and mtimes come from the bucket then).
test_rsync_twice()
{
	local n

	mkdir -p "$T/tree/a" "$T/tree/b"
	# 1,000 real image tiles, 500 in each of two directories
	convert "$MATE/nature/Garden.jpg" -resize 800x500! -crop 20x20 \
		+repage -quality 80 "$T/tree/a/t%03d.jpg"
	mv "$T"/tree/a/t[5-9]??.jpg "$T/tree/b/"
	assert_eq 1000 "$(find "$T/tree" -type f | wc -l)" "tiles made"
	blitfs_mount "write_rate=1000"
	rsync -a "$T/tree/" "$MNT/tree/"
	n=$(rsync -a --stats "$T/tree/" "$MNT/tree/" |
		sed -n 's/^Number of regular files transferred: //p')
	assert_eq 0 "$n" "files the second rsync sent"
	wait_tree "$T/tree" tree/ 300
	# and nothing else: none of rsync's temporary names was uploaded
	assert_eq 1000 "$(s3_keys tree/ | grep -vc '/$')" "files under tree/"
	blitfs_umount
	rm -rf "$T"/cache.*
	blitfs_mount
	n=$(rsync -a --stats "$T/tree/" "$MNT/tree/" |
		sed -n 's/^Number of regular files transferred: //p')
	assert_eq 0 "$n" "files rsync sent after a remount"
}

# cp -r of a new tree: a directory made where a listing of moments ago
# showed nothing is known to be empty, so the names created in it cost no
# HEAD and no listing each.  Only the uploads and their visibility probes
# reach S3 under the tree; the lookups before them stay local.
test_cp_new_tree()
{
	local d f

	for d in 0 1 2 3 4; do
		mkdir -p "$T/tree/d$d"
		for f in 0 1 2 3 4 5 6 7 8 9; do
			echo "$d/$f" >"$T/tree/d$d/f$f.txt"
		done
	done
	gw_mount '{}' "write_rate=1000"
	cp -r "$T/tree" "$MNT/"
	"$BLITFS" wait --timeout 60 "$MNT"
	# 50 files and 6 directory markers (tree/ and its five)
	assert_eq 56 "$(s3_keys tree/ | wc -l)" "keys under tree/"
	save_record
	python3 - "$T/record.json" "$BUCKET" <<'PY'
import json, sys
from urllib.parse import parse_qs

record = [r for r in json.load(open(sys.argv[1]))
          if r["bucket"] == sys.argv[2]]
put_at = {}
for r in record:
    if r["method"] == "PUT":
        put_at.setdefault(r["key"], r["t"])
lookups = []
for r in record:
    prefix = parse_qs(r["query"] or "").get("prefix", [""])[0]
    if r["method"] == "GET" and not r["key"] and prefix.startswith("tree/"):
        lookups.append("LIST " + prefix)
    elif (r["method"] == "HEAD" and r["key"].startswith("tree/")
          and r["t"] < put_at.get(r["key"], float("inf"))):
        lookups.append("HEAD " + r["key"])
print("namespace: lookups under the new tree: %s" % lookups)
# each of the 5 directories would cost a HEAD and a listing without it;
# one lapse of the 3 s listing memory on a slow machine costs two
assert len(lookups) <= 2, "lookups went to S3: %s" % lookups
PY
}

# rm then rmdir at once, on files already in S3 (their DELETE still
# queued), also in a directory just renamed: rmdir succeeds, and the
# bucket ends with nothing under either directory.
test_rmdir_after_rm()
{
	local d

	printf 'x\n' >"$T/x"
	blitfs_mount
	mkdir "$MNT/plain" "$MNT/before"
	cp "$T/x" "$MNT/plain/f.txt"
	cp "$T/x" "$MNT/before/f.txt"
	"$BLITFS" wait --timeout 60 "$MNT"
	mv "$MNT/before" "$MNT/after"
	"$BLITFS" wait --timeout 60 "$MNT"
	for d in plain after; do
		rm "$MNT/$d/f.txt"
		rmdir "$MNT/$d" 2>"$T/rmdir.err" ||
			fail "rmdir $d right after rm: $(cat "$T/rmdir.err")"
	done
	"$BLITFS" wait --timeout 60 "$MNT"
	assert_eq "" "$(s3_keys)" "keys left in the bucket"
}

# 20,000 objects in one directory, put through the S3 API; the mount lists
# them all (20 pages), and says how long a cold listing took.
test_listing_20k()
{
	local t0 n

	python3 - "$S3_ENDPOINT" "$BUCKET" <<'PY'
import sys
from concurrent.futures import ThreadPoolExecutor

import boto3

s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1")
bucket = sys.argv[2]

def put(i):
    s3.put_object(Bucket=bucket, Key="big/f%05d.jpg" % i, Body=b"x" * 64)

with ThreadPoolExecutor(16) as pool:
    list(pool.map(put, range(20000)))
PY
	blitfs_mount
	t0=$(date +%s.%N)
	n=$(ls -f "$MNT/big" | grep -cv '^\.\.\?$')
	echo "namespace: ls -f of 20,000 objects: $(secs "$t0" \
		"$(date +%s.%N)") s (cold)"
	assert_eq 20000 "$n" "names listed"
	t0=$(date +%s.%N)
	n=$(find "$MNT/big" -type f | wc -l)
	echo "namespace: find of 20,000 objects: $(secs "$t0" \
		"$(date +%s.%N)") s"
	assert_eq 20000 "$n" "files found"
}

# A copy above copy_cutoff goes in parts (UploadPartCopy): mv of a 12 MiB
# object with a 5 MiB cutoff keeps every byte.
test_rename_multipart()
{
	head -c $((12 * 1024 * 1024 + 17)) /dev/urandom >"$T/big"
	s3_put big.bin "$T/big"
	gw_mount '{}' "copy_cutoff=5242880,part_size=5242880"
	mv "$MNT/big.bin" "$MNT/moved.bin"
	assert_eq "$(md5_of "$T/big")" "$(s3_md5 moved.bin)" "moved.bin"
	s3_absent big.bin || fail "big.bin still there"
	assert_eq 3 "$(s3_head_field moved.bin ETag | sed 's/.*-//; s/"//')" \
		"parts in the copy's ETag"
	# server-side: no byte of the object went through the host
	save_record
	python3 - "$T/record.json" "$BUCKET" <<'PY'
import json, sys
rec = [r for r in json.load(open(sys.argv[1])) if r["bucket"] == sys.argv[2]]
gets = [r for r in rec if r["method"] == "GET" and r["key"] == "big.bin"]
parts = [r for r in rec if r["method"] == "PUT" and r["key"] == "moved.bin"]
print("namespace: rename of 12 MiB: %d part copies, %d body bytes sent, "
      "%d GETs" % (len(parts), sum(r["bytes_in"] for r in parts), len(gets)))
assert not gets, "the object was downloaded"
assert len(parts) == 3, "%d part requests, want 3" % len(parts)
assert all(r["bytes_in"] == 0 for r in parts), "a part carried the bytes"
PY
}

# A 64 MiB object only in S3 read through the mount streams in ranged
# GETs of growing windows (the gateway records each Range), the reader's
# first megabyte arriving before the rest is fetched; read again, it comes
# from the clean copy with no GET; overwritten by another tool, the next
# open sees the new bytes.
test_read_stream()
{
	head -c $((64 << 20)) /dev/urandom >"$T/big"
	head -c $((3 << 20)) /dev/urandom >"$T/new"
	s3_put big.bin "$T/big"
	gw_mount '{}'
	python3 - "$MNT/big.bin" "$(md5_of "$T/big")" <<'PY'
import hashlib, sys, time

path, want = sys.argv[1], sys.argv[2]
t0 = time.monotonic()
h = hashlib.md5()
with open(path, "rb") as f:
    first = f.read(1 << 20)
    t_first = time.monotonic() - t0
    h.update(first)
    while True:
        b = f.read(1 << 20)
        if not b:
            break
        h.update(b)
took = time.monotonic() - t0
print("namespace: 64 MiB read: first MiB after %.3f s, all after %.3f s "
      "(%.0f MiB/s)" % (t_first, took, 64 / took))
assert h.hexdigest() == want, "the bytes differ"
assert t_first < took / 4, "the first MiB waited for the whole object"
PY
	save_record
	python3 - "$T/record.json" "$BUCKET" <<'PY'
import json, re, sys

gets = [r for r in json.load(open(sys.argv[1]))
        if r["bucket"] == sys.argv[2] and r["key"] == "big.bin"
        and r["method"] == "GET"]
spans = []
for r in gets:
    m = re.fullmatch(r"bytes=(\d+)-(\d+)", r["range"] or "")
    assert m, "a GET without a range: %r" % r["range"]
    spans.append(int(m.group(2)) - int(m.group(1)) + 1)
print("namespace: GET windows (MiB): %s" % [s >> 20 for s in spans])
assert spans[0] == 1 << 20, "the first window is not 1 MiB"
assert max(spans) <= 16 << 20, "a window above 16 MiB"
assert sum(spans) == 64 << 20, "the windows do not cover the object once"
PY
	cmp "$T/big" "$MNT/big.bin"
	# 1 + 2 + 4 + 8 + 16 + 16 + 16 + 1 MiB: eight GETs, none more
	save_record
	assert_eq 8 "$(python3 -c 'import json, sys
print(sum(1 for r in json.load(open(sys.argv[1]))
          if r["key"] == "big.bin" and r["method"] == "GET"))' \
		"$T/record.json")" "GETs after reading the clean copy again"
	s3_put big.bin "$T/new"
	others_wrote
	cmp "$T/new" "$MNT/big.bin"
}

# kill -9 in the middle of a directory rename (writes held to 4 a
# second, two per key): the next mount on the same cache finishes the
# move from its journal, and every object ends under the new name.
test_rename_dir_resume()
{
	local cache i left mv_pid

	for ((i = 0; i < 30; i++)); do
		printf 'file %d\n' "$i" >"$T/f$i"
		s3_put "from/f$i.txt" "$T/f$i"
	done
	cache=$T/cache.resume
	gw_mount '{}' "cache_dir=$cache,write_rate=4"
	mv "$MNT/from" "$MNT/to" 2>/dev/null &
	mv_pid=$!
	sleep 4
	kill -KILL "$BLITFS_PID"
	wait "$BLITFS_PID" 2>/dev/null || true
	BLITFS_PID=
	fusermount3 -uz "$MNT"
	wait "$mv_pid" || true
	left=$(s3_keys from/ | wc -l)
	echo "namespace: killed with $left of 30 keys not moved yet"
	((left > 0 && left < 30)) || fail "the kill came at no mid-point ($left)"

	BLITFS_SERVER_OPTS="endpoint=$GATEWAY_URL,region=us-east-1,path_style" \
		blitfs_mount "cache_dir=$cache,write_rate=100"
	grep -q "finishing the move" "$BLITFS_LOG" ||
		fail "the mount did not resume the move"
	assert_eq "" "$(s3_keys from/)" "keys left under from/"
	assert_eq 30 "$(s3_keys to/ | wc -l)" "keys under to/"
	for ((i = 0; i < 30; i++)); do
		assert_eq "file $i" "$(cat "$MNT/to/f$i.txt")" "to/f$i.txt"
	done
}

e2e_test behaviours 600 moto
e2e_test metadata_remount 120 moto
e2e_test rsync_twice 600 moto
e2e_test cp_new_tree 120 moto
e2e_test rmdir_after_rm 120 moto
e2e_test listing_20k 600 moto
e2e_test rename_multipart 180 moto
e2e_test read_stream 300 moto
e2e_test rename_dir_resume 300 moto

[[ ${BASH_SOURCE[0]} != "$0" ]] || e2e_main "$@"
