#!/usr/bin/env bash
#
# traffic.sh - S3 pushing back.  blitfs is mounted through the
# fault-injecting gateway (tests/gateway/) in front of moto's server with
# its signature check on, so every retried, redirected and re-signed
# request must still verify.  The gateway throttles writes past 10 a
# second, resets connections, answers 500s and 403s, redirects to another
# region, and records every request; the cases check what lands in the
# bucket (with the aws CLI, straight from moto, never through the gateway
# or the mount) and, from the record, how the client behaved.
#
# Exercises s3/ (rate limiter, retries and backoff, redirects, re-signing,
# Content-MD5 and ETag checks, multipart), cache/ (the upload queue, staged
# bytes kept on failure) and fs/ together.
#
#   tests/e2e/traffic.sh [TEST...]      BLITFS=...
#
# Every case runs on moto only: s3rver checks no signatures, so it could
# not tell a badly re-signed request from a good one.  Each case prints
# its measurements (lines starting "traffic:") into its output.

# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# shellcheck source-path=SCRIPTDIR source=../gateway/gateway.sh
source "$(dirname "${BASH_SOURCE[0]}")/../gateway/gateway.sh"

MATE=/usr/share/backgrounds/mate
LIMIT=10		# the gateway's write limit, requests per second
RETRIES=5		# blitfs's default attempts per request

# ----------------------------------------------------------------- images

# make_images DIR N: N distinct real JPEGs of 50-150 KiB in DIR, resized
# from the photographs in $MATE.  Quick on two cores: each photograph is
# decoded once (shrunk on load) and one convert writes all its variants;
# flat artwork too plain to reach 50 KiB at these sizes is left out.
make_images()
{
	local out=$1 n=$2 src=$1/src

	mkdir -p "$src"
	export MAGICK_THREAD_LIMIT=1
	# shellcheck disable=SC2016 # expanded by sh
	find "$MATE" -type f -name '*.jpg' | sort |
		awk '{ printf "%s %02d\n", $0, NR }' |
		xargs -P2 -n2 sh -c 'convert -define jpeg:size=1200x1200 "$1" \
			-resize "1200x1200>" -write "$0/s$2.miff" \
			-resize 640x -quality 85 "$0/p$2.jpg"' "$src"
	# Bytes at 640 px wide say how detailed a photograph is: the width
	# for a target size follows from them (bytes grow with the pixels).
	local p k
	for p in "$src"/p*.jpg; do
		k=${p##*/p}
		echo "$src/s${k%.jpg}.miff $(stat -c %s "$p")"
	done | awk '$2 >= 16384' >"$src/list"
	# A tenth more than asked for: the few that miss 50-150 KiB go.
	awk -v n="$((n + n / 10 + 5))" -v out="$out" '
		{ s[NR] = $1; b[NR] = $2 }
		END {
			for (i = 0; i < n; i++) {
				k = i % NR + 1
				want = (62 + (i * 53) % 68) * 1024
				w = int(640 * sqrt(want / b[k]))
				if (w > 1200)
					w = 1200
				cmd[k] = cmd[k] sprintf(" ( +clone -filter Triangle" \
					" -resize %dx -quality %d -set comment" \
					" blitfs-e2e-%d -write %s/c%04d.jpg" \
					" +delete )", w, 82 + i % 8, i, out, i)
			}
			for (k = 1; k <= NR; k++)
				print s[k] cmd[k] " null:"
		}' "$src/list" >"$src/cmds"
	xargs -P2 -L1 convert <"$src/cmds"
	local f i=0
	for f in "$out"/c*.jpg; do
		if ((i < n)) && (($(stat -c %s "$f") >= 51200)) &&
			(($(stat -c %s "$f") <= 153600)); then
			mv "$f" "$(printf '%s/img-%03d.jpg' "$out" "$i")"
			i=$((i + 1))
		else
			rm -f "$f"
		fi
	done
	rm -rf "$src"
	((i == n)) || fail "make_images: only $i of $n images in 50-150 KiB"
}

# Download every object straight from the server and compare each with
# the local file of the same name in DIR.
check_all_landed()
{
	local dir=$1 n=$2 f bad=0

	rm -rf "$T/got"
	mkdir -p "$T/got"
	s3cli cp --recursive --only-show-errors "s3://$BUCKET/" "$T/got/"
	for f in "$dir"/*.jpg; do
		if ! cmp -s "$f" "$T/got/${f##*/}"; then
			echo "not byte-exact: ${f##*/}" >&2
			bad=$((bad + 1))
		fi
	done
	assert_eq "$n" "$(find "$T/got" -type f | wc -l)" "objects downloaded"
	assert_eq 0 "$bad" "objects that differ from their files"
	echo "traffic: landed $n of $n byte-exact"
}

