#!/usr/bin/env python3
"""make-lexicon.py — build the default model's lexicon (word relations for
`embedsrv retrofit`) from Debian packages, deterministically (same packages
-> same bytes).

Sources (each optional; a missing one is reported and skipped, but at least
one must be present):
  - WordNet 3.0 (wordnet-base: /usr/share/wordnet/data.{noun,verb,adj,adv}):
      wn-syn    synsets                          -> syn  (all words of a synset)
      wn-hyper  direct hypernyms (@, @i)         -> rel  (word -> hypernym's words)
      wn-sim    similar-to (&) of adjectives,
                verb groups ($)                  -> rel
      wn-ant    antonyms (!)                     -> ant
      wn-domain topic domains (;c, -c): a word and
                the words of its domain's synset -> rel  (chess -> king, bishop)
  - the OpenOffice/LibreOffice English thesaurus (mythes-en-us:
    /usr/share/mythes/th_en_US_v2.dat):
      my-syn    synonyms of one meaning          -> syn  (headword + synonyms)
      my-rel    "(similar term)", "(related term)",
                "(generic term)"                 -> rel
      my-ant    "(antonym)"                      -> ant

Only single words are kept (multi-word expressions such as "ice_cream" have
no vector of their own in a model whose tokens never contain spaces); words
are lowercased and must be one token of the server's tokenizer (letters and
digits, an apostrophe or hyphen between two of them), as in
deploy/make-corpus.py.  No evaluation file is read: relations come from the
two packages only.

Output format (README "Lexicon format", core/lexicon.h): one relation group
per line, `KIND WORD WORD...` separated by spaces; `syn` pulls every pair of
the line's words together, `rel` pulls the first word toward each of the
others (more weakly), `ant` pushes the first word away from each of the
others.  Lines are sorted and duplicates removed.

Usage: make-lexicon.py OUTPUT [PART...]   (default: every part above;
writes OUTPUT.tmp, then renames).  Standard library only.
"""
import os
import re
import sys

WORDNET = "/usr/share/wordnet"
MYTHES = "/usr/share/mythes/th_en_US_v2.dat"
PARTS = ("wn-syn", "wn-hyper", "wn-sim", "wn-ant", "wn-domain", "my-syn", "my-rel",
         "my-ant")
WORD = re.compile(r"[^\W_]+(?:['\u2019-][^\W_]+)*")


def norm(w):
    """Lowercased single token, or None."""
    w = w.strip().lower()
    if w and WORD.fullmatch(w):
        return w
    return None


class Rel:
    def __init__(self):
        self.syn = set()   # sorted tuples (cliques)
        self.rel = {}      # word -> set of words
        self.ant = {}

    def add_syn(self, words):
        ws = sorted(set(w for w in words if w))
        if len(ws) >= 2:
            self.syn.add(tuple(ws))

    def add_pair(self, table, a, b):
        if a and b and a != b:
            table.setdefault(a, set()).add(b)


def wordnet(parts, r):
    off_words = {}
    lines = []
    for pos in ("noun", "verb", "adj", "adv"):
        with open(os.path.join(WORDNET, "data." + pos), encoding="utf-8",
                  errors="replace") as f:
            for line in f:
                if line.startswith("  "):
                    continue  # license header
                left = line.partition(" | ")[0].split()
                cnt = int(left[3], 16)
                words = []
                for i in range(cnt):
                    w = re.sub(r"\([a-z]+\)$", "", left[4 + 2 * i])
                    words.append(norm(w) if "_" not in w else None)
                key = (left[2] if left[2] != "s" else "a", left[0])
                off_words[key] = words
                lines.append((key, words, left[4 + 2 * cnt:]))
    for key, words, rest in lines:
        if "wn-syn" in parts:
            r.add_syn(words)
        np = int(rest[0])
        for i in range(np):
            sym, off, pos, st = rest[1 + 4 * i: 5 + 4 * i]
            target = off_words.get((pos if pos != "s" else "a", off))
            if target is None:
                continue
            src, dst = int(st[:2], 16), int(st[2:], 16)
            if sym == "!" and "wn-ant" in parts:
                if src and dst and src <= len(words) and dst <= len(target):
                    r.add_pair(r.ant, words[src - 1], target[dst - 1])
                    r.add_pair(r.ant, target[dst - 1], words[src - 1])
                continue
            if sym in ("@", "@i") and "wn-hyper" in parts:
                pass
            elif sym in ("&", "$") and "wn-sim" in parts:
                pass
            elif sym in (";c", "-c") and "wn-domain" in parts:
                pass
            else:
                continue
            if src and dst:
                # a lexical pointer relates one word of each synset
                if src <= len(words) and dst <= len(target):
                    r.add_pair(r.rel, words[src - 1], target[dst - 1])
                continue
            for a in words:
                for b in target:
                    r.add_pair(r.rel, a, b)


