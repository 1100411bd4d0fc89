#!/usr/bin/env bash
#
# bench/run.sh - blitfs against a local disk, s3fs, rclone mount and
# rclone copy, on one local S3 server (s3rver on 127.0.0.1).
#
#   bench/run.sh [--quick] [--runs N]
#
# Installs what is missing (Debian packages: s3fs, rclone, ImageMagick,
# mate-backgrounds, the aws CLI and blitfs's build dependencies; s3rver
# with `npm ci` from the project's lockfile tests/s3rver), builds blitfs
# into bench/.build, makes the input files (bench/.data, kept for the
# next run), starts s3rver, and measures each workload for each contender
# in turn, N times (3 by default), on a fresh bucket, mount and cache
# each time.  The table goes to stdout and to bench/RESULTS.md
# (bench/RESULTS-quick.md with --quick, so that a smoke test never
# overwrites a full run).  Logs of the last run: bench/.logs/last/.
#
# --quick: one run, W3 with 1,000 files and a 2,000-object listing.
# For debugging the harness, BENCH_WORKLOADS (default "w1 w2 w3 w4
# list") and BENCH_CONTENDERS (default "local s3fs rclone-mount
# rclone-copy blitfs") narrow a run down; ratios then may be n/a.
#
# See bench/README.md for the workloads, the figures and the targets.
# Everything this script starts (s3rver, mounts, daemons, pollers, temp
# directories) is stopped and removed on exit, Ctrl-C included.
set -uo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$BENCH")
# Debian's Python and aws CLI, not what a pyenv shim puts first on PATH;
# /usr/local/bin/convert may be a stand-in, /usr/bin/convert is
# ImageMagick's.
PY=/usr/bin/python3
AWS=/usr/bin/aws

RUNS=3
QUICK=0
W3_FILES=10000
LIST_FILES=20000
while (($#)); do
	case $1 in
	--quick) QUICK=1 RUNS=1 W3_FILES=1000 LIST_FILES=2000 ;;
	--runs) RUNS=${2:?--runs N}; shift ;;
	-h | --help) sed -n '3,26p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
	esac
	shift
done

# blitfs's default concurrency (fs/fs-config.c): the other contenders get
# the same number of uploads in flight.
CONC=8
WORKLOADS=${BENCH_WORKLOADS:-w1 w2 w3 w4 list}
CONTENDERS=${BENCH_CONTENDERS:-local s3fs rclone-mount rclone-copy blitfs}
DATA=$BENCH/.data
BUILD=$BENCH/.build
BLITFS=$BUILD/blitfs
if ((QUICK)); then
	OUT_MD=$BENCH/RESULTS-quick.md
else
	OUT_MD=$BENCH/RESULTS.md
fi
START=$EPOCHREALTIME

say()
{
	printf '%s bench: %s\n' "$(date +%T)" "$*" >&2
}

die()
{
	say "$*"
	exit 1
}

# ------------------------------------------------------------- installing

