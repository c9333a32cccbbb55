#!/bin/sh
# bench/encoder/serve.sh [BINARY] — POST /v1/embeddings with a BERT model
# under wrk, dynamic batching on and off, same run.
#
# Serves the random-weight MiniLM-shaped folder of run.sh (make_model.py;
# bench/out/minilm-random) and, for each configuration in CONFIGS (default
# "0 0/32 32": --batch-max 0 = every request its own forward, with the
# default HTTP threads (CPU count) and with 32 of them; 32 = batched, whose
# default threads are 32; an entry BATCHMAX/THREADS sets --threads),
# runs wrk for DURATION seconds (default 5) at 1, 16 and 64 connections
# with bodies of one short text (6 tokens) and of 32 texts (10 tokens
# each), REPEAT rounds (default 3) interleaved so load from other users of
# a shared machine hits every configuration alike.  BATCH_WAIT_US (default:
# the server's) is passed through.  wrk's timeout is 30 s; timeouts are
# counted.  Prints one line per run (texts/s = req/s x texts per
# request; CPU ms per request of the server, all threads, from
# /proc/PID/stat, and of wrk, from /usr/bin/time) and, at the end, medians
# per configuration; raw wrk output in
# bench/out/serve/.  wrk runs on the same machine (2 threads).
# BODIES (default "one many") and CONNS (default "1 16 64") narrow a run;
# SERVE_ARGS is passed to every server; a CONFIGS entry BATCHMAX:N (or
# BATCHMAX/THREADS:N) sets --batch-threads N (N = 1: one single-thread
# batch per CPU side by side, the layout before issue 23's second pass).
set -eu
cd "$(dirname "$0")/../.."
bin=${1:-build/embedsrv}
dur=${DURATION:-5}
model=bench/out/minilm-random
out=bench/out/serve
mkdir -p "$out"
command -v wrk >/dev/null || { echo "wrk not installed (sh deploy/install-deps.sh bench/packages.txt)" >&2; exit 1; }
[ -f "$model/model.safetensors" ] || /usr/bin/python3 bench/encoder/make_model.py "$model"

# "requests texts forwards wait_s forward_s" of the batcher, or "- - - - -"
batch_metrics() {
	curl -sf "http://127.0.0.1:$1/metrics" | awk '
		/^embedsrv_batch_requests_total/ { q = $2 } /^embedsrv_batch_texts_total/ { t = $2 }
		/^embedsrv_batch_forwards_total/ { f = $2 } /^embedsrv_batch_wait_seconds_total/ { w = $2 }
		/^embedsrv_batch_forward_seconds_total/ { s = $2 }
		END { if (q == "") print "- - - - -"; else print q, t, f, w, s }'
}

# user + system CPU ticks of process $1 so far (all its threads)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

cat > "$out/one.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"input": "w12 w345 w6789 w42"}'
LUA
/usr/bin/python3 - "$out/many.lua" <<'PY'
import json, sys
texts = [" ".join("w%d" % (5 + (k * 7919 + j * 104729) % 15258) for j in range(8)) for k in range(32)]
body = json.dumps({"input": texts})
open(sys.argv[1], "w").write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = %s\n' % json.dumps(body))
PY

