#!/bin/bash
# verify-clean.sh — prove the Docker image recipe and the README's two
# commands on a clean Debian 12, without Docker.
#
#   deploy/verify-clean.sh [--phase all|docker|readme] [--repo DIR] [--rev REV]
#                          [--cache DIR] [--keep]
#   deploy/verify-clean.sh --print-steps     (parse the Dockerfile only; no root)
#
# What it does (as root; needs debootstrap, unshare, chroot, git, python3):
#  1. A pristine Debian 12 root made by `debootstrap --variant=minbase
#     bookworm` from the mirror this machine's apt uses, cached in --cache
#     (default /var/cache/embedsrv-verify; delete it to start over).
#  2. The build context is a fresh `git clone` of --repo at --rev (default:
#     this repository, HEAD), with .dockerignore applied: only committed work
#     is verified.
#  3. phase "docker": the Dockerfile is READ and its instructions performed,
#     stage by stage, each stage in its own fresh copy of the pristine root
#     (chroot): RUN as `/bin/sh -c` in WORKDIR with the stage's ENV and USER,
#     COPY from the context or from an earlier stage.  A *-slim image gets
#     the slim images' dpkg path excludes.  Nothing is re-typed here, so the
#     Dockerfile and this script cannot drift apart; an instruction this
#     script does not understand is an error.  Then the last stage is "run"
#     like `docker run -e EMBEDSRV_HOST=127.0.0.1 -e EMBEDSRV_PORT=<free>
#     -e EMBEDSRV_API_KEY=...`: ENTRYPOINT+CMD as the image's USER, and the
#     checks listed at the end are made against it over real HTTP.
#  4. phase "readme": another fresh root gets the clone at /root/embedsrv and
#     runs the README's commands exactly as written: `sh deploy/test.sh`,
#     then `sh deploy/run.sh` in the background; it is probed, then stopped.
#
# Mounts (/proc, /sys read-only, /dev, /dev/pts, /dev/shm, a shared apt
# download cache) live in a private mount namespace (unshare), are undone by
# a trap, and vanish with the namespace even if the script is killed; the
# work roots are removed with --one-file-system after checking that nothing
# is mounted below them.  Heavy steps run under `nice -n 10`.
#
# Output: one "PASS:"/"FAIL:" line per check, timings per phase, a summary
# (also written to CACHE/last-run.txt).  Exit 0 only when every check passed.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
rev=HEAD
phase=all
cache=${EMBEDSRV_VERIFY_CACHE:-/var/cache/embedsrv-verify}
keep=0
print_only=0
API_KEY=verify-clean-key
STOP_GRACE=10          # seconds, like `docker stop`'s default
README_SERVE_WAIT=2400 # seconds for run.sh to build, train and listen

usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
	case $1 in
	--phase) phase=$2; shift 2 ;;
	--repo) repo=$(cd "$2" && pwd); shift 2 ;;
	--rev) rev=$2; shift 2 ;;
	--cache) cache=$2; shift 2 ;;
	--keep) keep=1; shift ;;
	--print-steps) print_only=1; shift ;;
	-h|--help) usage; exit 0 ;;
	*) echo "verify-clean: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
	esac
done
case $phase in all|docker|readme) ;; *) echo "verify-clean: --phase all|docker|readme" >&2; exit 2 ;; esac

# ---------------------------------------------------------------------------
# Dockerfile parsing: one instruction per record, "INSTR<TAB>arguments",
# continuation lines joined, comments dropped (also inside continuations, as
# Docker does).
parse_dockerfile() {
	awk '
	function flush() { if (cur != "") { print cur }; cur = "" }
	/^[ \t]*#/ { next }
	/^[ \t]*$/ { if (!cont) next }
	{
		line = $0
		sub(/^[ \t]+/, "", line)
		c = (line ~ /\\[ \t]*$/)
		if (c) sub(/[ \t]*\\[ \t]*$/, "", line)
		if (cont) cur = cur " " line
		else {
			split(line, w, /[ \t]+/)
			instr = toupper(w[1])
			rest = substr(line, length(w[1]) + 1)
			sub(/^[ \t]+/, "", rest)
			cur = instr "\t" rest
		}
		cont = c
		if (!cont) flush()
	}
	END { flush() }' "$1"
}

