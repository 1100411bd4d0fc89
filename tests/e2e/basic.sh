#!/usr/bin/env bash
#
# basic.sh - end-to-end cases on a real mount: what ordinary tools do to
# files under the mount must show in the bucket as the aws CLI sees it,
# byte for byte, and what others put in the bucket must read back the same.
#
# Exercises fs/ (the FUSE operations, path<->key mapping, listing), cache/
# (staging, the upload queue) and s3/ (signing, requests) together.
#
#   tests/e2e/basic.sh [TEST...]      BLITFS=... E2E_SERVER=moto|s3rver
#
# It starts its own server unless S3_ENDPOINT is set (tests/run.sh does).
# Server gaps (README, "Limitations") are worked around here or in
# tests/servers.sh, each with its reason next to it; blitfs is never asked
# to bend to them.

# `ls` is what the cases are about, and no name here holds a newline.
# shellcheck disable=SC2012
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

MATE=/usr/share/backgrounds/mate
EMPTY_MD5=d41d8cd98f00b204e9800998ecf8427e

# A handful of real photographs and PNG artwork, a few MB in all.
some_images()
{
	find "$MATE/nature" -name '*.jpg' | sort | head -n 5
	find "$MATE/abstract" -name '*.png' | sort | head -n 3
}

# The names the round trips use: every character here is one that S3
# clients must percent-encode (or that URLs treat specially), plus one
# literal "%41" that must not turn into "A" on the way.
NAMES=(
	"with space.txt"
	"plus+sign.txt"
	"per%cent.txt"
	"pct%41literal.txt"
	"hash#tag.txt"
	"quest?ion.txt"
	"amp&and.txt"
	"eq=ual.txt"
	"it's \"quoted\".txt"
	"café.txt"
	"日本語.txt"
	"all a+b%c#d?e&f=g é 日本語.txt"
)
NAMES_DIR="sub dir é+&"

# (moto checks these requests' signatures only because servers.sh mends
# its canonical request; its own refuses them all, see there.)

sorted_lines()
{
	LC_ALL=C sort
}

# cp of real images: the bucket gets the same bytes, and so do readers.
test_cp_images()
{
	local imgs f

	mapfile -t imgs < <(some_images)
	blitfs_mount
	cp "${imgs[@]}" "$MNT/"
	mkdir "$T/want"
	cp "${imgs[@]}" "$T/want/"
	wait_tree "$T/want" "" 120
	for f in "${imgs[@]}"; do
		cmp "$f" "$MNT/${f##*/}"
	done
}

# mkdir -p and a copy into the deepest directory; the tree is still there
# after a remount with an empty cache, i.e. as the bucket tells it.
test_nested_dirs()
{
	local img=$MATE/nature/Garden.jpg

	blitfs_mount
	mkdir -p "$MNT/a/b/c"
	cp "$img" "$MNT/a/b/c/x.jpg"
	wait_object a/b/c/x.jpg "$(md5_of "$img")" 120
	s3_keys a/ | grep -x 'a/b/c/x.jpg' >/dev/null
	blitfs_umount
	blitfs_mount
	[[ -d $MNT/a/b/c ]] || fail "a/b/c is no directory after remount"
	assert_eq x.jpg "$(ls "$MNT/a/b/c")" "listing of a/b/c"
	cmp "$img" "$MNT/a/b/c/x.jpg"
}

# Special names written through the mount land under exactly that key.
test_names_to_bucket()
{
	local n want

	blitfs_mount
	mkdir "$MNT/$NAMES_DIR" "$T/want" "$T/want/$NAMES_DIR"
	for n in "${NAMES[@]}"; do
		printf '%s\n' "$n" >"$MNT/$n"
		printf '%s\n' "$n" >"$MNT/$NAMES_DIR/$n"
		printf '%s\n' "$n" >"$T/want/$n"
		printf '%s\n' "$n" >"$T/want/$NAMES_DIR/$n"
	done
	wait_tree "$T/want" "" 120
	# Exactly these keys: nothing double-encoded beside them.  The
	# directory's marker may or may not be there.
	want=$(for n in "${NAMES[@]}"; do
		echo "$n"
		echo "$NAMES_DIR/$n"
	done | sorted_lines)
	assert_eq "$want" "$(s3_keys | grep -vx "$NAMES_DIR/" | sorted_lines)" \
		"keys in the bucket"
}