def mythes(parts, r):
    with open(MYTHES, encoding="utf-8", errors="replace") as f:
        f.readline()  # encoding line
        while True:
            head = f.readline()
            if not head:
                break
            word, _, n = head.rstrip("\n").rpartition("|")
            h = norm(word)
            for _ in range(int(n)):
                fields = f.readline().rstrip("\n").split("|")[1:]
                syn = [h]
                for fld in fields:
                    m = re.fullmatch(r"(.*?) \((generic|similar|related) term\)", fld)
                    if m:
                        if "my-rel" in parts:
                            r.add_pair(r.rel, h, norm(m.group(1)))
                        continue
                    m = re.fullmatch(r"(.*?) \(antonym\)", fld)
                    if m:
                        if "my-ant" in parts:
                            a = norm(m.group(1))
                            r.add_pair(r.ant, h, a)
                            r.add_pair(r.ant, a, h)
                        continue
                    syn.append(norm(fld))
                if "my-syn" in parts:
                    r.add_syn(syn)


def main():
    if len(sys.argv) < 2:
        sys.stderr.write("usage: make-lexicon.py OUTPUT [PART...]  (parts: %s)\n"
                         % " ".join(PARTS))
        return 2
    dst = sys.argv[1]
    parts = set(sys.argv[2:]) or set(PARTS)
    bad = parts - set(PARTS)
    if bad:
        sys.stderr.write("make-lexicon: unknown part(s) %s (parts: %s)\n"
                         % (" ".join(sorted(bad)), " ".join(PARTS)))
        return 2
    r = Rel()
    have = 0
    if any(p.startswith("wn-") for p in parts):
        if os.path.exists(os.path.join(WORDNET, "data.noun")):
            wordnet(parts, r)
            have += 1
        else:
            sys.stderr.write("make-lexicon: %s missing (package wordnet-base), skipped\n" % WORDNET)
    if any(p.startswith("my-") for p in parts):
        if os.path.exists(MYTHES):
            mythes(parts, r)
            have += 1
        else:
            sys.stderr.write("make-lexicon: %s missing (package mythes-en-us), skipped\n" % MYTHES)
    if not have:
        sys.stderr.write("make-lexicon: no source found; install wordnet-base and mythes-en-us\n")
        return 1
    out = []
    for g in r.syn:
        out.append("syn " + " ".join(g))
    for kind, table in (("rel", r.rel), ("ant", r.ant)):
        for a, bs in table.items():
            # a word both related and opposite stays only opposite
            if kind == "rel":
                bs = bs - r.ant.get(a, set())
            if bs:
                out.append(kind + " " + a + " " + " ".join(sorted(bs)))
    out.sort()
    tmp = dst + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write("# embedsrv lexicon from %s (deploy/make-lexicon.py)\n"
                % ", ".join(sorted(parts)))
        for line in out:
            f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, dst)
    sys.stderr.write("make-lexicon: %d syn, %d rel, %d ant lines\n"
                     % (len(r.syn), sum(1 for l in out if l.startswith("rel ")),
                        sum(1 for l in out if l.startswith("ant "))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