# Parse a JSON exec-form array of plain strings into the array named $2.
# Strings with quotes or backslashes are refused (not needed here).
exec_form() {
	local s=$1 name=$2
	s=${s#"${s%%[![:space:]]*}"}
	s=${s%"${s##*[![:space:]]}"}
	case $s in \[*\]) ;; *) echo "verify-clean: expected an exec-form JSON array, got: $1" >&2; return 1 ;; esac
	s=${s#[}
	s=${s%]}
	case $s in *\\*) echo "verify-clean: backslashes in exec form are not supported: $1" >&2; return 1 ;; esac
	local -a out=()
	local rest=$s item
	while :; do
		rest=${rest#"${rest%%[![:space:]]*}"}
		[ -z "$rest" ] && break
		case $rest in \"*) ;; *) echo "verify-clean: bad exec form: $1" >&2; return 1 ;; esac
		rest=${rest#\"}
		item=${rest%%\"*}
		[ "$item" = "$rest" ] && { echo "verify-clean: unterminated string in: $1" >&2; return 1; }
		out+=("$item")
		rest=${rest#*\"}
		rest=${rest#"${rest%%[![:space:]]*}"}
		case $rest in ,*) rest=${rest#,} ;; "") ;; *) echo "verify-clean: bad exec form: $1" >&2; return 1 ;; esac
	done
	eval "$name=(\"\${out[@]}\")"
}

# Validate every instruction and print the plan (used by --print-steps and
# by tests/integration/test_deploy.sh); fails on anything not understood.
plan_dockerfile() {
	local df=$1 instr args stage="" n=0 arr
	while IFS=$'\t' read -r instr args; do
		n=$((n + 1))
		case $instr in
		FROM)
			case $args in
			"debian:bookworm AS "*|"debian:bookworm-slim AS "*|"debian:bookworm as "*|"debian:bookworm-slim as "*)
				stage=${args##* }; echo "STAGE $stage ${args%% *}" ;;
			*) echo "verify-clean: Dockerfile line $n: FROM must be 'debian:bookworm[-slim] AS name' (got '$args')" >&2; return 1 ;;
			esac ;;
		ENV)
			local kv
			for kv in $args; do
				case $kv in
				*=*) case $kv in *\$*|*\"*|*\'*) echo "verify-clean: ENV '$kv': only literal values are supported" >&2; return 1 ;; esac
				     echo "  ENV $kv" ;;
				*) echo "verify-clean: ENV needs key=value (got '$kv')" >&2; return 1 ;;
				esac
			done ;;
		WORKDIR|USER|STOPSIGNAL|EXPOSE|VOLUME|LABEL) echo "  $instr $args" ;;
		RUN)
			case $args in --*|\[*) echo "verify-clean: RUN must be shell form without flags (got '$args')" >&2; return 1 ;; esac
			echo "  RUN $args" ;;
		COPY)
			case $args in --from=*|[!-]*) ;; *) echo "verify-clean: COPY flag not supported: '$args'" >&2; return 1 ;; esac
			echo "  COPY $args" ;;
		ENTRYPOINT|CMD)
			exec_form "$args" arr || return 1
			echo "  $instr ${arr[*]}" ;;
		HEALTHCHECK)
			case $args in *CMD\ \[*) ;; *) echo "verify-clean: HEALTHCHECK must be '[options] CMD [exec form]'" >&2; return 1 ;; esac
			exec_form "${args#*CMD }" arr || return 1
			echo "  HEALTHCHECK ${arr[*]}" ;;
		*) echo "verify-clean: Dockerfile instruction '$instr' is not understood by deploy/verify-clean.sh; teach it here first" >&2; return 1 ;;
		esac
	done < <(parse_dockerfile "$df")
	[ -n "$stage" ] || { echo "verify-clean: no FROM in $df" >&2; return 1; }
}

if [ $print_only = 1 ]; then
	plan_dockerfile "$repo/Dockerfile"
	exit
fi

# ---------------------------------------------------------------------------
[ "$(id -u)" = 0 ] || { echo "verify-clean: must run as root (debootstrap, chroot, mounts)" >&2; exit 2; }
for t in debootstrap unshare chroot git python3 setsid; do
	command -v "$t" >/dev/null || { echo "verify-clean: needs '$t' (apt-get install debootstrap util-linux git python3)" >&2; exit 2; }
