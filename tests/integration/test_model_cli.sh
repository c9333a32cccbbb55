#!/bin/sh
# test_model_cli.sh — the model commands end to end: vectors (against the
# recorded `fasttext print-word-vectors` output), convert to .esm/.vec and
# back, encode, neighbors, analogy, eval, and the exit codes of bad input.
set -eu
bin=${ES_BINARY:?ES_BINARY not set}
src=${ES_SOURCE_ROOT:?ES_SOURCE_ROOT not set}
data="$src/tests/data"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { pass=$((pass + 1)); }

# max |a - b| over two print-word-vectors outputs with the same words
maxdiff() {
	paste -d '\n' "$1" "$2" | awk '
		NR % 2 == 1 { n = split($0, a, " "); w = a[1]; next }
		{ m = split($0, b, " "); if (b[1] != w || m != n) { print "mismatch " w; exit }
		  for (i = 2; i <= n; i++) { d = a[i] - b[i]; if (d < 0) d = -d; if (d > mx) mx = d } }
		END { printf "%.8f\n", mx }'
}

# vectors: same words as the reference, in the same order
for m in fasttext-toy fasttext-crime-and-punishment; do
	cut -d' ' -f1 "$data/$m.words.ref" > "$tmp/words"
	"$bin" vectors --model "$data/$m.bin" < "$tmp/words" > "$tmp/ours" 2>/dev/null
	d=$(maxdiff "$tmp/ours" "$data/$m.words.ref")
	awk -v d="$d" 'BEGIN { exit !(d + 0 <= 1e-5) }' || fail "vectors $m: max diff $d"
	ok
done
"$bin" vectors --model "$data/fasttext-toy.bin" the of > "$tmp/two"
[ "$(wc -l < "$tmp/two")" -eq 2 ] || fail "vectors with words on the command line"
ok

# convert: .bin -> .esm -> .vec, same vectors as the .bin; OOV survives .esm
"$bin" convert --input "$data/fasttext-crime-and-punishment.bin" -o "$tmp/m.esm" 2>/dev/null || fail "convert to esm"
"$bin" convert --input "$tmp/m.esm" --format esm -o "$tmp/m.vec" --no-common 2>/dev/null || fail "convert esm to vec"
head -1 "$tmp/m.vec" | grep -q '^[0-9]* 5$' || fail "vec header"
cut -d' ' -f1 "$data/fasttext-crime-and-punishment.words.ref" > "$tmp/words"
"$bin" vectors --model "$tmp/m.esm" < "$tmp/words" > "$tmp/ours" 2>/dev/null
d=$(maxdiff "$tmp/ours" "$data/fasttext-crime-and-punishment.words.ref")
awk -v d="$d" 'BEGIN { exit !(d + 0 <= 1e-5) }' || fail ".esm vectors differ from fastText by $d"
ok
for f in word2vec-binary-2747x10.bin word2vec-text-1750x10.txt fasttext-lee.vec; do
	"$bin" convert --input "$data/$f" -o "$tmp/x.esm" 2>/dev/null || fail "convert $f"
	a=$("$bin" vectors --model "$data/$f" the)
	b=$("$bin" vectors --model "$tmp/x.esm" the)
	[ "$a" = "$b" ] || fail "convert $f changed the vector of 'the'"
	ok
done

# encode: one unit vector per line, zeros for a line with nothing known
printf 'the old woman\n\nzzzz qqqq\nRaskolnikov went out\n' > "$tmp/in"
"$bin" encode --model "$tmp/m.esm" < "$tmp/in" > "$tmp/enc"
[ "$(wc -l < "$tmp/enc")" -eq 4 ] || fail "encode: line count"
awk '{ s = 0; for (i = 1; i <= NF; i++) s += $i * $i; if (NF != 5) exit 1;
       if (NR == 2) { if (s != 0) exit 1 } else if (s < 0.9999 || s > 1.0001) exit 1 }' "$tmp/enc" || fail "encode: norms"
grep -qi nan "$tmp/enc" && fail "encode: NaN"
"$bin" encode --model "$data/word2vec-text-1750x10.txt" --threads 1 < "$tmp/in" > "$tmp/enc1"
"$bin" encode --model "$data/word2vec-text-1750x10.txt" --threads 3 < "$tmp/in" > "$tmp/enc3"
cmp -s "$tmp/enc1" "$tmp/enc3" || fail "encode: thread count changed the output"
ok

