#!/usr/bin/env bash
#
# run.sh - the test command (README, "Quick start"; .ci/run runs exactly
# this).  In order:
#
#   1. tests/install-deps.sh (moto required)
#   2. builds build/ and build-asan/ (address + undefined sanitizers), both
#      with warnings as errors
#   3. meson test in each: every unit test program counts as one test
#   4. the end-to-end suite (tests/e2e/*.sh) on moto's server with
#      signature checking, with build/blitfs and then build-asan/blitfs;
#      then on s3rver with build/blitfs
#
# Prints one line per test (PASS/FAIL/SKIP), failure details under it, and
# ends with the single line "N passed, N failed"; exits 0 iff none failed.
# Needs root (FUSE mounts, apt) and no TTY.  KEEP_LOGS=1 keeps the work
# directory even when everything passed; E2E_SUITES="tests/e2e/basic.sh"
# runs only the suites named (SUITE:NAME,NAME only those tests of one).
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo" || exit 1
# shellcheck source-path=SCRIPTDIR source=lib.sh
source tests/lib.sh

passed=0
failed=0
keep_logs=${KEEP_LOGS:-0}
run_t0=$SECONDS
RUN_TMP=$(mktemp -d "${TMPDIR:-/tmp}/blitfs-run.XXXXXX")
export CI=${CI:-true} AWS_PAGER=""

result()
{
	echo "$1 $2"
	case $1 in
	PASS) passed=$((passed + 1)) ;;
	FAIL) failed=$((failed + 1)) ;;
	esac
}

stage()
{
	echo "== $* ($((SECONDS - run_t0))s since start)"
}