# Debian packages, installed only when missing (apt-get update only then).
install_packages()
{
	local pkgs=(s3fs rclone imagemagick mate-backgrounds awscli fuse3
		python3 build-essential meson ninja-build pkg-config
		libfuse3-dev libcurl4-openssl-dev libssl-dev libinih-dev
		libxml2-dev libsqlite3-dev libjansson-dev)
	local missing=() p

	command -v node >/dev/null 2>&1 || pkgs+=(nodejs npm)
	for p in "${pkgs[@]}"; do
		[[ $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) \
			== installed ]] || missing+=("$p")
	done
	((${#missing[@]})) || return 0
	say "installing ${missing[*]}"
	if ! apt-get update -q >/dev/null ||
		! DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
			"${missing[@]}" >/dev/null; then
		die "apt-get install ${missing[*]} failed"
	fi
}

# s3rver pinned by the project's lockfile, installed into bench/.s3rver
# rather than tests/s3rver: npm ci first deletes node_modules, which
# would pull s3rver from under test suites running at the same time.
install_s3rver()
{
	local dir=$BENCH/.s3rver lock=$REPO/tests/s3rver/package-lock.json

	if [[ -f $dir/node_modules/s3rver/package.json &&
		! $lock -nt $dir/node_modules/.package-lock.json ]] &&
		cmp -s "$lock" "$dir/package-lock.json"; then
		return 0
	fi
	say "npm ci: s3rver from tests/s3rver/package-lock.json"
	mkdir -p "$dir"
	cp "$REPO/tests/s3rver/package.json" "$lock" "$dir/"
	(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) >&2 ||
		die "npm ci in $dir failed"
}

# blitfs into bench/.build (not the shared build/).  Others edit the tree
# while this runs: a build that fails is tried again after a pause.
build_blitfs()
{
	local try

	for try in 1 2 3 4; do
		if [[ ! -f $BUILD/build.ninja ]]; then
			meson setup "$BUILD" "$REPO" >"$BENCH/.build.log" 2>&1 ||
				{ rm -rf "$BUILD"; }
		fi
		if [[ -f $BUILD/build.ninja ]] &&
			ninja -C "$BUILD" blitfs >>"$BENCH/.build.log" 2>&1; then
			return 0
		fi
		say "build failed (try $try; someone may be mid-edit):" \
			"$(grep -m1 -i error "$BENCH/.build.log")"
		((try == 4)) || sleep 45
	done
	die "cannot build blitfs; see $BENCH/.build.log"
}

# ------------------------------------------------------------------ state

WORK=
SERVER_PID=
POLL_PID=
declare -A DAEMONS=()	# pid -> mount point, for the cleanup

cleanup()
{
	local rc=$? pid mnt

	trap - EXIT INT TERM
	[[ -z $POLL_PID ]] || kill "$POLL_PID" 2>/dev/null
	for pid in "${!DAEMONS[@]}"; do
		mnt=${DAEMONS[$pid]}
		if findmnt -rn --mountpoint "$mnt" >/dev/null 2>&1; then
			fusermount3 -u "$mnt" 2>/dev/null ||
				fusermount3 -uz "$mnt" 2>/dev/null ||
				umount -l "$mnt" 2>/dev/null
		fi
		# only if that pid is still our daemon (its argv names mnt)
		if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null |
			grep -qF "$mnt"; then
			kill -TERM "$pid" 2>/dev/null
			sleep 1
			kill -KILL "$pid" 2>/dev/null
		fi
	done
	if [[ -n $SERVER_PID ]]; then
		kill -TERM "$SERVER_PID" 2>/dev/null
		wait "$SERVER_PID" 2>/dev/null
	fi
	if [[ -n $WORK && -d $WORK ]]; then
		# keep the logs and raw figures of the last run, not the data
		rm -rf "$BENCH/.logs/last"
		mkdir -p "$BENCH/.logs/last"
		cp "$WORK"/*.log "$WORK"/*.tsv "$WORK"/meta \
			"$BENCH/.logs/last/" 2>/dev/null
		rm -rf "$WORK"
	fi
	say "cleaned up; $(awk -v a="$START" -v b="$EPOCHREALTIME" \
		'BEGIN { printf "%.0f", b - a }') s in all"
	exit "$rc"
}

# -------------------------------------------------------------- the server

free_port()
{
	"$PY" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# s3rver on loopback with its data in $WORK/s3.  --openssl-legacy-provider
# for its DES continuation tokens (see tests/servers.sh); --silent: its
# log line per request would cost the one Node.js thread that all the
# contenders share.
start_server()
{
	local port i

	port=$(free_port)
	mkdir -p "$WORK/s3"
	node --openssl-legacy-provider \
		"$BENCH/.s3rver/node_modules/s3rver/bin/s3rver.js" \
		-d "$WORK/s3" -a 127.0.0.1 -p "$port" --silent \
		>"$WORK/s3rver.log" 2>&1 &
	SERVER_PID=$!
	export S3_ENDPOINT=http://127.0.0.1:$port
	for ((i = 0; i < 100; i++)); do
		AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER \
			"$PY" "$BENCH/s3.py" ping 2>/dev/null && return 0
		kill -0 "$SERVER_PID" 2>/dev/null || break
		sleep 0.2
	done
	die "s3rver did not start; $(tail -n 5 "$WORK/s3rver.log")"
}

# Credentials s3rver accepts (key id S3RVER, any signature), for every
# client; nothing of the user's ~/.aws.  AWS_CA_BUNDLE is dropped:
# loopback is plain http, and rclone 1.60 refuses to start at all when
# it is set ("LoadCustomCABundleError ... unsupported transport").
setup_env()
{
	unset AWS_PROFILE AWS_SESSION_TOKEN AWS_CA_BUNDLE AWS_ENDPOINT_URL
	export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER
	export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
	export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
	export AWS_PAGER='' AWS_EC2_METADATA_DISABLED=true
	# rclone's remote "bench:", from the environment alone
	export RCLONE_CONFIG=$WORK/rclone.conf
	: >"$RCLONE_CONFIG"
	export RCLONE_CONFIG_BENCH_TYPE=s3 RCLONE_CONFIG_BENCH_PROVIDER=Other
	export RCLONE_CONFIG_BENCH_ENDPOINT=$S3_ENDPOINT
	export RCLONE_CONFIG_BENCH_REGION=us-east-1
	export RCLONE_CONFIG_BENCH_ACCESS_KEY_ID=S3RVER
	export RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY=S3RVER
	export RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE=true
	# s3fs: a passwd file, mode 600 or s3fs refuses it
	printf 'S3RVER:S3RVER\n' >"$WORK/s3fs.passwd"
	chmod 600 "$WORK/s3fs.passwd"
}

# ------------------------------------------------------------------ mounts

# Options that lift blitfs's write limit: write_rate=0 if this blitfs
# takes it as "no limit"; one that refuses 0 (the current one does) gets
# the highest rate it accepts (10000/s, no limit at these sizes), and
# RESULTS.md says which.
blitfs_unlimited()
{
	local out opts

	mkdir -p "$WORK/probe" "$WORK/probe-cache"
	opts=endpoint=$S3_ENDPOINT,region=us-east-1,path_style
	opts+=,cache_dir=$WORK/probe-cache,write_rate=0
	# a bucket that does not exist: blitfs stops before mounting
	out=$(timeout 30 "$BLITFS" -f -o "$opts" bench-no-such-bucket \
		"$WORK/probe" 2>&1 </dev/null)
	# a refusal of the value names the key (the wording has changed
	# between versions); the missing bucket is the expected failure
	if [[ $out == *write_rate* ]]; then
		UNLIMITED=write_rate=10000
	else
		UNLIMITED=write_rate=0
	fi
	findmnt -rn --mountpoint "$WORK/probe" >/dev/null &&
		fusermount3 -u "$WORK/probe"
	rm -rf "$WORK/probe-cache"
}

# mount_fs CONTENDER BUCKET MNT: start the daemon in the foreground mode
# (so that its pid is ours to read /proc of), in the background; DPID.
mount_fs()
{
	local who=$1 bucket=$2 mnt=$3 log=$WORK/$1.log i opts

	mkdir -p "$mnt"
	echo "--- $(date +%T) $who $bucket" >>"$log"
	case $who in
	s3fs)
		# parallel_count: parts in flight for a big file, as blitfs
		opts=passwd_file=$WORK/s3fs.passwd,url=$S3_ENDPOINT
		opts+=,use_path_request_style,endpoint=us-east-1
		opts+=,parallel_count=$CONC
		s3fs "$bucket" "$mnt" -f -o "$opts" </dev/null >>"$log" 2>&1 &
		;;
	rclone-mount)
		# writes mode: a closed file is uploaded from rclone's cache;
		# write-back 0s starts that upload at once (default 5 s)
		rclone mount "bench:$bucket" "$mnt" --vfs-cache-mode writes \
			--vfs-write-back 0s --transfers "$CONC" \
			--s3-upload-concurrency "$CONC" --s3-chunk-size 16M \
			--cache-dir "$mnt.cache" </dev/null >>"$log" 2>&1 &
		;;
	blitfs | blitfs-10)
		opts=endpoint=$S3_ENDPOINT,region=us-east-1,path_style
		opts+=,cache_dir=$mnt.cache
		[[ $who == blitfs-10 ]] || opts+=,$UNLIMITED
		mkdir -p "$mnt.cache"
		"$BLITFS" -f -o "$opts" "$bucket" "$mnt" </dev/null \
			>>"$log" 2>&1 &
		;;
	esac
	DPID=$!
	DAEMONS[$DPID]=$mnt
	for ((i = 0; i < 200; i++)); do
		mountpoint -q "$mnt" && return 0
		kill -0 "$DPID" 2>/dev/null || break
		sleep 0.1
	done
	say "$who did not mount $bucket; $(tail -n 3 "$log" | tr '\n' ' ')"
	umount_fs "$mnt"
	return 1
}

# Unmount and wait for the daemon to exit (blitfs drains its queue).
umount_fs()
{
	local mnt=$1 i

	for ((i = 0; i < 50; i++)); do
		findmnt -rn --mountpoint "$mnt" >/dev/null 2>&1 || break
		fusermount3 -u "$mnt" 2>/dev/null && break
		sleep 0.2
	done
	findmnt -rn --mountpoint "$mnt" >/dev/null 2>&1 &&
		fusermount3 -uz "$mnt" 2>/dev/null
	for ((i = 0; i < 600; i++)); do
		kill -0 "$DPID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$DPID" 2>/dev/null; then
		say "daemon $DPID still running 60 s after unmount: killed"
		kill -KILL "$DPID" 2>/dev/null
	fi
	wait "$DPID" 2>/dev/null
	unset "DAEMONS[$DPID]"
	rm -rf "$mnt.cache"
}

# "PEAK_RSS_KIB CPU_SECONDS" of a live daemon: VmHWM from
# /proc/PID/status, utime+stime (all threads) from /proc/PID/stat.
daemon_stats()
{
	local hwm ticks

	hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null)
	# fields 14 and 15, counted after the ")" that ends the command name
	ticks=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null |
		awk '{ print $12 + $13 }')
	[[ -n $hwm && -n $ticks ]] || { echo "- -"; return; }
	awk -v h="$hwm" -v t="$ticks" -v hz="$(getconf CLK_TCK)" \
		'BEGIN { printf "%d %.2f\n", h, t / hz }'
}

# ----------------------------------------------------------- measurements

mk_bucket()
{
	"$PY" "$BENCH/s3.py" mb "$1" || die "cannot create bucket $1"
}

# The aws CLI's word on a bucket after the poller's: every manifest key
# there with its size.  Prints "ok" or what is wrong.
verify_bucket()
{
	"$AWS" --endpoint-url "$S3_ENDPOINT" s3api list-objects-v2 \
		--bucket "$1" --query 'Contents[].[Key,Size]' --output json |
		"$PY" -c 'import json, sys
have = {k: s for k, s in json.load(sys.stdin) or []}
bad = []
for line in open(sys.argv[1]):
    key, size = line.rstrip("\n").rsplit(" ", 1)
    if have.get(key) != int(size):
        bad.append(f"{key}:{have.get(key)}!={size}")
print("ok" if not bad else f"BAD({len(bad)}):" + ",".join(bad[:3]))' \
			"$2" 2>&1 | tr ' \n' '_ ' | sed 's/ $//'
}

# "KEY SIZE" lines of a workload's files, keys as in the bucket.
manifest()
{
	local w=$1 out=$WORK/$1.manifest i size

	case $w in
	w4)
		size=$(stat -c %s "$DATA/w4.jpg")
		for ((i = 0; i < 50; i++)); do
			printf 'w4/r%03d.jpg %s\n' "$i" "$size"
		done >"$out"
		;;
	*) (cd "$(dirname "$(src_of "$w")")" &&
		find "$w" -type f -printf '%p %s\n') >"$out" ;;
	esac
}

src_of()
{
	case $1 in
	w1) echo "$DATA/w1" ;;
	w2) echo "$DATA/w2" ;;
	w3) echo "$DATA/w3-$W3_FILES/w3" ;;
	list) echo "$DATA/list-$LIST_FILES/list" ;;
	esac
}

# How long the poller may wait for a workload's bucket, in seconds.
limit_of()
{
	case $1 in
	w1) echo 240 ;; w2) echo 600 ;; w3) echo 900 ;; w4) echo 300 ;;
	esac
}

# Who else uses the machine right now: the load average, foreign FUSE
# mounts and test-suite processes (other engineers run tests on it).
sample_load()
{
	local mounts procs

	mounts=$(findmnt -rn -t fuse,fuse.blitfs,fuse.s3fs,fuse.rclone \
		-o TARGET 2>/dev/null | grep -vc "^$WORK/")
	procs=$(pgrep -fc \
		'tests/e2e/|moto-server|gateway\.py|tests/run\.sh|meson test|cc1 ')
	echo "$1 $(cut -d' ' -f1-3 /proc/loadavg) $mounts $procs" \
		>>"$WORK/load.tsv"
}

# measure RUN WORKLOAD CONTENDER: one measurement, one line of
# results.tsv:  run workload contender write_s bucket_s rss_kib cpu_s
# readback_median_s readback_max_s status
measure()
{
	local run=$1 w=$2 who=$3 bucket=b$1-$2-$3 src dest t0 t1 rc=0
	local write='-' inb='-' rss='-' cpu='-' rbm='-' rbx='-' st=ok
	local lim

	src=$(src_of "$w")
	lim=$(limit_of "$w")
	sample_load "$run-$w-$who"
	if [[ $who == local ]]; then
		dest=$WORK/local
		rm -rf "$dest"
		mkdir -p "$dest"
		t0=$EPOCHREALTIME
		writer "$w" "$src" "$dest" || rc=$?
		t1=$EPOCHREALTIME
		rm -rf "$dest"
	else
		mk_bucket "$bucket"
		dest=$WORK/mnt-$bucket
		if [[ $who != rclone-copy ]] && ! mount_fs "$who" "$bucket" "$dest"
		then
			record "$run" "$w" "$who" - - - - - - mount-failed
			return
		fi
		t0=$EPOCHREALTIME
		# the poller starts with the writer: same watch for everyone
		"$PY" "$BENCH/s3.py" wait "$bucket" "$WORK/$w.manifest" \
			"$t0" "$lim" >"$WORK/poll.out" 2>>"$WORK/poll.log" &
		POLL_PID=$!
		if [[ $who == rclone-copy ]]; then
			rusage_writer "$w" "$src" "$bucket" || rc=$?
		else
			writer "$w" "$src" "$dest" || rc=$?
		fi
		t1=$EPOCHREALTIME
		wait "$POLL_PID" && inb=$(cat "$WORK/poll.out") || st=not-in-bucket
		POLL_PID=
		if [[ $who == rclone-copy ]]; then
			read -r rss cpu <"$WORK/rusage.out"
		else
			# before the daemon exits: its whole life's peak and CPU
			read -r rss cpu < <(daemon_stats "$DPID")
			umount_fs "$dest"
		fi
		if [[ $st == ok ]]; then
			st=$(verify_bucket "$bucket" "$WORK/$w.manifest")
		fi
		# the bucket's files, straight from s3rver's disk: cleanup only
		rm -rf "${WORK:?}/s3/$bucket" "$dest"
	fi
	((rc == 0)) || st="writer-failed($rc)"
	write=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
	if [[ $w == w4 && -s $WORK/w4.rounds ]]; then
		# W4: the writer column is the median write+close of a round
		read -r write rbm rbx < <("$PY" -c 'import statistics, sys
w, r = zip(*(map(float, l.split()) for l in open(sys.argv[1])))
print(f"{statistics.median(w):.4f} {statistics.median(r):.4f}",
      f"{max(r):.4f}")' "$WORK/w4.rounds")
		rm -f "$WORK/w4.rounds"
	fi
	record "$run" "$w" "$who" "$write" "$inb" "$rss" "$cpu" "$rbm" \
		"$rbx" "$st"
}

record()
{
	local rb=

	(IFS=$'\t' && echo "$*") >>"$WORK/results.tsv"
	[[ $8 == - ]] || rb=", read-back median $8 s, worst $9 s"
	say "run $1 $2 $3: write $4 s, in bucket $5 s, rss $6 KiB," \
		"cpu $7 s$rb: ${10}"
}

# The writing command of a workload into a directory (a mount or local).
writer()
{
	local w=$1 src=$2 dest=$3 lim

	lim=$(limit_of "$w")
	case $w in
	w4)
		timeout -k 10 "$lim" "$PY" "$BENCH/s3.py" w4 fs "$dest" \
			"$DATA/w4.jpg" 50 "$WORK/w4.rounds"
		;;
	*) timeout -k 10 "$lim" cp -r "$src" "$dest/" ;;
	esac
}

# rclone copy of the same folder straight to the bucket, under rusage.py
# (it is a command, not a daemon: its /proc entry is gone when it is
# done).  W4: PUT then GET of the probe, 50 times (the raw upload time).
rusage_writer()
{
	local w=$1 src=$2 bucket=$3 lim

	lim=$(limit_of "$w")
	if [[ $w == w4 ]]; then
		timeout -k 10 "$lim" "$PY" "$BENCH/rusage.py" "$WORK/rusage.out" \
			"$PY" "$BENCH/s3.py" w4 s3 "$bucket" "$DATA/w4.jpg" 50 \
			"$WORK/w4.rounds"
		return
	fi
	timeout -k 10 "$lim" "$PY" "$BENCH/rusage.py" "$WORK/rusage.out" \
		rclone copy --transfers "$CONC" --s3-upload-concurrency "$CONC" \
		--s3-chunk-size 16M "$src" "bench:$bucket/$w" \
		2>>"$WORK/rclone-copy.log"
}

# Listing: RUN CONTENDER; the bucket was filled by fill_listing.
measure_list()
{
	local run=$1 who=$2 mnt=$WORK/mnt-list-$1-$2 t0 t1 n rss cpu st=ok

	sample_load "$run-list-$who"
	mount_fs "$who" "$LIST_BUCKET" "$mnt" ||
		{ record "$run" list "$who" - - - - - - mount-failed; return; }
	t0=$EPOCHREALTIME
	n=$(timeout -k 10 600 ls -f "$mnt/list" | wc -l)
	t1=$EPOCHREALTIME
	read -r rss cpu < <(daemon_stats "$DPID")
	umount_fs "$mnt"
	rmdir "$mnt" 2>/dev/null
	# ls -f shows . and .. too
	((n == LIST_FILES + 2)) || st="BAD:listed_$((n - 2))_of_$LIST_FILES"
	record "$run" list "$who" \
		"$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')" \
		- "$rss" "$cpu" - - "$st"
}

# The listing bucket, through the S3 API (rclone copy, 32 at once), not
# through a mount.
fill_listing()
{
	LIST_BUCKET=bench-list
	mk_bucket "$LIST_BUCKET"
	say "putting $LIST_FILES objects into $LIST_BUCKET/list/ (rclone copy)"
	rclone copy --transfers 32 --checkers 32 "$(src_of list)" \
		"bench:$LIST_BUCKET/list" 2>>"$WORK/rclone-copy.log" ||
		die "rclone copy of the listing objects failed"
	[[ $("$PY" "$BENCH/s3.py" count "$LIST_BUCKET") == "$LIST_FILES" ]] ||
		die "listing bucket does not hold $LIST_FILES objects"
}

# ----------------------------------------------------------------- report

meta()
{
	echo "$1=$2" >>"$WORK/meta"
}

write_meta()
{
	local im

	im=$(/usr/bin/convert -version | head -n 1)
	meta date "$(date -u '+%Y-%m-%d %H:%M UTC')"
	meta cores "$(nproc)"
	meta memory "$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' \
		/proc/meminfo)"
	meta cpu "$(lscpu | sed -n 's/^Model name: *//p' | head -n 1)"
	meta kernel "$(uname -r)"
	meta os "$(sed -n 's/^PRETTY_NAME="\(.*\)"$/\1/p' /etc/os-release)"
	meta blitfs "$("$BLITFS" -V 2>&1 | head -n 1) (commit $(git -C \
		"$REPO" rev-parse --short HEAD 2>/dev/null)$( [[ -n $(git -C \
		"$REPO" status --porcelain -- fs cache s3 notify meson.build \
		2>/dev/null) ]] && echo ", with uncommitted changes"))"
	meta s3fs "$(s3fs --version 2>&1 | head -n 1)"
	meta rclone "$(rclone version 2>/dev/null | head -n 1)"
	meta s3rver "s3rver $("$PY" -c 'import json, sys
print(json.load(open(sys.argv[1]))["version"])' \
		"$BENCH/.s3rver/node_modules/s3rver/package.json"), Node.js \
$(node --version)"
	meta awscli "$("$AWS" --version 2>&1)"
	meta imagemagick "${im#Version: }"
	meta fuse "$(fusermount3 -V 2>&1)"
	meta runs "$RUNS"
	meta quick "$QUICK"
	meta w3_files "$W3_FILES"
	meta list_files "$LIST_FILES"
	meta w1_files "$(find "$DATA/w1" -type f | wc -l)"
	meta w1_bytes "$(du -sb "$DATA/w1" | cut -f1)"
	meta w1_sizes "$(find "$DATA/w1" -type f -printf '%s\n' | sort -n |
		sed -n '1p;$p' | paste -sd-)"
	meta w2_bytes "$(stat -c %s "$DATA/w2/big.bin")"
	meta w3_bytes "$(du -sb "$(src_of w3)" | cut -f1)"
	meta w4_bytes "$(stat -c %s "$DATA/w4.jpg")"
	meta unlimited "$UNLIMITED"
	meta concurrency "$CONC"
}

# ------------------------------------------------------------------- main

main()
{
	local run w who

	((EUID == 0)) || die "run as root (apt-get, FUSE mounts)"
	install_packages
	install_s3rver
	say "building blitfs into ${BUILD#"$REPO"/}"
	build_blitfs
	say "input files in ${DATA#"$REPO"/}"
	"$PY" "$BENCH/gen-data.py" "$DATA" "$W3_FILES" "$LIST_FILES" ||
		die "making the input files failed"

	WORK=$(mktemp -d /tmp/blitfs-bench.XXXXXX)
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	: >"$WORK/results.tsv"
	: >"$WORK/load.tsv"
	start_server
	setup_env
	blitfs_unlimited
	say "s3rver at $S3_ENDPOINT; blitfs without a write limit:" \
		"-o $UNLIMITED"
	write_meta
	for w in w1 w2 w3 w4; do
		manifest "$w"
	done

	for ((run = 1; run <= RUNS; run++)); do
		for w in $WORKLOADS; do
			[[ $w != list ]] || continue
			for who in $CONTENDERS; do
				measure "$run" "$w" "$who"
				# W1 once more at blitfs's default write rate
				[[ $w$who != w1blitfs ]] ||
					measure "$run" w1 blitfs-10
			done
		done
	done
	[[ " $WORKLOADS " == *" list "* ]] || return 0
	fill_listing
	for ((run = 1; run <= RUNS; run++)); do
		for who in $CONTENDERS; do
			[[ $who == @(local|rclone-copy) ]] ||
				measure_list "$run" "$who"
		done
	done
	meta elapsed "$(awk -v a="$START" -v b="$EPOCHREALTIME" \
		'BEGIN { printf "%.0f", b - a }')"
	"$PY" "$BENCH/report.py" "$WORK" "$OUT_MD"
}

main "$@"