# Special names put by the aws CLI list and read the same through the mount.
# One `aws s3 cp --recursive` of a local tree with those names puts them.
test_names_from_bucket()
{
	local n want

	mkdir -p "$T/up/$NAMES_DIR"
	for n in "${NAMES[@]}"; do
		printf '%s\n' "$n" >"$T/up/$n"
		printf '%s\n' "$n" >"$T/up/$NAMES_DIR/$n"
	done
	s3cli cp --recursive --quiet "$T/up" "s3://$BUCKET/"
	want=$(for n in "${NAMES[@]}"; do
		echo "$n"
		echo "$NAMES_DIR/$n"
	done | sorted_lines)
	assert_eq "$want" "$(s3_keys | sorted_lines)" "keys the aws CLI put"
	blitfs_mount
	assert_eq "$(printf '%s\n' "${NAMES[@]}" "$NAMES_DIR" | sorted_lines)" \
		"$(ls -1 "$MNT" | sorted_lines)" "listing of the root"
	assert_eq "$(printf '%s\n' "${NAMES[@]}" | sorted_lines)" \
		"$(ls -1 "$MNT/$NAMES_DIR" | sorted_lines)" "listing of the subdir"
	for n in "${NAMES[@]}"; do
		assert_eq "$n" "$(cat "$MNT/$n")" "contents of '$n'"
		assert_eq "$n" "$(cat "$MNT/$NAMES_DIR/$n")" \
			"contents of '$NAMES_DIR/$n'"
	done
}

# A zero-byte file becomes an object of size 0, whether made by a
# redirect (create) or by touch.
test_zero_byte()
{
	blitfs_mount
	: >"$MNT/empty.bin"
	touch "$MNT/touched.bin"
	wait_object empty.bin "$EMPTY_MD5"
	wait_object touched.bin "$EMPTY_MD5"
	assert_eq 0 "$(s3api head-object --bucket "$BUCKET" --key empty.bin \
		--query ContentLength --output text)" "ContentLength"
	assert_eq 0 "$(stat -c %s "$MNT/empty.bin")" "size in the mount"
}

# Overwrites: larger, then smaller; and five quick rewrites that must end
# as the last one, never an older one.
test_overwrite()
{
	local i

	blitfs_mount
	printf 'version one\n' >"$MNT/f.txt"
	wait_object f.txt "$(printf 'version one\n' | md5sum | cut -c1-32)"
	head -c 300000 /dev/urandom >"$T/v2"
	cp "$T/v2" "$MNT/f.txt"
	wait_object f.txt "$(md5_of "$T/v2")"
	cmp "$T/v2" "$MNT/f.txt"
	printf 'v3\n' >"$MNT/f.txt"
	wait_object f.txt "$(printf 'v3\n' | md5sum | cut -c1-32)"
	for i in 1 2 3 4 5; do
		printf 'rapid %d\n' "$i" >"$MNT/f.txt"
	done
	wait_object f.txt "$(printf 'rapid 5\n' | md5sum | cut -c1-32)"
	# Nothing older may land after it.
	sleep 3
	assert_eq "$(printf 'rapid 5\n' | md5sum | cut -c1-32)" \
		"$(s3_md5 f.txt)" "f.txt 3 s after it showed its last version"
	assert_eq "rapid 5" "$(cat "$MNT/f.txt")" "f.txt read through the mount"
}

