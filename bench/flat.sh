#!/bin/sh
# flat.sh [run.py options] — exact-search benchmark: embedsrv's index/flat
# against FAISS IndexFlatIP (Debian python3-faiss) on the same vectors in
# the same run (N = 100,000, d = 100, k = 10, batches of 1 and 1,000
# queries, 1 and 2 threads by default).  Prints a markdown table with the
# ratios.  Installs the peers (bench/packages.txt) if missing and builds.
set -eu
cd "$(dirname "$0")/.."
sh deploy/install-deps.sh deploy/packages-build.txt bench/packages.txt
sh deploy/build.sh build >/dev/null
exec nice -n 10 timeout 1800 /usr/bin/python3 bench/flat/run.py "$@"
