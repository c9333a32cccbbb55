#!/bin/sh
# test_deploy.sh — the deployment files stay in step with each other and the
# image's health check works against the real server.
#
#  1. deploy/verify-clean.sh understands every instruction of the Dockerfile
#     (it performs them in a clean Debian root, so an instruction it skipped
#     would go unverified), and refuses one it does not know.
#  2. The Dockerfile's build stage uses the same package lists and the same
#     build / test / model commands as the README's two commands
#     (deploy/test.sh, deploy/run.sh); the runtime stage installs only
#     deploy/packages-runtime.txt, runs as a numeric non-root user, keeps its
#     data in VOLUME /data, and checks itself with `embedsrv healthcheck`.
#  3. Compose and Kubernetes files name the same port, paths and data dir.
#  4. `embedsrv healthcheck` against a real `embedsrv serve`: 0 while it
#     runs (also with an API key set, /healthz stays open), non-zero after a
#     SIGTERM, which itself must end the server with status 0.
set -eu
bin=${ES_BINARY:?ES_BINARY not set}
root=${ES_SOURCE_ROOT:?ES_SOURCE_ROOT not set}
cd "$root"
fails=0
passes=0
ok() { passes=$((passes + 1)); }
bad() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
check() { # description, then a command
	what=$1; shift
	if "$@" >/dev/null 2>&1; then ok; else bad "$what"; fi
}
tmp=$(mktemp -d)
srv_pid=""
trap 'if [ -n "$srv_pid" ]; then kill "$srv_pid" 2>/dev/null || true; fi; rm -rf "$tmp"' EXIT

# --- 1. the parser of verify-clean.sh covers the Dockerfile --------------
if bash deploy/verify-clean.sh --print-steps >"$tmp/plan" 2>"$tmp/plan.err"; then ok
else bad "verify-clean.sh --print-steps: $(cat "$tmp/plan.err")"; fi

mkdir -p "$tmp/repo/deploy"
cp deploy/verify-clean.sh "$tmp/repo/deploy/"
printf 'FROM debian:bookworm AS build\nADD https://example.org/x /x\n' >"$tmp/repo/Dockerfile"
if bash "$tmp/repo/deploy/verify-clean.sh" --print-steps >/dev/null 2>"$tmp/err"; then
	bad "verify-clean.sh accepted an ADD instruction it cannot perform"
else
	check "the refusal names the instruction" grep -q "'ADD'" "$tmp/err"
fi
printf 'FROM ubuntu:24.04 AS build\nRUN true\n' >"$tmp/repo/Dockerfile"
if bash "$tmp/repo/deploy/verify-clean.sh" --print-steps >/dev/null 2>&1; then
	bad "verify-clean.sh accepted a non-Debian-12 base image"
else ok; fi

# --- 2. the stages agree with the README's commands -----------------------
# Split the plan into its stages: the first builds, the last runs.
awk '/^STAGE/ { n++ } { print > (dir "/stage" n) }' dir="$tmp" "$tmp/plan"
nstages=$(grep -c '^STAGE' "$tmp/plan" || true)
check "two stages" test "$nstages" -eq 2
b=$tmp/stage1
r=$tmp/stage2
check "build stage FROM debian:bookworm" grep -q '^STAGE [a-z]* debian:bookworm$' "$b"
check "runtime stage FROM debian:bookworm-slim" grep -q '^STAGE [a-z]* debian:bookworm-slim$' "$r"
check "build stage installs deploy/packages-build.txt with install-deps.sh" \
	grep -q '^  RUN sh deploy/install-deps.sh .*deploy/packages-build.txt' "$b"
check "build stage installs deploy/packages-model.txt (as run.sh does)" \
	grep -q '^  RUN sh deploy/install-deps.sh .*deploy/packages-model.txt' "$b"
check "run.sh installs the same lists" grep -q 'install-deps.sh deploy/packages-build.txt deploy/packages-model.txt' deploy/run.sh
check "build stage builds with deploy/build.sh build (as test.sh/run.sh do)" grep -q '^  RUN sh deploy/build.sh build$' "$b"
check "test.sh builds the same way" grep -q '^sh deploy/build.sh build$' deploy/test.sh
check "run.sh builds the same way" grep -q '^sh deploy/build.sh build$' deploy/run.sh
check "build stage runs the test suite" grep -q '^  RUN meson test -C build ' "$b"
check "test.sh runs the same suite" grep -q '^meson test -C build ' deploy/test.sh
check "build stage trains the default model with deploy/default-model.sh" \
	grep -q '^  RUN sh deploy/default-model.sh build/embedsrv$' "$b"