# rm removes the key; a file removed before its upload never shows.
test_unlink()
{
	blitfs_mount
	printf 'doomed\n' >"$MNT/gone.txt"
	wait_object gone.txt "$(printf 'doomed\n' | md5sum | cut -c1-32)"
	rm "$MNT/gone.txt"
	[[ ! -e $MNT/gone.txt ]] || fail "gone.txt still in the mount"
	wait_absent gone.txt
	printf 'brief\n' >"$MNT/brief.txt"
	rm "$MNT/brief.txt"
	printf 'kept\n' >"$MNT/kept.txt"
	wait_object kept.txt "$(printf 'kept\n' | md5sum | cut -c1-32)"
	wait_absent brief.txt 20
	assert_eq kept.txt "$(ls -1 "$MNT")" "listing after the removals"
}

# mkdir writes the dir/ marker, rmdir of an empty directory removes it,
# rmdir of a non-empty one fails with ENOTEMPTY, whether its content was
# written through the mount or is only in the bucket.
test_mkdir_rmdir()
{
	local out i

	blitfs_mount
	mkdir "$MNT/d"
	wait_object d/ "$EMPTY_MD5"
	rmdir "$MNT/d"
	wait_absent d/
	[[ ! -e $MNT/d ]] || fail "d still in the mount"

	mkdir "$MNT/e"
	printf 'x\n' >"$MNT/e/x.txt"
	if out=$(rmdir "$MNT/e" 2>&1); then
		fail "rmdir of non-empty e succeeded"
	fi
	[[ $out == *"Directory not empty"* ]] ||
		fail "rmdir e: want ENOTEMPTY, got: $out"
	[[ -f $MNT/e/x.txt ]] || fail "e/x.txt gone after the failed rmdir"

	s3api put-object --bucket "$BUCKET" --key f/y.txt --body "$T/empty" \
		>/dev/null
	# Listings are remembered for a few seconds (README, "How it works"):
	# a key another client adds shows within that time, not at once.
	for ((i = 0; i < 50; i++)); do
		[[ ! -d $MNT/f ]] || break
		sleep 0.1
	done
	[[ -d $MNT/f ]] || fail "f/ (only in the bucket) is no directory"
	if out=$(rmdir "$MNT/f" 2>&1); then
		fail "rmdir of f (non-empty in the bucket) succeeded"
	fi
	[[ $out == *"Directory not empty"* ]] ||
		fail "rmdir f: want ENOTEMPTY, got: $out"
	wait_object e/x.txt "$(printf 'x\n' | md5sum | cut -c1-32)"
	s3_etag f/y.txt >/dev/null || fail "f/y.txt gone from the bucket"
}

# 100 MiB of random bytes written by dd (1 MiB writes) into the mount; the
# reference MD5 is taken from the same stream.  Then read back after a
# remount with an empty cache, so the bytes come from the bucket.
test_big_file()
{
	local want i

	blitfs_mount
	dd if=/dev/urandom bs=1M count=100 iflag=fullblock status=none |
		tee >(md5sum | cut -c1-32 >"$T/big.md5") |
		dd of="$MNT/big.bin" bs=1M iflag=fullblock status=none
	for ((i = 0; i < 100; i++)); do
		[[ -s $T/big.md5 ]] && break
		sleep 0.1
	done
	want=$(cat "$T/big.md5")
	assert_eq 104857600 "$(stat -c %s "$MNT/big.bin")" "size in the mount"
	wait_object big.bin "$want" 600
	blitfs_umount
	blitfs_mount
	assert_eq "$want" "$(md5sum <"$MNT/big.bin" | cut -c1-32)" \
		"md5 read back through a fresh mount"
}

# A directory of 2,000 objects lists whole: S3 pages hold at most 1,000
# keys, so this takes continuation.  (s3rver pages only because servers.sh
# gives its Node the legacy OpenSSL provider; see s3rver_start.)
test_listing_many()
{
	local n=2000 i

	mkdir "$T/many"
	for ((i = 0; i < n; i++)); do
		printf '%d\n' "$i" >"$T/many/$(printf 'f%04d.txt' "$i")"
	done
	s3cli cp --recursive --quiet "$T/many" "s3://$BUCKET/many/"
	assert_eq "$n" "$(s3_keys many/ | wc -l)" "keys put by the aws CLI"
	blitfs_mount
	assert_eq "$n" "$(ls "$MNT/many" | wc -l)" "ls many | wc -l"
	for i in 0 1 $((n / 2)) $((n - 2)) $((n - 1)); do
		assert_eq "$i" "$(cat "$MNT/many/$(printf 'f%04d.txt' "$i")")" \
			"contents of many/f$i"
	done
}