# ------------------------------------------------------------------ cases

# 500 real images through a gateway that throttles writes past 10 a
# second (503 SlowDown), resets 5% of writes and fails 2% with 500.  All
# land byte-exact; the client keeps under the limit and wastes few
# requests.
test_throttled_500()
{
	local t0 t1

	make_images "$T/img" 500
	gw_mount "{\"write_rate\": $LIMIT, \"write_burst\": 5,
		\"reset_share\": 0.05, \"error500_share\": 0.02, \"seed\": 500}"
	t0=$(date +%s.%N)
	cp "$T"/img/*.jpg "$MNT/"
	t1=$(date +%s.%N)
	echo "traffic: cp of 500 images returned in $(secs "$t0" "$t1") s"
	wait_count 500 600
	save_record
	check_all_landed "$T/img" 500
	python3 - "$T/record.json" "$BUCKET" "$LIMIT" 500 <<'PY'
import json, sys

record, bucket, limit, n = sys.argv[1], sys.argv[2], float(sys.argv[3]), \
    int(sys.argv[4])
rec = [r for r in json.load(open(record)) if r["bucket"] == bucket]
writes = sorted((r for r in rec if r["class"] == "write"),
                key=lambda r: r["t"])
puts_ok = [r for r in writes if r["method"] == "PUT" and r["status"] == 200]
faults = {}
for r in writes:
    faults[r["fault"]] = faults.get(r["fault"], 0) + 1
t_first = writes[0]["t"]
t_done = max(r["t"] for r in puts_ok)
drain = t_done - t_first

# Sustained rate: every window of 5 s that starts at a write sent 5 s or
# more after the first one.  5 s rather than 1 s: one second holds ten
# requests, so one request of scheduling jitter would read as a 10% rate
# change; five seconds average that out and still show any stretch spent
# above the limit.  blitfs paces writes at the limit with a burst of 2: a
# window holds at most limit * 5 requests, and the burst of 2 when a pause
# (every worker busy elsewhere) came just before it; the gateway's own
# bucket admits 5 more than the rate.  The mean over everything after the
# first 5 s must not exceed the limit at all.  The first 5 s are left
# out: they hold the start-up burst the issue allows.
T = 5.0
BURST = 2
times = [r["t"] for r in writes]
worst, j = 0, 0
for i, t in enumerate(times):
    if t < t_first + T:
        continue
    j = max(j, i)
    while j < len(times) and times[j] < t + T:
        j += 1
    worst = max(worst, j - i)
steady = [t for t in times if t >= t_first + T]
span = steady[-1] - steady[0] if len(steady) > 1 else 1
print(f"traffic: write requests {len(writes)} for a minimum of {n} "
      f"({len(writes) / n:.3f}x); faults {faults}")
print(f"traffic: busiest 5 s window after the first 5 s: {worst} writes "
      f"({worst / T:.1f}/s); mean after the first 5 s "
      f"{(len(steady) - 1) / span:.2f}/s; limit {limit:g}/s")
print(f"traffic: drained 500 images in {drain:.1f} s "
      f"(ideal at {limit:g}/s: {n / limit:.0f} s)")
ok = True
if len(puts_ok) != n:
    print(f"FAILED: {len(puts_ok)} successful PUTs, want {n}")
    ok = False
if len(writes) > 1.3 * n:
    print(f"FAILED: {len(writes)} write requests > 1.3 x {n}")
    ok = False
if worst > limit * T + BURST:
    print(f"FAILED: {worst} writes in 5 s > {limit * T + BURST:g}")
    ok = False
if (len(steady) - 1) / span > limit * 1.005:
    print("FAILED: the mean rate is above the limit")
    ok = False
sys.exit(0 if ok else 1)
PY
}

# A bucket that takes only 5 writes a second, half of blitfs's default:
# SlowDowns make the client slow down to about that and stay there, not
# hammer on at 10 a second; everything lands all the same.
test_adapts_to_slowdown()
{
	make_images "$T/img" 150
	gw_mount '{"write_rate": 5, "write_burst": 5, "seed": 5}'
	cp "$T"/img/*.jpg "$MNT/"
	wait_count 150 300
	save_record
	check_all_landed "$T/img" 150
	python3 - "$T/record.json" "$BUCKET" 150 <<'PY'
import json, sys
bucket, n = sys.argv[2], int(sys.argv[3])
writes = sorted((r for r in json.load(open(sys.argv[1]))
                 if r["bucket"] == bucket and r["class"] == "write"),
                key=lambda r: r["t"])
slow = [r for r in writes if r["fault"] == "slowdown"]
t0 = writes[0]["t"]
steady = [r["t"] for r in writes if r["t"] >= t0 + 5]
rate = (len(steady) - 1) / (steady[-1] - steady[0])
print(f"traffic: {len(writes)} write requests for {n} files, "
      f"{len(slow)} SlowDown; mean rate after the first 5 s "
      f"{rate:.2f}/s against a limit of 5/s; "
      f"drained in {writes[-1]['t'] - t0:.1f} s")
ok = len(slow) <= 0.15 * n and rate <= 5.5
sys.exit(0 if ok else 1)
PY
}

# A bucket that answers 403: the upload stops at once (3 requests for the
# file at most), the error names the bucket, key and reason, and the
# staged bytes stay in the cache.
test_forbidden()
{
	local img=$MATE/nature/Storm.jpg md5 t0 e since

	md5=$(md5_of "$img")
	# The bucket turns 403 between the close and the upload (which
	# waits 3 s to settle), so that what is measured is the upload.
	gw_mount '{}' upload_delay=3000
	cp "$img" "$MNT/denied.jpg"
	gateway_scenario "{\"forbidden_buckets\": [\"$BUCKET\"]}"
	since=$(date +%s.%N)
	t0=$SECONDS
	until grep -q 'key="denied.jpg".*403' "$BLITFS_LOG"; do
		((SECONDS - t0 < 30)) ||
			fail "no 403 for denied.jpg in the log after 30 s"
		sleep 0.2
	done
	echo "traffic: 403 logged $((SECONDS - t0)) s after the copy"
	sleep 3
	gateway_record "$since" >"$T/record.json"
	python3 - "$T/record.json" "$BUCKET" <<'PY'
import json, sys
rec = [r for r in json.load(open(sys.argv[1]))
       if r["bucket"] == sys.argv[2] and r["key"] == "denied.jpg"]
print(f"traffic: requests for the file once the bucket said 403: "
      f"{len(rec)} {[(r['method'], r['status']) for r in rec]}")
sys.exit(0 if 1 <= len(rec) <= 3 else 1)
PY
	grep 'key="denied.jpg"' "$BLITFS_LOG" | sed 's/^/traffic: log: /'
	grep -q 'bucket=.*key="denied.jpg".*403 AccessDenied' "$BLITFS_LOG" ||
		fail "the log does not name bucket, key, 403 and AccessDenied"
	if e=$(getfattr --only-values -n user.blitfs.error \
		"$MNT/denied.jpg" 2>/dev/null); then
		echo "traffic: user.blitfs.error: $e"
		[[ $e == *403* ]] || fail "user.blitfs.error says '$e'"
	fi
	find "$(cache_dir)" -type f -exec md5sum {} + | grep "^$md5 " >/dev/null ||
		fail "the staged bytes are not in the cache any more"
	cmp "$img" "$MNT/denied.jpg"
	# Denied stays denied: no storm of requests afterwards.
	sleep 5
	gateway_record "$since" >"$T/record2.json"
	python3 - "$T/record2.json" "$BUCKET" <<'PY'
import json, sys
rec = [r for r in json.load(open(sys.argv[1]))
       if r["bucket"] == sys.argv[2] and r["key"] == "denied.jpg"]
sys.exit(0 if len(rec) <= 3 else 1)
PY
	gateway_scenario '{}'
}

# A bucket in another region: the first request learns it from a 301, the
# uploads then go straight there (one redirect per file at most, none for
# most), signed for that region, with 307s followed on the way.
test_other_region()
{
	local f

	make_images "$T/img" 30
	gw_mount "{\"bucket_regions\": {\"$BUCKET\": \"eu-west-1\"},
		\"redirect307_share\": 0.1, \"seed\": 307}"
	grep -q 'lives in region eu-west-1' "$BLITFS_LOG" ||
		fail "the mount did not learn the region"
	cp "$T"/img/*.jpg "$MNT/"
	for f in "$T"/img/*.jpg; do
		wait_object "${f##*/}" "$(md5_of "$f")" 120
	done
	save_record
	python3 - "$T/record.json" "$BUCKET" <<'PY'
