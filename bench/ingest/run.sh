#!/bin/sh
# bench/ingest/run.sh — REST ingestion rate (issue 19) against hnswlib.
#
#   sh bench/ingest/run.sh [BINARY...]     (default build/embedsrv)
#
# For each binary, REPEAT times (default 3, interleaved so load from other
# users of a shared machine hits every binary alike): start `embedsrv serve
# --fsync always` on a fresh data directory with the default model
# (models/default.esm), PUT the first NPOINTS (default 100,000) lines of
# models/corpus.txt as text points in batches of BATCH (500) from CLIENTS
# (2) concurrent clients, and print points/s (encoding, JSON, WAL, fsync and
# graph build included).  Then, once, hnswlib's add_items on CLIENTS threads
# for the same vectors and parameters (cosine, M 16, ef_construction 200).
# Quote medians and same-run ratios.  Needs /usr/bin/python3 with numpy and
# hnswlib (bench/packages.txt).
set -eu
cd "$(dirname "$0")/../.."
[ $# -gt 0 ] || set -- build/embedsrv
n=${NPOINTS:-100000}
batch=${BATCH:-500}
clients=${CLIENTS:-2}
model=${MODEL:-models/default.esm}
corpus=${CORPUS:-models/corpus.txt}
out=bench/out/ingest
mkdir -p "$out"
tmp=$(mktemp -d)
pid=
trap '[ -z "$pid" ] || kill $pid 2>/dev/null; rm -rf "$tmp"' EXIT INT TERM

start() { # binary
	port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	url=http://127.0.0.1:$port
	rm -rf "$tmp/data"
	"$1" serve --model "$model" --port "$port" --data-dir "$tmp/data" --fsync always \
		--quiet 2>"$out/server.log" &
	pid=$!
	i=0
	until curl -sf "$url/readyz" >/dev/null; do
		i=$((i + 1)); [ $i -lt 1200 ] || { echo "server did not start" >&2; cat "$out/server.log" >&2; exit 1; }
		sleep 0.1
	done
}
stop() {
	kill "$pid"; wait "$pid" || true; pid=
}

# P99=1: also search the collection with wrk (16 connections) while the
# ingestion runs (WRK_DURING seconds, default 6, starting WRK_DELAY, default
# 2, seconds into it) and once it is done (idle, WRK_SECONDS, default 20),
# and print both latency distributions' p50/p99.  The during-ingest figure
# counts only if the ingestion outlasted its wrk run: the script says so
# when it did not (raise NPOINTS or lower WRK_DURING).
cat > "$tmp/search.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"text": "the history of the english language", "k": 10, "mode": "dense"}'
LUA
wrk_p99() { # label seconds
	wrk -t2 -c16 -d"$2s" --latency -s "$tmp/search.lua" \
		"$url/v1/collections/ingest/search" >"$out/wrk-$1.txt"
	awk -v l="$1" '/Requests\/sec/ { rps = $2 } /^ +50%/ { p50 = $2 } /^ +99%/ { p99 = $2 }
		/Non-2xx/ { bad = $NF }
		END { printf "search %s: %s req/s p50 %s p99 %s non-2xx %s\n", l, rps, p50, p99, (bad == "" ? 0 : bad) }' \
		"$out/wrk-$1.txt"
}
for r in $(seq 1 "${REPEAT:-3}"); do
	for bin in "$@"; do
		start "$bin"
		printf '%s run %s: ' "$bin" "$r"
		if [ "${P99:-0}" = 1 ]; then
			/usr/bin/python3 bench/ingest/client.py "$url" "$corpus" "$n" "$batch" "$clients" ingest \
				>"$tmp/ingest.txt" &
			cpid=$!
			sleep "${WRK_DELAY:-2}"
			wrk_p99 during-ingest "${WRK_DURING:-6}"
			kill -0 "$cpid" 2>/dev/null ||
				echo "NOT VALID: the ingestion ended before the during-ingest search run did"
			wait "$cpid"
			cat "$tmp/ingest.txt"
			wrk_p99 idle "${WRK_SECONDS:-20}"
		else
			/usr/bin/python3 bench/ingest/client.py "$url" "$corpus" "$n" "$batch" "$clients" ingest
		fi
		stop
	done
done
start "$1"
/usr/bin/python3 bench/ingest/client.py "$url" "$corpus" "$n" "$batch" "$clients" hnswlib
stop