# Reading a file that is closed but not uploaded gives the local bytes.
# The server is paused (SIGSTOP) between the open, whose lookup may ask it,
# and the close, so the upload cannot happen; the read barrier waits its
# bounded time (the read wait, 10 s by default) and then serves the staged
# bytes.  Resumed, the server gets the upload.
test_read_staged()
{
	local t0 took

	[[ -n ${SERVER_PID:-} ]] || fail "no SERVER_PID: cannot pause the server"
	head -c 200000 /dev/urandom >"$T/src"
	blitfs_mount
	exec 3>"$MNT/staged.bin"
	kill -STOP "$SERVER_PID"
	cat "$T/src" >&3
	exec 3>&-
	t0=$SECONDS
	timeout --foreground 60 cat "$MNT/staged.bin" >"$T/back" ||
		fail "reading staged.bin with the server paused failed"
	took=$((SECONDS - t0))
	echo "read took $took s with the server paused"
	kill -CONT "$SERVER_PID"
	cmp "$T/src" "$T/back"
	((took <= 25)) || fail "the read waited ${took}s; the read wait is 10 s"
	wait_object staged.bin "$(md5_of "$T/src")" 120
}

# Content-Type follows the extension.
test_content_type()
{
	local -A want=([photo.jpg]=image/jpeg [art.png]=image/png
		[pic.webp]=image/webp [drawing.svg]=image/svg+xml)
	local k

	convert "$MATE/nature/Aqua.jpg" -resize 64x64 "$T/pic.webp"
	cat >"$T/drawing.svg" <<'SVG'
<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10" fill="teal"/></svg>
SVG
	blitfs_mount
	cp "$MATE/nature/Aqua.jpg" "$MNT/photo.jpg"
	cp "$MATE/abstract/Spring.png" "$MNT/art.png"
	cp "$T/pic.webp" "$T/drawing.svg" "$MNT/"
	wait_object photo.jpg "$(md5_of "$MATE/nature/Aqua.jpg")"
	wait_object art.png "$(md5_of "$MATE/abstract/Spring.png")"
	wait_object pic.webp "$(md5_of "$T/pic.webp")"
	wait_object drawing.svg "$(md5_of "$T/drawing.svg")"
	for k in "${!want[@]}"; do
		assert_eq "${want[$k]}" "$(s3api head-object --bucket "$BUCKET" \
			--key "$k" --query ContentType --output text)" \
			"Content-Type of $k"
	done
}

# BUCKET:PREFIX mounts the prefix: writes land under it, keys beside it
# stay out of sight.
test_prefix_mount()
{
	s3api put-object --bucket "$BUCKET" --key outside.txt --body "$T/empty" \
		>/dev/null
	s3api put-object --bucket "$BUCKET" --key sub/dir/inside.txt \
		--body "$T/empty" >/dev/null
	MOUNT_SPEC=$BUCKET:sub/dir blitfs_mount
	printf 'hi\n' >"$MNT/new.txt"
	wait_object sub/dir/new.txt "$(printf 'hi\n' | md5sum | cut -c1-32)"
	assert_eq "$(printf 'inside.txt\nnew.txt')" "$(ls -1 "$MNT" | sorted_lines)" \
		"listing of the prefix mount"
}

