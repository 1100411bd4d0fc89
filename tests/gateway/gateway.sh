# shellcheck shell=bash
#
# gateway.sh - start, steer and stop the fault-injecting gateway
# (tests/gateway/gateway.py) from a bash test.  Source it; it defines
# functions and sets nothing else up:
#
#   gateway_start BACKEND_URL [ARGS...]
#                           start a gateway on free loopback ports in front
#                           of BACKEND_URL (extra ARGS go to gateway.py,
#                           e.g. --scenario '{"write_rate": 5}'), wait
#                           until it answers; exports GATEWAY_URL (point
#                           the client here), GATEWAY_CONTROL_URL (a port
#                           for the control API alone, open even while the
#                           scenario says down), GATEWAY_PID, GATEWAY_LOG
#                           and GATEWAY_RECORD (the record as JSON lines)
#   gateway_stop            stop it (SIGTERM, then SIGKILL after 5 s)
#   gateway_scenario JSON   replace the scenario; prints nothing, fails
#                           (with the gateway's reason) on a bad scenario
#   gateway_record [SINCE]  print the record as a JSON array (only the
#                           requests that arrived after unix time SINCE)
#   gateway_record_clear    forget the record
#   gateway_reset           scenario, record and memory cleared
#
# One gateway per shell.  The gateway picks its own ports (it binds port
# 0 and prints the addresses), so two test runs never race for a port.
# It ends with the shell that started it (--exit-with-parent), so a test
# that dies before gateway_stop leaves no gateway behind.

GATEWAY_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
GATEWAY_URL=${GATEWAY_URL:-}
GATEWAY_CONTROL_URL=${GATEWAY_CONTROL_URL:-}
GATEWAY_PID=${GATEWAY_PID:-}
GATEWAY_LOG=${GATEWAY_LOG:-}
GATEWAY_RECORD=${GATEWAY_RECORD:-}
GATEWAY_TMP=${GATEWAY_TMP:-}

# _gateway_http METHOD PATH [BODY]: one control request; prints the
# response body, fails on a status other than 200.
_gateway_http()
{
	python3 - "$GATEWAY_CONTROL_URL" "$@" <<'PY'
import sys, urllib.request, urllib.error
base, method, path = sys.argv[1:4]
data = sys.argv[4].encode() if len(sys.argv) > 4 else None
req = urllib.request.Request(base + path, data=data, method=method,
                             headers={"Content-Type": "application/json"})
try:
    with urllib.request.urlopen(req, timeout=30) as resp:
        sys.stdout.write(resp.read().decode())
except urllib.error.HTTPError as err:
    sys.stderr.write(f"gateway: {method} {path}: {err.code} "
                     f"{err.read().decode().strip()}\n")
    sys.exit(1)
PY
}

gateway_start()
{
	local backend=${1:?gateway_start BACKEND_URL [ARGS...]} i line
	shift

	if [[ -n $GATEWAY_PID ]]; then
		echo "gateway.sh: already running (pid $GATEWAY_PID);" \
			"gateway_stop first" >&2
		return 1
	fi
	GATEWAY_TMP=$(mktemp -d "${TMPDIR:-/tmp}/blitfs-gateway.XXXXXX")
	GATEWAY_LOG=$GATEWAY_TMP/gateway.log
	GATEWAY_RECORD=$GATEWAY_TMP/record.jsonl
	python3 "$GATEWAY_DIR/gateway.py" --listen 127.0.0.1:0 \
		--control 127.0.0.1:0 --backend "$backend" \
		--record "$GATEWAY_RECORD" --exit-with-parent "$@" \
		>"$GATEWAY_LOG" 2>&1 &
	GATEWAY_PID=$!
	export GATEWAY_PID GATEWAY_LOG GATEWAY_RECORD GATEWAY_TMP
	for ((i = 0; i < 100; i++)); do
		line=$(grep -m1 '^gateway listening on ' "$GATEWAY_LOG")
		[[ -z $line ]] || break
		if ! kill -0 "$GATEWAY_PID" 2>/dev/null; then
			echo "gateway.sh: gateway exited; its log:" >&2
			cat "$GATEWAY_LOG" >&2
			GATEWAY_PID=''
			gateway_stop
			return 1
		fi
		sleep 0.1
	done
	if [[ -z $line ]]; then
		echo "gateway.sh: gateway not ready after 10 s" >&2
		gateway_stop
		return 1
	fi
	# "gateway listening on URL control URL backend URL"
	read -r _ _ _ GATEWAY_URL _ GATEWAY_CONTROL_URL _ <<<"$line"
	export GATEWAY_URL GATEWAY_CONTROL_URL
	_gateway_http GET /_gateway/health >/dev/null
}

gateway_stop()
{
	local i

	if [[ -n $GATEWAY_PID ]]; then
		kill -TERM "$GATEWAY_PID" 2>/dev/null
		for ((i = 0; i < 50; i++)); do
			kill -0 "$GATEWAY_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$GATEWAY_PID" 2>/dev/null
		wait "$GATEWAY_PID" 2>/dev/null
	fi
	[[ -z $GATEWAY_TMP ]] || rm -rf "$GATEWAY_TMP"
	GATEWAY_PID='' GATEWAY_URL='' GATEWAY_CONTROL_URL='' GATEWAY_LOG=''
	GATEWAY_RECORD='' GATEWAY_TMP=''
	return 0
}

gateway_scenario()
{
	_gateway_http POST /_gateway/scenario "${1:?gateway_scenario JSON}" \
		>/dev/null
}

gateway_record()
{
	if [[ -n ${1:-} ]]; then
		_gateway_http GET "/_gateway/record?since=$1"
	else
		_gateway_http GET /_gateway/record
	fi
}

gateway_record_clear()
{
	_gateway_http POST /_gateway/record/clear >/dev/null
}

gateway_reset()
{
	_gateway_http POST /_gateway/reset >/dev/null
}
