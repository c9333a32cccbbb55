#!/usr/bin/env python3
"""make-corpus.py — build the default model's training text from English
text that Debian packages ship, deterministically (same packages -> same
bytes).

Sources (each optional; a missing one is reported and skipped, but at least
one must be present):
  - GCIDE, the Collaborative International Dictionary of English
    (dict-gcide: /usr/share/dictd/gcide.dict.dz), 1913 Webster + WordNet;
  - WordNet 3.0 glosses (wordnet-base: /usr/share/wordnet/data.*).

Cleaning: dictionary markup is stripped (pronunciations \\...\\,
etymologies and editorial tags [...], citations --Author., domain labels
(Zool.), sense numbers), accent codes like cw[=e]n become plain letters,
cross-references {word} keep their words.  Every sense becomes one line that
starts with its headword, so the headword shares a context window with its
definition; the trainer never lets a window cross a line.

Extra sources, named on the command line (deploy/default-model.sh names
the ones the dev sets kept; README "Default model" has the measurements):
  - fortunes   fortune cookies (fortunes: /usr/share/games/fortunes), one
               cookie per line, the ASCII-art files skipped;
  - foldoc, jargon, devil   the dictd databases of dict-foldoc (computing),
               dict-jargon (hacker slang) and dict-devil (Bierce), one
               paragraph per line.

Usage: make-corpus.py OUTPUT [EXTRA...]   (writes OUTPUT.tmp, then renames)
Standard library only.
"""
import gzip
import os
import re
import sys

GCIDE = "/usr/share/dictd/gcide.dict.dz"
WORDNET = "/usr/share/wordnet"

ACCENT = re.compile(r"\[(?:[=~'\"`.\-]([A-Za-z])|([A-Za-z])[\^~]|(ae|oe|AE|OE)|([a-z])mac|([a-z])um|([a-z])ring|([a-z])cr)\]")
BRACKET = re.compile(r"\[[^\[\]]*\]")
PRON = re.compile(r"\\[^\\\n]*\\")
CITE = re.compile(r"--\s*[A-Z][A-Za-z.']*(?:\s+[A-Z][A-Za-z.']*)*\.?")
LABEL = re.compile(r"\((?:[A-Z][A-Za-z]*\.?\s*(?:&\s*)?)+\)")
SENSE = re.compile(r"^\s*(?:\d+\.|\([a-z]\))\s+")
HEAD = re.compile(r"^([^\s\\][^\\]*?)\s*\\")
SPACE = re.compile(r"\s+")
# The tokenizer's contract (core/tokenize.h): words are runs of letters and
# digits, with an apostrophe or hyphen kept between two word characters.
# Writing the corpus already tokenized and lowercased lets any trainer that
# splits on spaces (fastText in bench/train) see exactly our tokens.
WORD = re.compile(r"[^\W_]+(?:['\u2019-][^\W_]+)*")


def tokens(text):
    return " ".join(WORD.findall(text.lower()))


def accent_sub(m):
    for g in m.groups():
        if g:
            return g
    return ""


def clean(text):
    text = ACCENT.sub(accent_sub, text)
    text = PRON.sub(" ", text)
    prev = None
    while prev != text:  # nested [..[..]..] etymologies
        prev = text
        text = BRACKET.sub(" ", text)
    text = text.replace("[", " ").replace("]", " ")
    text = CITE.sub(" ", text)
    text = LABEL.sub(" ", text)
    text = text.replace("{", "").replace("}", "")
    return SPACE.sub(" ", text).strip()


def gcide(out):
    with gzip.open(GCIDE, "rt", encoding="utf-8", errors="replace") as f:
        lines = f.read().split("\n")
    head = None
    para = []
    n = 0

    def flush():
        nonlocal n
        if head and para:
            body = tokens(clean(" ".join(para)))
            if body.count(" ") >= 2:
                out.write(tokens(head) + " " + body + "\n")
                n += 1
        para.clear()

    started = False
    for line in lines:
        if not line.strip():
            flush()
            continue
        if not line[0].isspace():
            m = HEAD.match(line)
            if m:
                flush()
                started = True
                head = clean(m.group(1).replace('"', "").replace("*", "")
                             .replace("`", ""))
                rest = line[m.end():]
                # what follows the pronunciation is pos + etymology
                para.append(rest)
                continue
            if not started:
                continue
        if not started:
            continue
        if SENSE.match(line):
            flush()
            line = SENSE.sub("", line)
        para.append(line.strip())
    flush()
    return n


