#!/bin/sh
# test_train_cli.sh — `embedsrv train` end to end: .esm and .vec output,
# byte-identical output for one thread and one seed, clear errors with exit
# codes for bad input/flags/output, and Ctrl-C leaving no model file behind.
set -eu
bin=${ES_BINARY:?ES_BINARY not set}
root=${ES_SOURCE_ROOT:?ES_SOURCE_ROOT not set}
lee="$root/tests/data/lee_background.cor"
d=$(mktemp -d /tmp/es_train_cli.XXXXXX)
trap 'rm -rf "$d"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
pass=0
ok() { pass=$((pass + 1)); }

train() { "$bin" train --bucket 20000 --dim 32 --epochs 2 "$@"; }

# .esm with progress lines on a non-terminal stderr
train --input "$lee" --output "$d/m.esm" 2>"$d/log" || fail "train .esm: $(cat "$d/log")"
[ -s "$d/m.esm" ] || fail "no .esm written"
grep -q 'words/s/thread' "$d/log" || fail "no progress on stderr"
grep -q '100.0%' "$d/log" || fail "progress never reached 100%"
grep -q 'wrote .*m.esm' "$d/log" || fail "no summary line"
head -c 8 "$d/m.esm" | grep -q 'EMBSRVM' || fail ".esm magic missing"
ok

# --quiet: nothing on stderr
train --quiet --input "$lee" --output "$d/q.esm" 2>"$d/log" || fail "quiet train"
[ ! -s "$d/log" ] || fail "--quiet still printed: $(cat "$d/log")"
ok

# .vec export: "count dim" header then one word per line
train --quiet --no-subwords --input "$lee" --output "$d/m.vec" || fail "train .vec"
set -- $(head -1 "$d/m.vec")
[ "$2" = 32 ] || fail ".vec header '$*'"
[ "$(($(wc -l <"$d/m.vec") - 1))" = "$1" ] || fail ".vec line count"
ok

# post-processing is on by default and recorded; --no-center keeps raw
# vectors (a different file from the same seed)
train --quiet --threads 1 --seed 5 --no-center --input "$lee" --output "$d/raw.esm"
strings "$d/raw.esm" | grep -q 'train.drop_pcs' || fail "no train.drop_pcs metadata"
# determinism: one thread, one seed -> identical bytes; another seed differs
train --quiet --threads 1 --seed 5 --input "$lee" --output "$d/a.esm"
train --quiet --threads 1 --seed 5 --input "$lee" --output "$d/b.esm"
train --quiet --threads 1 --seed 6 --input "$lee" --output "$d/c.esm"
cmp -s "$d/a.esm" "$d/b.esm" || fail "same seed, one thread: files differ"
if cmp -s "$d/a.esm" "$d/c.esm"; then fail "seed ignored"; fi
if cmp -s "$d/a.esm" "$d/raw.esm"; then fail "--no-center ignored"; fi
ok

# expect CODE PATTERN cmd...: exit code and a message on stderr
expect() {
	code=$1 pat=$2
	shift 2
	set +e
	"$@" 2>"$d/err" >/dev/null
	rc=$?
	set -e
	[ "$rc" = "$code" ] || fail "$* exited $rc, want $code: $(cat "$d/err")"
	grep -qi -- "$pat" "$d/err" || fail "$*: message lacks '$pat': $(cat "$d/err")"
	ok
}
: >"$d/empty.txt"
head -c 3000 /dev/urandom >"$d/junk.bin"
printf 'caf\303 au lait\377\n' >"$d/bad-utf8.txt"
expect 1 'empty' "$bin" train --input "$d/empty.txt" --output "$d/x.esm"
expect 1 'junk.bin' "$bin" train --input "$d/junk.bin" --output "$d/x.esm"
expect 1 'UTF-8' "$bin" train --input "$d/bad-utf8.txt" --output "$d/x.esm"
expect 1 'no-such' "$bin" train --input "$d/no-such.txt" --output "$d/x.esm"
expect 1 'cannot write' "$bin" train --input "$lee" --output "$d/no-dir/x.esm"
mkdir "$d/dir.esm"
expect 1 'directory' "$bin" train --input "$lee" --output "$d/dir.esm"
expect 2 '.esm or .vec' "$bin" train --input "$lee" --output "$d/x.bin"
expect 2 'required' "$bin" train --input "$lee"
expect 2 '--dim' "$bin" train --input "$lee" --output "$d/x.esm" --dim 0
expect 2 '--epochs' "$bin" train --input "$lee" --output "$d/x.esm" --epochs many
expect 2 'unknown option' "$bin" train --input "$lee" --output "$d/x.esm" --bogus
expect 2 '--mode' "$bin" train --input "$lee" --output "$d/x.esm" --mode glove
expect 2 '--drop-pcs' "$bin" train --input "$lee" --output "$d/x.esm" --drop-pcs 17
expect 2 '--drop-pcs' "$bin" train --input "$lee" --output "$d/x.esm" --no-center --drop-pcs 1
[ ! -e "$d/x.esm" ] || fail "a failed run left x.esm"
"$bin" train --help | grep -q -- '--min-count' || fail "--help"
ok

# Cancel: exit 130, no model, no temporary file.  A background job of a
# non-interactive shell starts with SIGINT ignored, so this sends SIGTERM,
# which takes the same path as Ctrl-C's SIGINT in cmd_train.c.
"$bin" train --input "$lee" --output "$d/int.esm" --epochs 300 --no-subwords \
	--threads 2 2>"$d/intlog" &
pid=$!
i=0
while ! grep -q 'words/s/thread' "$d/intlog" 2>/dev/null && [ $i -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
kill -TERM $pid
set +e
wait $pid
rc=$?
set -e
[ "$rc" = 130 ] || fail "cancel: exit $rc, want 130: $(cat "$d/intlog")"
grep -q 'canceled' "$d/intlog" || fail "cancel: no 'canceled' message"
[ ! -e "$d/int.esm" ] || fail "cancel left int.esm"
ls "$d" | grep -q 'int\.esm' && fail "cancel left a temporary: $(ls "$d")"
ok

echo "train_cli: $pass passed, 0 failed"
