#!/bin/sh
# bench/soak.sh — soak test: mixed traffic against a real server for a while.
#
#   sh bench/soak.sh [MINUTES]      (default 10; decimals allowed, e.g. 0.5)
#
# Starts `embedsrv serve` (BIN, default build/embedsrv) on a free port on
# 127.0.0.1 with the seeded 50,000-word x 100-d model of bench/http (made by
# bench/http/make_data.py on first use; SOAK_MODEL overrides, but the clients
# write texts in its w0..w49999 words) and a --data-dir in a temporary
# directory (write-ahead log, --fsync SOAK_FSYNC (default always), snapshots
# every 32 MiB of log),
# creates a collection, then for MINUTES runs at the same time:
#   * wrk on POST /v1/embeddings (one random short text per request);
#   * wrk on POST /v1/collections/soak/search (random text, k = 10);
#   * bench/soak/client.py: two writer threads, each loading 10,000 points
#     (before the timed run starts) and then, 10 times a second, deleting 5
#     and upserting 10 (the deleted
#     ones come back, the rest overwrite), so the live set stays at 20,000;
#     plus 2 deliberate bad requests a second (400/404/415/422), each checked
#     for its status and counted apart;
#   * a sampler of the server's resident memory (VmRSS) every RSS_EVERY
#     seconds (default 5).
# WRK_CONNS (default 8) connections per wrk, WRK_THREADS (default 1);
# SOAK_THREADS sets the server's --threads (default: its own default).
#
# Pass means all of:
#   * wrk: no non-2xx responses and no socket errors (timeouts included);
#   * the client: every write and every bad request got exactly the status
#     it should have; at the end every point that should exist is there
#     with its last payload (GET by id) and every deleted one is 404;
#   * /metrics counts no 5xx;
#   * resident memory is flat after warm-up (loading, then the first quarter
#     of the timed run, at most 2 minutes): the mean of the last 3 samples is less than
#     RSS_GROWTH_PCT (default 10) % above the mean of the first 3 after
#     warm-up;
#   * the server exits 0 on SIGTERM.
# It prints p50/p99 per route, the RSS figures and PASS/FAIL, keeps raw
# output in bench/out/soak/, stops by itself and cleans up on any exit.
# Exit status 0 on PASS.  Needs wrk (bench/packages.txt), curl, python3
# (stdlib) and, for the default model, /usr/bin/python3 with numpy.
set -eu
cd "$(dirname "$0")/.."
minutes=${1:-10}
bin=${BIN:-build/embedsrv}
secs=$(awk -v m="$minutes" 'BEGIN { s = int(m * 60 + 0.5); if (s < 20) s = 20; print s }')
conns=${WRK_CONNS:-8}
wthreads=${WRK_THREADS:-1}
every=${RSS_EVERY:-5}
growth_pct=${RSS_GROWTH_PCT:-10}
fsync=${SOAK_FSYNC:-always}
out=bench/out/soak
model=${SOAK_MODEL:-bench/data/http/model-100d.vec}
mkdir -p "$out"
rm -f "$out"/*

command -v wrk >/dev/null || { echo "soak: wrk not installed (sh deploy/install-deps.sh bench/packages.txt)" >&2; exit 1; }
command -v curl >/dev/null || { echo "soak: curl not installed" >&2; exit 1; }
[ -x "$bin" ] || { echo "soak: $bin not built" >&2; exit 1; }
if [ ! -f "$model" ]; then
	[ -z "${SOAK_MODEL:-}" ] || { echo "soak: no model at $model" >&2; exit 1; }
	/usr/bin/python3 bench/http/make_data.py bench/data/http 0 >/dev/null
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/embedsrv-soak.XXXXXX")
pid=
bg=
cleanup() {
	for p in $bg; do kill "$p" 2>/dev/null || true; done
	[ -z "$pid" ] || kill "$pid" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port
"$bin" serve --model "$model" --host 127.0.0.1 --port "$port" --data-dir "$tmp/data" \
	--fsync "$fsync" --snapshot-bytes 33554432 ${SOAK_THREADS:+--threads "$SOAK_THREADS"} \
	--quiet 2>"$out/server.log" &
pid=$!
i=0
until curl -sf "$url/readyz" >/dev/null; do
	i=$((i + 1))
	[ $i -lt 600 ] && kill -0 "$pid" 2>/dev/null || { echo "soak: server did not start" >&2; cat "$out/server.log" >&2; exit 1; }
	sleep 0.1
done
curl -sf -X PUT "$url/v1/collections/soak" -H 'Content-Type: application/json' \
	-d '{"metric":"cosine"}' >/dev/null

# wrk scripts: a fresh random text per request
for kind in embed search; do
	if [ $kind = embed ]; then body='{"input": "%s", "model": "%s"}'; else body='{"text": "%s", "k": 10}'; fi
	cat >"$out/$kind.lua" <<LUA
math.randomseed(os.time() + ${#kind})
local mname = "$(basename "$model")"
request = function()
	local n = math.random(2, 8)
	local w = {}
	for i = 1, n do w[i] = "w" .. math.random(0, 49999) end
	local body = string.format('$body', table.concat(w, " "), mname)
	return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
LUA
done

echo "soak: $secs s against $url (pid $pid), fsync $fsync, model $model, wrk $wthreads thread(s) x $conns connections per route"
start=$(date +%s)
(
	while kill -0 "$pid" 2>/dev/null; do
		rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null) || break
		echo "$(( $(date +%s) - start )) $rss"
		sleep "$every"
	done
) >"$out/rss.txt" &
bg=$!
python3 bench/soak/client.py "$url" soak "$secs" "$out/client.json" >"$out/client.log" 2>&1 &
cpid=$!
bg="$bg $cpid"
# the timed run starts once the client has loaded its points
i=0
until [ -f "$out/client.json.loaded" ]; do
	i=$((i + 1))
	[ $i -lt 3000 ] && kill -0 "$cpid" 2>/dev/null || { echo "soak: the client did not load its points" >&2; cat "$out/client.log" >&2; exit 1; }
	sleep 0.1
done
loaded=$(( $(date +%s) - start ))
echo "soak: loaded after $loaded s; mixed traffic for $secs s"
wrk -t"$wthreads" -c"$conns" -d"${secs}s" --timeout 10s --latency -s "$out/embed.lua" \
	"$url/v1/embeddings" >"$out/wrk-embeddings.txt" 2>&1 &
w1=$!
wrk -t"$wthreads" -c"$conns" -d"${secs}s" --timeout 10s --latency -s "$out/search.lua" \
	"$url/v1/collections/soak/search" >"$out/wrk-search.txt" 2>&1 &
w2=$!
bg="$bg $w1 $w2"
fail=0
wait $w1 || { echo "FAIL: wrk (embeddings) exited $?"; fail=1; }
wait $w2 || { echo "FAIL: wrk (search) exited $?"; fail=1; }
crc=0
wait $cpid || crc=$?
curl -sf "$url/metrics" >"$out/metrics.txt" || { echo "FAIL: /metrics"; fail=1; }
kill -TERM "$pid"
src=0
wait "$pid" || src=$?
pid=
[ "$src" -eq 0 ] || { echo "FAIL: server exit status $src on SIGTERM"; fail=1; }

# --- report -----------------------------------------------------------
wrk_line() { # route file
	awk -v r="$1" '
		/Requests\/sec/ { rps = $2 }
		/^ +50%/ { p50 = $2 } /^ +99%/ { p99 = $2 }
		/requests in/ { n = $1 }
		/Non-2xx/ { bad = $NF }
		/Socket errors/ { sock = $0; sub(/^ *Socket errors: */, "", sock) }
		END { printf "%-12s %9s req %9s req/s  p50 %-8s p99 %-8s non-2xx %s  socket errors %s\n",
			r, n, rps, p50, p99, (bad == "" ? 0 : bad), (sock == "" ? "none" : sock) }' "$2"
}
wrk_bad() { # file -> non-2xx + socket errors
	awk '/Non-2xx/ { b += $NF }
	     /Socket errors/ { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) b += $i + 0 }
	     END { print b + 0 }' "$1"
}
wrk_line embeddings "$out/wrk-embeddings.txt"
wrk_line search "$out/wrk-search.txt"
for f in "$out/wrk-embeddings.txt" "$out/wrk-search.txt"; do
	n=$(wrk_bad "$f")
	[ "$n" -eq 0 ] || { echo "FAIL: $n error responses or socket errors in $f"; fail=1; }