def wordnet(out):
    n = 0
    for pos in ("noun", "verb", "adj", "adv"):
        path = os.path.join(WORDNET, "data." + pos)
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("  "):
                    continue  # license header
                left, sep, gloss = line.partition(" | ")
                if not sep:
                    continue
                fields = left.split()
                cnt = int(fields[3], 16)
                words = []
                for i in range(cnt):
                    w = fields[4 + 2 * i]
                    w = re.sub(r"\([a-z]+\)$", "", w)  # adjective markers
                    words.append(w.replace("_", " "))
                gloss = SPACE.sub(" ", gloss).strip()
                for part in gloss.split("; "):
                    part = part.strip()
                    part = tokens(part)
                    if part:
                        out.write(tokens(" ".join(words)) + " " + part + "\n")
                        n += 1
    return n


DICTD = "/usr/share/dictd"
FORTUNES = "/usr/share/games/fortunes"
# fortune files that are pictures, not prose
FORTUNE_SKIP = {"ascii-art", "art"}
PARA = re.compile(r"\n\s*\n")


def dictd(out, name):
    """A dictd database: every paragraph of every entry is one line."""
    with gzip.open(os.path.join(DICTD, name + ".dict.dz"), "rt",
                   encoding="utf-8", errors="replace") as f:
        text = f.read()
    n = 0
    for para in PARA.split(text):
        line = tokens(clean(SPACE.sub(" ", para)))
        if line.count(" ") >= 2:
            out.write(line + "\n")
            n += 1
    return n


def fortunes(out):
    n = 0
    for name in sorted(os.listdir(FORTUNES)):
        path = os.path.join(FORTUNES, name)
        if "." in name or name in FORTUNE_SKIP or not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        for cookie in re.split(r"^%$", text, flags=re.M):
            line = tokens(cookie)
            if line.count(" ") >= 2:
                out.write(line + "\n")
                n += 1
    return n


# Sources after GCIDE and WordNet, in order: name -> (test path, writer,
# package).  Which ones the default model uses: deploy/default-model.sh.
EXTRA = {
    "fortunes": (FORTUNES, fortunes, "fortunes"),
    "foldoc": (DICTD + "/foldoc.dict.dz", lambda o: dictd(o, "foldoc"), "dict-foldoc"),
    "jargon": (DICTD + "/jargon.dict.dz", lambda o: dictd(o, "jargon"), "dict-jargon"),
    "devil": (DICTD + "/devil.dict.dz", lambda o: dictd(o, "devil"), "dict-devil"),
}


def main():
    if len(sys.argv) < 2:
        sys.stderr.write("usage: make-corpus.py OUTPUT [EXTRA...]  (extras: %s)\n"
                         % " ".join(EXTRA))
        return 2
    dst = sys.argv[1]
    extras = sys.argv[2:]
    for e in extras:
        if e not in EXTRA:
            sys.stderr.write("make-corpus: unknown source '%s' (extras: %s)\n"
                             % (e, " ".join(EXTRA)))
            return 2
    tmp = dst + ".tmp"
    have = 0
    with open(tmp, "w", encoding="utf-8", newline="\n") as out:
        if os.path.exists(GCIDE):
            n = gcide(out)
            sys.stderr.write("make-corpus: gcide: %d lines\n" % n)
            have += 1
        else:
            sys.stderr.write("make-corpus: %s missing (package dict-gcide), skipped\n" % GCIDE)
        if os.path.exists(os.path.join(WORDNET, "data.noun")):
            n = wordnet(out)
            sys.stderr.write("make-corpus: wordnet: %d lines\n" % n)
            have += 1
        else:
            sys.stderr.write("make-corpus: %s missing (package wordnet-base), skipped\n" % WORDNET)
        for e in extras:
            path, writer, pkg = EXTRA[e]
            if os.path.exists(path):
                n = writer(out)
                sys.stderr.write("make-corpus: %s: %d lines\n" % (e, n))
                have += 1
            else:
                sys.stderr.write("make-corpus: %s missing (package %s), skipped\n" % (path, pkg))
        out.flush()
        os.fsync(out.fileno())
    if not have:
        os.unlink(tmp)
        sys.stderr.write("make-corpus: no source text found; install dict-gcide and wordnet-base\n")
        return 1
    os.replace(tmp, dst)
    return 0


if __name__ == "__main__":
    sys.exit(main())
