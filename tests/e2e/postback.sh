#!/usr/bin/env bash
#
# postback.sh - files that ask for a postback (sidecar NAME.postback,
# the xattr user.blitfs.postback on a directory or a file) get a signed
# JSON POST once their upload is visible, when the wait for that runs out,
# or when the upload fails.  The receiver (tests/postback/) records each
# delivery and checks its signature; the gateway (tests/gateway/) delays
# visibility, refuses a bucket and records when each object was written.
#
# Exercises notify/ (the durable delivery queue, signing, retries), fs/
# (sidecars, xattrs) and cache/ (when a version is final).
#
#   tests/e2e/postback.sh [TEST...]      BLITFS=...
#
# Runs on moto only (the gateway and timing).  Each case prints its
# measurements (lines starting "postback:").

# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# shellcheck source-path=SCRIPTDIR source=../gateway/gateway.sh
source "$(dirname "${BASH_SOURCE[0]}")/../gateway/gateway.sh"
# shellcheck source-path=SCRIPTDIR source=../postback/receiver.sh
source "$(dirname "${BASH_SOURCE[0]}")/../postback/receiver.sh"

SECRET=e2e-postback-secret-1234
MATE=/usr/share/backgrounds/mate

# Start the receiver (its pid joins the daemons ended after the test) and
# write the mount's secret file.
pb_setup()
{
	receiver_start "$SECRET"
	echo "$RECEIVER_PID" >>"$T/daemon.pids"
	printf '%s\n' "$SECRET" >"$T/secret"
	chmod 600 "$T/secret"
}

# N small distinct files in DIR.
make_files()
{
	local dir=$1 n=$2 i

	mkdir -p "$dir"
	for ((i = 0; i < n; i++)); do
		head -c $((3000 + i)) /dev/urandom >"$dir/p$i.jpg"
	done
}

# Check every accepted delivery against the bucket and the gateway's
# record: right key and ETag, a valid signature, and an arrival after
# the object became visible (its PUT plus the visibility delay $2).
check_deliveries()
{
	local want=$1 delay=$2

	receiver_record accepted >"$T/deliveries.json"
	gateway_record >"$T/record.json"
	s3api list-objects-v2 --bucket "$BUCKET" \
		--query 'Contents[].[Key, ETag]' --output json >"$T/etags.json"
	python3 - "$T/deliveries.json" "$T/record.json" "$T/etags.json" \
		"$BUCKET" "$want" "$delay" <<'PY'
import json, statistics, sys

dl, rec, etags, bucket, want, delay = sys.argv[1:7]
want, delay = int(want), float(delay)
deliveries = json.load(open(dl))["deliveries"]
etag = {k: e.strip('"') for k, e in json.load(open(etags)) or []}
put_done = {}
for r in json.load(open(rec)):
    if r["bucket"] == bucket and r["method"] == "PUT" and r["status"] == 200:
        put_done[r["key"]] = max(put_done.get(r["key"], 0), r["t"])
seen, lat = set(), []
for d in deliveries:
    b = d["body"]
    key = b["key"]
    assert b["event"] == "visible" and b["visible"] is True, b
    assert b["bucket"] == bucket, b
    assert b["etag"] == etag.get(key), (key, b["etag"], etag.get(key))
    assert d["signature_ok"] and d["timestamp_ok"], d["headers"]
    visible_at = put_done[key] + delay
    assert d["t"] >= visible_at, "%s arrived %.2f s before it was visible" % (
        key, visible_at - d["t"])
    lat.append(d["t"] - visible_at)
    seen.add(key)
assert len(seen) == want, "%d distinct keys delivered, want %d" % (
    len(seen), want)
print("postback: %d deliveries; after visibility: median %.0f ms, max %.0f ms"
      % (len(deliveries), statistics.median(lat) * 1e3, max(lat) * 1e3))
PY
}