# Virtual-hosted-style addressing (no path_style): the bucket goes in the
# host name, BUCKET.localhost, which curl resolves to the loopback by
# itself.  moto's request log shows paths without the bucket, and the
# aws CLI (path-style) finds the object.
test_virtual_hosted()
{
	local port=${S3_ENDPOINT##*:}

	BLITFS_SERVER_OPTS="endpoint=http://localhost:$port,region=us-east-1" \
		blitfs_mount
	printf 'hi\n' >"$MNT/vh.txt"
	wait_object vh.txt "$(printf 'hi\n' | md5sum | cut -c1-32)"
	assert_eq hi "$(cat "$MNT/vh.txt")" "read back through the mount"
	[[ -n $SERVER_LOG ]] || fail "no server log to look in"
	grep -F '"PUT /vh.txt HTTP' "$SERVER_LOG" >/dev/null ||
		fail "no PUT of /vh.txt with the bucket in the host name"
	if grep -F "\"PUT /$BUCKET/vh.txt HTTP" "$SERVER_LOG" >/dev/null; then
		fail "a path-style PUT was sent"
	fi
}

# Mount-time errors: non-zero exit, exactly one line on stderr that names
# what is wrong, nothing mounted (blitfs_try_mount checks that).
mount_error_case()
{
	local what=$1 spec=$2 endpoint=$3 must=$4 lines

	blitfs_try_mount "$spec" \
		"endpoint=$endpoint,region=us-east-1,path_style,cache_dir=$T/cache"
	echo "$what: exit $TRY_RC, stderr: $TRY_ERR"
	((TRY_RC != 0)) || fail "$what: blitfs exited 0"
	((TRY_RC != 124 && TRY_RC != 137)) ||
		fail "$what: blitfs still running after ${E2E_TRY_WAIT:-60}s"
	lines=$(printf '%s\n' "$TRY_ERR" | grep -c .) || true
	assert_eq 1 "$lines" "$what: lines on stderr"
	[[ $TRY_ERR == *"$must"* ]] || fail "$what: stderr does not name '$must'"
}

test_error_missing_bucket()
{
	local b=no-such-bucket-$E2E_RUN_ID

	mount_error_case "missing bucket" "$b" "$S3_ENDPOINT" "$b"
}

# moto only: s3rver does not check SigV4 signatures at all.
test_error_wrong_secret()
{
	AWS_SECRET_ACCESS_KEY=not-the-secret \
		mount_error_case "wrong secret" "$BUCKET" "$S3_ENDPOINT" "$BUCKET"
}

# Both servers refuse a key id they do not know.
test_error_unknown_key()
{
	AWS_ACCESS_KEY_ID=AKIANOSUCHKEY0000000 \
		mount_error_case "unknown key" "$BUCKET" "$S3_ENDPOINT" "$BUCKET"
}

test_error_unreachable()
{
	local port

	port=$(free_port)
	mount_error_case "unreachable endpoint" "$BUCKET" \
		"http://127.0.0.1:$port" "127.0.0.1:$port"
}

# A newline is a byte a file name may hold, and so a key: written through
# the mount, listed by the aws CLI, read back.  (s3rver only: moto's
# server answers 404 to any key holding a newline.)
test_newline_name()
{
	local n

	n=$(printf 'new\nline.txt')
	blitfs_mount
	printf 'nl\n' >"$MNT/$n"
	wait_object "$n" "$(printf 'nl\n' | md5sum | cut -c1-32)" 60
	assert_eq "$(printf '["%s"]' 'new\nline.txt')" \
		"$(s3api list-objects-v2 --bucket "$BUCKET" \
			--query 'Contents[].Key' --output json | tr -d ' \n')" \
		"keys in the bucket"
	blitfs_umount
	blitfs_mount
	assert_eq nl "$(cat "$MNT/$n")" "read back after a remount"
}

e2e_test cp_images 240
e2e_test newline_name 120 s3rver
e2e_test nested_dirs 180
e2e_test names_to_bucket 240
e2e_test names_from_bucket 180
e2e_test zero_byte 120
e2e_test overwrite 240
e2e_test unlink 180
e2e_test mkdir_rmdir 180
e2e_test big_file 900
e2e_test listing_many 300
e2e_test read_staged 240
e2e_test content_type 180
e2e_test prefix_mount 120
e2e_test virtual_hosted 120 moto
e2e_test error_missing_bucket 90
e2e_test error_wrong_secret 90 moto
e2e_test error_unknown_key 90
e2e_test error_unreachable 90

[[ ${BASH_SOURCE[0]} != "$0" ]] || e2e_main "$@"
