#!/bin/sh
# bench/model/run.sh MODEL... — the default model's quality table (issue 18),
# one row per model, every number from the same binary in the same run:
#
#   analogy   Google analogies, `embedsrv eval analogy` (gensim semantics)
#   WordSim   WordSim-353 Spearman, `embedsrv eval pairs`
#   STS       STS Benchmark dev Spearman x100, `embedsrv eval sts`
#   spelling  share of top-10 neighbours of the 1,000 most frequent words of
#             4+ letters that begin with the query's first 4 letters
#             (bench/model/spelling.c; lower = neighbours by meaning), for
#             `embedsrv neighbors WORD` (by meaning: shared n-grams left out
#             of the score) and for the plain cosine (--score cosine)
#   king      top answer of king - man + woman (3CosAdd), with its cosine
#
# Dev sets from ../shared/eval (ES_SHARED overrides).  EMBEDSRV and
# SPELLING name the binaries (default build/embedsrv, build/bench/bench_spelling).
set -eu
cd "$(dirname "$0")/../.."
bin=${EMBEDSRV:-build/embedsrv}
spell=${SPELLING:-build/bench/bench_spelling}
ev=${ES_SHARED:-../shared}/eval
[ $# -gt 0 ] || { echo "usage: bench/model/run.sh MODEL..." >&2; exit 2; }
echo "| model | analogy | WordSim-353 | STS dev x100 | spelling neighbours | spelling, plain cosine | king - man + woman |"
echo "|---|---|---|---|---|---|---|"
for m in "$@"; do
	a=$("$bin" eval analogy --model "$m" "$ev/questions-words.txt" | sed -n 's/^Total accuracy: \([0-9.]*\).*/\1/p')
	w=$("$bin" eval pairs --model "$m" "$ev/wordsim353.tsv" | sed -n 's/^Spearman rank-order correlation coefficient: //p')
	s=$("$bin" eval sts --model "$m" "$ev/sts-dev.csv" | sed -n 's/^Spearman x100: //p')
	p=$("$spell" "$m" | awk '{print $3}')
	pc=$("$spell" "$m" cosine | awk '{print $3}')
	k=$("$bin" analogy --model "$m" --positive king woman --negative man --k 1 | awk '{printf "%s %.3f", $1, $2}')
	printf '| %s | %.2f %% | %s | %s | %s %% | %s %% | %s |\n' "$(basename "$m")" \
		"$(awk "BEGIN {print 100 * $a}")" "$w" "$s" "$p" "$pc" "$k"
done
