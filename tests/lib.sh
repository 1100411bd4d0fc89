# shellcheck shell=bash
#
# lib.sh - helpers and a runner for blitfs end-to-end tests.
#
# A suite is a bash file that sources this one, defines each test as a
# function test_NAME, registers it with `e2e_test NAME [TIMEOUT]
# [moto|s3rver]` and ends with `e2e_main "$@"` when executed (not when
# sourced: each test's bash sources the suite again to find its function).  Each test runs in a fresh bash process of its
# own (under `timeout`, in its own process group, with `set -eEuo pipefail`),
# gets a fresh bucket, a mount point and a cache directory, and is judged by
# its exit status.  Whatever it left mounted is unmounted and checked after
# it (daemon exit status, sanitizer reports), and forced away if need be.
#
# Environment (all optional):
#   BLITFS        the binary under test (default: build/blitfs)
#   S3_ENDPOINT   a server already running (with S3_SERVER=moto|s3rver,
#                 SERVER_PID and credentials); otherwise the suite starts
#                 E2E_SERVER (moto by default) itself
#   E2E_LABEL     prefix for the result lines (e.g. moto/asan)
#   E2E_RESULTS   file that gets one "PASS name"/"FAIL name" line per test
#   E2E_SUMMARY=0 leave out the closing "N passed, N failed" line
#   E2E_KEEP=1    keep the work directory (logs, caches) afterwards
#   BLITFS_DEBUG=1  mount with -d
# Arguments to the suite: names of the tests to run (default: all).

# shellcheck source-path=SCRIPTDIR source=servers.sh
source "$(dirname "${BASH_SOURCE[0]}")/servers.sh"

E2E_REPO=$(cd "$BLITFS_TESTS_DIR/.." && pwd)
E2E_NAMES=()
declare -A E2E_TIMEOUT=() E2E_NEEDS=()

# ---------------------------------------------------------------- asserts

fail()
{
	echo "FAILED: $*" >&2
	return 1
}

assert_eq()
{
	local want=$1 got=$2 what=${3:-value}

	[[ $want == "$got" ]] ||
		fail "$what: expected '$want', got '$got'"
}

md5_of()
{
	md5sum <"$1" | cut -c1-32
}

# True if DIR is a mount point, even of a FUSE daemon that died (where
# stat fails with ENOTCONN): the kernel's table is what counts.
is_mounted()
{
	findmnt -rn --mountpoint "$1" >/dev/null 2>&1
}

# ----------------------------------------------------------------- bucket

# MD5 of the object's bytes, as the aws CLI downloads them.
s3_md5()
{
	local out

	out=$(mktemp "$T/get.XXXXXX")
	s3api get-object --bucket "$BUCKET" --key "$1" "$out" >/dev/null ||
		{ rm -f "$out"; return 1; }
	md5_of "$out"
	rm -f "$out"
}

# The ETag of KEY without its quotes; fails if the object is not there.
s3_etag()
{
	local etag

	etag=$(s3api head-object --bucket "$BUCKET" --key "$1" \
		--query ETag --output text 2>/dev/null) || return 1
	echo "${etag//\"/}"
}

# Wait until KEY's bytes have MD5.  A HEAD gates each download: bytes are
# fetched when the ETag says they are right (again each round: s3rver may
# answer a GET before the PUT is wholly on disk), or when the ETag changed
# (multipart ETags, servers whose ETag is no MD5).
wait_object()
{
	local key=$1 md5=$2 limit=${3:-60}
	local deadline=$((SECONDS + limit)) etag='' seen='' got=''

	while :; do
		if etag=$(s3_etag "$key"); then
			if [[ $etag == "$md5" || $etag != "$seen" ]]; then
				seen=$etag
				got=$(s3_md5 "$key") || got=
				[[ $got != "$md5" ]] || return 0
			fi
		else
			etag=
		fi
		if ((SECONDS >= deadline)); then
			fail "wait_object '$key': want md5 $md5;" \
				"after ${limit}s ETag '${etag:-absent}'," \
				"bytes md5 '${got:-none}'"
			return 1
		fi
		sleep 0.5
	done
}