: > "$out/results.txt"
for r in $(seq 1 "${REPEAT:-3}"); do
	for cfg in ${CONFIGS:-0 0/32 32}; do
		bt=; c0=${cfg%:*}; [ "$c0" = "$cfg" ] || bt=${cfg##*:}
		bm=${c0%/*}
		th=; [ "$c0" = "$bm" ] || th=${c0#*/}
		port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
		"$bin" serve --model "$model" --port "$port" --quiet --batch-max "$bm" \
			${th:+--threads "$th"} ${bt:+--batch-threads "$bt"} \
			${BATCH_WAIT_US:+--batch-wait-us "$BATCH_WAIT_US"} ${SERVE_ARGS:-} \
			2>"$out/server.log" &
		pid=$!
		i=0
		until curl -sf "http://127.0.0.1:$port/healthz" >/dev/null; do
			i=$((i + 1)); [ $i -lt 600 ] || { echo "server did not start" >&2; cat "$out/server.log" >&2; kill $pid; exit 1; }
			sleep 0.1
		done
		for body in ${BODIES:-one many}; do
			n=1; [ $body = one ] || n=32
			for c in ${CONNS:-1 16 64}; do
				t=2; [ $c -gt 1 ] || t=1
				f="$out/b$bm-t${th:-default}-bt${bt:-default}-$body-c$c-r$r.txt"
				m0=$(batch_metrics "$port")
				s0=$(cpu_ticks $pid)
				/usr/bin/time -f "%U %S" -o "$f.time" \
					wrk -t$t -c$c -d${dur}s --timeout 30s --latency -s "$out/$body.lua" \
					"http://127.0.0.1:$port/v1/embeddings" >"$f"
				s1=$(cpu_ticks $pid)
				m1=$(batch_metrics "$port")
				# CPU per request: the server's (all its threads) and wrk's
				echo "cpu $s0 $s1 $(getconf CLK_TCK) $(cat "$f.time")" >>"$f"
				echo "batcher $m0 $m1" | awk '$2 != "-" && $7 != "-" && $7 > $2 {
					r = $7 - $2; printf "Batcher: mean batch %.1f texts, wait %.2f ms, forward %.2f ms per request\n",
						($8 - $3) / ($9 - $4), 1000 * ($10 - $5) / r, 1000 * ($11 - $6) / r }' >>"$f"
				awk -v bm="$cfg" -v body="$body" -v c="$c" -v n="$n" '
					function ms(s) { if (s ~ /us$/) return s / 1000; if (s ~ /ms$/) return s + 0; return s * 1000 }
					/Requests\/sec/ { rps = $2 }
					/^ +50%/ { p50 = ms($2) } /^ +99%/ { p99 = ms($2) }
					/Non-2xx/ { bad = $NF } /timeout/ { to = $NF }
					/requests in/ { nreq = $1 }
					/^cpu / { srv = ($3 - $2) / $4; wc = $5 + $6 }
					/^Batcher:/ { sub(/^Batcher: /, ""); bat = "  " $0 }
					END { printf "batch-max=%-6s texts/req=%-3d c=%-3d %9.1f texts/s  p50 %8.2f ms  p99 %8.2f ms  non-2xx %s  timeouts %s  cpu/req server %.3f ms wrk %.3f ms%s\n",
						bm, n, c, rps * n, p50, p99, (bad == "" ? 0 : bad), (to == "" ? 0 : to),
						nreq ? 1000 * srv / nreq : 0, nreq ? 1000 * wc / nreq : 0, bat }' "$f" | tee -a "$out/results.txt"
			done
		done
		kill $pid
		wait $pid 2>/dev/null || true
	done
done
echo
echo "medians over ${REPEAT:-3} rounds ($(lscpu | sed -n 's/^Model name: *//p'), family $(lscpu | sed -n 's/^CPU family: *//p'), shared machine: $(uptime | sed 's/.*load average: //') load):"
/usr/bin/python3 - "$out/results.txt" <<'PY'
import collections, re, statistics, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    m = re.match(r"batch-max=(\S+)\s+texts/req=(\d+)\s+c=(\d+)\s+([\d.]+) texts/s\s+p50\s+([\d.]+) ms\s+p99\s+([\d.]+) ms", line)
    u = re.search(r"cpu/req server ([\d.]+) ms wrk ([\d.]+) ms", line)
    b = re.search(r"mean batch ([\d.]+) texts, wait ([\d.]+) ms, forward ([\d.]+) ms", line)
    if m:
        runs[(m[2], m[3], m[1])].append([float(m[4]), float(m[5]), float(m[6])] + [float(x) for x in u.groups()] +
                                        ([float(x) for x in b.groups()] if b else []))
med = lambda v, i: ("%.2f" % statistics.median(x[i] for x in v)) if all(len(x) > i for x in v) else "-"
print("| texts/request | connections | batch-max[/threads][:batch-threads] | texts/s | p50 ms | p99 ms "
      "| server CPU ms/req | wrk CPU ms/req | mean batch | queued ms | forward ms |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for k in sorted(runs, key=lambda k: (int(k[0]), int(k[1]), k[2])):
    v = runs[k]
    print("| %s | %s | %s | %s |" % (k[0], k[1], k[2], " | ".join(med(v, i) for i in range(8))))
PY