done
if [ -f "$out/client.json" ]; then
	python3 - "$out/client.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
r = s["requests"]
print("client       %s s: %s upserts, %s deletes (after %s load batches in %s s), %s bad requests "
      "(400: %s, 404: %s, 415: %s, 422: %s), %s errors"
      % (s["seconds"], r.get("upsert", 0), r.get("delete", 0), r.get("load", 0), s["load_seconds"],
         r.get("bad", 0), r.get("bad_400", 0), r.get("bad_404", 0), r.get("bad_415", 0),
         r.get("bad_422", 0), s["errors"]))
for k in ("upsert", "delete", "bad", "verify_get"):
    l = s["latency_ms"].get(k)
    if l:
        print("  %-10s p50 %8.2f ms  p99 %8.2f ms  max %8.2f ms" % (k, l["p50"], l["p99"], l["max"]))
print("verify       %d points present with their last payload, %d deleted ids 404, count %s"
      % (s["points_verified_present"], s["points_verified_deleted"], s["collection_count"]))
for e in s["first_errors"]:
    print("  error:", e)
PY
fi
[ "$crc" -eq 0 ] || { echo "FAIL: client exit status $crc (see $out/client.log, $out/client.json)"; cat "$out/client.log"; fail=1; }
# (GET /readyz answers 503 until the data is recovered: the start-up poll)
n5=$(awk '/^embedsrv_http_requests_total/ && /status="5/ && !/GET \/readyz/ { n += $NF } END { print n + 0 }' "$out/metrics.txt" 2>/dev/null || echo 0)
[ "$n5" -eq 0 ] || { echo "FAIL: $n5 responses with status 5xx in /metrics"; fail=1; }

