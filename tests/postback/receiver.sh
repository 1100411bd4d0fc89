# shellcheck shell=bash
#
# receiver.sh - start, steer and read the postback receiver (receiver.py)
# from a test.  Source it, then:
#
#   receiver_start [SECRET]  start one on a free loopback port; exports
#                            RECEIVER_URL (a postback URL: .../hook),
#                            RECEIVER_BASE (http://127.0.0.1:PORT),
#                            RECEIVER_PID and RECEIVER_LOG.  The secret
#                            goes through the environment, not argv.
#   receiver_stop            stop it
#   receiver_mode MODE [FOR_S] [STATUS]
#                            ok | fail500 | fail429 | status | hang | down;
#                            down refuses connections for FOR_S seconds
#   receiver_record [accepted]
#                            print the record as JSON; "accepted": only
#                            deliveries answered 200
#   receiver_reset           forget the record
#   receiver_count           how many deliveries were answered 200
#   receiver_wait_count N [TIMEOUT_S]
#                            wait until N deliveries were answered 200
#
# Needs python3 and curl.

RECEIVER_PY="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/receiver.py"

receiver_start()
{
	local secret=${1:-} i

	RECEIVER_LOG=$(mktemp "${T:-${TMPDIR:-/tmp}}/receiver.XXXXXX")
	RECEIVER_SECRET=$secret python3 "$RECEIVER_PY" --port 0 \
		2>"$RECEIVER_LOG" &
	RECEIVER_PID=$!
	for ((i = 0; i < 100; i++)); do
		RECEIVER_BASE=$(sed -n \
			's|^receiver listening on \(http://[^/]*\)/$|\1|p' \
			"$RECEIVER_LOG" | head -n 1)
		[[ -n $RECEIVER_BASE ]] && break
		kill -0 "$RECEIVER_PID" 2>/dev/null || break
		sleep 0.1
	done
	if [[ -z $RECEIVER_BASE ]]; then
		echo "receiver did not start:" >&2
		cat "$RECEIVER_LOG" >&2
		return 1
	fi
	RECEIVER_URL=$RECEIVER_BASE/hook
	export RECEIVER_URL RECEIVER_BASE RECEIVER_PID RECEIVER_LOG
}

receiver_stop()
{
	[[ -n ${RECEIVER_PID:-} ]] || return 0
	kill "$RECEIVER_PID" 2>/dev/null || true
	wait "$RECEIVER_PID" 2>/dev/null || true
	unset RECEIVER_PID
}

receiver_mode()
{
	local mode=$1 for_s=${2:-0} status=${3:-200}

	curl -fsS --max-time 5 -H 'Content-Type: application/json' \
		-d "{\"mode\": \"$mode\", \"for_s\": $for_s, \"status\": $status}" \
		"$RECEIVER_BASE/_receiver/mode" >/dev/null
}

receiver_record()
{
	local q=

	[[ ${1:-} == accepted ]] && q='?accepted=1'
	curl -fsS --max-time 10 "$RECEIVER_BASE/_receiver/record$q"
}

receiver_reset()
{
	curl -fsS --max-time 5 -X POST "$RECEIVER_BASE/_receiver/reset" \
		>/dev/null
}

receiver_count()
{
	receiver_record accepted |
		python3 -c 'import json,sys; print(len(json.load(sys.stdin)["deliveries"]))'
}

receiver_wait_count()
{
	local want=$1 timeout=${2:-60} deadline n=0

	deadline=$((SECONDS + timeout))
	while ((SECONDS < deadline)); do
		n=$(receiver_count 2>/dev/null) || n=0
		((n >= want)) && return 0
		sleep 0.5
	done
	echo "receiver: $n of $want postbacks after ${timeout}s" >&2
	return 1
}
