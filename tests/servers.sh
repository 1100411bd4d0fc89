# shellcheck shell=bash
#
# servers.sh - start and stop the local S3 servers the tests run against.
#
# Source it from bash; it defines functions and sets nothing else up:
#
#   moto_start PORT     moto's server, with SigV4 checking on (see below)
#   s3rver_start PORT   s3rver from tests/s3rver (npm, pinned by its lockfile)
#   server_stop         stop whichever of the two is running
#   make_bucket NAME    create a bucket on it
#   s3api ARGS...       the aws CLI's s3api against it (--endpoint-url and
#                       --region filled in); s3cli ARGS... for `aws s3`
#   free_port           print a TCP port on 127.0.0.1 that nothing uses
#
# After a start these are exported: S3_SERVER (moto|s3rver), S3_ENDPOINT,
# SERVER_PID, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION and
# AWS_DEFAULT_REGION.  One server runs at a time.
#
# Always /usr/bin/aws, never `aws` from PATH: a pyenv shim for the old v1
# CLI shadows it here, and users' machines have the Debian package.
# aws CLI 2.9 ignores AWS_ENDPOINT_URL, so every call names the endpoint.

BLITFS_TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
AWS_BIN=${AWS_BIN:-/usr/bin/aws}

# Kept when already set: a test's own bash inherits the running server.
S3_SERVER=${S3_SERVER:-}
S3_ENDPOINT=${S3_ENDPOINT:-}
SERVER_PID=${SERVER_PID:-}
SERVER_TMP=${SERVER_TMP:-}
SERVER_LOG=${SERVER_LOG:-}

