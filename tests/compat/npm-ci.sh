#!/bin/sh
# npm-ci.sh — install the pinned npm clients of tests/compat (package-lock.json)
# into tests/compat/node_modules (ignored by git), once per lockfile: a copy of
# the lockfile in node_modules marks what is installed, so a second run costs
# nothing.  Needs node and npm (deploy/packages-compat.txt) and the npm registry.
set -eu
cd "$(dirname "$0")"
stamp=node_modules/.embedsrv-package-lock.json
if [ -f "$stamp" ] && cmp -s package-lock.json "$stamp"; then
	exit 0
fi
command -v npm >/dev/null 2>&1 || { echo "npm-ci.sh: npm is not installed" >&2; exit 1; }
npm ci --no-audit --no-fund --loglevel=error
cp package-lock.json "$stamp"