done
# Everything below runs in a private mount namespace: no mount can leak to
# the host, and all of them disappear when the script ends, however it ends.
if [ -z "${ES_VERIFY_IN_NS:-}" ]; then
	keep_arg=()
	[ $keep = 1 ] && keep_arg=(--keep)
	ES_VERIFY_IN_NS=1 exec unshare --mount --propagation private bash "$0" \
		--phase "$phase" --repo "$repo" --rev "$rev" --cache "$cache" "${keep_arg[@]}"
fi

t_start=$(date +%s)
work=$cache/work
logs=$cache/logs
base=$cache/bookworm-minbase
apt_cache=$cache/apt-archives
mkdir -p "$cache" "$apt_cache/partial"
results=()
npass=0
nfail=0
mounts=()
pgids=()

log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
pass() { results+=("PASS: $*"); npass=$((npass + 1)); log "PASS: $*"; }
fail() { results+=("FAIL: $*"); nfail=$((nfail + 1)); log "FAIL: $*"; }

# Mirror: the one this machine's apt uses (deb822 URIs: or a deb line).
find_mirror() {
	local m
	m=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | sed -n 's/^URIs:[[:space:]]*\(http[^[:space:]]*\/debian\/\{0,1\}\)[[:space:]]*$/\1/p' | head -n 1)
	[ -n "$m" ] || m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | sed -n 's/^deb[[:space:]]\{1,\}\(\[[^]]*\][[:space:]]*\)\{0,1\}\(http[^[:space:]]*\/debian\/\{0,1\}\)[[:space:]].*bookworm.*/\2/p' | head -n 1)
	echo "${m:-http://deb.debian.org/debian}"
}
MIRROR=${MIRROR:-$(find_mirror)}
SECURITY_MIRROR=${SECURITY_MIRROR:-${MIRROR%/}-security}

mounted_below() { awk -v p="$1/" '$5 ~ "^"p || $5"/" == p { found = 1 } END { exit !found }' /proc/self/mountinfo; }

safe_rm() {
	local d=$1
	[ -e "$d" ] || return 0
	if mounted_below "$d"; then
		echo "verify-clean: refusing to remove $d: something is still mounted below it" >&2
		return 1
	fi
	rm -rf --one-file-system "$d"
}

