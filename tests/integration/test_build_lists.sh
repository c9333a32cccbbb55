#!/bin/sh
# test_build_lists.sh — every source file on disk is named in its meson.build.
#
# The meson.build files list their files explicitly, so a misspelt name fails
# `meson setup`.  The other half is checked here: a core/, index/, server/ or
# cli/ .c file, a tests/test_*.c or a tests/integration/test_* script that
# exists but is not listed would silently not be built or run.
set -eu
root=${ES_SOURCE_ROOT:?ES_SOURCE_ROOT not set}
cd "$root"
bad=0
missing() { echo "FAIL: $1 exists but $2 does not name '$3'" >&2; bad=1; }

for layer in core index server cli; do
	for f in "$layer"/*.c; do
		m=$(basename "$f" .c)
		[ "$layer/$m" = cli/main ] && continue # the binary's entry point (top-level meson.build)
		grep -q "'$m'" "$layer/meson.build" || missing "$f" "$layer/meson.build" "$m"
	done
done
grep -q "'cli/main.c'" meson.build || missing cli/main.c meson.build cli/main.c
for f in tests/test_*.c; do
	m=$(basename "$f" .c); m=${m#test_}
	grep -q "'$m'" tests/meson.build || missing "$f" tests/meson.build "$m"
done
for f in tests/integration/test_*.sh tests/integration/test_*.py; do
	s=$(basename "$f")
	grep -q "'$s'" tests/integration/meson.build || missing "$f" tests/integration/meson.build "$s"
done
for f in tests/fuzz/fuzz_*.c; do
	s=$(basename "$f")
	[ "$s" = fuzz_common.c ] && continue
	grep -q "'$s'" tests/fuzz/meson.build || missing "$f" tests/fuzz/meson.build "$s"
done
# A relative include ("../index/hnsw.h") would step around the per-layer
# include directories that keep each layer from reaching the ones above it.
if grep -n '#include "\.\./' core/* index/* server/* cli/*; then
	echo "FAIL: a relative #include crosses a layer's include directory" >&2; bad=1
fi
[ $bad = 0 ] || exit 1
echo "build lists: every source and test file is named"
