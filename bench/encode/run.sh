#!/bin/sh
# bench/encode/run.sh [REPEATS] — static-model encoding: embedsrv vs
# `fasttext print-sentence-vectors` on the same fastText .bin and the same
# 100,000 ten-word sentences, same run; plus the load time of a
# 1,000,000 x 300 .esm.
#   1. builds embedsrv (deploy/build.sh) and bench_encode against its core;
#   2. builds the corpus (deploy/make-corpus.py: GCIDE + WordNet) and trains
#      a 100-d skip-gram with fastText itself (1 epoch, bucket 200000) —
#      minutes, done once, kept in bench/data/;
#   3. sentences: the corpus' first 1,000,000 words, 10 per line;
#   4. run.py times every command REPEATS times and prints the table.
# Needs: sh deploy/install-deps.sh bench/packages.txt (fasttext),
# dict-gcide / wordnet-base for the corpus (see deploy/make-corpus.py).
set -eu
cd "$(dirname "$0")/../.."
reps=${1:-3}
out=bench/out
data=bench/data
mkdir -p "$out" "$data"
sh deploy/build.sh >/dev/null
cc -O2 -std=c11 -D_GNU_SOURCE -Icore -Ibuild/core $(pkg-config --cflags openblas) \
	bench/encode/bench_encode.c build/core/libes_core.a \
	$(pkg-config --libs openblas jansson libutf8proc) -lm -lpthread \
	-o "$out/bench_encode"
[ -f "$data/corpus.txt" ] || python3 deploy/make-corpus.py "$data/corpus.txt"
[ -f "$data/ft100.bin" ] || fasttext skipgram -input "$data/corpus.txt" \
	-output "$data/ft100" -dim 100 -epoch 1 -minCount 5 -bucket 200000 -verbose 1
[ -f "$data/sent10.txt" ] || tr -s ' \t' '\n\n' < "$data/corpus.txt" | grep -v '^$' |
	head -1000000 | paste -d' ' - - - - - - - - - - > "$data/sent10.txt"
build/embedsrv convert --input "$data/ft100.bin" -o "$data/ft100.esm" --sample "$data/corpus.txt" 2>/dev/null
python3 bench/encode/run.py "$reps"
