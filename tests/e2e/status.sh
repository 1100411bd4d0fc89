#!/usr/bin/env bash
#
# status.sh - `blitfs status`, `blitfs wait` and the metrics endpoint.
# blitfs is mounted through the gateway (tests/gateway/) in front of
# moto's server; the figures the commands show must match what the
# gateway saw, `wait` must return once the bucket (asked directly, with
# the aws CLI) holds every file closed before it, and must name the files
# that FAILED rather than hang.
#
# Exercises fs/ (fs-status.c, fs-statcmd.c, fs-metrics.c and the root's
# user.blitfs.status), cache/ (cache-stats.c: the close sequence, the
# figures) and the upload queue together.
#
#   tests/e2e/status.sh [TEST...]      BLITFS=...
#
# Runs on moto only: the figures are checked against the gateway's
# record.  Each case prints samples of the output (lines "status:").

# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# shellcheck source-path=SCRIPTDIR source=../gateway/gateway.sh
source "$(dirname "${BASH_SOURCE[0]}")/../gateway/gateway.sh"

PHOTO=/usr/share/backgrounds/mate/nature/Garden.jpg

# small_images DIR N: N distinct small JPEGs (tiles of a photograph, a
# few hundred bytes to a few KiB each), made by one convert.
small_images()
{
	local out=$1 n=$2 have

	mkdir -p "$out"
	convert "$PHOTO" -resize 640x -crop 24x24 +repage -quality 92 \
		"$out/tile-%03d.jpg"
	have=$(find "$out" -name 'tile-*.jpg' | wc -l)
	((have >= n)) || fail "small_images: $have tiles, want $n"
	find "$out" -name 'tile-*.jpg' | sort | tail -n "+$((n + 1))" |
		xargs -r rm -f
}

# The status document of the mount, into FILE.
status_json()
{
	"$BLITFS" status --json "$MNT" >"$1"
}

# Check the keys, sizes and ETags (MD5s: one PUT each) of every file in
# DIR against the bucket's listing, asked of moto directly.
check_listing()
{
	s3api list-objects-v2 --bucket "$BUCKET" \
		--query 'Contents[].[Key,ETag,Size]' --output json \
		>"$T/listing.json"
	python3 - "$T/listing.json" "$1" <<'PY'
import hashlib, json, os, sys
have = {k: (e.strip('"'), s) for k, e, s in json.load(open(sys.argv[1])) or []}
d = sys.argv[2]
bad = []
for name in sorted(os.listdir(d)):
    data = open(os.path.join(d, name), "rb").read()
    want = (hashlib.md5(data).hexdigest(), len(data))
    if have.get(name) != want:
        bad.append(f"{name}: want {want}, bucket has {have.get(name)}")
print(f"status: bucket holds {len(have)} keys; "
      f"{len(os.listdir(d)) - len(bad)} match their files")
for b in bad[:5]:
    print("FAILED:", b)
sys.exit(1 if bad else 0)
PY
}

# Download COUNT files of DIR at random from moto and compare the bytes.
check_sample()
{
	local dir=$1 n=$2 f

	while read -r f; do
		s3api get-object --bucket "$BUCKET" --key "${f##*/}" \
			"$T/sample" >/dev/null
		cmp "$f" "$T/sample" || fail "bytes of ${f##*/} differ"
	done < <(find "$dir" -type f | shuf -n "$n")
}

# Mount again through the gateway gw_mount started; $1 adds options.
gw_remount()
{
	BLITFS_SERVER_OPTS="endpoint=$GATEWAY_URL,region=us-east-1,path_style" \
		blitfs_mount "$1"
}

# ------------------------------------------------------------------ cases

