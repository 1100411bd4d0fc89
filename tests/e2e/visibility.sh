#!/usr/bin/env bash
#
# visibility.sh - read-after-write.  The gateway (tests/gateway/) hides
# each key written less than D seconds ago from GET, HEAD and listings, as
# a slow S3 would; blitfs must make a reader of a just-written file wait
# until S3 shows the new version (at most read_wait), serve the right
# bytes either way, and never make a writer wait.
#
# Exercises cache/ (the visibility probe, the read barrier, queue order)
# and fs/ together.
#
#   tests/e2e/visibility.sh [TEST...]      BLITFS=...
#
# Runs on moto only: the cases measure times, and s3rver can acknowledge a
# PUT before the object is wholly on disk (README, "Limitations").  Each
# case prints its measurements (lines starting "visibility:").

# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# shellcheck source-path=SCRIPTDIR source=../gateway/gateway.sh
source "$(dirname "${BASH_SOURCE[0]}")/../gateway/gateway.sh"

PHOTO=$(find /usr/share/backgrounds/mate/nature -name '*.jpg' | sort | head -n 1)

# The aws CLI through the gateway: what a slow S3 would show right now.
gw_s3api()
{
	aws_isolated --endpoint-url "$GATEWAY_URL" --region us-east-1 \
		s3api "$@"
}

# MD5 of KEY as the gateway serves it now, or "absent".
gw_md5()
{
	local out=$T/gw-get

	if gw_s3api get-object --bucket "$BUCKET" --key "$1" "$out" \
		>/dev/null 2>&1; then
		md5_of "$out"
	else
		echo absent
	fi
}

# Check LO <= $1 <= HI (seconds, decimals allowed).
between()
{
	awk -v x="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(x >= lo && x <= hi) }' ||
		fail "$4: ${1}s is not within ${2}s..${3}s"
}

# The state xattr of a path in the mount.
state_of()
{
	getfattr --only-values -n user.blitfs.state "$1" 2>/dev/null
}

# Visibility delay 3 s: convert && md5sum returns after 3 s and within
# 3 s + one poll + 1 s, with the new bytes; S3 serves them by then.
test_delay_3()
{
	local t0 t1 got want

	gw_mount '{"visibility_delay_s": 3}'
	convert "$PHOTO" -resize 640x "$T/a.jpg"
	want=$(md5_of "$T/a.jpg")
	t0=$(date +%s.%N)
	convert "$PHOTO" -resize 640x "$MNT/a.jpg"
	got=$(md5sum <"$MNT/a.jpg" | cut -c1-32)
	t1=$(date +%s.%N)
	assert_eq "$want" "$got" "bytes read back"
	assert_eq "$want" "$(gw_md5 a.jpg)" "S3 through the gateway"
	assert_eq "$want" "$(s3_md5 a.jpg)" "S3 straight from the server"
	echo "visibility: D=3 s: convert && md5sum took $(secs "$t0" "$t1") s"
	between "$(secs "$t0" "$t1")" 3 6 "convert && md5sum"
	assert_eq VISIBLE "$(state_of "$MNT/a.jpg")" state
}

# While S3 does not show a new file yet (delay 8 s), stat, ls -l and find
# answer at once from the cache: only an open for reading waits.
test_stat_never_waits()
{
	local t0 t1 state

	gw_mount '{"visibility_delay_s": 8}'
	convert "$PHOTO" -resize 320x "$T/s.jpg"
	cp "$T/s.jpg" "$MNT/s.jpg"
	t0=$(date +%s.%N)
	stat "$MNT/s.jpg" >/dev/null
	ls -l "$MNT" >/dev/null
	find "$MNT" -name s.jpg >/dev/null
	t1=$(date +%s.%N)
	state=$(state_of "$MNT/s.jpg")
	echo "visibility: stat, ls -l and find took $(secs "$t0" "$t1") s" \
		"(state $state)"
	between "$(secs "$t0" "$t1")" 0 1 "stat, ls -l and find"
	case $state in
	QUEUED | UPLOADING | UPLOADED) ;;
	*) fail "state $state: the test ran after S3 showed the file" ;;
	esac
}

# read_wait=0 switches the read barrier off: a read right after close is
# served the local bytes at once, while S3 does not show them yet.
test_read_wait_0()
{
	local t0 t1 got state

	gw_mount '{"visibility_delay_s": 8}' "read_wait=0"
	convert "$PHOTO" -resize 320x "$T/r.jpg"
	cp "$T/r.jpg" "$MNT/r.jpg"
	t0=$(date +%s.%N)
	got=$(md5sum <"$MNT/r.jpg" | cut -c1-32)
	t1=$(date +%s.%N)
	state=$(state_of "$MNT/r.jpg")
	assert_eq "$(md5_of "$T/r.jpg")" "$got" "bytes read back"
	echo "visibility: read_wait=0: the read took $(secs "$t0" "$t1") s" \
		"(state $state)"
	between "$(secs "$t0" "$t1")" 0 1 "the read"
	case $state in
	QUEUED | UPLOADING | UPLOADED) ;;
	*) fail "state $state: the read ran after S3 showed the file" ;;
	esac
}