import json, sys
rec = [r for r in json.load(open(sys.argv[1])) if r["bucket"] == sys.argv[2]]
ok = True
per_key = {}
for r in rec:
    if r["fault"] == "redirect301" and r["key"]:
        per_key[r["key"]] = per_key.get(r["key"], 0) + 1
first_ok = next(i for i, r in enumerate(rec) if r["fault"] != "redirect301")
later = rec[first_ok:]
wrong = [r for r in later if r["region"] != "eu-west-1"]
n301 = sum(1 for r in rec if r["fault"] == "redirect301")
n307 = sum(1 for r in rec if r["fault"] == "redirect307")
puts = [r for r in rec if r["method"] == "PUT"]
print(f"traffic: {len(rec)} requests: {n301} answered 301, {n307} "
      f"answered 307; {len(puts)} PUTs; after the first answer that was "
      f"no 301: {len(wrong)} signed for another region than eu-west-1")
if any(v > 1 for v in per_key.values()):
    print(f"FAILED: files redirected more than once: {per_key}")
    ok = False
if wrong:
    print(f"FAILED: later requests signed for {set(r['region'] for r in wrong)}")
    ok = False
if n307 == 0:
    print("FAILED: no 307 was drawn; the case tests nothing of them")
    ok = False
sys.exit(0 if ok else 1)
PY
	if grep -E 'retry|given up' "$BLITFS_LOG" | grep -v 'retry 0' |
		grep -qE '30[17]'; then
		fail "a redirect was counted as a failure"
	fi
}

