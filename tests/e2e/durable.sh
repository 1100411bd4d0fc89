#!/usr/bin/env bash
#
# durable.sh - nothing that was closed is ever lost.  The daemon is killed
# with -9 while its queue is full, S3 goes away for a minute, the cache
# sits on a small tmpfs, and ordinary tools rename, overwrite and unlink
# files on their way up; the bucket (read with the aws CLI, straight from
# the server) must end as a local disk would.
#
# Exercises cache/ (journal, recovery, settle delay, rename, eviction and
# back-pressure, FAILED and retry) with fs/ and s3/.
#
#   tests/e2e/durable.sh [TEST...]      BLITFS=...
#
# Runs on moto only: the cases drive the gateway in front of the server
# and some count requests.  Each case prints its measurements (lines
# starting "durable:").

# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# shellcheck source-path=SCRIPTDIR source=../gateway/gateway.sh
source "$(dirname "${BASH_SOURCE[0]}")/../gateway/gateway.sh"

MATE=/usr/share/backgrounds/mate

# make_thumbs DIR N: N distinct small JPEGs made from the photographs,
# each source decoded once and written at many sizes.
make_thumbs()
{
	local out=$1 n=$2 per

	mkdir -p "$out"
	find "$MATE" -name '*.jpg' | sort >"$T/sources"
	per=$(((n + $(wc -l <"$T/sources") - 1) / $(wc -l <"$T/sources")))
	export MAGICK_THREAD_LIMIT=1
	awk -v per="$per" -v out="$out" '{
		cmd = $0 " -resize 360x360"
		for (i = 0; i < per; i++)
			cmd = cmd sprintf(" ( +clone -resize %dx -quality %d " \
				"-write %s/t%02d-%03d.jpg +delete )",
				120 + i * 9, 70 + i % 25, out, NR, i)
		print "-define jpeg:size=720x720 " cmd " null:"
	}' "$T/sources" | xargs -P2 -L1 convert
	find "$out" -name '*.jpg' | sort | tail -n +$((n + 1)) | xargs -r rm
	assert_eq "$n" "$(find "$out" -name '*.jpg' | wc -l)" "thumbnails made"
}

# Every file of DIR is in the bucket under its name with its MD5 as ETag
# (single-part uploads: S3's ETag is then the MD5), and nothing else is.
check_bucket_is()
{
	local dir=$1

	(cd "$dir" && md5sum -- *) | awk '{ print $2, $1 }' | sort >"$T/want"
	s3api list-objects-v2 --bucket "$BUCKET" \
		--query 'Contents[].[Key, ETag]' --output text |
		tr -d '"' | awk '{ print $1, $2 }' | sort >"$T/have"
	if ! cmp -s "$T/want" "$T/have"; then
		diff "$T/want" "$T/have" | head -n 10 >&2
		fail "the bucket differs from $dir"
	fi
}