# RSS: flat after warm-up
warm=$(awk -v s="$secs" -v l="$loaded" 'BEGIN { w = int(s / 4); if (w > 120) w = 120; print l + w }')
rss=$(awk -v warm="$warm" -v g="$growth_pct" '
	{ t[NR] = $1; v[NR] = $2; if ($2 > max) max = $2 }
	END {
		n = 0
		for (i = 1; i <= NR; i++) if (t[i] >= warm) { n++; a[n] = v[i] }
		if (n < 6) { print "ERR too few RSS samples after warm-up (" n ")"; exit }
		s0 = (a[1] + a[2] + a[3]) / 3; s1 = (a[n-2] + a[n-1] + a[n]) / 3
		pct = 100 * (s1 - s0) / s0
		printf "%s first %.1f MiB, after warm-up (at %d s) %.1f MiB, end %.1f MiB, max %.1f MiB, growth %+.1f%% (limit %d%%), %d samples\n",
			(pct < g ? "OK" : "ERR"), v[1] / 1024, warm, s0 / 1024, s1 / 1024, max / 1024, pct, g, NR
	}' "$out/rss.txt")
echo "rss          ${rss#* }"
case $rss in OK*) ;; *) echo "FAIL: resident memory not flat after warm-up"; fail=1 ;; esac
if grep -qi "error\|sanitizer\|assert" "$out/server.log"; then
	echo "note: server log has error lines:"; grep -i "error\|sanitizer\|assert" "$out/server.log" | sort | uniq -c | head
fi
if [ $fail -eq 0 ]; then echo "PASS"; else echo "FAIL (raw output in $out/)"; fi
exit $fail