cleanup() {
	local rc=$?
	local g i
	for g in "${pgids[@]}"; do
		kill -TERM -- "-$g" 2>/dev/null || true
	done
	[ ${#pgids[@]} -gt 0 ] && sleep 2
	for g in "${pgids[@]}"; do
		kill -KILL -- "-$g" 2>/dev/null || true
	done
	for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
		umount "${mounts[i]}" 2>/dev/null || umount -l "${mounts[i]}" 2>/dev/null || true
	done
	mounts=()
	if [ $keep = 0 ]; then safe_rm "$work" || true; fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

do_mount() { # mount args... target (last)
	mount "$@"
	mounts+=("${!#}")
}

umount_root() {
	local root=$1 i
	for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
		case ${mounts[i]} in
		"$root"/*) umount "${mounts[i]}" 2>/dev/null || umount -l "${mounts[i]}"; unset 'mounts[i]' ;;
		esac
	done
	mounts=("${mounts[@]}")
}

# The pristine root, made once.
ensure_base() {
	if [ -f "$base/.embedsrv-complete" ]; then
		log "pristine Debian 12 root: cached at $base"
		return
	fi
	log "debootstrap --variant=minbase bookworm from $MIRROR (once; a few minutes)"
	safe_rm "$base.tmp"
	nice -n 10 debootstrap --variant=minbase bookworm "$base.tmp" "$MIRROR" >"$logs/debootstrap.log" 2>&1 ||
		{ tail -n 30 "$logs/debootstrap.log" >&2; echo "verify-clean: debootstrap failed (log: $logs/debootstrap.log)" >&2; exit 1; }
	touch "$base.tmp/.embedsrv-complete"
	mv "$base.tmp" "$base"
}

# A fresh root for one stage / machine: copy of the pristine one, apt sources
# like Debian's Docker images (bookworm, -updates, -security), mounts.
new_root() { # name image
	local root=$work/$1 image=$2
	safe_rm "$root"
	cp -a "$base" "$root"
	rm -f "$root/.embedsrv-complete" "$root/etc/apt/sources.list"
	cat >"$root/etc/apt/sources.list.d/debian.sources" <<-EOF
	Types: deb
	URIs: $MIRROR
	Suites: bookworm bookworm-updates
	Components: main
	Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

	Types: deb
	URIs: $SECURITY_MIRROR
	Suites: bookworm-security
	Components: main
	Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
	EOF
	# This machine's apt accepts Release files past Valid-Until (its mirror
	# may serve a dated snapshot); the clean root must reach the same mirror.
	if grep -rqs 'Check-Valid-Until "false"' /etc/apt/apt.conf.d/; then
		echo 'Acquire::Check-Valid-Until "false";' >"$root/etc/apt/apt.conf.d/99verify-clean-mirror"
	fi
	case $image in
	*-slim)	# what Debian's slim images leave out (docker-debian-artifacts)
		mkdir -p "$root/etc/dpkg/dpkg.cfg.d"
		cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<-'EOF'
		path-exclude /usr/share/doc/*
		path-include /usr/share/doc/*/copyright
		path-exclude /usr/share/groff/*
		path-exclude /usr/share/info/*
		path-exclude /usr/share/linda/*
		path-exclude /usr/share/lintian/overrides/*
		path-exclude /usr/share/locale/*
		path-exclude /usr/share/man/*
		EOF
		;;
	esac
	cp /etc/resolv.conf "$root/etc/resolv.conf"
	do_mount -t proc proc "$root/proc"
	do_mount -t sysfs -o ro sysfs "$root/sys"
	do_mount --bind /dev "$root/dev"
	do_mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$root/dev/pts"
	do_mount -t tmpfs -o mode=1777 tmpfs "$root/dev/shm"
	do_mount --bind "$apt_cache" "$root/var/cache/apt/archives"
}

# Run a shell command in a root: in_root ROOT USER(uid:gid) WORKDIR CMD [K=V...]
in_root() {
	local root=$1 user=$2 wd=$3 cmd=$4
	shift 4
	local home=/root
	if [ "$user" != 0:0 ]; then
		home=$(chroot "$root" getent passwd "${user%%:*}" | cut -d: -f6 || true)
		home=${home:-/}
	fi
	env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		HOME="$home" HOSTNAME=verify-clean "$@" \
		nice -n 10 chroot --userspec="$user" "$root" /bin/sh -c 'cd "$1" && exec /bin/sh -c "$2"' sh "$wd" "$cmd"
}

# Resolve a Dockerfile USER value to uid:gid inside a root.
resolve_user() {
	local root=$1 spec=$2 u g
	u=${spec%%:*}
	g=${spec#*:}
	[ "$g" = "$spec" ] && g=""
	case $u in *[!0-9]*) u=$(chroot "$root" id -u "$u") ;; esac
	if [ -z "$g" ]; then g=$(chroot "$root" id -g "$u"); fi
	case $g in *[!0-9]*) g=$(chroot "$root" getent group "$g" | cut -d: -f3) ;; esac
	echo "$u:$g"
}

# Docker COPY semantics for one source: a directory's contents go into dst;
# a file goes to dst, or into it when dst ends with '/'.
copy_into() { # src root dst workdir
	local src=$1 root=$2 dst=$3 wd=$4
	case $dst in /*) ;; *) dst=$wd/$dst ;; esac
	if [ -d "$src" ]; then
		mkdir -p "$root$dst"
		cp -a "$src/." "$root$dst/"
	elif [ -e "$src" ]; then
		case $dst in
		*/) mkdir -p "$root$dst"; cp -a "$src" "$root$dst" ;;
		*) mkdir -p "$(dirname "$root$dst")"; cp -a "$src" "$root$dst" ;;
		esac
	else
		echo "verify-clean: COPY source '$src' does not exist" >&2
		return 1
	fi
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port_free() { python3 -c 'import socket,sys; s=socket.socket(); s.bind(("127.0.0.1",int(sys.argv[1])))' "$1" 2>/dev/null; }

# HTTP checks against a running server (standard library only).
# probe PORT KEY MODE   MODE: fresh (create, upsert, search) | again (after restart)
probe() {
	python3 - "$@" <<-'EOF'
	import http.client, json, math, sys, time
	port, key, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
	ok = True
	def say(good, what):
	    global ok
	    print(("PASS: " if good else "FAIL: ") + what)
	    ok = ok and good
	def req(method, path, body=None, auth=True):
	    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
	    h = {"Content-Type": "application/json"} if body is not None else {}
	    if auth and key:
	        h["Authorization"] = "Bearer " + key
	    c.request(method, path, None if body is None else json.dumps(body), h)
	    r = c.getresponse()
	    data = r.read()
	    try:
	        js = json.loads(data) if data else None
	    except ValueError:
	        js = None
	    return r.status, js
	st, _ = req("GET", "/healthz", auth=False)
	say(st == 200, "GET /healthz -> %d (no API key needed)" % st)
	deadline = time.time() + 120
	while True:
	    st, _ = req("GET", "/readyz", auth=False)
	    if st == 200 or time.time() > deadline:
	        break
	    time.sleep(0.5)
	say(st == 200, "GET /readyz -> %d" % st)
	texts = ["the cat sat on the mat", "stock markets fell sharply today"]
	if key:
	    st, _ = req("POST", "/v1/embeddings", {"input": texts}, auth=False)
	    say(st == 401, "POST /v1/embeddings without the API key -> %d (want 401)" % st)
	st, js = req("POST", "/v1/embeddings", {"input": texts})
	good = st == 200 and js and len(js.get("data", [])) == 2
	dim = 0
	if good:
	    vecs = [d["embedding"] for d in js["data"]]
	    dim = len(vecs[0])
	    norms = [math.sqrt(sum(x * x for x in v)) for v in vecs]
	    good = dim > 0 and len(vecs[1]) == dim and all(abs(n - 1) < 1e-3 for n in norms) and vecs[0] != vecs[1]
	say(good, "POST /v1/embeddings -> %d, 2 unit vectors of dim %d (model %s)" % (st, dim, js.get("model") if js else None))
	C = "/v1/collections/verify_clean"
	docs = {1: "a small cat sleeps on the warm mat by the fire",
	        2: "the stock market fell as share prices dropped",
	        3: "heavy rain and strong wind are expected tonight"}
	if mode == "fresh":
	    st, js = req("PUT", C, {"metric": "cosine"})
	    say(st == 201, "PUT %s (create) -> %d" % (C, st))
	    st, js = req("PUT", C + "/points", {"points": [{"id": i, "text": t, "payload": {"n": i}} for i, t in docs.items()]})
	    say(st == 200 and js and js["result"]["upserted"] == 3, "PUT %s/points (3 texts) -> %d %s" % (C, st, js))
	st, js = req("GET", C)
	count = js["result"].get("count") if st == 200 and js else None
	say(st == 200 and count == 3, "GET %s -> %d, count %s%s" % (C, st, count, " (after restart: /data kept it)" if mode == "again" else ""))
	st, js = req("POST", C + "/search", {"text": docs[2], "k": 3})
	hits = js["result"] if st == 200 and js else []
	say(st == 200 and len(hits) == 3 and hits[0]["id"] == 2 and hits[0]["score"] > 0.99 and hits[0].get("payload") == {"n": 2},
	    "POST %s/search by a stored text -> %d, top hit %s" % (C, st, hits[0] if hits else None))
	st, js = req("POST", C + "/search", {"text": "kitten sleeping on a mat", "k": 1})
	hits = js["result"] if st == 200 and js else []
	print("INFO: search 'kitten sleeping on a mat' -> %s (want id 1)" % (hits[0] if hits else None))
	sys.exit(0 if ok else 1)
	EOF
}

# Record probe output lines as checks.
run_probe() { # label port key mode
	local label=$1 out line
	shift
	out=$(probe "$@" 2>&1) || true
	while IFS= read -r line; do
		case $line in
		PASS:*) pass "$label: ${line#PASS: }" ;;
		FAIL:*) fail "$label: ${line#FAIL: }" ;;
		*) [ -n "$line" ] && log "$label: $line" ;;
		esac
	done <<<"$out"
}

