#!/usr/bin/env bash
#
# install-deps.sh - install what building and testing blitfs needs, on
# Debian or Ubuntu.  Idempotent: installs only what is missing, so a second
# run is quick and touches nothing.
#
#   tests/install-deps.sh [--need-moto]
#
# With --need-moto (or NEED_MOTO=1) a missing moto_server is an error;
# otherwise it is only reported.  moto is not in Debian; see the message.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
need_moto=${NEED_MOTO:-0}
[[ ${1:-} != --need-moto ]] || need_moto=1

# Why each is here: see README.md, "Dependencies".
packages=(
	build-essential meson ninja-build pkg-config
	libfuse3-dev fuse3 libcurl4-openssl-dev libssl-dev libinih-dev
	libxml2-dev libsqlite3-dev libjansson-dev libmicrohttpd-dev
	libcmocka-dev
	awscli imagemagick attr mate-backgrounds python3 rsync
	groff-base man-db
)
# Node from elsewhere (nvm, nodesource) is fine: Debian's only if none.
command -v node >/dev/null 2>&1 || packages+=(nodejs npm)

installed()
{
	[[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) == \
		installed ]]
}

as_root()
{
	if ((EUID == 0)); then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		echo "install-deps: need root for: $*" >&2
		return 1
	fi
}

install_packages()
{
	local missing=() p

	for p in "${packages[@]}"; do
		installed "$p" || missing+=("$p")
	done
	((${#missing[@]})) || return 0
	echo "install-deps: installing ${missing[*]}"
	as_root apt-get update -q
	as_root env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -q "${missing[@]}"
}

# s3rver, pinned by tests/s3rver/package-lock.json; again when the lock
# file is newer than what npm installed last (node_modules/.package-lock.json).
install_s3rver()
{
	local dir=$here/s3rver

	if [[ -f $dir/node_modules/s3rver/package.json &&
		! $dir/package-lock.json -nt $dir/node_modules/.package-lock.json ]]
	then
		return 0
	fi
	echo "install-deps: npm ci in tests/s3rver"
	(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
}

check_moto()
{
	if command -v moto_server >/dev/null 2>&1 ||
		[[ -x $HOME/.venvs/moto/bin/moto_server ]]; then
		return 0
	fi
	cat >&2 <<'TXT'
install-deps: moto_server not found.  It is not packaged by Debian; get it
with pip in a virtual environment and put it on PATH:
    python3 -m venv ~/.venvs/moto
    ~/.venvs/moto/bin/pip install 'moto[server]'
    export PATH=$HOME/.venvs/moto/bin:$PATH
(tests/servers.sh also looks in ~/.venvs/moto/bin by itself.)
TXT
	((need_moto == 0))
}

install_packages
install_s3rver
[[ -e /dev/fuse ]] ||
	echo "install-deps: warning: no /dev/fuse; mounts will fail" >&2
check_moto