# A fifth of the uploads reach S3 with a changed byte.  S3 refuses such a
# body by its Content-MD5 (blitfs sends one with every PUT); moto does not
# check it and stores the body, and then the ETag it answers is not the
# MD5 blitfs computed, so blitfs sends the file again.  Either way every
# corrupted PUT is followed by a clean one and every object lands
# byte-exact.
test_corrupt_bodies()
{
	local n=30 f

	make_images "$T/img" "$n"
	gw_mount '{"corrupt_share": 0.2, "seed": 7}' "write_rate=1000"
	cp "$T"/img/*.jpg "$MNT/"
	for f in "$T"/img/*.jpg; do
		wait_object "${f##*/}" "$(md5_of "$f")" 120
	done
	check_all_landed "$T/img" "$n"
	save_record
	python3 - "$T/record.json" "$BUCKET" <<'PY'
import json, sys
rec = [r for r in json.load(open(sys.argv[1])) if r["bucket"] == sys.argv[2]]
bad = [r for r in rec if r["fault"] == "corrupt"]
print("traffic: %d of %d PUTs corrupted on the way; S3 answered %s"
      % (len(bad), sum(1 for r in rec if r["method"] == "PUT"),
         sorted({r["status"] for r in bad})))
assert bad, "no body was corrupted: the test proves nothing"
for b in bad:
    later = [r for r in rec if r["method"] == "PUT" and r["key"] == b["key"]
             and r["t"] > b["t"] and r["fault"] is None and r["status"] == 200]
    assert later, "%s: no clean PUT after the corrupted one" % b["key"]
PY
}

