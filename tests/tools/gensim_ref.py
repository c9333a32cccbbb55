#!/usr/bin/python3
"""gensim_ref.py -- reference numbers for `embedsrv eval`, computed by a
line-for-line transliteration of gensim 4.x KeyedVectors.most_similar,
most_similar_cosmul, evaluate_word_analogies and evaluate_word_pairs onto
numpy (gensim itself is not installable on the build machines).  scipy's
spearmanr/pearsonr are replaced by their definitions (average ranks).

Run once with Debian's Python (numpy):
  /usr/bin/python3 tests/tools/gensim_ref.py MODEL QUESTIONS PAIRS [3cosmul]
and the results are recorded in tests/data/gensim_ref.txt, which
tests/test_eval.c checks to 4 decimals.  Not run at test time.
"""
import itertools
import sys

import numpy as np

REAL = np.float32


def load_word2vec_format(path):
    """gensim load_word2vec_format (binary or text, header required)."""
    with open(path, 'rb') as f:
        header = f.readline().decode('utf8')
        count, dim = (int(x) for x in header.split())
        data = f.read()
    keys, vecs = [], []
    binary = any(b < 0x20 and b not in (9, 10, 13) for b in data[:dim * 4 + 64])
    if binary:
        pos = 0
        for _ in range(count):
            while data[pos:pos + 1] == b'\n':
                pos += 1
            sp = data.index(b' ', pos)
            word = data[pos:sp].decode('utf8')
            vec = np.frombuffer(data, dtype=REAL, count=dim, offset=sp + 1)
            pos = sp + 1 + 4 * dim
            if word in keys:
                continue
            keys.append(word)
            vecs.append(vec)
    else:
        for line in data.decode('utf8').split('\n')[:count]:
            parts = line.rstrip().split(' ')
            word, weights = parts[0], [REAL(x) for x in parts[1:]]
            assert len(weights) == dim, line
            keys.append(word)
            vecs.append(np.array(weights, dtype=REAL))
    return KeyedVectors(keys, np.vstack(vecs).astype(REAL))


def unitvec(v):
    n = np.linalg.norm(v)
    return (v / n).astype(REAL) if n > 0 else v


