#!/bin/sh
# bench/http/run.sh — HTTP throughput and latency of embedsrv with wrk.
#
#   sh bench/http/run.sh [BINARY]    (default build/embedsrv)
#
# Starts `embedsrv serve --quiet --threads 2` on a free local port with a
# 50,000-word x 100-d model (bench/http/make_data.py, seeded), loads a
# 100,000-point collection (d = 100, cosine, M 16, ef_construction 100), then
# runs wrk for DURATION seconds (default 10) at 16 and 64 connections,
# REPEAT times (default 3), on:
#   1. POST /v1/embeddings with one short text;
#   2. POST /v1/collections/bench/search, k = 10, by text;
# then the same search paced at PACED_RATES offered req/s (default
# "5000 10000") over 64 connections, REPEAT times each (see below);
# then the Qdrant dialect's translation cost (issue 20): the same vector
# search, k = 10 with payloads, through POST /v1/collections/bench/search
# and through Qdrant's POST /collections/bench/points/query, interleaved,
# REPEAT times at 16 and 64 connections.  AB_ONLY=1 runs only that part.
# wrk runs on the same machine (2 threads), so server and load generator
# share the cores.  Output: one summary line per run, raw wrk output in
# bench/out/http/.  Needs wrk (bench/packages.txt) and /usr/bin/python3 with
# numpy.
set -eu
cd "$(dirname "$0")/../.."
bin=${1:-build/embedsrv}
dur=${DURATION:-10}
npts=${NPOINTS:-100000}
data=bench/data/http
out=bench/out/http
mkdir -p "$data" "$out"
command -v wrk >/dev/null || { echo "wrk not installed (sh deploy/install-deps.sh bench/packages.txt)" >&2; exit 1; }
[ -f "$data/points-0000.json" ] && [ "$(ls "$data"/points-*.json | wc -l)" -eq $((npts / 1000)) ] ||
	{ rm -f "$data"/points-*.json; /usr/bin/python3 bench/http/make_data.py "$data" "$npts"; }

port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port
"$bin" serve --model "$data/model-100d.vec" --port "$port" --threads 2 --quiet 2>"$out/server.log" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT INT TERM
i=0
until curl -sf "$url/healthz" >/dev/null; do
	i=$((i + 1)); [ $i -lt 600 ] || { echo "server did not start" >&2; cat "$out/server.log" >&2; exit 1; }
	sleep 0.1
done
curl -sf -X PUT "$url/v1/collections/bench" -H 'Content-Type: application/json' \
	-d '{"metric":"cosine","m":16,"ef_construction":100}' >/dev/null
t0=$(date +%s.%N)
for f in "$data"/points-*.json; do
	curl -sf -X PUT "$url/v1/collections/bench/points" -H 'Content-Type: application/json' \
		--data-binary "@$f" >/dev/null || { echo "upsert $f failed" >&2; exit 1; }
done
t1=$(date +%s.%N)
count=$(curl -sf "$url/v1/collections/bench" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["result"]["count"])')
echo "loaded $count points in $(awk "BEGIN{printf \"%.1f\", $t1 - $t0}") s (HTTP upserts of 1000)"

# post_lua NAME BODY [LUA]: $out/NAME.lua, a wrk script POSTing the JSON
# BODY (LUA: more of the script, e.g. a delay function).
post_lua() {
	{
		printf 'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
		printf "wrk.body = '%s'\n" "$2"
		[ $# -lt 3 ] || printf '%s\n' "$3"
	} >"$out/$1.lua"
}
# run LABEL CONNS SCRIPT PATH RESULT: one wrk run of $out/SCRIPT.lua against
# PATH, raw output in $out/RESULT.txt, and its summary line.
run() {
	wrk -t2 -c"$2" -d"${dur}"s --latency -s "$out/$3.lua" "$url$4" >"$out/$5.txt"
	summ "$1" "$2" "$out/$5.txt"
}
post_lua embed '{"input": "w12 w345 w6789 w42", "model": "bench"}'
# SEARCH_EXTRA adds fields to the search body, e.g. ', "mode": "dense"' (text
# queries default to hybrid since issue 17; dense compares with older builds).
search_body='{"text": "w12 w345 w6789 w42", "k": 10'"${SEARCH_EXTRA:-}"'}'
post_lua search "$search_body"

summ() { # name conns file
	awk -v name="$1" -v c="$2" '
		/Requests\/sec/ { rps = $2 }
		/^ +50%/ { p50 = $2 } /^ +99%/ { p99 = $2 }
		/Non-2xx/ { bad = $NF }
		END { printf "%-10s c=%-3d %10s req/s  p50 %-8s p99 %-8s non-2xx %s\n", name, c, rps, p50, p99, (bad == "" ? 0 : bad) }' "$3"
}
# REPEAT rounds (default 3), interleaved, so a burst of load from other
# users of a shared machine hits every configuration alike; quote medians.
[ "${AB_ONLY:-0}" = 1 ] || for r in $(seq 1 "${REPEAT:-3}"); do
	for c in 16 64; do
		run embeddings $c embed /v1/embeddings "embed-c$c-r$r"
		run search $c search /v1/collections/bench/search "search-c$c-r$r"
	done
done
# Paced search: the loops above saturate the server (every connection sends
# its next request the moment the answer arrives), so their latency is
# queueing behind 63 others: mean = 64 / throughput (Little's law).  Here
# the same search is offered at a set rate over 64 connections instead: each
# connection waits a random think time (exponential, mean 64 / RATE seconds
# less ~1 ms of service) between its requests, the way many independent
# clients arrive.  wrk reports the rate achieved and the latency of each
# request from its send to its answer.
[ "${AB_ONLY:-0}" = 1 ] && PACED_RATES=" "
for rate in ${PACED_RATES:-5000 10000}; do
	think=$(awk "BEGIN { t = 64000 / $rate - 1; print (t < 0 ? 0 : t) }")
	post_lua paced "$search_body" "function delay()
	return math.floor(-math.log(1 - math.random()) * $think + 0.5)
end"
	for r in $(seq 1 "${REPEAT:-3}"); do
		run "paced$rate" 64 paced /v1/collections/bench/search "paced-$rate-r$r"
	done
done
# The two dialects on one query vector (a stored point's, so the search is
# the same work): /v1 search vs Qdrant's points/query.  Each answer carries
# the 10 hits with payloads; the Qdrant one is re-shaped by the translation
# layer (server/api_qdrant_points.c) and wrapped in Qdrant's envelope.
vec=$(curl -sf "$url/v1/collections/bench/points/77" |
	/usr/bin/python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["result"]["vector"]))')
post_lua ab-v1 '{"vector": '"$vec"', "k": 10, "with_payload": true}'
post_lua ab-qdrant '{"query": '"$vec"', "limit": 10, "with_payload": true}'
for r in $(seq 1 "${REPEAT:-3}"); do
	for c in 16 64; do
		run v1-search $c ab-v1 /v1/collections/bench/search "ab-v1-c$c-r$r"
		run qd-query $c ab-qdrant /collections/bench/points/query "ab-qdrant-c$c-r$r"
	done
done
kill -TERM $pid
wait $pid
trap - EXIT INT TERM