# Print a free TCP port on 127.0.0.1 (the kernel picks it; racy only if
# something else grabs it in the next moment, which is fine for tests).
free_port()
{
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# Region for the CLI: the local servers live in us-east-1.
S3_REGION=${S3_REGION:-us-east-1}

# Run the aws CLI with the user's own ~/.aws and pager kept out of the
# way, so that only the credentials in the environment count; unless
# AWS_ISOLATE=0 (tests/pipeline.sh, on a server of the user's).
aws_isolated()
{
	if [[ ${AWS_ISOLATE:-1} == 0 ]]; then
		AWS_PAGER="" "$AWS_BIN" "$@"
		return
	fi
	env -u AWS_PROFILE -u AWS_SESSION_TOKEN \
		AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
		AWS_PAGER="" AWS_EC2_METADATA_DISABLED=true \
		"$AWS_BIN" "$@"
}

s3api()
{
	aws_isolated --endpoint-url "$S3_ENDPOINT" --region "$S3_REGION" \
		s3api "$@"
}

s3cli()
{
	aws_isolated --endpoint-url "$S3_ENDPOINT" --region "$S3_REGION" \
		s3 "$@"
}

# Succeed once URL answers with any HTTP status (4xx and 5xx included).
http_answers()
{
	python3 - "$1" <<'PY' 2>/dev/null
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(sys.argv[1], timeout=5)
except urllib.error.HTTPError:
    pass
PY
}

# Wait up to $2 seconds for URL $1 to answer while SERVER_PID lives.
wait_http()
{
	local url=$1 deadline=$((SECONDS + ${2:-30}))

	while ! http_answers "$url"; do
		if ! kill -0 "$SERVER_PID" 2>/dev/null; then
			echo "servers.sh: $S3_SERVER exited; its log:" >&2
			tail -n 20 "$SERVER_LOG" >&2
			return 1
		fi
		if ((SECONDS >= deadline)); then
			echo "servers.sh: $S3_SERVER not answering on $url" >&2
			return 1
		fi
		sleep 0.2
	done
}

server_begin()
{
	if [[ -n $SERVER_PID ]]; then
		echo "servers.sh: $S3_SERVER already running" \
			"(pid $SERVER_PID); server_stop first" >&2
		return 1
	fi
	S3_SERVER=$1
	S3_ENDPOINT=http://127.0.0.1:$2
	SERVER_TMP=$(mktemp -d "${TMPDIR:-/tmp}/blitfs-$1.XXXXXX")
	SERVER_LOG=$SERVER_TMP/server.log
	export S3_SERVER S3_ENDPOINT SERVER_LOG
	export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
	unset AWS_SESSION_TOKEN AWS_PROFILE
}

# Where moto_server is: on PATH, or in the venv the README suggests.
moto_bin()
{
	if command -v moto_server >/dev/null 2>&1; then
		command -v moto_server
	elif [[ -x $HOME/.venvs/moto/bin/moto_server ]]; then
		echo "$HOME/.venvs/moto/bin/moto_server"
	else
		echo "servers.sh: moto_server not found; get it with" >&2
		# shellcheck disable=SC2088 # shown to the user, not run
		echo "  python3 -m venv ~/.venvs/moto &&" \
			"~/.venvs/moto/bin/pip install 'moto[server]'" >&2
		return 1
	fi
}

# moto_server's own Python: the one beside it, else python3.
moto_python()
{
	local bin dir py

	bin=$(moto_bin) || return 1
	dir=$(dirname "$bin")
	for py in "$dir/python3" "$dir/python" python3; do
		if "$py" -c 'import moto.server' 2>/dev/null; then
			echo "$py"
			return 0
		fi
	done
	echo "servers.sh: no Python that imports moto beside $bin" >&2
	return 1
}

# moto 5.2.1 checks a signature against the request rebuilt from
# werkzeug's request.url, the URL *decoded* into an IRI (%2B turns into +,
# %C3%A9 into é, %2F in the query into /; only space, # and ? stay
# encoded).  So it refuses every correctly signed request for a key
# holding + % & = : , ; @ ! $ ' ( ) * or any non-ASCII character, and every
# listing with a prefix or delimiter holding / -- the aws CLI's as much as
# blitfs's (measured: only a request signed over a raw "delimiter=/",
# which real S3 refuses, gets through).  The tests need a checker that is
# right, so moto runs under tests/moto-server.py, which hands moto's own
# check the request target exactly as the client sent it and changes
# nothing else.
MOTO_LAUNCHER=$BLITFS_TESTS_DIR/moto-server.py

# moto counts, in one process-wide counter, every request that reaches a
# service's auth check (IAM calls, S3 calls such as `GET /`), and lets the
# first INITIAL_NO_AUTH_ACTION_COUNT of them through unsigned; from then on
# each request must carry a valid SigV4 signature of a key it knows, and a
# policy that allows the action.  Its own /moto-api/ is not counted, so the
# readiness probe goes there and the budget is exactly the four IAM calls
# below.  Measured with moto 5.2.1: a budget of 5 after five `iam
# list-users` lets all five through and refuses the sixth; a probe of `GET
# /` takes one from the budget, `GET /moto-api/` takes none.
MOTO_BOOTSTRAP_CALLS=4

moto_start()
{
	local port=${1:?moto_start PORT} py

	py=$(moto_python) || return 1
	server_begin moto "$port" || return 1
	INITIAL_NO_AUTH_ACTION_COUNT=$MOTO_BOOTSTRAP_CALLS \
		"$py" "$MOTO_LAUNCHER" -H 127.0.0.1 -p "$port" \
		>"$SERVER_LOG" 2>&1 &
	SERVER_PID=$!
	export SERVER_PID
	wait_http "$S3_ENDPOINT/moto-api/" 60 || { server_stop; return 1; }
	moto_bootstrap_iam || { server_stop; return 1; }
	moto_check_auth || { server_stop; return 1; }
}

# The four unsigned-allowed requests: a user, an admin policy attached to
# it, and its access key.  Any key pair signs them (moto does not check
# yet); retries are off, since a retried call would eat the budget twice.
moto_bootstrap_iam()
{
	local iam=(aws_isolated --endpoint-url "$S3_ENDPOINT"
		--region us-east-1 --output text iam)
	local policy='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'
	local arn keys

	export AWS_ACCESS_KEY_ID=bootstrap AWS_SECRET_ACCESS_KEY=bootstrap
	export AWS_MAX_ATTEMPTS=1
	"${iam[@]}" create-user --user-name blitfs-test >/dev/null &&
	arn=$("${iam[@]}" create-policy --policy-name blitfs-admin \
		--policy-document "$policy" --query Policy.Arn) &&
	"${iam[@]}" attach-user-policy --user-name blitfs-test \
		--policy-arn "$arn" &&
	keys=$("${iam[@]}" create-access-key --user-name blitfs-test \
		--query 'AccessKey.[AccessKeyId,SecretAccessKey]')
	local rc=$?
	unset AWS_MAX_ATTEMPTS
	if ((rc != 0)) || [[ -z $keys ]]; then
		echo "servers.sh: moto IAM bootstrap failed" >&2
		return 1
	fi
	read -r AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY <<<"$keys"
	export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
}

# Prove that checking is on: the key works, the same key with a wrong
# secret is refused with SignatureDoesNotMatch.
moto_check_auth()
{
	local out

	if ! out=$(s3api list-buckets 2>&1); then
		echo "servers.sh: moto refuses the bootstrapped key: $out" >&2
		return 1
	fi
	out=$(AWS_SECRET_ACCESS_KEY=not-the-secret AWS_MAX_ATTEMPTS=1 \
		s3api list-buckets 2>&1) && true
	if [[ $out != *SignatureDoesNotMatch* ]]; then
		echo "servers.sh: moto does not check signatures: $out" >&2
		return 1
	fi
}

# s3rver 3.7.1 knows one key id, S3RVER (others: InvalidAccessKeyId), and
# accepts any SigV4 signature made with it: it does not check V4 at all.
# $2 (optional) is a data directory to keep; by default it is a temporary
# one, removed by server_stop.
#
# s3rver makes ListObjectsV2 continuation tokens with DES, which the
# OpenSSL 3 inside Node 17 and later keeps in its legacy provider: without
# it every truncated page (any max-keys smaller than what the prefix
# holds, blitfs's max-keys=1 probe included) is answered InternalError.
# Node's --openssl-legacy-provider brings DES back.
s3rver_start()
{
	local port=${1:?s3rver_start PORT} data=${2:-}
	local bin=$BLITFS_TESTS_DIR/s3rver/node_modules/s3rver/bin/s3rver.js
	local node=(node)

	if [[ ! -f $bin ]]; then
		echo "servers.sh: s3rver not installed; run tests/install-deps.sh" >&2
		return 1
	fi
	server_begin s3rver "$port" || return 1
	[[ -n $data ]] || data=$SERVER_TMP/data
	mkdir -p "$data"
	if (($(node -p 'process.versions.node.split(".")[0]') >= 17)); then
		node+=(--openssl-legacy-provider)
	fi
	"${node[@]}" "$bin" -d "$data" -a 127.0.0.1 -p "$port" \
		>"$SERVER_LOG" 2>&1 &
	SERVER_PID=$!
	export SERVER_PID
	export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER
	wait_http "$S3_ENDPOINT/" 60 || { server_stop; return 1; }
}

# Stop the server this shell started and remove its temporary directory.
server_stop()
{
	local i

	if [[ -n $SERVER_PID ]]; then
		# A test may have paused it (SIGSTOP) and died before resuming.
		kill -CONT "$SERVER_PID" 2>/dev/null || true
		kill -TERM "$SERVER_PID" 2>/dev/null || true
		for ((i = 0; i < 50; i++)); do
			kill -0 "$SERVER_PID" 2>/dev/null || break
			sleep 0.1
		done
		# Gone already, mostly: neither may fail a caller under set -e.
		kill -KILL "$SERVER_PID" 2>/dev/null || true
		wait "$SERVER_PID" 2>/dev/null || true
	fi
	[[ -z $SERVER_TMP ]] || rm -rf "$SERVER_TMP"
	SERVER_PID='' SERVER_TMP='' SERVER_LOG='' S3_SERVER='' S3_ENDPOINT=''
	return 0
}

make_bucket()
{
	s3api create-bucket --bucket "${1:?make_bucket NAME}" >/dev/null
}