# kill -9 with 1,000 images queued (writes held to 5 a second), then a
# mount on the same cache: all land byte-exact, no temporary names, and
# no file is uploaded again once S3 had confirmed it.
test_kill9_1000()
{
	local cache t0 t1

	make_thumbs "$T/img" 1000
	cache=$T/cache.kill9
	gw_mount '{}' "cache_dir=$cache,write_rate=5"
	t0=$(date +%s.%N)
	cp "$T"/img/*.jpg "$MNT/"
	t1=$(date +%s.%N)
	echo "durable: cp of 1000 images returned in $(secs "$t0" "$t1") s"
	sleep 3
	kill -KILL "$BLITFS_PID"
	wait "$BLITFS_PID" 2>/dev/null || true
	BLITFS_PID=
	fusermount3 -uz "$MNT"
	echo "durable: killed with $(s3api list-objects-v2 --bucket "$BUCKET" \
		--query 'length(Contents || `[]`)' --output text) of 1000" \
		"in the bucket"

	BLITFS_SERVER_OPTS="endpoint=$GATEWAY_URL,region=us-east-1,path_style" \
		blitfs_mount "cache_dir=$cache,write_rate=200"
	grep -o 'recovered [0-9]* versions.*' "$BLITFS_LOG" | tail -n 1
	wait_count 1000 300
	check_bucket_is "$T/img"
	gateway_record >"$T/record.json"
	python3 - "$T/record.json" "$BUCKET" <<'PY'
import collections, json, sys

record, bucket = sys.argv[1], sys.argv[2]
ok = collections.Counter(r["key"] for r in json.load(open(record))
                         if r["bucket"] == bucket and r["method"] == "PUT"
                         and r["status"] == 200)
twice = [k for k, n in ok.items() if n > 1]
print("durable: %d keys PUT twice with success (in flight at the kill)"
      % len(twice))
# Only uploads in flight when the daemon died can be sent again: S3 may
# have stored them without blitfs hearing so.  8 workers at most.
assert len(twice) <= 8, "re-uploaded after confirmation: %s" % twice[:10]
PY
}

# S3 unreachable for 60 s while 200 files are written: every write and
# close succeeds at local speed; all 200 land once S3 is back.
test_outage_60()
{
	local t0 t1

	make_thumbs "$T/img" 200
	gw_mount '{}' "failed_retry=5"
	gateway_scenario '{"down": true}'	# after the mount's own check
	t0=$(date +%s.%N)
	cp "$T"/img/*.jpg "$MNT/"
	t1=$(date +%s.%N)
	echo "durable: cp of 200 images with S3 down took $(secs "$t0" "$t1") s"
	awk -v s="$(secs "$t0" "$t1")" 'BEGIN { exit !(s < 10) }' ||
		fail "writes waited for S3"
	sleep $((60 - ${t1%.*} + ${t0%.*}))
	gateway_scenario '{}'
	t0=$(date +%s.%N)
	wait_count 200 180
	echo "durable: all 200 landed $(secs "$t0" "$(date +%s.%N)") s after" \
		"S3 came back"
	check_bucket_is "$T/img"
}

# A cache on a small tmpfs: writers wait for uploads when cache_size is
# reached, rather than fail; only a truly full disk gives ENOSPC, and
# every file that closed lands.
test_small_tmpfs()
{
	local fs=$T/tmpfs i

	mkdir -p "$fs" "$T/img"
	mount -t tmpfs -o size=48m tmpfs "$fs"
	for ((i = 0; i < 24; i++)); do
		head -c 2097152 /dev/urandom >"$T/img/big$i.jpg"
	done
	gw_mount '{}' "cache_dir=$fs/cache,cache_size=16M,write_rate=4"
	cp "$T"/img/*.jpg "$MNT/"
	grep -q 'writer waits for uploads' "$BLITFS_LOG" ||
		fail "no back-pressure although 48 MiB went through 16 MiB"
	wait_count 24 120
	check_bucket_is "$T/img"

	# Past cache_size the disk itself fills: then, and only then, ENOSPC.
	blitfs_umount
	BLITFS_SERVER_OPTS="endpoint=$GATEWAY_URL,region=us-east-1,path_style" \
		blitfs_mount "cache_dir=$fs/cache2,cache_size=1G"
	gateway_scenario '{"down": true}'	# nothing leaves the cache
	# (A shell redirection truncates: while S3 is away, an open that
	# would keep old bytes is refused, see README "Limitations".)
	if head -c 67108864 /dev/zero 2>"$T/dd.err" >"$MNT/huge.bin"; then
		fail "64 MiB fit on a 48 MiB tmpfs"
	fi
	grep -q 'No space left' "$T/dd.err" || fail "write: $(cat "$T/dd.err")"
	echo "durable: full disk: $(tail -n 1 "$T/dd.err")"
	rm -f "$MNT/huge.bin"
	blitfs_umount
	umount "$fs"
}

# The settle delay and rename: ImageMagick through a temporary name, mv
# within the mount, an overwrite while the first version uploads, and an
# unlink of a queued file; the bucket ends as a local disk would.
test_tools()
{
	gw_mount '{"delay_ms": 1500}' "upload_delay=1000"
	convert "$MATE/nature/Aqua.jpg" -resize 300x "$MNT/.out.jpg.tmp"
	mv "$MNT/.out.jpg.tmp" "$MNT/out.jpg"
	convert "$MATE/nature/Aqua.jpg" -resize 300x "$T/out.jpg"

	head -c 3000000 /dev/urandom >"$T/v1"
	head -c 3000000 /dev/urandom >"$T/v2"
	cp "$T/v1" "$MNT/over.bin"
	sleep 2	# past the settle delay: v1's PUT is under way (1.5 s slow)
	cp "$T/v2" "$MNT/over.bin"

	echo queued >"$MNT/gone.txt"
	rm "$MNT/gone.txt"

	echo first >"$MNT/moved.txt"
	wait_object moved.txt "$(echo first | md5sum | cut -c1-32)" 30
	mv "$MNT/moved.txt" "$MNT/renamed.txt"

	wait_object out.jpg "$(md5_of "$T/out.jpg")" 30
	wait_object over.bin "$(md5_of "$T/v2")" 60
	wait_object renamed.txt "$(echo first | md5sum | cut -c1-32)" 30
	wait_absent moved.txt 30
	s3_keys | sort >"$T/keys"
	assert_eq "out.jpg over.bin renamed.txt" "$(tr '\n' ' ' <"$T/keys" |
		sed 's/ $//')" "keys in the bucket"
	gateway_record >"$T/record.json"
	python3 - "$T/record.json" "$BUCKET" <<'PY'
import json, sys

puts = [r["key"] for r in json.load(open(sys.argv[1]))
        if r["bucket"] == sys.argv[2] and r["method"] == "PUT"
        and r["key"] in (".out.jpg.tmp", "gone.txt", "moved.txt.tmp")]
assert not puts, "uploaded although renamed or unlinked first: %s" % puts
PY
}

# Appending to an object that is only in S3 fetches it first; truncate
# works on it too.
test_remote_append()
{
	printf 'first line\n' >"$T/obj"
	s3api put-object --bucket "$BUCKET" --key log.txt --body "$T/obj" \
		>/dev/null
	blitfs_mount
	printf 'second line\n' >>"$MNT/log.txt"
	printf 'first line\nsecond line\n' >"$T/want"
	wait_object log.txt "$(md5_of "$T/want")" 30
	truncate -s 5 "$MNT/log.txt"
	wait_object log.txt "$(printf 'first' | md5sum | cut -c1-32)" 30
}

# A second blitfs on the same cache directory is refused with a clear
# error; the cache is private to its user.
test_cache_exclusive()
{
	local cache=$T/cache.one mnt2=$T/mnt2

	blitfs_mount "cache_dir=$cache"
	echo hello >"$MNT/a.txt"
	mkdir -p "$mnt2"
	if "$BLITFS" -o "endpoint=$S3_ENDPOINT,path_style,cache_dir=$cache" \
		"$BUCKET" "$mnt2" 2>"$T/second.err"; then
		fusermount3 -u "$mnt2"
		fail "a second mount of the same cache directory started"
	fi
	grep -q "in use by another blitfs (pid $BLITFS_PID)" "$T/second.err" ||
		fail "second mount said: $(cat "$T/second.err")"
	assert_eq 700 "$(stat -c %a "$cache")" "cache directory mode"
	assert_eq 700 "$(stat -c %a "$cache/staging")" "staging mode"
	assert_eq 600 "$(stat -c %a "$cache/journal.db")" "journal mode"
	find "$cache/staging" -type f -printf '%m\n' | sort -u >"$T/modes"
	assert_eq 600 "$(cat "$T/modes")" "staging file modes"
}

# A bucket that refuses writes: the file is FAILED with a readable error,
# its bytes stay; once allowed, setfattr user.blitfs.retry uploads it.
test_failed_retry()
{
	local state='' i

	gw_mount '{}' "upload_delay=2000"
	cp "$MATE/nature/Aqua.jpg" "$MNT/a.jpg"
	gateway_scenario "{\"forbidden_buckets\": [\"$BUCKET\"]}"
	for ((i = 0; i < 40; i++)); do
		state=$(getfattr --only-values -n user.blitfs.state "$MNT/a.jpg")
		[[ $state != FAILED ]] || break
		sleep 0.25
	done
	assert_eq FAILED "$state" state
	getfattr --only-values -n user.blitfs.error "$MNT/a.jpg" >"$T/error"
	grep -q AccessDenied "$T/error" || fail "error: $(cat "$T/error")"
	echo "durable: user.blitfs.error: $(cat "$T/error")"
	gateway_scenario '{}'
	setfattr -n user.blitfs.retry -v 1 "$MNT/a.jpg"
	wait_object a.jpg "$(md5_of "$MATE/nature/Aqua.jpg")" 30
}

# fsync with fsync_upload returns once S3 has the bytes written so far.
test_fsync_upload()
{
	blitfs_mount "fsync_upload=1,upload_delay=5000"
	python3 - "$MNT/synced.bin" "$T/synced.bin" <<'PY'
import os, sys

data = os.urandom(500000)
open(sys.argv[2], "wb").write(data)
with open(sys.argv[1], "wb") as f:
    f.write(data)
    f.flush()
    os.fsync(f.fileno())
PY
	assert_eq "$(md5_of "$T/synced.bin")" "$(s3_md5 synced.bin)" \
		"object right after fsync"
}

# Unmount gives the queue drain_timeout seconds, says how many remain,
# and the next mount uploads them.
test_unmount_drain()
{
	local cache=$T/cache.drain

	make_thumbs "$T/img" 20
	gw_mount '{}' "cache_dir=$cache,write_rate=2,drain_timeout=2"
	cp "$T"/img/*.jpg "$MNT/"
	blitfs_umount
	grep -o 'versions not uploaded yet.*' "$BLITFS_LOG" ||
		fail "unmount did not say what remains"
	BLITFS_SERVER_OPTS="endpoint=$GATEWAY_URL,region=us-east-1,path_style" \
		blitfs_mount "cache_dir=$cache"
	wait_count 20 60
	check_bucket_is "$T/img"
}

# Recovery time for a journal of 100,000 queued versions.
test_recover_100k()
{
	local cache=$T/cache.big

	mkdir -p "$cache/staging"
	chmod 700 "$cache" "$cache/staging"
	python3 - "$cache" <<'PY'
import os, sqlite3, sys

cache = sys.argv[1]
db = sqlite3.connect(os.path.join(cache, "journal.db"))
db.execute("PRAGMA journal_mode=WAL")
db.execute("CREATE TABLE versions (key TEXT PRIMARY KEY NOT NULL,"
           " version INTEGER NOT NULL, file_id INTEGER NOT NULL,"
           " deleted INTEGER NOT NULL, state TEXT NOT NULL, error TEXT,"
           " upload_id TEXT, etag TEXT, postback TEXT,"
           " updated REAL NOT NULL)")
rows = []
for i in range(1, 100001):
    name = "%016x" % i
    open(os.path.join(cache, "staging", name), "wb").write(b"x")
    rows.append(("k/%06d" % i, 1, i, 0, "QUEUED", None, None, None, None, 0))
db.executemany("INSERT INTO versions VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
db.commit()
PY
	# No writes get through: the queue stays as recovered.
	gw_mount '{"write_rate": 0.001, "write_burst": 0}' \
		"cache_dir=$cache,drain_timeout=0"
	grep -o 'recovered 100000 versions.*' "$BLITFS_LOG" ||
		fail "recovery line missing: $(grep recovered "$BLITFS_LOG")"
	local ms
	ms=$(grep -o 'journal in [0-9]* ms' "$BLITFS_LOG" | grep -o '[0-9]*')
	echo "durable: recovered 100000 journaled versions in $ms ms"
	((ms < 20000)) || fail "recovery took ${ms} ms"
}

e2e_test kill9_1000 600 moto
e2e_test outage_60 300 moto
e2e_test small_tmpfs 240 moto
e2e_test tools 180 moto
e2e_test remote_append 90
e2e_test cache_exclusive 60
e2e_test failed_retry 90 moto
e2e_test fsync_upload 60
e2e_test unmount_drain 120 moto
e2e_test recover_100k 300 moto

[[ ${BASH_SOURCE[0]} != "$0" ]] || e2e_main "$@"