# neighbors / analogy: `word score`, best first, query words excluded
"$bin" neighbors --model "$data/word2vec-text-1750x10.txt" the --k 5 > "$tmp/nb"
[ "$(wc -l < "$tmp/nb")" -eq 5 ] || fail "neighbors: count"
grep -q '^the ' "$tmp/nb" && fail "neighbors: query word returned"
sort -k2,2gr "$tmp/nb" | cmp -s - "$tmp/nb" || fail "neighbors: not sorted"
"$bin" neighbors --model "$data/fasttext-crime-and-punishment.bin" --text "the old woman" --k 3 > "$tmp/nb"
[ "$(wc -l < "$tmp/nb")" -eq 3 ] || fail "neighbors --text"
# one word of a subword model: by meaning (shared n-grams left out), or --score cosine
"$bin" neighbors --model "$data/fasttext-crime-and-punishment.bin" woman --k 5 > "$tmp/nb"
"$bin" neighbors --model "$data/fasttext-crime-and-punishment.bin" woman --k 5 --score cosine > "$tmp/nbc"
[ "$(wc -l < "$tmp/nb")" -eq 5 ] && [ "$(wc -l < "$tmp/nbc")" -eq 5 ] || fail "neighbors --score: count"
sort -k2,2gr "$tmp/nb" | cmp -s - "$tmp/nb" || fail "neighbors by meaning: not sorted"
cmp -s "$tmp/nb" "$tmp/nbc" && fail "neighbors: --score cosine gave the same list as by meaning"
for meth in 3cosadd 3cosmul; do
	"$bin" analogy --model "$data/fasttext-lee.vec" --positive he she --negative his --k 4 --method $meth > "$tmp/an"
	[ "$(wc -l < "$tmp/an")" -eq 4 ] || fail "analogy $meth: count"
	grep -Eq '^(he|she|his) ' "$tmp/an" && fail "analogy $meth: query word returned"
done
ok

# eval
"$bin" eval analogy --model "$data/fasttext-lee.vec" "$data/questions-words.txt" > "$tmp/ev"
grep -q '^Total accuracy: 0.0306 (3/98)$' "$tmp/ev" || fail "eval analogy total: $(grep Total "$tmp/ev")"
"$bin" eval pairs --model "$data/word2vec-binary-2747x10.bin" "$data/wordsim353.tsv" > "$tmp/ev"
grep -q '^Spearman rank-order correlation coefficient: 0.2736$' "$tmp/ev" || fail "eval pairs spearman"
grep -q '^Pairs with unknown words: 244 ' "$tmp/ev" || fail "eval pairs oov"
ok

# eval sts: a static model and a BERT folder, same file
printf 'g\tf\t2012\t1\t5.0\tthe man walked home\tthe man went home\n' > "$tmp/sts.tsv"
printf 'g\tf\t2012\t2\t0.5\ther mother cried\tthe axe was heavy\textra\tfields\n' >> "$tmp/sts.tsv"
printf 'g\tf\t2012\t3\t3.0\the said nothing\the did not speak\n' >> "$tmp/sts.tsv"
for m in "$data/fasttext-crime-and-punishment.bin" "$data/bert-tiny/st-mean"; do
	"$bin" eval sts --model "$m" "$tmp/sts.tsv" > "$tmp/ev" || fail "eval sts $m"
	grep -q '^Spearman x100: -\{0,1\}[0-9]*\.[0-9][0-9]$' "$tmp/ev" || fail "eval sts $m: $(cat "$tmp/ev")"
	grep -q '^Pairs evaluated: 3$' "$tmp/ev" || fail "eval sts $m: pairs"
	ok
done
printf 'g\tf\t2012\t1\t5.0\tthe man\tthe man\ng\tf\t2012\t2\tfive\ta\tb\n' > "$tmp/bad.tsv"
set +e
msg=$("$bin" eval sts --model "$data/fasttext-toy.vec" "$tmp/bad.tsv" 2>&1 >/dev/null); rc=$?
set -e
[ $rc -eq 1 ] || fail "eval sts bad file: exit $rc"
echo "$msg" | grep -q "bad.tsv:2: score 'five' is not a number" || fail "eval sts bad file: $msg"
ok
# options sts does not use are refused (exit 2, naming the option), not ignored
set +e
for o in "--restrict 10:analogy and pairs" "--method 3cosmul:analogy" "--case-sensitive:analogy and pairs"; do
	arg=${o%%:*}
	# shellcheck disable=SC2086
	msg=$("$bin" eval sts --model "$data/fasttext-toy.vec" $arg "$tmp/sts.tsv" 2>&1 >/dev/null); rc=$?
	[ $rc -eq 2 ] || fail "eval sts $arg: exit $rc"
	echo "$msg" | grep -q -- "${arg%% *} applies to ${o#*:}, not sts" || fail "eval sts $arg: $msg"
done
msg=$("$bin" eval pairs --model "$data/fasttext-toy.vec" --method 3cosmul "$data/wordsim353.tsv" 2>&1 >/dev/null); rc=$?
[ $rc -eq 2 ] || fail "eval pairs --method: exit $rc"
echo "$msg" | grep -q -- "--method applies to analogy, not pairs" || fail "eval pairs --method: $msg"
set -e
ok