# 1 GiB through a gateway that resets 5% of the writes: multipart, byte
# exact, and no part sent more often than the retries allow.
test_multipart_1g()
{
	local t0 t1 md5 etag start=$SECONDS

	head -c 1G /dev/urandom >"$T/big.bin"
	md5=$(md5_of "$T/big.bin")
	gw_mount '{"reset_share": 0.05, "seed": 1024}'
	t0=$(date +%s.%N)
	cp "$T/big.bin" "$MNT/big.bin"
	t1=$(date +%s.%N)
	echo "traffic: cp of 1 GiB returned in $(secs "$t0" "$t1") s"
	until etag=$(s3_etag big.bin); do
		((SECONDS - start < 900)) ||
			fail "big.bin not in the bucket after 900 s"
		sleep 1
	done
	echo "traffic: 1 GiB uploaded $(secs "$t1" "$(date +%s.%N)") s" \
		"after cp returned; ETag $etag"
	[[ $etag == *-64 ]] || fail "ETag $etag: not 64 parts of 16 MiB"
	assert_eq "$md5" "$(s3_md5 big.bin)" "MD5 of big.bin in the bucket"
	rm -f "$T/big.bin"
	save_record
	python3 - "$T/record.json" "$BUCKET" "$RETRIES" <<'PY'
import json, sys, urllib.parse
rec = [r for r in json.load(open(sys.argv[1])) if r["bucket"] == sys.argv[2]
       and r["key"] == "big.bin"]
retries = int(sys.argv[3])
sends = {}
for r in rec:
    q = urllib.parse.parse_qs(r["query"] or "")
    if r["method"] == "PUT" and "partNumber" in q:
        k = (q["uploadId"][0], int(q["partNumber"][0]))
        sends[k] = sends.get(k, 0) + 1
resets = sum(1 for r in rec if r["fault"] == "reset")
uploads = {k[0] for k in sends}
worst = max(sends.values())
print(f"traffic: {len(rec)} requests for big.bin, {len(uploads)} "
      f"upload(s), {sum(sends.values())} part sends for {len(sends)} "
      f"parts, {resets} reset; most sends of one part: {worst}")
sys.exit(0 if worst <= retries and len(sends) >= 64 else 1)
PY
}

# Credentials from AWS_PROFILE in the shared files rather than the
# environment (a wrong [default] beside it), and the profile's region from
# the config file; the secret shows in neither the log nor the command line.
test_profile_credentials()
{
	local id=$AWS_ACCESS_KEY_ID secret=$AWS_SECRET_ACCESS_KEY
	local img=$MATE/nature/Aqua.jpg

	mkdir -p "$T/aws"
	printf '[default]\naws_access_key_id = AKIAWRONG\n%s\n\n[pipeline]\n%s\n%s\n' \
		'aws_secret_access_key = wrong' \
		"aws_access_key_id = $id" "aws_secret_access_key = $secret" \
		>"$T/aws/credentials"
	printf '[default]\nregion = us-west-2\n[profile pipeline]\n%s\n' \
		'region = eu-west-1' >"$T/aws/config"
	gateway_start "$S3_ENDPOINT" || fail "the gateway did not start"
	echo "$GATEWAY_PID" >>"$T/daemon.pids"
	# The daemon gets the profile and no keys; the aws CLI keeps its own.
	unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION \
		AWS_DEFAULT_REGION
	AWS_PROFILE=pipeline AWS_SHARED_CREDENTIALS_FILE=$T/aws/credentials \
		AWS_CONFIG_FILE=$T/aws/config \
		BLITFS_SERVER_OPTS="endpoint=$GATEWAY_URL,path_style" blitfs_mount
	export AWS_ACCESS_KEY_ID=$id AWS_SECRET_ACCESS_KEY=$secret
	export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
	cp "$img" "$MNT/aqua.jpg"
	wait_object aqua.jpg "$(md5_of "$img")"
	gateway_record >"$T/record.json"
	python3 - "$T/record.json" "$BUCKET" <<'PY'
import json, sys
rec = [r for r in json.load(open(sys.argv[1])) if r["bucket"] == sys.argv[2]]
regions = {r["region"] for r in rec}
print(f"traffic: {len(rec)} requests signed for {regions}")
sys.exit(0 if regions == {"eu-west-1"} else 1)
PY
	if grep -qF -- "$secret" "$BLITFS_LOG" ||
		tr '\0' ' ' <"/proc/$BLITFS_PID/cmdline" | grep -F -- "$secret" >/dev/null; then
		fail "the secret shows in the log or on the command line"
	fi
}

e2e_test throttled_500 900 moto
e2e_test adapts_to_slowdown 600 moto
e2e_test forbidden 180 moto
e2e_test other_region 300 moto
e2e_test corrupt_bodies 240 moto
e2e_test multipart_1g 1200 moto
e2e_test profile_credentials 120 moto

[[ ${BASH_SOURCE[0]} != "$0" ]] || e2e_main "$@"
