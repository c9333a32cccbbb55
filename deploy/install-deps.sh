#!/bin/sh
# install-deps.sh [LIST...] — install the Debian packages named in the given
# lists (default: deploy/packages-build.txt) that are not installed yet.
# Uses sudo when not run as root.  Safe to run again: it does nothing when
# everything is present.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
[ $# -gt 0 ] || set -- "$here/packages-build.txt"
pkgs=$(sed -e 's/#.*//' "$@" | tr -s ' \t' '\n' | grep -v '^$' || true)
missing=""
for p in $pkgs; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
[ -n "$missing" ] || exit 0
echo "embedsrv: installing Debian packages:$missing" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
		echo "embedsrv: need root (or sudo) to install:$missing" >&2; exit 1
	fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