# 200 files with sidecars and 200 under a directory with the xattr: 400
# postbacks, right keys and ETags, valid signatures, after visibility.
test_sidecars_and_dir()
{
	local i

	pb_setup
	make_files "$T/a" 200
	make_files "$T/b" 200
	gw_mount '{"visibility_delay_s": 1}' \
		"postback_secret_file=$T/secret,write_rate=100,visibility_poll=0.5"
	mkdir "$MNT/side" "$MNT/dir"
	setfattr -n user.blitfs.postback -v "$RECEIVER_URL" "$MNT/dir"
	for ((i = 0; i < 200; i++)); do
		if ((i % 2)); then	# sidecar written before, or after, NAME
			printf '%s\n' "$RECEIVER_URL" >"$MNT/side/p$i.jpg.postback"
			cp "$T/a/p$i.jpg" "$MNT/side/"
		else
			cp "$T/a/p$i.jpg" "$MNT/side/"
			printf '{"url": "%s", "data": {"n": %d}}' "$RECEIVER_URL" \
				"$i" >"$MNT/side/p$i.jpg.postback"
		fi
	done
	cp "$T"/b/*.jpg "$MNT/dir/"
	receiver_wait_count 400 180
	check_deliveries 400 1
	s3_keys | grep -c '\.postback$' >"$T/sidecars" || true
	assert_eq 0 "$(cat "$T/sidecars")" "sidecars uploaded"
	receiver_record accepted | python3 -c '
import json, sys
d = [x["body"] for x in json.load(sys.stdin)["deliveries"]
     if x["body"]["key"] == "side/p4.jpg"]
assert d and d[0]["data"] == {"n": 4}, d'
}

# The xattr on the file itself, set while the file is open and, as the
# README shows it, right after cp: one postback each, for that file only.
test_file_xattr()
{
	pb_setup
	make_files "$T/a" 3
	gw_mount '{"visibility_delay_s": 1}' "postback_secret_file=$T/secret"
	python3 - "$T/a/p0.jpg" "$MNT/open.jpg" "$RECEIVER_URL" <<'PY'
import os, sys
src, dst, url = sys.argv[1:4]
with open(dst, "wb") as f:
    f.write(open(src, "rb").read())
    os.setxattr(dst, "user.blitfs.postback", url.encode())
PY
	cp "$T/a/p1.jpg" "$MNT/after.jpg"
	setfattr -n user.blitfs.postback -v "$RECEIVER_URL" "$MNT/after.jpg"
	cp "$T/a/p2.jpg" "$MNT/none.jpg"
	receiver_wait_count 2 60
	check_deliveries 2 1
	sleep 3
	assert_eq "after.jpg open.jpg" "$(receiver_record accepted |
		python3 -c 'import json, sys
print(" ".join(sorted(d["body"]["key"]
                      for d in json.load(sys.stdin)["deliveries"])))')" \
		"keys delivered"
}

# The receiver away for 30 s: every postback arrives once it is back.
test_receiver_down()
{
	local t_back

	pb_setup
	make_files "$T/a" 20
	gw_mount '{}' "postback_secret_file=$T/secret,postback_url=$RECEIVER_URL"
	receiver_mode down 30
	t_back=$(($(date +%s) + 30))
	cp "$T"/a/*.jpg "$MNT/"
	receiver_wait_count 20 120
	check_deliveries 20 0
	receiver_record accepted | python3 -c '
import json, sys
early = [d for d in json.load(sys.stdin)["deliveries"] if d["t"] < '"$t_back"' - 1]
assert not early, "delivered while the receiver was down: %d" % len(early)'
	echo "postback: all 20 arrived $(( $(date +%s) - t_back )) s after" \
		"the receiver came back"
}

# kill -9 between the upload and the postback: delivered after remount.
test_kill9_between()
{
	local cache=$T/cache.pb

	pb_setup
	gw_mount '{"visibility_delay_s": 6}' \
		"cache_dir=$cache,postback_secret_file=$T/secret"
	printf '%s\n' "$RECEIVER_URL" >"$MNT/k.jpg.postback"
	cp "$MATE/nature/Aqua.jpg" "$MNT/k.jpg"
	wait_object k.jpg "$(md5_of "$MATE/nature/Aqua.jpg")" 30
	kill -KILL "$BLITFS_PID"
	wait "$BLITFS_PID" 2>/dev/null || true
	BLITFS_PID=
	fusermount3 -uz "$MNT"
	assert_eq 0 "$(receiver_count)" "deliveries before the kill"
	BLITFS_SERVER_OPTS="endpoint=$GATEWAY_URL,region=us-east-1,path_style" \
		blitfs_mount "cache_dir=$cache,postback_secret_file=$T/secret"
	receiver_wait_count 1 60
	check_deliveries 1 6
}

# Visibility slower than the timeout: the postback goes at about 10 s,
# saying visible: false.
test_unconfirmed()
{
	pb_setup
	gw_mount '{"visibility_delay_s": 30}' \
		"postback_secret_file=$T/secret,postback_url=$RECEIVER_URL"
	cp "$MATE/nature/Aqua.jpg" "$MNT/slow.jpg"
	receiver_wait_count 1 40
	gateway_record >"$T/record.json"
	receiver_record accepted >"$T/deliveries.json"
	python3 - "$T/record.json" "$BUCKET" "$T/deliveries.json" <<'PY'
import json, sys

d = json.load(open(sys.argv[3]))["deliveries"][0]
b = d["body"]
put = max(r["t"] for r in json.load(open(sys.argv[1]))
          if r["bucket"] == sys.argv[2] and r["method"] == "PUT"
          and r["status"] == 200)
late = d["t"] - put
print("postback: unconfirmed: event %s, visible %s, %.1f s after the upload"
      % (b["event"], b["visible"], late))
assert b["event"] == "unconfirmed" and b["visible"] is False, b
assert 9 <= late <= 13, late
assert d["signature_ok"], d["headers"]
PY
}

# A bucket answering 403: a failure postback with the error.  (It turns
# 403 after the mount and the file's creation, which check the bucket.)
test_forbidden()
{
	pb_setup
	gw_mount '{}' "upload_delay=2000,postback_secret_file=$T/secret,postback_url=$RECEIVER_URL"
	cp "$MATE/nature/Aqua.jpg" "$MNT/no.jpg"
	gateway_scenario "{\"forbidden_buckets\": [\"$BUCKET\"]}"
	receiver_wait_count 1 30
	receiver_record accepted | python3 -c '
import json, sys
b = json.load(sys.stdin)["deliveries"][0]["body"]
print("postback: failure: event %s, error %s" % (b["event"], b["error"]))
assert b["event"] == "failed" and "AccessDenied" in b["error"], b
assert b["visible"] is False and b["etag"] is None, b'
}

# Only http and https: other schemes are refused when set, never sent.
test_schemes_refused()
{
	local url

	blitfs_mount
	echo data >"$MNT/f.jpg"
	mkdir "$MNT/d"
	for url in file:///etc/passwd ftp://example.com/x gopher://example.com/; do
		if setfattr -n user.blitfs.postback -v "$url" "$MNT/f.jpg" \
			2>"$T/err"; then
			fail "setfattr accepted $url"
		fi
		grep -q 'Invalid argument' "$T/err" || fail "$(cat "$T/err")"
		if setfattr -n user.blitfs.postback -v "$url" "$MNT/d" 2>/dev/null
		then
			fail "setfattr on a directory accepted $url"
		fi
		printf '%s\n' "$url" >"$T/side"
		if cp "$T/side" "$MNT/f.jpg.postback" 2>"$T/err"; then
			fail "a sidecar holding $url closed without error"
		fi
		grep -q "only http:// and https://" "$BLITFS_LOG" ||
			fail "no reason in the log for $url"
	done
	echo "postback: refused: $(grep -m1 -o "postback URL.*" "$BLITFS_LOG")"
	if "$BLITFS" -o "endpoint=$S3_ENDPOINT,path_style,postback_url=ftp://x" \
		"$BUCKET" "$T/mnt2" 2>"$T/err"; then
		fail "mounted with postback_url=ftp://x"
	fi
	grep -q "only http:// and https://" "$T/err" ||
		fail "postback_url=ftp://x said: $(cat "$T/err")"
}

e2e_test sidecars_and_dir 300 moto
e2e_test file_xattr 90 moto
e2e_test receiver_down 180 moto
e2e_test kill9_between 120 moto
e2e_test unconfirmed 90 moto
e2e_test forbidden 60 moto
e2e_test schemes_refused 60

[[ ${BASH_SOURCE[0]} != "$0" ]] || e2e_main "$@"