# Unmount whatever the suites left under our directory, end their daemons,
# stop the server.  Runs on every exit, interrupted or not.
cleanup()
{
	local t f pid

	while read -r t; do
		[[ $t == "$RUN_TMP"/* ]] || continue
		fusermount3 -uz "$t" 2>/dev/null || umount -l "$t" 2>/dev/null
	done < <(findmnt -rn -o TARGET 2>/dev/null)
	while read -r f; do
		while read -r pid; do
			# Only if it still is that daemon, not a reused number.
			is_daemon_of "$pid" "${f%/daemon.pids}/mnt" &&
				kill -KILL "$pid" 2>/dev/null
		done <"$f"
	done < <(find "$RUN_TMP" -name daemon.pids 2>/dev/null)
	server_stop
	[[ $keep_logs == 1 ]] || rm -rf "$RUN_TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Configure (or reconfigure) and compile one build directory.
build()
{
	local dir=$1 log=$RUN_TMP/$1.log t0=$SECONDS
	shift

	stage "build $dir"
	{
		if [[ -f $dir/meson-private/coredata.dat ]]; then
			meson configure "$dir" -Dwerror=true "$@"
		else
			meson setup "$dir" --werror "$@"
		fi && meson compile -C "$dir"
	} >"$log" 2>&1
	local rc=$?
	if ((rc == 0)); then
		result PASS "build/$dir ($((SECONDS - t0))s)"
	else
		result FAIL "build/$dir ($((SECONDS - t0))s)"
		grep -E 'error|Error|ERROR' "$log" | head -n 30 | sed 's/^/    | /'
		tail -n 10 "$log" | sed 's/^/    | /'
	fi
	return "$rc"
}

# meson test in one build directory, one result per test program, read
# from meson's own log of results.
unit_tests()
{
	local dir=$1 log=$RUN_TMP/$1-unit.log json=$1/meson-logs/testlog.json
	local t0=$SECONDS rc=0 lines verdict name said took

	stage "unit tests in $dir"
	rm -f "$json"
	meson test -C "$dir" --print-errorlogs >"$log" 2>&1 || rc=$?
	if [[ ! -f $json ]]; then
		if grep -q 'No tests defined' "$log"; then
			echo "SKIP unit/$dir (no unit tests built: cmocka missing?)"
			return 0
		fi
		result FAIL "unit/$dir (meson test exit $rc, no results)"
		tail -n 20 "$log" | sed 's/^/    | /'
		return 0
	fi
	lines=$(python3 - "$json" <<'PY'
import json, sys
for raw in open(sys.argv[1]):
    t = json.loads(raw)
    ok = {"OK": "PASS", "EXPECTEDFAIL": "PASS", "SKIP": "SKIP"}
    print(ok.get(t["result"], "FAIL"), t["name"], t["result"],
          "%.1fs" % t.get("duration", 0))
PY
)
	while read -r verdict name said took; do
		if [[ $verdict == SKIP ]]; then
			echo "SKIP unit/$dir/$name"
			continue
		fi
		result "$verdict" "unit/$dir/$name ($took)"
		[[ $verdict == PASS ]] || echo "    | meson says $said; see $log"
	done <<<"$lines"
	if ((rc != 0)); then
		grep -A 30 -E '^(=+ )?[0-9]+/[0-9]+ .*(FAIL|ERROR|TIMEOUT)' "$log" |
			head -n 60 | sed 's/^/    | /'
	fi
	echo "-- unit tests in $dir took $((SECONDS - t0))s"
}

# One run of the end-to-end suites against the running server.
e2e()
{
	local label=$1 binary=$2
	local work=$RUN_TMP/${label//\//-} t0=$SECONDS suite rc np nf entry
	local names
	local results=$work/results

	stage "e2e $label with $binary on $S3_SERVER"
	if [[ ! -x $binary ]]; then
		echo "SKIP e2e/$label (no $binary: its build failed)"
		return 0
	fi
	mkdir -p "$work"
	: >"$results"
	for entry in ${E2E_SUITES:-tests/e2e/*.sh}; do
		# SUITE:NAME,NAME runs only those tests of the suite
		suite=${entry%%:*}
		names=()
		[[ $entry != *:* ]] || IFS=, read -ra names <<<"${entry#*:}"
		rc=0
		nf=$(grep -c '^FAIL ' "$results")
		E2E_LABEL=$label E2E_RESULTS=$results E2E_SUMMARY=0 \
			BLITFS=$binary TMPDIR=$work \
			bash "$suite" "${names[@]}" </dev/null || rc=$?
		# A suite that failed without failing a test broke down itself.
		if ((rc != 0)) && [[ $(grep -c '^FAIL ' "$results") == "$nf" ]]
		then
			result FAIL "$label/${suite##*/} (suite exited $rc)"
		fi
	done
	np=$(grep -c '^PASS ' "$results")
	nf=$(grep -c '^FAIL ' "$results")
	passed=$((passed + np))
	failed=$((failed + nf))
	echo "-- e2e $label took $((SECONDS - t0))s ($np pass, $nf fail)"
}

stage "install-deps"
if tests/install-deps.sh --need-moto; then
	result PASS install-deps
else
	result FAIL install-deps
fi

build build
build build-asan -Db_sanitize=address,undefined -Db_lundef=false
unit_tests build
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 unit_tests build-asan

stage "start moto"
if moto_start "$(free_port)"; then
	e2e moto/build build/blitfs
	# The sanitizer build runs the suites that cover the most code per
	# minute; the long fault and crash scenarios run once, above.
	E2E_SUITES=${E2E_SUITES:-"tests/e2e/basic.sh tests/e2e/visibility.sh
		tests/e2e/postback.sh tests/e2e/ops.sh
		tests/e2e/namespace.sh:behaviours,read_stream,rename_dir_resume"} \
		ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		e2e moto/asan build-asan/blitfs
	server_stop
else
	result FAIL "e2e/moto (server did not start)"
fi

stage "start s3rver"
if s3rver_start "$(free_port)"; then
	# The other suites drive the gateway and count requests: moto only.
	E2E_SUITES=${E2E_SUITES:-tests/e2e/basic.sh} \
		e2e s3rver/build build/blitfs
	server_stop
else
	result FAIL "e2e/s3rver (server did not start)"
fi

stage "done"
((failed == 0)) || keep_logs=1
[[ $keep_logs != 1 ]] || echo "logs kept in $RUN_TMP"
echo "$passed passed, $failed failed"
((failed == 0))
