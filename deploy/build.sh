#!/bin/sh
# build.sh [BUILDDIR] — configure (once) and build embedsrv in release mode.
set -eu
cd "$(dirname "$0")/.."
dir=${1:-build}
if [ ! -f "$dir/build.ninja" ]; then
	meson setup "$dir" --buildtype=release
else
	meson setup --reconfigure "$dir" >/dev/null
fi
ninja -C "$dir"
