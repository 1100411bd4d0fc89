#!/usr/bin/env bash
#
# pipeline.sh - the main job (README, "Quick start"): an image pipeline
# writing straight into a blitfs mount, measured and checked.
#
#   tests/pipeline.sh [--keep]
#
# Installs what is missing, builds build/blitfs, starts s3rver on 127.0.0.1
# with its data in .blitfs-demo/s3 (unless AWS_ENDPOINT_URL names a server
# of your own; then your AWS_* credentials are used and BLITFS_OPTS may add
# -o options such as path_style), mounts the bucket at .blitfs-demo/mnt (or
# $MNT), and has ImageMagick turn every photograph of mate-backgrounds into
# a 256 px thumbnail, a 1280 px JPEG and a 1280 px WebP, written into the
# mount by parallel writers.  It measures how long the writers took and how
# long until every object was in the bucket, checks the bucket's bytes and
# the mount's read-back against the same conversions made on local disk,
# and prints a summary.  Each run writes under a prefix of its own
# (run-DATE-TIME/), so earlier runs' objects cannot pass for this one's.
#
# With --keep (or KEEP=1) the mount and the server stay up afterwards and
# the script says how to stop them.  BUCKET names the bucket (default
# blitfs-demo).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source tests/lib.sh

KEEP=${KEEP:-0}
[[ ${1:-} != --keep ]] || KEEP=1
DEMO=$repo/.blitfs-demo
MNT=${MNT:-$DEMO/mnt}
BUCKET=${BUCKET:-blitfs-demo}
RUN=run-$(date +%Y%m%d-%H%M%S)
T=$DEMO/runs/$RUN
BLITFS_LOG=$T/blitfs.log
BLITFS=$repo/build/blitfs
BLITFS_PID=
SOURCES=/usr/share/backgrounds/mate
JOBS=$(nproc)
own_server=0

say()
{
	printf '%s\n' "pipeline: $*"
}

die()
{
	say "$*" >&2
	exit 1
}

setup()
{
	say "installing what is missing"
	tests/install-deps.sh
	say "building build/blitfs"
	if [[ ! -f build/meson-private/coredata.dat ]]; then
		meson setup build >"$DEMO/build.log" 2>&1 ||
			{ tail -n 30 "$DEMO/build.log"; die "meson setup failed"; }
	fi
	meson compile -C build >"$DEMO/build.log" 2>&1 ||
		{ tail -n 30 "$DEMO/build.log"; die "build failed"; }
}

# s3rver on loopback unless the user named a server.
start_server()
{
	if [[ -n ${AWS_ENDPOINT_URL:-} ]]; then
		S3_SERVER=external S3_ENDPOINT=$AWS_ENDPOINT_URL
		S3_REGION=${AWS_REGION:-${AWS_DEFAULT_REGION:-us-east-1}}
		AWS_ISOLATE=0
		BLITFS_SERVER_OPTS=${BLITFS_OPTS:-}
		export S3_SERVER S3_ENDPOINT S3_REGION AWS_ISOLATE
		say "using $S3_ENDPOINT"
	else
		s3rver_start "$(free_port)" "$DEMO/s3" ||
			die "s3rver did not start"
		own_server=1
		say "s3rver at $S3_ENDPOINT, data in ${DEMO#"$repo"/}/s3"
	fi
	s3api head-bucket --bucket "$BUCKET" >/dev/null 2>&1 ||
		make_bucket "$BUCKET" || die "cannot create bucket $BUCKET"
}

finish()
{
	local rc=$?

	trap - EXIT
	if [[ $KEEP == 1 ]]; then
		echo
		say "kept running:"
		[[ -z $BLITFS_PID ]] ||
			echo "  mount   $MNT (blitfs pid $BLITFS_PID, log $BLITFS_LOG)"
		if ((own_server == 1)); then
			echo "  s3rver  $S3_ENDPOINT (pid $SERVER_PID), browse with:"
			echo "    AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER" \
				"$AWS_BIN --endpoint-url $S3_ENDPOINT --region us-east-1" \
				"s3 ls s3://$BUCKET/$RUN/ --recursive"
		fi
		echo "stop them with:"
		[[ -z $BLITFS_PID ]] || echo "  fusermount3 -u '$MNT'"
		((own_server == 0)) || echo "  kill $SERVER_PID"
		exit "$rc"
	fi
	if [[ -n $BLITFS_PID ]]; then
		blitfs_umount || rc=1
	fi
	((own_server == 0)) || server_stop
	rm -rf "$T"/cache.* "$T/s3"
	exit "$rc"
}

# All conversions, as NUL-separated argument groups of 9 for convert,
# writing under $1.  jpeg:size lets the JPEG decoder shrink the big
# photographs while it reads them; it does nothing to PNG.
jobs_into()
{
	local out=$1 src name

	while read -r src; do
		name=$(basename "$(dirname "$src")")-$(basename "${src%.*}")
		printf '%s\0' -define jpeg:size=512x512 "$src" -strip \
			-resize 256x256 -quality 85 "$out/thumbs/$name.jpg"
		printf '%s\0' -define jpeg:size=2560x2560 "$src" -strip \
			-resize 1280x1280 -quality 85 "$out/web/$name.jpg"
		printf '%s\0' -define jpeg:size=2560x2560 "$src" -strip \
			-resize 1280x1280 -quality 80 "$out/webp/$name.webp"
	done < <(find "$SOURCES" -type f \( -name '*.jpg' -o -name '*.png' \) |
		sort)
}

