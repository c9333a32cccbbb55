#!/bin/sh
# bench/replication/run.sh — the replication measurements of issue 22.
#
#   sh bench/replication/run.sh lag        [SECONDS RATE BATCH]
#   sh bench/replication/run.sh bootstrap  DATA_DIR [REPEAT [SETTLE]]
#   sh bench/replication/run.sh reads      [POINTS DURATION CONNECTIONS]
#   sh bench/replication/run.sh make-1m    DATA_DIR     (once; not timed)
#
# lag: follower lag under a paced upsert load (lag.py); bootstrap: a
# follower's bootstrap vs the primary's restart on DATA_DIR (bootstrap.py);
# reads: search req/s through nginx to two followers vs one (reads.py; needs
# wrk and nginx).  make-1m writes 1,000,000 x 100-d seeded random float32
# vectors and imports them into DATA_DIR/.. (embedsrv import, M 16,
# ef_construction 40): run it once, under nice, outside the benchmark lock.
# Record timings under the shared lock, at normal priority:
#   flock /work/bench.lock sh bench/replication/run.sh lag
# Binary: $ES_BINARY (default build/embedsrv).
set -eu
cd "$(dirname "$0")/../.."
export ES_BINARY=${ES_BINARY:-build/embedsrv} ES_SOURCE_ROOT=$PWD
what=${1:?usage: run.sh lag|bootstrap|reads|make-1m ...}
shift
case $what in
lag) exec python3 bench/replication/lag.py "$@" ;;
bootstrap) exec python3 bench/replication/bootstrap.py "$@" ;;
reads) exec python3 bench/replication/reads.py "$@" ;;
make-1m)
	dir=${1:?DATA_DIR}
	mkdir -p "$(dirname "$dir")"
	raw=$(dirname "$dir")/vec1m.f32
	[ -f "$raw" ] || python3 - "$raw" <<'PY'
import random, sys
r = random.Random(22)
flip = bytes((0x3F if i % 2 == 0 else 0xBF) for i in range(256))
with open(sys.argv[1], "wb") as f:
    for _ in range(10):  # 100,000 rows of 100 float32 in +-[0.5, 2)
        b = bytearray(r.randbytes(4 * 100 * 100000))
        b[3::4] = b[3::4].translate(flip)
        f.write(b)
PY
	exec "$ES_BINARY" import --data-dir "$dir" --collection big --input "$raw" --dim 100 \
		--metric l2 --M 16 --ef-construction 40 --threads 2 ;;
*) echo "run.sh: unknown measurement '$what'" >&2; exit 2 ;;
esac