# A burst of 300 small images by cp: `blitfs wait` returns 0, and at that
# moment every one is in the bucket with its bytes; the status then shows
# nothing pending and 300 files visible.
test_wait_300()
{
	local rc=0 t0 t1 t2

	small_images "$T/img" 300
	gw_mount '{}' write_rate=40
	t0=$(date +%s.%N)
	cp "$T"/img/*.jpg "$MNT/"
	t1=$(date +%s.%N)
	"$BLITFS" wait --timeout 120 "$MNT" 2>"$T/wait.err" || rc=$?
	t2=$(date +%s.%N)
	echo "status: cp of 300 returned in $(secs "$t0" "$t1") s;" \
		"wait exited $rc $(secs "$t1" "$t2") s later"
	cat "$T/wait.err" >&2
	assert_eq 0 "$rc" "exit status of blitfs wait"
	check_listing "$T/img"
	check_sample "$T/img" 10
	status_json "$T/status.json"
	python3 - "$T/status.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
st = s["states"]
print(f"status: after wait: seq {s['seq']}, pending {s['pending']}, "
      f"visible {st['visible']}, unconfirmed {st['unconfirmed']}")
ok = (s["pending"]["files"] == 0 and s["seq"]["closed"] == 300 and
      s["seq"]["pending"] == 301 and
      st["visible"]["files"] + st["unconfirmed"]["files"] == 300)
sys.exit(0 if ok else 1)
PY
}

# A bucket that answers 403: `blitfs wait --timeout` comes back non-zero
# at once rather than at the timeout, naming each file and the reason on
# stderr; a wait that runs out of time first says so (exit 2).
test_wait_forbidden()
{
	local rc=0 i t0 want

	small_images "$T/img" 3
	# The bucket turns 403 while the files settle (3 s), before the
	# uploads begin; the mount itself needs it readable.
	gw_mount '{}' upload_delay=3000
	for i in 0 1 2; do
		cp "$T/img/tile-00$i.jpg" "$MNT/denied-$i.jpg"
	done
	"$BLITFS" wait --timeout 0.5 "$MNT" 2>"$T/timeout.err" || rc=$?
	sed 's/^/status: timeout: /' "$T/timeout.err"
	assert_eq 2 "$rc" "exit status of a wait that timed out"
	grep -q 'timed out after 0.5 s.* 3 queued' "$T/timeout.err" ||
		fail "the timeout message does not say what is pending"

	gateway_scenario "{\"forbidden_buckets\": [\"$BUCKET\"]}"
	rc=0
	t0=$SECONDS
	"$BLITFS" wait --timeout 60 "$MNT" 2>"$T/wait.err" || rc=$?
	sed 's/^/status: stderr: /' "$T/wait.err"
	echo "status: wait exited $rc after $((SECONDS - t0)) s"
	assert_eq 1 "$rc" "exit status of blitfs wait on a 403 bucket"
	((SECONDS - t0 < 30)) || fail "wait took $((SECONDS - t0)) s"
	for i in 0 1 2; do
		want="FAILED $MNT/denied-$i.jpg (key \"denied-$i.jpg\"): 403"
		grep -qF "$want AccessDenied" "$T/wait.err" ||
			fail "denied-$i.jpg is not named with 403"
	done
	status_json "$T/status.json"
	python3 - "$T/status.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
paths = sorted(f["path"] for f in s["failed"])
print(f"status: failed_count {s['failed_count']}, listed {paths}")
ok = s["failed_count"] == 3 and s["states"]["failed"]["files"] == 3 and \
    paths == ["/denied-0.jpg", "/denied-1.jpg", "/denied-2.jpg"]
sys.exit(0 if ok else 1)
PY
	gateway_scenario '{}'
}

# The status's figures against the gateway's record: as many files
# uploaded as successful PUTs, as many bytes as they carried and as were
# written, as many write and read requests as the gateway saw.
test_json_record()
{
	local i

	mkdir "$T/src"
	for ((i = 0; i < 25; i++)); do
		head -c $((1000 + i * 4099)) /dev/urandom >"$T/src/f$i.bin"
	done
	gw_mount '{}'
	cp "$T"/src/*.bin "$MNT/"
	"$BLITFS" wait --timeout 60 "$MNT"
	status_json "$T/status.json"
	save_record
	echo "status: $(head -c 600 "$T/status.json")..."
	python3 - "$T/status.json" "$T/record.json" "$BUCKET" "$T/src" <<'PY'
import json, os, sys
s = json.load(open(sys.argv[1]))
rec = [r for r in json.load(open(sys.argv[2])) if r["bucket"] == sys.argv[3]]
d = sys.argv[4]
sizes = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
puts = [r for r in rec if r["method"] == "PUT" and r["status"] == 200
        and r["key"]]
writes = [r for r in rec if r["class"] == "write"]
reads = [r for r in rec if r["class"] == "read"]
st = s["states"]
done = st["visible"]["files"] + st["unconfirmed"]["files"]
done_bytes = st["visible"]["bytes"] + st["unconfirmed"]["bytes"]
checks = [
    ("files uploaded = successful PUTs", done, len(puts)),
    ("bytes uploaded = bytes the PUTs carried", done_bytes,
     sum(r["bytes_in"] for r in puts)),
    ("bytes uploaded = bytes written", done_bytes, sizes),
    ("files uploaded = files written", done, 25),
    ("read requests = the record's", s["requests"]["read"], len(reads)),
    ("highest close sequence", s["seq"]["closed"], 25),
    ("lowest pending sequence", s["seq"]["pending"], 26),
    ("pending files", s["pending"]["files"], 0),
    ("write rate limit", s["write_rate"]["limit"], 10),
]
ok = True
for what, got, want in checks:
    print(f"status: {what}: {got} (want {want})")
    ok &= got == want
# Write slots the queue took and gave back unused count as requests in
# s3/'s counter, so it may exceed what was sent; never fall short.
print(f"status: write requests: {s['requests']['write']} "
      f"(the record has {len(writes)})")
ok &= s["requests"]["write"] >= len(writes)
sys.exit(0 if ok else 1)
PY
}

# Not on a terminal, one plain line; on a terminal (script(1)), a live
# display that ends by itself once nothing is pending; bad arguments and
# a directory that is no blitfs mount exit 3.
test_plain_line()
{
	local rc=0 line want

	small_images "$T/img" 5
	gw_mount '{}' upload_delay=4000
	cp "$T"/img/*.jpg "$MNT/"
	"$BLITFS" status "$MNT" >"$T/line.txt"
	line=$(cat "$T/line.txt")
	echo "status: plain: $line"
	assert_eq 1 "$(wc -l <"$T/line.txt")" "lines of the plain output"
	if grep -q $'[\r\033]' "$T/line.txt"; then
		fail "the plain line holds terminal controls"
	fi
	[[ $line == "$MNT: queued 5 ("*", uploading 0 (0 B),"*"ETA "* ]] ||
		fail "the line does not show the 5 queued files"
	"$BLITFS" status --once "$MNT" | grep "^$MNT: queued 5 (" >/dev/null ||
		fail "--once does not print the line"

	# The live display: drawn over itself, ends when nothing is pending.
	timeout 60 script -qfec "$BLITFS status $MNT" /dev/null \
		>"$T/live.txt" </dev/null
	tail -n 9 "$T/live.txt" | tr -d '\r' | sed 's/\x1b\[[0-9]*[AK]//g' |
		sed 's/^/status: live: /'
	grep -q $'\033\\[9A' "$T/live.txt" || fail "the display was not redrawn"
	want='] 100%  5 of 5 files sent, 5 final'
	grep -qF "[$(printf '#%.0s' {1..30})$want" "$T/live.txt" ||
		fail "the display did not end at 100%"

	"$BLITFS" status "$T" 2>"$T/err" || rc=$?
	assert_eq 3 "$rc" "exit status of status on a plain directory"
	grep -qF "$T: not a blitfs mount" "$T/err" ||
		fail "unexpected message: $(cat "$T/err")"
	rc=0
	"$BLITFS" wait --timeout soon "$MNT" 2>"$T/err" || rc=$?
	assert_eq 3 "$rc" "exit status of wait with a bad --timeout"
	grep -qF "blitfs wait: --timeout 'soon': not a number" "$T/err" ||
		fail "unexpected message: $(cat "$T/err")"
	rc=0
	"$BLITFS" status 2>/dev/null || rc=$?
	assert_eq 3 "$rc" "exit status of status without a mount point"
	# Any directory in the mount leads to its root.
	mkdir "$MNT/sub"
	"$BLITFS" wait --timeout 30 "$MNT/sub"
}

# The metrics: off unless asked for; a non-loopback address fails the
# mount; on a loopback one they answer with the figures of the status.
test_metrics()
{
	local port url rc=0 opts want

	port=$(free_port)
	url=http://127.0.0.1:$port
	opts=endpoint=$S3_ENDPOINT,region=us-east-1,path_style,cache_dir=$T/c0
	blitfs_try_mount "$BUCKET" "$opts,metrics_listen=0.0.0.0:$port"
	echo "status: refused: $TRY_ERR"
	((TRY_RC != 0)) || fail "a mount with metrics on 0.0.0.0 succeeded"
	want="metrics_listen '0.0.0.0:$port': not a loopback address"
	[[ $TRY_ERR == *"$want"* ]] ||
		fail "unexpected message: $TRY_ERR"

	# Off by default: the daemon listens on no TCP port.
	gw_mount '{}'
	if ss -ltnpH | grep "pid=$BLITFS_PID," >/dev/null; then
		fail "the daemon listens without metrics_listen: $(ss -ltnpH)"
	fi
	blitfs_umount

	mkdir "$T/src"
	for i in 1 2 3 4 5 6 7; do
		head -c $((i * 1111)) /dev/urandom >"$T/src/m$i.bin"
	done
	gw_remount "metrics_listen=127.0.0.1:$port"
	cp "$T"/src/*.bin "$MNT/"
	"$BLITFS" wait --timeout 60 "$MNT"
	curl -sS --max-time 10 "$url/metrics" >"$T/metrics.txt"
	status_json "$T/status.json"
	grep -E '^# (HELP|TYPE) blitfs_files |"visible"|_total\{|_rate' \
		"$T/metrics.txt" | sed 's/^/status: metrics: /'
	python3 - "$T/metrics.txt" "$T/status.json" "$BUCKET" "$T/src" <<'PY'
import json, os, re, sys
text = open(sys.argv[1]).read()
s = json.load(open(sys.argv[2]))
b, d = sys.argv[3], sys.argv[4]
sizes = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
samples = {}
for line in text.splitlines():
    if line.startswith("#"):
        continue
    name, value = line.rsplit(" ", 1)
    samples[name] = float(value)
named = set(re.findall(r"^# TYPE (\S+) ", text, re.M))
helped = set(re.findall(r"^# HELP (\S+) ", text, re.M))
used = {n.split("{")[0] for n in samples}
checks = [
    ("every metric has HELP and TYPE", used <= named and used <= helped,
     True),
    ("every name starts blitfs_", all(n.startswith("blitfs_") for n in used),
     True),
    ("visible files", samples[f'blitfs_files{{bucket="{b}",state="visible"}}'],
     7),
    ("visible bytes", samples[f'blitfs_bytes{{bucket="{b}",state="visible"}}'],
     sizes),
    ("closed versions",
     samples[f'blitfs_closed_versions_total{{bucket="{b}"}}'],
     s["seq"]["closed"]),
    ("write requests",
     samples[f'blitfs_s3_requests_total{{bucket="{b}",class="write"}}'],
     s["requests"]["write"]),
    ("write rate limit", samples[f'blitfs_write_rate_limit{{bucket="{b}"}}'],
     10),
]
ok = True
for what, got, want in checks:
    print(f"status: metrics: {what}: {got} (want {want})")
    ok &= got == want
sys.exit(0 if ok else 1)
PY
	assert_eq 404 "$(curl -s -o /dev/null -w '%{http_code}' "$url/other")" \
		"status of GET /other"
	assert_eq 405 "$(curl -s -o /dev/null -w '%{http_code}' -X POST \
		"$url/metrics")" "status of POST /metrics"
	blitfs_umount
	curl -s --max-time 5 "$url/metrics" >/dev/null 2>&1 || rc=$?
	((rc != 0)) || fail "the endpoint still answers after the unmount"
}

# After a kill -9 with files queued, the next mount takes them over from
# the journal (close sequence 0): a wait on it returns once they are in
# the bucket.
test_wait_remount()
{
	local cache=$T/cache-kept i

	mkdir "$T/src" "$cache"
	for ((i = 0; i < 5; i++)); do
		head -c $((2000 + i)) /dev/urandom >"$T/src/r$i.bin"
	done
	gw_mount '{}' "cache_dir=$cache,upload_delay=60000"
	cp "$T"/src/*.bin "$MNT/"
	kill -KILL "$BLITFS_PID"
	wait "$BLITFS_PID" 2>/dev/null || true
	BLITFS_PID=
	fusermount3 -uz "$MNT"
	assert_eq 0 "$(s3_keys "" | wc -l)" "keys before the remount"
	# Slow uploads: the wait has to wait for them.
	gw_remount "cache_dir=$cache,write_rate=2"
	status_json "$T/status.json"
	echo "status: after the remount: $(head -c 300 "$T/status.json")..."
	python3 - "$T/status.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
# Taken over from the journal: number 0, pending unless already done.
ok = s["seq"]["closed"] == 0 and \
    (s["pending"]["files"] == 0 or s["seq"]["pending"] == 0)
sys.exit(0 if ok else 1)
PY
	"$BLITFS" wait --timeout 60 "$MNT"
	check_listing "$T/src"
}

e2e_test wait_300 180 moto
e2e_test wait_forbidden 90 moto
e2e_test json_record 90 moto
e2e_test plain_line 90 moto
e2e_test metrics 90 moto
e2e_test wait_remount 90 moto

[[ ${BASH_SOURCE[0]} != "$0" ]] || e2e_main "$@"