# Wait until the bucket holds every file under DIR, by its path below DIR
# (with PREFIX before it), byte for byte: one listing a round until each
# ETag shows the file's MD5, then one recursive download by the aws CLI,
# compared file by file.  For many objects at once, where wait_object
# would spend two CLI calls on each.
wait_tree()
{
	local dir=$1 prefix=${2:-} limit=${3:-120} args=(--bucket "$BUCKET")
	local deadline=$((SECONDS + limit)) missing dl rel

	[[ -z $prefix ]] || args+=(--prefix "$prefix")
	(cd "$dir" && find . -type f -printf '%P\n' | while read -r rel; do
		printf '%s %s\n' "$(md5_of "$rel")" "$prefix$rel"
	done) >"$T/tree.want"
	while :; do
		missing=$(s3api list-objects-v2 "${args[@]}" \
			--query 'Contents[].[Key,ETag]' --output json |
			python3 -c 'import json, sys
have = {k: e.strip("\"") for k, e in json.load(sys.stdin) or []}
for line in open(sys.argv[1]):
    md5, key = line.rstrip("\n").split(" ", 1)
    if have.get(key) != md5:
        print(key)' "$T/tree.want") || missing="(listing failed)"
		[[ -n $missing ]] || break
		if ((SECONDS >= deadline)); then
			fail "wait_tree: after ${limit}s not in the bucket:" \
				"$(echo "$missing" | head -n 5 | paste -sd,)"
			return 1
		fi
		sleep 0.5
	done
	dl=$(mktemp -d "$T/dl.XXXXXX")
	s3cli cp --recursive --quiet "s3://$BUCKET/$prefix" "$dl/"
	while read -r rel; do
		cmp -s "$dir/$rel" "$dl/$rel" ||
			{ fail "wait_tree: bytes of '$prefix$rel' differ"; return 1; }
	done < <(cd "$dir" && find . -type f -printf '%P\n')
	rm -rf "$dl"
}

# Wait until KEY is gone from the bucket.
wait_absent()
{
	local key=$1 limit=${2:-60} out
	local deadline=$((SECONDS + limit))

	while :; do
		out=$(s3api head-object --bucket "$BUCKET" --key "$key" 2>&1) &&
			out="still there"
		[[ $out != *"Not Found"* && $out != *404* ]] || return 0
		if ((SECONDS >= deadline)); then
			fail "wait_absent '$key': after ${limit}s: $out"
			return 1
		fi
		sleep 0.5
	done
}

# All keys (under PREFIX), one a line, in the server's order; the CLI
# follows the pages.
s3_keys()
{
	local args=(--bucket "$BUCKET")

	[[ -z ${1:-} ]] || args+=(--prefix "$1")
	s3api list-objects-v2 "${args[@]}" --query 'Contents[].Key' --output json |
		python3 -c 'import json, sys
for k in json.load(sys.stdin) or []:
    print(k)'
}

# ------------------------------------------------------------------ mount

# Mount $BUCKET (or $MOUNT_SPEC, e.g. BUCKET:PREFIX) on $MNT in the
# foreground mode, in the background of this shell; $1 adds -o options.
# The server's options come from BLITFS_SERVER_OPTS, by default those of
# the local test server.
# shellcheck disable=SC2120 # most callers add none
blitfs_mount()
{
	local opts cache args=(-f) i

	cache=$(mktemp -d "$T/cache.XXXXXX")
	opts=${BLITFS_SERVER_OPTS-endpoint=$S3_ENDPOINT,region=us-east-1,path_style}
	opts+=${opts:+,}cache_dir=$cache
	[[ -z ${1:-} ]] || opts+=",$1"
	[[ ${BLITFS_DEBUG:-0} != 1 ]] || args+=(-d)
	mkdir -p "$MNT"
	echo "--- $(date +%T) mount: $BLITFS ${args[*]} -o $opts" \
		"${MOUNT_SPEC:-$BUCKET} $MNT" >>"$BLITFS_LOG"
	"$BLITFS" "${args[@]}" -o "$opts" "${MOUNT_SPEC:-$BUCKET}" "$MNT" \
		</dev/null >>"$BLITFS_LOG" 2>&1 &
	BLITFS_PID=$!
	echo "$BLITFS_PID" >>"$T/daemon.pids"
	for ((i = 0; i < 100; i++)); do
		mountpoint -q "$MNT" && return 0
		if ! kill -0 "$BLITFS_PID" 2>/dev/null; then
			local rc=0
			wait "$BLITFS_PID" || rc=$?
			BLITFS_PID=
			fail "blitfs exited with status $rc before mounting"
			return 1
		fi
		sleep 0.1
	done
	fail "$MNT not mounted 10 s after starting blitfs"
}

# Unmount $MNT and check that the daemon exits 0 with no sanitizer report.
blitfs_umount()
{
	local i rc=0 limit=${E2E_EXIT_WAIT:-60}

	[[ -n ${BLITFS_PID:-} ]] || return 0
	# EBUSY while the kernel still holds a file of a just-ended process.
	for ((i = 0; i < 25; i++)); do
		fusermount3 -u "$MNT" 2>>"$T/umount.err" && break
		is_mounted "$MNT" || break
		sleep 0.2
	done
	if is_mounted "$MNT"; then
		fail "fusermount3 -u $MNT: $(tail -n 1 "$T/umount.err")"
		e2e_force_unmount "$MNT" "$BLITFS_PID"
		BLITFS_PID=
		return 1
	fi
	for ((i = 0; i < limit * 10; i++)); do
		kill -0 "$BLITFS_PID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$BLITFS_PID" 2>/dev/null; then
		kill -KILL "$BLITFS_PID" 2>/dev/null
		BLITFS_PID=
		fail "blitfs still running ${limit}s after unmount; killed"
		return 1
	fi
	wait "$BLITFS_PID" || rc=$?
	BLITFS_PID=
	((rc == 0)) || { fail "blitfs exited with status $rc"; return 1; }
	if grep -q -e AddressSanitizer -e LeakSanitizer -e 'runtime error:' \
		"$BLITFS_LOG"; then
		fail "sanitizer report in the daemon log"
		return 1
	fi
}

# True if PID is still a blitfs daemon of mount point MNT (its argv names
# MNT), not some later process that got the number.
is_daemon_of()
{
	local argv

	argv=$({ tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null) || return 1
	[[ $argv == *" $2"* ]]
}

# Last resort for a mount whose daemon hangs: lazy unmount, kill.
e2e_force_unmount()
{
	local mnt=$1 pid

	if is_mounted "$mnt"; then
		fusermount3 -u "$mnt" 2>/dev/null ||
			fusermount3 -uz "$mnt" 2>/dev/null ||
			umount -l "$mnt" 2>/dev/null
	fi
	shift
	for pid in "$@"; do
		is_daemon_of "$pid" "$mnt" || continue
		sleep 1
		is_daemon_of "$pid" "$mnt" || continue
		kill -TERM "$pid" 2>/dev/null
		sleep 1
		is_daemon_of "$pid" "$mnt" || continue
		kill -KILL "$pid" 2>/dev/null
	done
	return 0
}

# Run blitfs the way a user would (no -f) where mounting must fail; leaves
# the exit status in TRY_RC and stderr in TRY_ERR.  Mounting anyway is a
# failure of the test, and undone.
blitfs_try_mount()
{
	local spec=$1 opts=$2

	mkdir -p "$MNT"
	TRY_RC=0
	timeout --foreground -k 5 "${E2E_TRY_WAIT:-60}" "$BLITFS" -o "$opts" "$spec" "$MNT" \
		</dev/null >"$T/try.out" 2>"$T/try.err" || TRY_RC=$?
	# shellcheck disable=SC2034 # read by the suites
	TRY_ERR=$(cat "$T/try.err")
	{
		echo "--- $(date +%T) try: $BLITFS -o $opts $spec (rc $TRY_RC)"
		cat "$T/try.out" "$T/try.err"
	} >>"$BLITFS_LOG"
	if is_mounted "$MNT"; then
		fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT"
		fail "mounted although it should not have"
		return 1
	fi
}

# ---------------------------------------------- gateway and measurements
#
# Suites that drive the fault-injecting gateway source
# tests/gateway/gateway.sh as well.

# Start a gateway in front of the server with scenario $1 and mount
# blitfs through it; $2 adds mount options.  The gateway's pid joins the
# daemons the runner ends after the test.
gw_mount()
{
	# In a condition: gateway_start polls with commands that fail until
	# the gateway is up, which errexit would take for a failure.
	gateway_start "$S3_ENDPOINT" || fail "the gateway did not start"
	echo "$GATEWAY_PID" >>"$T/daemon.pids"
	gateway_scenario "$1"
	BLITFS_SERVER_OPTS="endpoint=$GATEWAY_URL,region=us-east-1,path_style" \
		blitfs_mount "${2:-}"
}

# The gateway's record of this test's bucket, as a JSON array in a file.
save_record()
{
	gateway_record >"$T/record.json"
}

# Wait until the bucket (asked directly, not through the gateway) holds
# N keys; $2 seconds at most.
wait_count()
{
	local n=$1 limit=$2 got=0
	local deadline=$((SECONDS + limit))

	while ((SECONDS < deadline)); do
		# shellcheck disable=SC2016 # a JMESPath literal
		got=$(s3api list-objects-v2 --bucket "$BUCKET" \
			--query 'length(Contents || `[]`)' --output text) || got=0
		((got < n)) || return 0
		sleep 2
	done
	fail "wait_count: $got of $n keys after ${limit}s"
}

# Seconds from $1 to $2 (date +%s.%N), to a tenth.
secs()
{
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'
}

# The daemon's cache directory (blitfs_mount makes one per mount).
cache_dir()
{
	local d

	for d in "$T"/cache.*; do
		echo "$d"
		return
	done
}

# ----------------------------------------------------------------- runner

# e2e_test NAME [TIMEOUT_SECONDS] [SERVER]: SERVER limits it to one server.
e2e_test()
{
	E2E_NAMES+=("$1")
	E2E_TIMEOUT[$1]=${2:-120}
	E2E_NEEDS[$1]=${3:-}
}

e2e_say()
{
	echo "$*"
	[[ -z ${E2E_RESULTS:-} ]] || echo "$*" >>"$E2E_RESULTS"
}

# Inside the test's own bash: set up, run, and on the way out unmount.
e2e_child()
{
	local name=$1

	T=$E2E_ROOT/$name
	MNT=$T/mnt
	BLITFS_LOG=$T/blitfs.log
	BLITFS_PID=
	BUCKET=$(e2e_bucket_name "$name")
	export T MNT BLITFS_LOG BUCKET
	cd "$T"
	set -eEuo pipefail
	trap e2e_on_err ERR
	trap e2e_child_exit EXIT
	export LC_ALL=C.UTF-8
	# For the CLI's --body, which takes no /dev/null.
	: >"$T/empty"
	make_bucket "$BUCKET"
	"test_$name"
}

# Name the failed command and where it was called from, test first; once,
# not again for each caller the failure returns through.
E2E_ERR_DEPTH=0
e2e_on_err()
{
	local rc=$? i where=''

	if ((${#FUNCNAME[@]} < E2E_ERR_DEPTH)); then
		E2E_ERR_DEPTH=${#FUNCNAME[@]}
		return
	fi
	E2E_ERR_DEPTH=${#FUNCNAME[@]}
	for ((i = ${#FUNCNAME[@]} - 1; i > 0; i--)); do
		[[ ${FUNCNAME[i]} != e2e_child && ${FUNCNAME[i]} != main ]] ||
			continue
		where+=" ${FUNCNAME[i]}:${BASH_LINENO[i - 1]}"
	done
	echo "FAILED (status $rc) at${where:- top}: $BASH_COMMAND" >&2
}

e2e_child_exit()
{
	local rc=$?

	trap - ERR
	set +e
	if [[ -n ${BLITFS_PID:-} ]]; then
		blitfs_umount || rc=1
	fi
	exit "$rc"
}

# Bucket names: 3-63 of [a-z0-9-], unique per run and test.
e2e_bucket_name()
{
	local n=${1//_/-}

	n="e2e-$E2E_RUN_ID-${n,,}"
	n=${n:0:63}
	echo "${n%-}"
}

# After a test, whatever it did: unmount, end its daemons, resume the
# server (a test may pause it).
e2e_after()
{
	local dir=$1 pids=()

	[[ ! -f $dir/daemon.pids ]] || mapfile -t pids <"$dir/daemon.pids"
	e2e_force_unmount "$dir/mnt" "${pids[@]}"
	[[ -z ${SERVER_PID:-} ]] || kill -CONT "$SERVER_PID" 2>/dev/null
	return 0
}

e2e_run_one()
{
	local name=$1 label=${E2E_LABEL:+$E2E_LABEL/}$1 dir rc=0 t0
	local limit=${E2E_TIMEOUT[$1]}

	if [[ -n ${E2E_NEEDS[$name]} && ${E2E_NEEDS[$name]} != "$S3_SERVER" ]]
	then
		echo "SKIP $label (runs on ${E2E_NEEDS[$name]} only)"
		return 0
	fi
	dir=$E2E_ROOT/$name
	mkdir -p "$dir"
	t0=$SECONDS
	# shellcheck disable=SC2016 # expanded by that bash
	timeout -k 10 "$limit" bash -c \
		'source "$1" && e2e_child "$2"' _ "$E2E_SUITE" "$name" \
		</dev/null >"$dir/out" 2>&1 || rc=$?
	e2e_after "$dir"
	if ((rc == 0)); then
		e2e_say "PASS $label ($((SECONDS - t0))s)"
		E2E_PASSED=$((E2E_PASSED + 1))
		return 0
	fi
	E2E_FAILED=$((E2E_FAILED + 1))
	((rc != 124 && rc != 137)) ||
		echo "FAILED: timed out after ${limit}s" >>"$dir/out"
	e2e_say "FAIL $label ($((SECONDS - t0))s)"
	sed 's/^/    | /' "$dir/out" | tail -n 25
	if [[ -s $dir/blitfs.log ]]; then
		echo "    daemon log (last 30 lines of $dir/blitfs.log):"
		tail -n 30 "$dir/blitfs.log" | sed 's/^/    > /'
	fi
}

e2e_cleanup()
{
	local d

	for d in "$E2E_ROOT"/*/; do
		[[ -d $d ]] && e2e_after "${d%/}"
	done
	[[ -z ${E2E_OWN_SERVER:-} ]] || server_stop
	if [[ ${E2E_KEEP:-0} == 1 || $E2E_FAILED -gt 0 ]]; then
		echo "e2e: logs kept in $E2E_ROOT" >&2
	else
		rm -rf "$E2E_ROOT"
	fi
}

# Run the registered tests (or those named in "$@").
e2e_main()
{
	local name names=("$@")

	E2E_SUITE=$(realpath "${BASH_SOURCE[1]}")
	BLITFS=$(realpath "${BLITFS:-$E2E_REPO/build/blitfs}")
	[[ -x $BLITFS ]] || { echo "e2e: no binary at $BLITFS" >&2; return 1; }
	((${#names[@]})) || names=("${E2E_NAMES[@]}")
	for name in "${names[@]}"; do
		[[ -n ${E2E_TIMEOUT[$name]:-} ]] ||
			{ echo "e2e: no test named $name" >&2; return 1; }
	done
	E2E_PASSED=0 E2E_FAILED=0
	E2E_ROOT=$(mktemp -d "${TMPDIR:-/tmp}/blitfs-e2e.XXXXXX")
	E2E_RUN_ID=$(printf '%04x' $((RANDOM % 65536)))
	export BLITFS E2E_ROOT E2E_RUN_ID E2E_SUITE
	trap e2e_cleanup EXIT
	trap 'exit 130' INT TERM
	if [[ -z ${S3_ENDPOINT:-} ]]; then
		E2E_OWN_SERVER=1
		"${E2E_SERVER:-moto}_start" "$(free_port)" || return 1
	fi
	echo "e2e: $BLITFS on $S3_SERVER at $S3_ENDPOINT; work in $E2E_ROOT"
	for name in "${names[@]}"; do
		e2e_run_one "$name"
	done
	[[ ${E2E_SUMMARY:-1} == 0 ]] ||
		echo "$E2E_PASSED passed, $E2E_FAILED failed"
	((E2E_FAILED == 0))
}