# Run the conversions into $1 with $JOBS writers at a time.
convert_into()
{
	local im=convert

	command -v magick >/dev/null 2>&1 && im=magick
	mkdir -p "$1/thumbs" "$1/web" "$1/webp"
	jobs_into "$1" | xargs -0 -n 9 -P "$JOBS" "$im"
}

now()
{
	date +%s.%N
}

secs()
{
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'
}

# "key size md5" for every reference file, keys as they go in the bucket.
manifest()
{
	(cd "$T/ref" && find . -type f -printf '%P %s\n' | sort) |
		while read -r rel size; do
			echo "$RUN/$rel $size $(md5_of "$T/ref/$rel")"
		done
}

# How many of the manifest's objects the bucket holds with the right size
# and ETag (an MD5: single PUTs), from one listing.
count_in_bucket()
{
	s3api list-objects-v2 --bucket "$BUCKET" --prefix "$RUN/" \
		--query 'Contents[].[Key,Size,ETag]' --output json 2>/dev/null |
		python3 -c 'import json, sys
want = {}
for line in open(sys.argv[1]):
    key, size, md5 = line.split()
    want[key] = (int(size), md5)
have = json.load(sys.stdin) or []
print(sum(1 for k, s, e in have if want.get(k) == (s, e.strip("\""))))' \
			"$T/manifest"
}

wait_bucket()
{
	local total=$1 limit=600 have=0 last=-1 t0=$SECONDS

	while ((SECONDS - t0 < limit)); do
		have=$(count_in_bucket) || have=0
		if ((have != last)); then
			say "  $have/$total in the bucket"
			last=$have
		fi
		((have < total)) || return 0
		sleep 0.5
	done
	return 1
}

# Compare every file under $1 with the reference; print the mismatches.
compare_tree()
{
	local dir=$1 bad=0 rel

	while read -r rel; do
		if [[ $(md5_of "$dir/$rel" 2>/dev/null) != \
			"$(md5_of "$T/ref/$rel")" ]]; then
			echo "    differs: $rel" >&2
			bad=$((bad + 1))
		fi
	done < <(cd "$T/ref" && find . -type f -printf '%P\n')
	return "$bad"
}

main()
{
	local t_local t_write t_bucket t0 t1 total bytes ok=1

	mkdir -p "$DEMO" "$T"
	setup
	[[ -x $BLITFS ]] || die "no $BLITFS"
	if is_mounted "$MNT"; then
		die "$MNT is mounted already (a --keep run?): fusermount3 -u '$MNT'"
	fi
	trap finish EXIT
	trap 'exit 130' INT TERM
	start_server

	say "converting $(find "$SOURCES" -type f \( -name '*.jpg' -o \
		-name '*.png' \) | wc -l) photographs on local disk first" \
		"(the reference)"
	t0=$(now)
	convert_into "$T/ref"
	t_local=$(secs "$t0" "$(now)")
	manifest >"$T/manifest"
	total=$(wc -l <"$T/manifest")
	bytes=$(awk '{ n += $2 } END { print n }' "$T/manifest")

	blitfs_mount
	say "mounted s3://$BUCKET at $MNT; writing $total files into $RUN/"
	t0=$(now)
	convert_into "$MNT/$RUN"
	t1=$(now)
	t_write=$(secs "$t0" "$t1")
	say "writers returned after ${t_write}s; waiting for the bucket"
	wait_bucket "$total" || { ok=0; say "not all in the bucket after 600s"; }
	t_bucket=$(secs "$t0" "$(now)")

	say "checking the bucket's bytes (aws s3 cp) and the mount's read-back"
	s3cli cp --recursive --only-show-errors "s3://$BUCKET/$RUN/" "$T/s3/"
	# s3rver may acknowledge a PUT before the object is wholly on disk:
	# one more fetch after a pause before calling a short object wrong.
	if ! compare_tree "$T/s3" 2>/dev/null; then
		sleep 2
		s3cli cp --recursive --only-show-errors \
			"s3://$BUCKET/$RUN/" "$T/s3/"
		compare_tree "$T/s3" || { ok=0; say "bucket bytes differ"; }
	fi
	compare_tree "$MNT/$RUN" || { ok=0; say "mount read-back differs"; }

	echo
	echo "blitfs image pipeline"
	printf '  %-34s %s\n' \
		"files written" "$total ($((bytes / 1024)) KiB)" \
		"writers returned after" "${t_write} s (same work on local disk: ${t_local} s)" \
		"all in the bucket after" "${t_bucket} s" \
		"bytes in the bucket, read-back" "$([[ $ok == 1 ]] && echo "all match" || echo "MISMATCHES (see above)")" \
		"mount" "$MNT/$RUN$([[ $KEEP == 1 ]] || echo " (unmounted on exit; --keep keeps it)")" \
		"bucket" "s3://$BUCKET/$RUN/ at $S3_ENDPOINT ($S3_SERVER)" \
		"logs" "$T"
	[[ $ok == 1 ]]
}

main "$@"