wait_healthz() { # port seconds pid
	local port=$1 until=$(($(date +%s) + $2)) pid=$3
	while [ "$(date +%s)" -lt "$until" ]; do
		kill -0 "$pid" 2>/dev/null || return 1
		if python3 -c 'import http.client,sys; c=http.client.HTTPConnection("127.0.0.1",int(sys.argv[1]),timeout=2); c.request("GET","/healthz"); sys.exit(c.getresponse().status!=200)' "$port" 2>/dev/null; then
			return 0
		fi
		sleep 1
	done
	return 1
}

# Stop like `docker stop`: the stop signal, then wait up to STOP_GRACE s.
stop_server() { # pid signal label
	local pid=$1 sig=$2 label=$3 i rc g
	kill "-$sig" "$pid" 2>/dev/null || true
	for ((i = 0; i < STOP_GRACE * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		fail "$label: still running ${STOP_GRACE}s after $sig (docker would SIGKILL it)"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rc=0
	wait "$pid" || rc=$?
	local -a left=()
	for g in "${pgids[@]}"; do [ "$g" = "$pid" ] || left+=("$g"); done
	pgids=("${left[@]}")
	if [ $rc = 0 ]; then pass "$label: $sig -> clean stop, exit status 0"; else fail "$label: exit status $rc after $sig"; fi
}

# ---------------------------------------------------------------------------
mkdir -p "$logs"
safe_rm "$work"
mkdir -p "$work"
ensure_base
log "mirror $MIRROR, security $SECURITY_MIRROR"

ctx=$work/context
commit=$(git -C "$repo" rev-parse --verify "$rev^{commit}")
git clone -q --no-hardlinks "$repo" "$ctx"
git -C "$ctx" checkout -q "$commit"
git -C "$ctx" remote remove origin
log "context: $repo at $(git -C "$ctx" log -1 --format='%h %s')"
if [ -n "$(git -C "$repo" status --porcelain --untracked-files=no 2>/dev/null)" ] && [ "$rev" = HEAD ]; then
	log "note: $repo has uncommitted changes; they are NOT part of this verification"
fi

# ---------------------------------------------------------------------------
docker_phase() {
	local t0 stage="" image root wd user n=0 instr args kv
	local -A stage_root=()
	local -a envs=() entry=() cmdv=() hc=()
	t0=$(date +%s)
	local df=$ctx/Dockerfile
	[ -f "$df" ] || { fail "docker: no Dockerfile in the context"; return; }
	if ! plan_dockerfile "$df" >"$logs/docker-plan.txt"; then
		fail "docker: Dockerfile uses something verify-clean.sh does not understand"
		return
	fi
	pass "docker: Dockerfile parsed ($(grep -c '^STAGE' "$logs/docker-plan.txt") stages, every instruction understood)"
	# Docker's context minus .dockerignore.
	local dctx=$work/docker-context
	cp -a "$ctx" "$dctx"
	if [ -f "$dctx/.dockerignore" ]; then
		(cd "$dctx" && shopt -s globstar dotglob nullglob &&
			sed -e 's/#.*//' -e 's/[[:space:]]*$//' .dockerignore | while IFS= read -r pat; do
				[ -n "$pat" ] || continue
				case $pat in !*) echo "verify-clean: .dockerignore exceptions (!) not supported" >&2; exit 1 ;; esac
				# shellcheck disable=SC2086
				rm -rf -- $pat
			done)
	fi
	while IFS=$'\t' read -r instr args; do
		n=$((n + 1))
		case $instr in
		FROM)
			if [ -n "$stage" ]; then
				pass "docker: stage '$stage' ($image) built in a clean root"
				umount_root "$root"
			fi
			image=${args%% *}
			stage=${args##* }
			root=$work/stage-$stage
			stage_root[$stage]=$root
			wd=/ user=0:0 envs=() entry=() cmdv=() hc=()
			log "docker: stage '$stage' FROM $image -> fresh root $root"
			new_root "stage-$stage" "$image"
			;;
		ENV) for kv in $args; do envs+=("$kv"); done ;;
		WORKDIR) case $args in /*) wd=$args ;; *) wd=$wd/$args ;; esac
			mkdir -p "$root$wd" ;;
		USER) user=$(resolve_user "$root" "$args") ;;
		VOLUME) mkdir -p "$root$args" ;;
		EXPOSE|STOPSIGNAL|LABEL) ;;
		ENTRYPOINT) exec_form "$args" entry ;;
		CMD) exec_form "$args" cmdv ;;
		HEALTHCHECK) exec_form "${args#*CMD }" hc ;;
		COPY)
			local -a parts=()
			read -r -a parts <<<"$args"
			local from="" src_base=$dctx dst
			case ${parts[0]} in --from=*)
				from=${parts[0]#--from=}; parts=("${parts[@]:1}")
				[ -n "${stage_root[$from]:-}" ] || { fail "docker: COPY --from=$from: no such stage"; return; }
				src_base=${stage_root[$from]} ;;
			esac
			dst=${parts[${#parts[@]}-1]}
			local i
			for ((i = 0; i < ${#parts[@]} - 1; i++)); do
				if ! copy_into "$src_base/${parts[i]#/}" "$root" "$dst" "$wd"; then
					fail "docker: stage $stage: COPY $args"; return
				fi
			done
			log "docker: stage $stage: COPY $args"
			;;
		RUN)
			local s l rc
			s=$(date +%s)
			l=$logs/docker-$stage-step$n.log
			log "docker: stage $stage: RUN $args"
			rc=0
			in_root "$root" "$user" "$wd" "$args" "${envs[@]}" >"$l" 2>&1 || rc=$?
			if [ $rc != 0 ]; then
				tail -n 40 "$l" | sed 's/^/    /'
				fail "docker: stage $stage: RUN $args (exit $rc after $(($(date +%s) - s))s; log $l)"
				return
			fi
			pass "docker: stage $stage: RUN $args ($(($(date +%s) - s))s)"
			;;
		esac
	done < <(parse_dockerfile "$df")
	pass "docker: stage '$stage' ($image) built in a clean root"
	log "docker: image stages done in $(($(date +%s) - t0))s"
	docker_run_phase
}

# The runtime stage, "docker run": the last stage's root, ENTRYPOINT, CMD,
# HEALTHCHECK, ENV, USER and WORKDIR as docker_phase left them (bash locals
# are dynamically scoped, so this runs in docker_phase's variables).
docker_run_phase() {
	local b
	if chroot "$root" dpkg-query -W -f='${Package}\n' gcc curl wget meson libc6-dev 2>/dev/null | grep -q .; then
		fail "docker: runtime root has build tools or curl: $(chroot "$root" dpkg-query -W -f='${Package} ' gcc curl wget meson libc6-dev 2>/dev/null)"
	else
		pass "docker: runtime root has no compiler, meson, curl or wget"
	fi
	b=$(chroot "$root" /bin/sh -c "command -v ${entry[0]:-${cmdv[0]}}" || true)
	if [ -n "$b" ] && ! chroot "$root" ldd "$b" | grep -q 'not found'; then
		pass "docker: $b resolves all its libraries from deploy/packages-runtime.txt ($(du -h "$root$b" | cut -f1))"
	else
		fail "docker: entrypoint binary missing or with missing libraries: $(chroot "$root" ldd "$b" 2>&1 | grep 'not found' | tr '\n' ' ')"
	fi
	local port pid uid
	port=$(free_port)
	local -a run_env=("${envs[@]}" EMBEDSRV_HOST=127.0.0.1 EMBEDSRV_PORT="$port" EMBEDSRV_API_KEY="$API_KEY")
	local argv_str
	argv_str=$(printf '"%s" ' "${entry[@]}" "${cmdv[@]}")
	for run in 1 2; do
		log "docker: run $run: ${entry[*]} ${cmdv[*]} as $user in $wd (EMBEDSRV_HOST=127.0.0.1 EMBEDSRV_PORT=$port EMBEDSRV_API_KEY=...)"
		setsid env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/data "${run_env[@]}" \
			chroot --userspec="$user" "$root" /bin/sh -c "cd '$wd' && exec $argv_str" \
			>"$logs/docker-run$run.log" 2>&1 &
		pid=$!
		pgids+=("$pid")
		if ! wait_healthz "$port" 300 "$pid"; then
			tail -n 30 "$logs/docker-run$run.log" | sed 's/^/    /'
			fail "docker: run $run: server did not answer /healthz within 300s (log $logs/docker-run$run.log)"
			kill -KILL "$pid" 2>/dev/null || true
			return
		fi
		uid=$(awk '/^Uid:/ { print $2 }' "/proc/$pid/status")
		if [ "$uid" = "${user%%:*}" ] && [ "$uid" != 0 ]; then pass "docker: run $run: server runs as uid $uid (not root)"; else fail "docker: run $run: server runs as uid $uid"; fi
		local hcs
		hcs=$(printf '"%s" ' "${hc[@]}")
		if in_root "$root" "$user" "$wd" "exec $hcs" "${run_env[@]}" >"$logs/docker-healthcheck.log" 2>&1; then
			pass "docker: run $run: HEALTHCHECK '${hc[*]}' exits 0"
		else
			fail "docker: run $run: HEALTHCHECK '${hc[*]}' failed: $(cat "$logs/docker-healthcheck.log")"
		fi
		run_probe "docker: run $run" "$port" "$API_KEY" "$([ $run = 1 ] && echo fresh || echo again)"
		stop_server "$pid" TERM "docker: run $run"
		if in_root "$root" "$user" "$wd" "exec $hcs" "${run_env[@]}" >/dev/null 2>&1; then
			fail "docker: HEALTHCHECK still exits 0 with the server stopped"
		else
			[ $run = 1 ] && pass "docker: HEALTHCHECK exits non-zero once the server is stopped"
		fi
	done
	umount_root "$root"
	log "docker: phase done in $(($(date +%s) - t0))s"
	T_DOCKER=$(($(date +%s) - t0))
}

# ---------------------------------------------------------------------------
readme_phase() {
	local t0 root rc s port pid
	t0=$(date +%s)
	root=$work/readme
	log "readme: fresh Debian 12 root, clone at /root/embedsrv"
	new_root readme debian:bookworm
	cp -a "$ctx" "$root/root/embedsrv"
	s=$(date +%s)
	log "readme: cd /root/embedsrv && sh deploy/test.sh"
	rc=0
	in_root "$root" 0:0 /root/embedsrv "sh deploy/test.sh" >"$logs/readme-test.log" 2>&1 || rc=$?
	if [ $rc = 0 ]; then
		pass "readme: 'sh deploy/test.sh' on a fresh Debian 12 root ($(($(date +%s) - s))s; $(grep -E '^Ok:' "$logs/readme-test.log" | tr -s ' '))"
	else
		tail -n 40 "$logs/readme-test.log" | sed 's/^/    /'
		fail "readme: 'sh deploy/test.sh' exit $rc (log $logs/readme-test.log)"
	fi
	port=8080
	local -a penv=()
	if ! port_free 8080; then
		port=$(free_port)
		penv=(EMBEDSRV_PORT="$port")
		log "readme: 127.0.0.1:8080 is taken on this shared machine; running with EMBEDSRV_PORT=$port"
	fi
	s=$(date +%s)
	log "readme: cd /root/embedsrv && sh deploy/run.sh  (background)"
	setsid env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "${penv[@]}" \
		nice -n 10 chroot "$root" /bin/sh -c 'cd /root/embedsrv && exec sh deploy/run.sh' \
		>"$logs/readme-run.log" 2>&1 &
	pid=$!
	pgids+=("$pid")
	if wait_healthz "$port" "$README_SERVE_WAIT" "$pid"; then
		pass "readme: 'sh deploy/run.sh' serves on 127.0.0.1:$port after $(($(date +%s) - s))s"
		run_probe "readme: run.sh" "$port" "" fresh
		stop_server "$pid" TERM "readme: run.sh"
	else
		tail -n 30 "$logs/readme-run.log" | sed 's/^/    /'
		fail "readme: 'sh deploy/run.sh' did not answer /healthz on port $port within ${README_SERVE_WAIT}s (log $logs/readme-run.log)"
		kill -TERM -- "-$pid" 2>/dev/null || true
	fi
	umount_root "$root"
	T_README=$(($(date +%s) - t0))
	log "readme: phase done in ${T_README}s"
}

T_DOCKER=- T_README=-
case $phase in all|docker) docker_phase ;; esac
case $phase in all|readme) readme_phase ;; esac

total=$(($(date +%s) - t_start))
{
	echo "verify-clean: $(date -u '+%Y-%m-%d %H:%M UTC'), $(git -C "$ctx" log -1 --format='%h %s')"
	echo "phase docker ${T_DOCKER}s, phase readme ${T_README}s, total ${total}s"
	printf '%s\n' "${results[@]}"
	echo "$npass passed, $nfail failed"
} | tee "$cache/last-run.txt"
[ $nfail = 0 ] && [ $npass -gt 0 ]