# retrofit: a lexicon applied to a subword model; OOV vectors unchanged
printf '# tiny\nsyn man he him\nrel landlady young\nant was had\n' > "$tmp/lex.txt"
"$bin" retrofit --model "$data/fasttext-crime-and-punishment.bin" --lexicon "$tmp/lex.txt" -o "$tmp/r.esm" 2>"$tmp/log" || fail "retrofit: $(cat "$tmp/log")"
grep -q 'words moved' "$tmp/log" || fail "retrofit summary"
"$bin" vectors --model "$data/fasttext-crime-and-punishment.bin" qqzzyx > "$tmp/a"
"$bin" vectors --model "$tmp/r.esm" qqzzyx > "$tmp/b"
cmp -s "$tmp/a" "$tmp/b" || fail "retrofit changed an unseen word's vector"
"$bin" vectors --model "$tmp/r.esm" man > "$tmp/b"
"$bin" vectors --model "$data/fasttext-crime-and-punishment.bin" man > "$tmp/a"
cmp -s "$tmp/a" "$tmp/b" && fail "retrofit did not move a word of the lexicon"
ok
printf 'syn man woman\nsyn man\n' > "$tmp/badlex.txt"
set +e
msg=$("$bin" retrofit --model "$data/fasttext-toy.vec" --lexicon "$tmp/badlex.txt" -o "$tmp/nothing.esm" 2>&1); rc=$?
[ $rc -eq 1 ] || fail "retrofit bad lexicon: exit $rc"
echo "$msg" | grep -q "badlex.txt:2: 'syn' needs at least two words" || fail "retrofit bad lexicon: $msg"
[ ! -e "$tmp/nothing.esm" ] || fail "retrofit wrote a model from a bad lexicon"
"$bin" retrofit --model "$data/fasttext-toy.vec" -o "$tmp/nothing.esm" >/dev/null 2>&1; [ $? -eq 2 ] || fail "retrofit without --lexicon: not 2"
"$bin" retrofit --model "$data/fasttext-toy.vec" --lexicon "$tmp/lex.txt" --gamma-ant 0.9 -o "$tmp/nothing.esm" >/dev/null 2>&1; [ $? -eq 2 ] || fail "retrofit bad gamma: not 2"
set -e
ok

# errors: usage -> 2, runtime -> 1, with a message naming the file
set +e
"$bin" vectors the >/dev/null 2>&1; [ $? -eq 2 ] || fail "vectors without --model: not 2"
"$bin" analogy --model "$data/fasttext-toy.vec" --method nope --positive a >/dev/null 2>&1; [ $? -eq 2 ] || fail "bad method: not 2"
"$bin" convert --input "$data/fasttext-toy.vec" -o "$tmp/x.txt" >/dev/null 2>&1; [ $? -eq 2 ] || fail "bad extension: not 2"
head -c 1000 "$data/fasttext-toy.bin" > "$tmp/trunc.bin"
msg=$("$bin" vectors --model "$tmp/trunc.bin" the 2>&1 >/dev/null); rc=$?
[ $rc -eq 1 ] || fail "truncated model: exit $rc"
echo "$msg" | grep -q "trunc.bin" || fail "truncated model: message lacks the file: $msg"
msg=$("$bin" neighbors --model "$data/fasttext-toy.vec" the --score spelling 2>&1 >/dev/null); rc=$?
[ $rc -eq 2 ] || fail "neighbors --score spelling: exit $rc"
echo "$msg" | grep -q "meaning or cosine" || fail "neighbors --score spelling: message: $msg"
msg=$("$bin" neighbors --model "$data/fasttext-toy.vec" qqqqzzzz 2>&1 >/dev/null); rc=$?
[ $rc -eq 1 ] || fail "unknown word: exit $rc"
echo "$msg" | grep -q qqqqzzzz || fail "unknown word: message"
"$bin" eval pairs --model "$data/fasttext-toy.vec" /no/such.tsv >/dev/null 2>&1; [ $? -eq 1 ] || fail "eval missing file: not 1"
msg=$("$bin" convert --input "$data/fasttext-toy.vec" -o "$tmp/s.esm" --sample /no/such.txt 2>&1 >/dev/null); rc=$?
[ $rc -eq 1 ] || fail "convert, missing --sample: exit $rc"
echo "$msg" | grep -q "/no/such.txt" || fail "convert, missing --sample: message lacks the file: $msg"
set -e
# --sample: the common component from the first lines of a text file
head -n 20 "$data/lee_background.cor" > "$tmp/sample.txt"
"$bin" convert --input "$data/fasttext-toy.vec" -o "$tmp/s.esm" --sample "$tmp/sample.txt" --sample-lines 5 2>/dev/null || fail "convert --sample"
[ -s "$tmp/s.esm" ] || fail "convert --sample wrote nothing"
ok
ok
echo "model_cli: $pass passed, 0 failed"