# Visibility delay 15 s: the read gives up waiting at about 10 s and
# serves the right bytes; the state is UNCONFIRMED, then VISIBLE once S3
# shows the object.
test_delay_15()
{
	local t0 t1 got want state i

	gw_mount '{"visibility_delay_s": 15}'
	convert "$PHOTO" -resize 480x "$T/b.jpg"
	want=$(md5_of "$T/b.jpg")
	cp "$T/b.jpg" "$MNT/b.jpg"
	t0=$(date +%s.%N)
	got=$(md5sum <"$MNT/b.jpg" | cut -c1-32)
	t1=$(date +%s.%N)
	assert_eq "$want" "$got" "bytes read back"
	echo "visibility: D=15 s: the read took $(secs "$t0" "$t1") s"
	between "$(secs "$t0" "$t1")" 9 11.5 "the read"
	assert_eq UNCONFIRMED "$(state_of "$MNT/b.jpg")" "state at 10 s"
	for ((i = 0; i < 30; i++)); do
		state=$(state_of "$MNT/b.jpg")
		[[ $state != VISIBLE ]] || break
		sleep 0.5
	done
	assert_eq VISIBLE "$state" "state once S3 shows it"
	echo "visibility: D=15 s: VISIBLE $(secs "$t0" "$(date +%s.%N)") s" \
		"after the read began"
}

# No delay: the read returns within 100 ms of the upload's end (taken as
# the arrival of the first visibility probe, which follows the PUT's
# answer at once) -- no fixed sleep anywhere.
test_delay_0()
{
	local t1

	gw_mount '{}'
	convert "$PHOTO" -resize 320x "$T/c.jpg"
	cp "$T/c.jpg" "$MNT/c.jpg"
	md5sum <"$MNT/c.jpg" >/dev/null
	t1=$(date +%s.%N)
	gateway_record >"$T/record.json"
	python3 - "$T/record.json" "$BUCKET" "$t1" <<'PY'
import json, sys

record, bucket, t_read = sys.argv[1], sys.argv[2], float(sys.argv[3])
rec = [r for r in json.load(open(record))
       if r["bucket"] == bucket and r["key"] == "c.jpg"]
put = [r for r in rec if r["method"] == "PUT"]
head = [r for r in rec if r["method"] == "HEAD" and r["t"] >= put[-1]["t"]]
assert put and head, "no PUT or no probe in the record"
late = t_read - head[0]["t"]
print("visibility: D=0: read returned %.0f ms after the probe, %.0f ms "
      "after the PUT arrived" % (late * 1e3, (t_read - put[-1]["t"]) * 1e3))
assert late <= 0.100, "read returned %.0f ms after the upload" % (late * 1e3)
PY
}

# 100 readers on 100 just-written files at once, writes held to 10 a
# second: every reader gets the right bytes, and the files being waited
# on are uploaded before the others.
test_readers_100()
{
	local i t_readers t_spawned pids=()

	mkdir -p "$T/src"
	for ((i = 0; i < 200; i++)); do
		head -c $((20000 + i)) /dev/urandom >"$T/src/f$i.jpg"
	done
	gw_mount '{}' "write_rate=10"
	cp "$T"/src/f*.jpg "$MNT/"
	t_readers=$(date +%s.%N)
	for ((i = 100; i < 200; i++)); do
		cmp -s "$T/src/f$i.jpg" "$MNT/f$i.jpg" &
		pids+=($!)
	done
	t_spawned=$(date +%s.%N)
	for i in "${pids[@]}"; do
		wait "$i" || fail "a reader got wrong bytes"
	done
	echo "visibility: 100 readers done $(secs "$t_readers" \
		"$(date +%s.%N)") s after they started"
	wait_count 200 120
	gateway_record >"$T/record.json"
	python3 - "$T/record.json" "$BUCKET" "$t_spawned" <<'PY'
import json, sys

record, bucket, t0 = sys.argv[1], sys.argv[2], float(sys.argv[3])
# Counted from half a second after the shell started the last reader: by
# then all 100 opens wait, and the uploads under way before have ended
# (a worker picks its file only when its turn under write_rate comes).
t0 += 0.5
puts = sorted((r for r in json.load(open(record))
               if r["bucket"] == bucket and r["method"] == "PUT"
               and r["status"] == 200 and r["t"] >= t0),
              key=lambda r: r["t"])
first = []
for r in puts:
    if r["key"] not in first:
        first.append(r["key"])
waited = set("f%d.jpg" % i for i in range(100, 200))
pending = [k for k in first if k in waited]
head = first[:len(pending)]
ahead = sum(1 for k in head if k in waited)
print("visibility: of the %d uploads after the readers began, the first %d "
      "held %d waited-on files" % (len(first), len(head), ahead))
assert ahead >= 0.9 * len(head), "waited-on files did not jump the queue"
PY
}

# A process that writes a file and reads it back before closing it never
# blocks, however slow S3 is.
test_read_own_writes()
{
	gw_mount '{"visibility_delay_s": 30}'
	python3 - "$MNT/own.bin" <<'PY'
import os, sys, time

path = sys.argv[1]
t0 = time.monotonic()
for round in range(3):
    with open(path, "w+b") as f:
        data = os.urandom(100000)
        f.write(data)
        f.flush()
        f.seek(0)
        assert f.read() == data, "read back differs"
        with open(path, "rb") as other:
            assert other.read() == data, "second reader differs"
took = time.monotonic() - t0
print("visibility: write-then-read while open: %.3f s for 3 rounds" % took)
assert took < 2, "a writer waited (%.1f s)" % took
PY
}

e2e_test delay_3 120 moto
e2e_test delay_15 120 moto
e2e_test delay_0 60 moto
e2e_test stat_never_waits 60 moto
e2e_test read_wait_0 60 moto
e2e_test readers_100 300 moto
e2e_test read_own_writes 60 moto

[[ ${BASH_SOURCE[0]} != "$0" ]] || e2e_main "$@"