check "run.sh prepares the model the same way" grep -q '^sh deploy/default-model.sh build/embedsrv$' deploy/run.sh
check "runtime stage installs deploy/packages-runtime.txt" grep -q '^  RUN sh .*install-deps.sh .*packages-runtime.txt' "$r"
if grep -q 'packages-build.txt\|packages-model.txt\|meson\|gcc' "$r"; then bad "runtime stage mentions build packages"; else ok; fi
check "runtime copies only from the build stage's staging dir" grep -q '^  COPY --from=[a-z]* /out/ /$' "$r"
user=$(sed -n 's/^  USER //p' "$r")
uid=${user%%:*}
case $uid in ''|*[!0-9]*) bad "USER must be numeric (Kubernetes runAsNonRoot), got '$user'" ;;
0) bad "USER is root" ;; *) ok ;; esac
check "VOLUME /data" grep -q '^  VOLUME /data$' "$r"
check "ENV EMBEDSRV_DATA_DIR=/data" grep -q '^  ENV EMBEDSRV_DATA_DIR=/data$' "$r"
check "ENV EMBEDSRV_HOST=0.0.0.0" grep -q '^  ENV EMBEDSRV_HOST=0.0.0.0$' "$r"
check "ENV EMBEDSRV_PORT=8080" grep -q '^  ENV EMBEDSRV_PORT=8080$' "$r"
check "EXPOSE 8080" grep -q '^  EXPOSE 8080$' "$r"
check "ENV EMBEDSRV_MODEL names the copied model" grep -q '^  ENV EMBEDSRV_MODEL=/usr/local/share/embedsrv/default.esm$' "$r"
check "build stage stages that model" grep -q 'models/default.esm /out/usr/local/share/embedsrv/default.esm' "$b"
check "HEALTHCHECK uses embedsrv healthcheck" grep -q '^  HEALTHCHECK embedsrv healthcheck' "$r"
check "ENTRYPOINT embedsrv" grep -q '^  ENTRYPOINT embedsrv$' "$r"
check "CMD serve" grep -q '^  CMD serve$' "$r"
check "healthcheck is a command of the binary" sh -c "'$bin' help | grep -q '^  healthcheck '"
check ".dockerignore keeps build trees and models out of the context" \
	sh -c "grep -qx 'build' .dockerignore && grep -qx 'models' .dockerignore"

# --- 3. compose and Kubernetes agree with the image -----------------------
check "compose mounts a named volume at /data" grep -q 'embedsrv-data:/data' deploy/docker-compose.yml
check "compose maps container port 8080" grep -q ':8080"' deploy/docker-compose.yml
check "compose passes EMBEDSRV_API_KEY" grep -q 'EMBEDSRV_API_KEY' deploy/docker-compose.yml
check "k8s readiness on /readyz" grep -q 'path: /readyz' deploy/k8s/statefulset.yaml
check "k8s liveness on /healthz" grep -q 'path: /healthz' deploy/k8s/statefulset.yaml
check "k8s mounts its volume at /data" grep -q 'mountPath: /data' deploy/k8s/statefulset.yaml
check "k8s runs as the image's uid" grep -q "runAsUser: $uid\$" deploy/k8s/statefulset.yaml
check "k8s Service on 8080" grep -q 'port: 8080' deploy/k8s/service.yaml

# --- 4. healthcheck against the real server --------------------------------
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
EMBEDSRV_API_KEY=hc-key EMBEDSRV_PORT=$port EMBEDSRV_HOST=127.0.0.1 \
	"$bin" serve --model tests/data/lee-10d.vec --quiet --threads 2 2>"$tmp/serve.log" &
srv_pid=$!
up=0
for _ in $(seq 1 300); do
	if EMBEDSRV_PORT=$port "$bin" healthcheck --quiet --timeout 1 2>/dev/null; then up=1; break; fi
	kill -0 "$srv_pid" 2>/dev/null || break
	sleep 0.1
done
if [ $up = 1 ]; then
	ok
	check "healthcheck --path /readyz" env EMBEDSRV_PORT="$port" "$bin" healthcheck --path /readyz --quiet
	check "healthcheck with the wildcard host of the image" env EMBEDSRV_HOST=0.0.0.0 EMBEDSRV_PORT="$port" "$bin" healthcheck --quiet
	check "healthcheck reports what it saw" sh -c "EMBEDSRV_PORT=$port '$bin' healthcheck | grep -q 'answered 200'"
	if EMBEDSRV_PORT=$port "$bin" healthcheck --path /v1/collections --quiet 2>/dev/null; then
		bad "a 401 (API key route without the key) counted as healthy"
	else ok; fi
	kill -TERM "$srv_pid"
	st=0
	wait "$srv_pid" || st=$?
	srv_pid=""
	check "SIGTERM ends serve with status 0 (got $st)" test "$st" -eq 0
	if EMBEDSRV_PORT=$port "$bin" healthcheck --quiet --timeout 1 2>/dev/null; then
		bad "healthcheck exits 0 with the server stopped"
	else ok; fi
else
	bad "embedsrv serve did not come up: $(tail -n 5 "$tmp/serve.log")"
fi

echo "deploy: $passes passed, $fails failed"
[ "$fails" -eq 0 ]