class KeyedVectors:
    def __init__(self, keys, vectors):
        self.index_to_key = keys
        self.key_to_index = {k: i for i, k in enumerate(keys)}
        self.vectors = vectors
        self.norms = np.linalg.norm(vectors, axis=1)

    def get_index(self, key):
        return self.key_to_index[key]

    def get_vector(self, key, norm=False):
        i = self.key_to_index[key]
        if norm:
            return self.vectors[i] / self.norms[i]
        return self.vectors[i]

    def __contains__(self, key):
        return key in self.key_to_index

    def most_similar(self, positive=(), negative=(), topn=10, restrict_vocab=None):
        clip_end = restrict_vocab or len(self.vectors)
        keys = list(positive) + list(negative)
        weight = np.concatenate((np.ones(len(positive)), -1.0 * np.ones(len(negative))))
        mean = np.zeros(self.vectors.shape[1], REAL)
        total = 0
        for idx, key in enumerate(keys):
            mean += weight[idx] * self.get_vector(key, norm=True)
            total += abs(weight[idx])
        mean = unitvec(mean / total).astype(REAL)
        all_keys = [self.get_index(k) for k in keys if k in self.key_to_index]
        dists = np.dot(self.vectors[:clip_end], mean) / self.norms[:clip_end]
        # stable argsort, ties by lower index (embedsrv's documented order)
        best = sorted(range(len(dists)), key=lambda i: (-dists[i], i))[:topn + len(all_keys)]
        result = [(self.index_to_key[s], float(dists[s])) for s in best if s not in all_keys]
        return result[:topn]

    def most_similar_cosmul(self, positive=(), negative=(), topn=10, restrict_vocab=None):
        clip_end = restrict_vocab or len(self.vectors)
        all_words = {self.get_index(w) for w in list(positive) + list(negative) if w in self.key_to_index}
        positive = [self.get_vector(w, norm=True) for w in positive]
        negative = [self.get_vector(w, norm=True) for w in negative]
        vecs, norms = self.vectors[:clip_end], self.norms[:clip_end]
        pos_dists = [((1 + np.dot(vecs, t) / norms) / 2) for t in positive]
        neg_dists = [((1 + np.dot(vecs, t) / norms) / 2) for t in negative]
        dists = np.prod(pos_dists, axis=0) / (np.prod(neg_dists, axis=0) + 0.000001)
        best = sorted(range(len(dists)), key=lambda i: (-dists[i], i))[:topn + len(all_words)]
        result = [(self.index_to_key[s], float(dists[s])) for s in best if s not in all_words]
        return result[:topn]

    def evaluate_word_analogies(self, analogies, restrict_vocab=300000, case_insensitive=True,
                                method='most_similar'):
        ok_keys = self.index_to_key[:restrict_vocab]
        if case_insensitive:
            ok_vocab = {k.upper(): self.get_index(k) for k in reversed(ok_keys)}
        else:
            ok_vocab = {k: self.get_index(k) for k in reversed(ok_keys)}
        oov = 0
        sections, section = [], None
        quadruplets_no = 0
        with open(analogies, 'rb') as fin:
            for line_no, line in enumerate(fin):
                line = line.decode('utf8')
                if line.startswith(': '):
                    if section:
                        sections.append(section)
                    section = {'section': line.lstrip(': ').strip(), 'correct': [], 'incorrect': []}
                else:
                    if not section:
                        raise ValueError("Missing section header")
                    try:
                        if case_insensitive:
                            a, b, c, expected = [word.upper() for word in line.split()]
                        else:
                            a, b, c, expected = [word for word in line.split()]
                    except ValueError:
                        continue
                    quadruplets_no += 1
                    if a not in ok_vocab or b not in ok_vocab or c not in ok_vocab or expected not in ok_vocab:
                        oov += 1
                        continue
                    original_key_to_index = self.key_to_index
                    self.key_to_index = ok_vocab
                    ignore = {a, b, c}
                    predicted = None
                    fn = self.most_similar if method == 'most_similar' else self.most_similar_cosmul
                    sims = fn(positive=[b, c], negative=[a], topn=5, restrict_vocab=restrict_vocab)
                    self.key_to_index = original_key_to_index
                    for element in sims:
                        predicted = element[0].upper() if case_insensitive else element[0]
                        if predicted in ok_vocab and predicted not in ignore:
                            break
                    if predicted == expected:
                        section['correct'].append((a, b, c, expected))
                    else:
                        section['incorrect'].append((a, b, c, expected))
        if section:
            sections.append(section)
        total = {
            'section': 'Total accuracy',
            'correct': list(itertools.chain.from_iterable(s['correct'] for s in sections)),
            'incorrect': list(itertools.chain.from_iterable(s['incorrect'] for s in sections)),
        }
        sections.append(total)
        return sections, oov, quadruplets_no

    def evaluate_word_pairs(self, pairs, delimiter='\t', restrict_vocab=300000, case_insensitive=True):
        ok_keys = self.index_to_key[:restrict_vocab]
        if case_insensitive:
            ok_vocab = {k.upper(): self.get_index(k) for k in reversed(ok_keys)}
        else:
            ok_vocab = {k: self.get_index(k) for k in reversed(ok_keys)}
        gold, model = [], []
        oov = 0
        original, self.key_to_index = self.key_to_index, ok_vocab
        with open(pairs, encoding='utf8') as fin:
            for line in fin:
                if not line or line.startswith('#'):
                    continue
                try:
                    if case_insensitive:
                        a, b, sim = [word.upper() for word in line.split(delimiter)]
                    else:
                        a, b, sim = [word for word in line.split(delimiter)]
                    sim = float(sim)
                except (ValueError, TypeError):
                    continue
                if a not in ok_vocab or b not in ok_vocab:
                    oov += 1
                    continue
                gold.append(sim)
                model.append(np.dot(self.get_vector(a, norm=True), self.get_vector(b, norm=True)))
        self.key_to_index = original
        return pearson(gold, model), spearman(gold, model), len(gold), oov


def pearson(x, y):
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    xm, ym = x - x.mean(), y - y.mean()
    return float(np.dot(xm / np.linalg.norm(xm), ym / np.linalg.norm(ym)))


def rankdata(a):
    a = np.asarray(a, dtype=np.float64)
    order = np.argsort(a, kind='mergesort')
    ranks = np.empty(len(a))
    i = 0
    while i < len(a):
        j = i
        while j + 1 < len(a) and a[order[j + 1]] == a[order[i]]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1
        i = j + 1
    return ranks


def spearman(x, y):
    return pearson(rankdata(x), rankdata(y))


def main():
    model, questions, pairs = sys.argv[1:4]
    method = 'most_similar_cosmul' if len(sys.argv) > 4 and sys.argv[4] == '3cosmul' else 'most_similar'
    kv = load_word2vec_format(model)
    sections, oov, quads = kv.evaluate_word_analogies(questions, method=method)
    for s in sections:
        c, i = len(s['correct']), len(s['incorrect'])
        print('analogy %s %d %d' % (s['section'].replace(' ', '_'), c, c + i))
    print('analogy_oov %d %d' % (oov, quads))
    p, r, n, o = kv.evaluate_word_pairs(pairs)
    print('pairs %.6f %.6f %d %d' % (p, r, n, o))


if __name__ == '__main__':
    main()
