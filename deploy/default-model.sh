#!/bin/sh
# default-model.sh [EMBEDSRV] — prepare models/default.esm, the model
# `embedsrv serve` uses when no --model is given.
#
#  1. deploy/make-corpus.py builds models/corpus.txt from the English text of
#     Debian packages (deploy/packages-model.txt: GCIDE dictionary, WordNet
#     glosses), deterministically;
#  2. `embedsrv train` learns the model from it (settings below, chosen by
#     measurement: see README "Default model" and bench/RESULTS.md);
#  3. deploy/make-lexicon.py builds models/lexicon.txt from WordNet and the
#     mythes thesaurus, and `embedsrv retrofit` applies it (RETROFIT below).
#
# Cached: when models/default.esm exists and models/default.stamp matches
# the inputs (sources, corpus script, trainer/format code, settings) it does
# nothing.  Anything else rebuilds, through temporary files and renames, so
# an interrupted run never leaves a half model behind.  Used by deploy/run.sh
# on first start and by the Docker build.  EMBEDSRV defaults to
# build/embedsrv.  EMBEDSRV_TRAIN_THREADS overrides the thread count (1:
# reproducible), EMBEDSRV_SIMD the kernel path (avx2 where the CPU has it).
set -eu
cd "$(dirname "$0")/.."
bin=${1:-build/embedsrv}
out=models/default.esm
stamp=models/default.stamp
corpus=models/corpus.txt
lexicon=models/lexicon.txt
raw=models/default-raw.esm

# Settings (README "Default model" says why): skip-gram, fastText's n-grams
# 3..6 in 500,000 buckets, 5 epochs, seed 1 (with one thread on the AVX2
# path it answers king - man + woman = queen; seeds 2-4 do not: README).
# Corpus sources beyond GCIDE and WordNet (deploy/make-corpus.py), kept
# because the dev sets said so (README "Default model").
EXTRA_SOURCES="fortunes jargon devil"
SETTINGS="--mode skipgram --dim 100 --epochs 5 --window 5 --neg 5 --min-count 5 --minn 3 --maxn 6 --bucket 500000 --lr 0.05 --sample 1e-4 --drop-pcs 1 --seed 1"
# Lexicon-informed post-processing (core/retrofit.h; weights measured on the
# dev sets: antonyms off, they push king from queen and man from woman).
RETROFIT="--iterations 10 --alpha 1 --beta-syn 0.5 --beta-rel 0.5 --gamma-ant 0 --ngram-weight 1"
# One thread and one SIMD path, so the model is the same file on every
# machine that builds it (Hogwild threads, or another kernel's rounding,
# would give a different model each time; the king - man + woman answer
# among them).  EMBEDSRV_TRAIN_THREADS=N trades that for speed.
threads=${EMBEDSRV_TRAIN_THREADS:-1}
if [ -z "${EMBEDSRV_SIMD:-}" ] && grep -qw avx2 /proc/cpuinfo 2>/dev/null && grep -qw fma /proc/cpuinfo; then
	EMBEDSRV_SIMD=avx2
	export EMBEDSRV_SIMD
fi

[ -x "$bin" ] || { echo "default-model: $bin not built (run sh deploy/build.sh)" >&2; exit 1; }
mkdir -p models

sources="/usr/share/dictd/gcide.dict.dz /usr/share/wordnet/data.noun /usr/share/wordnet/data.verb /usr/share/wordnet/data.adj /usr/share/wordnet/data.adv /usr/share/mythes/th_en_US_v2.dat"
for e in $EXTRA_SOURCES; do
	case $e in
	fortunes) sources="$sources $(ls /usr/share/games/fortunes/* 2>/dev/null | tr '\n' ' ')" ;;
	*) sources="$sources /usr/share/dictd/$e.dict.dz" ;;
	esac
done
want=$( {
	echo "settings $SETTINGS threads $threads simd ${EMBEDSRV_SIMD:-auto} extra $EXTRA_SOURCES retrofit $RETROFIT"
	for f in $sources; do
		[ -f "$f" ] && echo "source $f $(wc -c <"$f")"
	done
	cat deploy/make-corpus.py deploy/make-lexicon.py core/train.c core/train.h core/tokenize.c \
		core/model_io.c core/model.c core/encode.c core/lexicon.c core/retrofit.c 2>/dev/null | sha256sum
} | sha256sum | cut -d' ' -f1)

if [ -f "$out" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
	echo "default-model: $out is up to date" >&2
	exit 0
fi

echo "default-model: building the training text from Debian's GCIDE, WordNet${EXTRA_SOURCES:+ and $EXTRA_SOURCES}..." >&2
# shellcheck disable=SC2086
python3 deploy/make-corpus.py "$corpus" $EXTRA_SOURCES
python3 deploy/make-lexicon.py "$lexicon"
echo "default-model: training $out ($(wc -w <"$corpus") words, $threads thread(s); about 3 minutes on one core)..." >&2
rm -f "$stamp"
# shellcheck disable=SC2086
"$bin" train --input "$corpus" --output "$raw" --threads "$threads" $SETTINGS
# shellcheck disable=SC2086
"$bin" retrofit --model "$raw" --lexicon "$lexicon" -o "$out" $RETROFIT
rm -f "$raw"
echo "$want" >"$stamp.tmp" && mv "$stamp.tmp" "$stamp"
# the classic check, as a quality signal in the log (README: expect queen)
ans=$("$bin" analogy --model "$out" --positive king woman --negative man --k 1 2>/dev/null | awk '{print $1}') || ans=""
echo "default-model: ready: $out (king - man + woman = ${ans:-?})" >&2
