#!/bin/sh
# bench/train/run.sh [CORPUS] — embedsrv's trainer against Debian's fastText
# on the same corpus, with the same dim / epochs / window / negatives /
# min-count / n-gram lengths and thread count, in the same run.
#
# Reports per trainer: wall time and CPU time (user + sys, from GNU time),
# words/s/thread as each tool reports it (fastText's last progress line,
# ours from its summary: wall-clock based, so they sink when the machine is
# shared) and words per CPU-second (corpus words x epochs / CPU seconds,
# the same numerator for both: robust to sharing), analogy accuracy
# on ../shared/eval/questions-words.txt and WordSim-353 Spearman (both with
# `embedsrv eval`, gensim semantics, on our .esm and on fastText's .vec), and
# a few classic analogies (`embedsrv analogy`, 3CosAdd, query words excluded).
#
# CORPUS defaults to the default model's training text (models/corpus.txt,
# built by deploy/make-corpus.py).  Environment: EMBEDSRV (binary, default
# build/embedsrv), THREADS (default 2),
# REPEAT (training runs per trainer, alternating, default 1; the table
# quotes the median time), BUCKET (ours, default 500000 as the default
# model; fastText keeps its default 2,000,000), OURS_FLAGS (more flags for
# ours only, e.g. --no-center for raw vectors), EVAL_ONLY=1
# (re-evaluate the models of the last run without training).
# embedsrv train post-processes its vectors (mean removed, top principal
# direction projected out; core/train.h); fastText does not, so fastText's
# vectors are also evaluated after the same map (bench/train/abtt.py).
# Needs: sh deploy/install-deps.sh bench/packages.txt deploy/packages-model.txt
set -eu
cd "$(dirname "$0")/../.."
bin=${EMBEDSRV:-build/embedsrv}
shared=${ES_SHARED:-../shared}
qw=$shared/eval/questions-words.txt
ws=$shared/eval/wordsim353.tsv
out=bench/out/train
corpus=${1:-models/corpus.txt}
threads=${THREADS:-2}
repeat=${REPEAT:-1}
bucket=${BUCKET:-500000}
mkdir -p "$out"
command -v fasttext >/dev/null || { echo "fasttext missing: sh deploy/install-deps.sh bench/packages.txt" >&2; exit 1; }
[ -x "$bin" ] || sh deploy/build.sh build >/dev/null
if [ ! -f "$corpus" ]; then
	mkdir -p "$(dirname "$corpus")"
	python3 deploy/make-corpus.py "$corpus"
fi

DIM=100 EPOCH=5 WS=5 NEG=5 MINC=5 MINN=3 MAXN=6
words=$(wc -w <"$corpus")
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

if [ "${EVAL_ONLY:-0}" != 1 ]; then
: >"$out/ours.times"
: >"$out/ft.times"
: >"$out/ours.cpu"
: >"$out/ft.cpu"
: >"$out/ours.wps"
: >"$out/ft.wps"
i=0
while [ $i -lt "$repeat" ]; do
	nice -n 10 /usr/bin/time -f '%e %U %S' -o "$out/time" "$bin" train --input "$corpus" --output "$out/ours.esm" \
		--dim $DIM --epochs $EPOCH --window $WS --neg $NEG --min-count $MINC \
		--minn $MINN --maxn $MAXN --bucket "$bucket" --threads "$threads" ${OURS_FLAGS:-} \
		2>"$out/ours.log"
	awk '{print $1}' "$out/time" >>"$out/ours.times"
	awk '{print $2 + $3}' "$out/time" >>"$out/ours.cpu"
	sed -n 's/.* \([0-9]*\) words\/s\/thread, loss.*/\1/p' "$out/ours.log" >>"$out/ours.wps"

	nice -n 10 /usr/bin/time -f '%e %U %S' -o "$out/time" fasttext skipgram -input "$corpus" -output "$out/ft" \
		-dim $DIM -epoch $EPOCH -ws $WS -neg $NEG -minCount $MINC \
		-minn $MINN -maxn $MAXN -thread "$threads" >"$out/ft.log" 2>&1
	awk '{print $1}' "$out/time" >>"$out/ft.times"
	awk '{print $2 + $3}' "$out/time" >>"$out/ft.cpu"
	tr '\r' '\n' <"$out/ft.log" | sed -n 's/.*words\/sec\/thread: *\([0-9]*\).*/\1/p' | tail -1 >>"$out/ft.wps"
	rm -f "$out/ft.bin"
	i=$((i + 1))
done
fi

eval_model() { # name model
	name=$1 model=$2
	"$bin" eval analogy --model "$model" "$qw" >"$out/$name.analogy"
	"$bin" eval pairs --model "$model" "$ws" >"$out/$name.pairs"
	: >"$out/$name.classic"
	for q in "king woman man" "paris germany france" "brother sister boy" \
		"walked swimming walking" "better bad good" "mice dog mouse"; do
		set -- $q
		a=$("$bin" analogy --model "$model" --positive "$1" "$2" --negative "$3" --k 1 2>/dev/null | awk '{print $1}')
		echo "$1 - $3 + $2 = ${a:-?}" >>"$out/$name.classic"
	done
}
eval_model ours "$out/ours.esm"
eval_model ft "$out/ft.vec"
/usr/bin/python3 bench/train/abtt.py "$out/ft.vec" "$out/ft-post.vec" 1
eval_model ft-post "$out/ft-post.vec"

acc() { sed -n 's/^Total accuracy: \([0-9.]*\) (\(.*\))/\1 (\2)/p' "$out/$1.analogy"; }
sp() { sed -n 's/^Spearman rank-order correlation coefficient: //p' "$out/$1.pairs"; }
row() { # label name
	cpu=$(median <"$out/$2.cpu")
	printf '| %s | %.1f | %.1f | %s | %.0f | %s | %s |' "$1" "$(median <"$out/$2.times")" \
		"$cpu" "$(median <"$out/$2.wps")" "$(awk "BEGIN {print $words * $EPOCH / $cpu}")" \
		"$(acc "$2")" "$(sp "$2")"
	printf ' %s |\n' "$(paste -sd';' "$out/$2.classic" | sed 's/;/; /g')"
}
{
	echo "corpus: $corpus ($words words, $(wc -l <"$corpus") lines); threads $threads; runs $repeat; $(nproc) CPUs"
	echo "shared: dim $DIM, epochs $EPOCH, window $WS, neg $NEG, min-count $MINC, n-grams $MINN..$MAXN; ours bucket $bucket, fastText bucket 2000000"
	echo
	echo "| trainer | wall s | CPU s | words/s/thread (own report) | words/CPU-s | analogy accuracy (correct/total) | WordSim-353 Spearman | classic analogies (top answer) |"
	echo "|---|---|---|---|---|---|---|---|"
	row "embedsrv train" ours
	row "fastText 0.9.2 skipgram" ft
	echo
	echo "fastText's vectors after embedsrv's post-processing (bench/train/abtt.py; not part of fastText):"
	echo "analogy $(acc ft-post), WordSim-353 Spearman $(sp ft-post); $(paste -sd';' "$out/ft-post.classic" | sed 's/;/; /g')"
} | tee "$out/table.md"
