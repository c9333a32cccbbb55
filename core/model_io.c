/*
 * model_io.c — see model_io.h.  Readers for .esm, word2vec binary, text
 * (word2vec/GloVe/fastText .vec) and fastText .bin; writers for .esm and
 * .vec.  Every input file is mmap'ed read-only and parsed with explicit
 * bounds checks; nothing trusts a size field before comparing it with the
 * bytes that are actually there.
 */
#include "alloc.h"
#include "model_internal.h"
#include "model_io.h"
#include "crc32c.h"
#include "fileio.h"
#include "lerw.h"
#include "tokenize.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------- file maps */

void es_model_io_unmap(void *map, size_t len)
{
	munmap(map, len);
}

typedef struct mapped {
	const unsigned char *p;
	size_t len;
} mapped;

static int map_file(const char *path, mapped *mf, es_error *err)
{
	mf->p = NULL;
	mf->len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return es_err(err, errno == ENOENT ? ES_ENOTFOUND : ES_EIO,
			      "cannot open: %s", strerror(errno));
	struct stat st;
	int rc = 0;
	if (fstat(fd, &st) != 0) {
		rc = es_err(err, ES_EIO, "cannot stat: %s", strerror(errno));
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		rc = es_err(err, ES_EINVAL, "is a directory, not a model file");
		goto out;
	}
	if (st.st_size == 0) {
		rc = es_err(err, ES_ECORRUPT, "file is empty");
		goto out;
	}
	void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED) {
		rc = es_err(err, ES_EIO, "cannot mmap: %s", strerror(errno));
		goto out;
	}
	mf->p = p;
	mf->len = (size_t)st.st_size;
out:
	close(fd);
	return rc;
}

static void unmap_file(mapped *mf)
{
	if (mf->p)
		munmap((void *)mf->p, mf->len);
	mf->p = NULL;
}

/* ------------------------------------------------------------ formats */

int es_model_format_parse(const char *name)
{
	static const char *const names[] = {"auto", "esm", "word2vec-bin",
					    "text", "fasttext-bin"};
	for (int i = 0; i < 5; i++)
		if (strcmp(name, names[i]) == 0)
			return i;
	if (strcmp(name, "vec") == 0 || strcmp(name, "glove") == 0 ||
	    strcmp(name, "word2vec-text") == 0)
		return ES_FORMAT_TEXT;
	return -1;
}

static const char *format_name(es_model_format f)
{
	switch (f) {
	case ES_FORMAT_AUTO: return "auto";
	case ES_FORMAT_ESM: return "esm";
	case ES_FORMAT_WORD2VEC_BIN: return "word2vec-bin";
	case ES_FORMAT_TEXT: return "text";
	case ES_FORMAT_FASTTEXT_BIN: return "fasttext-bin";
	}
	return "?";
}

#define ESM_MAGIC "EMBSRVM"
#define ESM_HEADER_SIZE 256u
#define FT_MAGIC 793712314

/* Parse "count dim" at the start of p; returns bytes consumed incl. '\n',
 * or 0 when the first line is not two non-negative integers. */
static size_t parse_header_line(const unsigned char *p, size_t len,
				uint64_t *count, uint64_t *dim)
{
	size_t i = 0;
	uint64_t v[2];
	for (int k = 0; k < 2; k++) {
		while (i < len && (p[i] == ' ' || p[i] == '\t'))
			i++;
		if (i >= len || p[i] < '0' || p[i] > '9')
			return 0;
		uint64_t x = 0;
		while (i < len && p[i] >= '0' && p[i] <= '9') {
			if (x > (UINT64_MAX - 9) / 10)
				return 0;
			x = x * 10 + (p[i] - '0');
			i++;
		}
		v[k] = x;
	}
	while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r'))
		i++;
	if (i >= len || p[i] != '\n')
		return 0;
	*count = v[0];
	*dim = v[1];
	return i + 1;
}

static es_model_format detect_bytes(const unsigned char *p, size_t len)
{
	if (len >= 8 && memcmp(p, ESM_MAGIC, 8) == 0)
		return ES_FORMAT_ESM;
	if (len >= 4 && get_u32(p) == FT_MAGIC)
		return ES_FORMAT_FASTTEXT_BIN;
	uint64_t count, dim;
	size_t h = parse_header_line(p, len, &count, &dim);
	if (h) {
		/* word2vec binary: control bytes soon after the first word */
		size_t end = h + 64 + (size_t)(dim < 4096 ? dim : 4096) * 4;
		if (end > len)
			end = len;
		for (size_t i = h; i < end; i++)
			if (p[i] < 0x20 && p[i] != '\n' && p[i] != '\r' &&
			    p[i] != '\t')
				return ES_FORMAT_WORD2VEC_BIN;
	}
	return ES_FORMAT_TEXT;
}

int es_model_detect(const char *path, es_model_format *fmt, es_error *err)
{
	mapped mf;
	int rc = map_file(path, &mf, err);
	if (rc)
		return es_err_prefix(err, rc, "%s", path);
	*fmt = detect_bytes(mf.p, mf.len);
	unmap_file(&mf);
	return 0;
}

/* Word checks shared by every reader. */
static int check_word(const char *w, size_t len, const char *where,
		      uint64_t index, es_error *err)
{
	if (len == 0)
		return es_err(err, ES_ECORRUPT, "%s %llu: empty word", where,
			      (unsigned long long)index);
	if (memchr(w, '\0', len))
		return es_err(err, ES_ECORRUPT, "%s %llu: word contains a NUL byte",
			      where, (unsigned long long)index);
	size_t bad;
	if (!es_utf8_valid(w, len, &bad))
		return es_err(err, ES_ECORRUPT,
			      "%s %llu: word is not valid UTF-8 (byte %zu)", where,
			      (unsigned long long)index, bad);
	return 0;
}

/* ------------------------------------------------------------- text */

/* Long on purpose (~160 lines): one pass over the lines in which every
 * line is split, checked and added with its line number in each message;
 * the steps share the line buffer, the dimension that the header or the
 * first line fixes, and the counts that the end checks against the
 * header, so apart they would hand eight values back and forth. */
static int load_text(const mapped *mf, es_model **out, es_error *err)
{
	const unsigned char *p = mf->p;
	size_t len = mf->len, pos = 0;
	uint64_t hcount = 0, hdim = 0;
	int have_header = 0;
	size_t h = parse_header_line(p, len, &hcount, &hdim);
	if (h) {
		have_header = 1;
		pos = h;
		if (hdim == 0 || hdim > ES_MODEL_MAX_DIM)
			return es_err(err, ES_ECORRUPT,
				      "line 1: dimension %llu out of range 1..%u",
				      (unsigned long long)hdim, ES_MODEL_MAX_DIM);
		/* each vector needs at least 2*dim bytes ("0 ") plus a word */
		if (hcount > len / (2 * hdim + 2) + 1)
			return es_err(err, ES_ECORRUPT,
				      "line 1: header claims %llu vectors of dimension %llu, "
				      "but the file has only %zu bytes",
				      (unsigned long long)hcount,
				      (unsigned long long)hdim, len);
	}
	es_model *m = NULL;
	char *line = NULL;
	size_t line_cap = 0;
	float *vec = NULL;
	uint32_t dim = (uint32_t)hdim;
	uint64_t lineno = have_header ? 1 : 0, nvec = 0;
	int rc = 0;
	while (pos < len) {
		if (have_header && nvec == hcount)
			break; /* gensim reads exactly `count` vectors */
		const unsigned char *nl = memchr(p + pos, '\n', len - pos);
		size_t ll = nl ? (size_t)(nl - (p + pos)) : len - pos;
		lineno++;
		const unsigned char *ls = p + pos;
		pos += ll + (nl ? 1 : 0);
		while (ll > 0 && (ls[ll - 1] == '\r' || ls[ll - 1] == ' ' ||
				  ls[ll - 1] == '\t'))
			ll--;
		if (ll == 0)
			continue;
		if (ll + 1 > line_cap) {
			size_t nc = ll + 1 > 256 ? ll + 1 : 256;
			char *nlb = es_realloc(line, nc);
			if (!nlb) {
				rc = es_err(err, ES_ENOMEM, "out of memory");
				goto out;
			}
			line = nlb;
			line_cap = nc;
		}
		memcpy(line, ls, ll);
		line[ll] = '\0';
		/* tokens separated by spaces/tabs; the last `dim` are numbers,
		 * the word is everything before them (GloVe has words with
		 * spaces in them) */
		size_t ntok = 0;
		for (size_t i = 0; i < ll;) {
			while (i < ll && (line[i] == ' ' || line[i] == '\t'))
				i++;
			if (i < ll)
				ntok++;
			while (i < ll && line[i] != ' ' && line[i] != '\t')
				i++;
		}
		if (!m) {
			if (!have_header) {
				if (ntok < 2) {
					rc = es_err(err, ES_ECORRUPT,
						    "line %llu: expected a word and numbers",
						    (unsigned long long)lineno);
					goto out;
				}
				if (ntok - 1 > ES_MODEL_MAX_DIM) {
					rc = es_err(err, ES_ECORRUPT,
						    "line %llu: %zu numbers, more than the maximum dimension %u",
						    (unsigned long long)lineno, ntok - 1,
						    ES_MODEL_MAX_DIM);
					goto out;
				}
				dim = (uint32_t)(ntok - 1);
			}
			es_model_params mp = {.dim = dim};
			rc = es_model_new(&mp, &m, err);
			if (rc)
				goto out;
			vec = es_malloc(dim * sizeof(float));
			if (!vec) {
				rc = es_err(err, ES_ENOMEM, "out of memory");
				goto out;
			}
		}
		if (ntok < (size_t)dim + 1) {
			rc = es_err(err, ES_ECORRUPT,
				    "line %llu: %zu values after the word, expected %u (wrong dimension?)",
				    (unsigned long long)lineno,
				    ntok ? ntok - 1 : 0, dim);
			goto out;
		}
		/* find the start of the first number token */
		size_t skip = ntok - dim, i = 0, wend = 0;
		for (size_t t = 0; t < skip; t++) {
			while (line[i] == ' ' || line[i] == '\t')
				i++;
			while (i < ll && line[i] != ' ' && line[i] != '\t')
				i++;
			wend = i;
		}
		size_t wstart = 0;
		while (line[wstart] == ' ' || line[wstart] == '\t')
			wstart++;
		char *q = line + wend;
		for (uint32_t j = 0; j < dim; j++) {
			char *e;
			errno = 0;
			float f = strtof(q, &e);
			if (e == q || (*e && *e != ' ' && *e != '\t') ||
			    !es_model_value_ok(f)) {
				rc = es_err(err, ES_ECORRUPT,
					    "line %llu: value %u is not a finite number "
					    "of magnitude at most 1e9",
					    (unsigned long long)lineno, j + 1);
				goto out;
			}
			vec[j] = f;
			q = e;
		}
		rc = check_word(line + wstart, wend - wstart, "line", lineno, err);
		if (rc)
			goto out;
		rc = es_model_add_word(m, line + wstart, wend - wstart, 0, vec,
				       NULL, err);
		if (rc) {
			es_err_prefix(err, rc, "line %llu",
				      (unsigned long long)lineno);
			goto out;
		}
		nvec++;
	}
	if (have_header && nvec < hcount) {
		rc = es_err(err, ES_ECORRUPT,
			    "truncated: header says %llu vectors, file has %llu",
			    (unsigned long long)hcount, (unsigned long long)nvec);
		goto out;
	}
	if (!m || nvec == 0) {
		rc = es_err(err, ES_ECORRUPT, "no vectors in file");
		goto out;
	}
out:
	es_free(line);
	es_free(vec);
	if (rc) {
		es_model_free(m);
		return rc;
	}
	*out = m;
	return 0;
}

/* ------------------------------------------------------- word2vec binary */

static int load_w2v_bin(const mapped *mf, es_model **out, es_error *err)
{
	const unsigned char *p = mf->p;
	size_t len = mf->len;
	uint64_t count, d;
	size_t pos = parse_header_line(p, len, &count, &d);
	if (!pos)
		return es_err(err, ES_ECORRUPT,
			      "first line is not \"<count> <dim>\"");
	if (d == 0 || d > ES_MODEL_MAX_DIM)
		return es_err(err, ES_ECORRUPT, "dimension %llu out of range 1..%u",
			      (unsigned long long)d, ES_MODEL_MAX_DIM);
	if (count == 0)
		return es_err(err, ES_ECORRUPT, "header says 0 vectors");
	uint32_t dim = (uint32_t)d;
	size_t rec = (size_t)dim * 4 + 2;
	if (count > (len - pos) / rec)
		return es_err(err, ES_ECORRUPT,
			      "header claims %llu vectors of dimension %u (%llu bytes), "
			      "but the file has only %zu bytes: truncated or wrong header",
			      (unsigned long long)count, dim,
			      (unsigned long long)(count * rec), len);
	es_model_params mp = {.dim = dim};
	es_model *m;
	int rc = es_model_new(&mp, &m, err);
	if (rc)
		return rc;
	float *vec = es_malloc(dim * sizeof(float));
	if (!vec) {
		es_model_free(m);
		return es_err(err, ES_ENOMEM, "out of memory");
	}
	for (uint64_t i = 0; i < count; i++) {
		while (pos < len && (p[pos] == '\n' || p[pos] == '\r'))
			pos++;
		size_t ws = pos;
		while (pos < len && p[pos] != ' ' && pos - ws <= 4096)
			pos++;
		if (pos >= len) {
			rc = es_err(err, ES_ECORRUPT,
				    "truncated in word %llu of %llu",
				    (unsigned long long)i + 1,
				    (unsigned long long)count);
			goto out;
		}
		if (p[pos] != ' ') {
			rc = es_err(err, ES_ECORRUPT,
				    "word %llu: no space after 4096 bytes (not word2vec binary?)",
				    (unsigned long long)i + 1);
			goto out;
		}
		size_t wl = pos - ws;
		pos++;
		if (len - pos < (size_t)dim * 4) {
			rc = es_err(err, ES_ECORRUPT,
				    "truncated in vector %llu of %llu",
				    (unsigned long long)i + 1,
				    (unsigned long long)count);
			goto out;
		}
		memcpy(vec, p + pos, (size_t)dim * 4);
		pos += (size_t)dim * 4;
		rc = check_word((const char *)p + ws, wl, "word",
				i + 1, err);
		if (rc)
			goto out;
		rc = es_model_add_word(m, (const char *)p + ws, wl, 0, vec,
				       NULL, err);
		if (rc) {
			es_err_prefix(err, rc, "word %llu",
				      (unsigned long long)i + 1);
			goto out;
		}
	}
out:
	es_free(vec);
	if (rc) {
		es_model_free(m);
		return rc;
	}
	*out = m;
	return 0;
}

/* ------------------------------------------------------- fastText .bin */

typedef struct cursor {
	const unsigned char *p;
	size_t len, pos;
} cursor;

static int cur_take(cursor *c, size_t n, const unsigned char **at)
{
	if (c->len - c->pos < n)
		return -1;
	*at = c->p + c->pos;
	c->pos += n;
	return 0;
}

#define TAKE(c, n, at, what)                                                   \
	do {                                                                   \
		if (cur_take(c, n, at)) {                                      \
			rc = es_err(err, ES_ECORRUPT,                          \
				    "truncated while reading %s", what);       \
			goto out;                                              \
		}                                                              \
	} while (0)

/* A fastText .bin being read: what the steps below pass on. */
typedef struct ft_file {
	const mapped *mf;
	cursor c;
	int32_t args[12];      /* dim ws epoch minCount neg wordNgrams loss
				* model bucket minn maxn lrUpdateRate */
	double t;
	int32_t dim, bucket, minn, maxn, nwords;
	int64_t ntokens;
	size_t *woff;          /* nwords: offset of each word in the file */
	uint64_t *wcounts;     /* nwords */
	const unsigned char *mat; /* the input matrix, (nwords + bucket) x dim */
} ft_file;

static const char *const ft_arg_names[12] = {
	"dim", "ws", "epoch", "minCount", "neg", "wordNgrams", "loss",
	"model", "bucket", "minn", "maxn", "lrUpdateRate"};

/* 1. Magic, version and the training arguments. */
static int ft_header(ft_file *f, es_error *err)
{
	const unsigned char *at;
	int rc = 0;
	TAKE(&f->c, 8, &at, "magic");
	int32_t version = (int32_t)get_u32(at + 4);
	if (get_u32(at) != FT_MAGIC)
		return es_err(err, ES_ECORRUPT, "not a fastText model (bad magic)");
	if (version != 11 && version != 12)
		return es_err(err, ES_EUNSUPPORTED,
			      "fastText model version %d not supported (need 11 or 12)",
			      version);
	TAKE(&f->c, 12 * 4 + 8, &at, "arguments");
	for (int i = 0; i < 12; i++)
		f->args[i] = (int32_t)get_u32(at + 4 * i);
	memcpy(&f->t, at + 48, 8);
	f->dim = f->args[0];
	f->bucket = f->args[8];
	f->minn = f->args[9];
	f->maxn = f->args[10];
	if (f->dim <= 0 || (uint32_t)f->dim > ES_MODEL_MAX_DIM)
		return es_err(err, ES_ECORRUPT, "dimension %d out of range 1..%u",
			      f->dim, ES_MODEL_MAX_DIM);
	if (f->bucket < 0 || f->minn < 0 || f->maxn < 0 ||
	    f->maxn > (int32_t)ES_NGRAM_MAX_CHARS || (f->maxn > 0 && f->minn > f->maxn))
		return es_err(err, ES_ECORRUPT,
			      "bad subword arguments bucket=%d minn=%d maxn=%d",
			      f->bucket, f->minn, f->maxn);
out:
	return rc;
}

/* 2. The dictionary: each word's offset and count (labels are skipped). */
static int ft_dictionary(ft_file *f, es_error *err)
{
	cursor *c = &f->c;
	const unsigned char *at;
	int rc = 0;
	TAKE(c, 12 + 16, &at, "dictionary header");
	int32_t size = (int32_t)get_u32(at), nwords = (int32_t)get_u32(at + 4),
		nlabels = (int32_t)get_u32(at + 8);
	f->ntokens = (int64_t)get_u64(at + 12);
	int64_t pruneidx_size = (int64_t)get_u64(at + 20);
	/* every entry takes at least 1 + 1 + 8 + 1 bytes */
	if (size < 0 || nwords < 0 || nlabels < 0 || nwords + (int64_t)nlabels != size ||
	    (uint64_t)size > (c->len - c->pos) / 11 || nwords == 0)
		return es_err(err, ES_ECORRUPT,
			      "bad dictionary sizes (size %d, words %d, labels %d) for a %zu-byte file",
			      size, nwords, nlabels, c->len);
	f->nwords = nwords;
	f->woff = es_malloc((size_t)nwords * sizeof *f->woff);
	f->wcounts = es_malloc((size_t)nwords * sizeof *f->wcounts);
	if (!f->woff || !f->wcounts)
		return es_err(err, ES_ENOMEM, "out of memory");
	for (int32_t i = 0; i < size; i++) {
		size_t ws = c->pos;
		const unsigned char *z = memchr(c->p + ws, '\0', c->len - ws);
		if (!z)
			return es_err(err, ES_ECORRUPT,
				      "truncated in dictionary entry %d", i + 1);
		size_t wl = (size_t)(z - (c->p + ws));
		c->pos = ws + wl + 1;
		TAKE(c, 9, &at, "dictionary entry");
		int8_t type = (int8_t)at[8];
		if (i >= nwords)
			continue;
		if (type != 0)
			return es_err(err, ES_ECORRUPT,
				      "dictionary entry %d: expected a word, found type %d",
				      i + 1, type);
		rc = check_word((const char *)c->p + ws, wl, "dictionary entry",
				(uint64_t)i + 1, err);
		if (rc)
			return rc;
		int64_t cnt = (int64_t)get_u64(at);
		f->woff[i] = ws;
		f->wcounts[i] = cnt > 0 ? (uint64_t)cnt : 0;
	}
	if (pruneidx_size > 0)
		return es_err(err, ES_EUNSUPPORTED,
			      "pruned/quantized fastText models are not supported");
out:
	return rc;
}

/* 3. The input matrix (the output matrix after it is not needed for word
 * vectors). */
static int ft_matrix(ft_file *f, es_error *err)
{
	cursor *c = &f->c;
	const unsigned char *at;
	int rc = 0;
	TAKE(c, 1, &at, "quantization flag");
	if (at[0])
		return es_err(err, ES_EUNSUPPORTED,
			      "quantized fastText models (.ftz) are not supported");
	TAKE(c, 16, &at, "input matrix header");
	int64_t rows = (int64_t)get_u64(at), cols = (int64_t)get_u64(at + 8);
	if (cols != f->dim || rows != (int64_t)f->nwords + f->bucket)
		return es_err(err, ES_ECORRUPT,
			      "input matrix is %lld x %lld, expected %lld x %d (words + buckets)",
			      (long long)rows, (long long)cols,
			      (long long)f->nwords + f->bucket, f->dim);
	if ((uint64_t)rows > (c->len - c->pos) / ((size_t)f->dim * 4))
		return es_err(err, ES_ECORRUPT,
			      "truncated: input matrix of %lld x %d floats does not fit in the file",
			      (long long)rows, f->dim);
	TAKE(c, (size_t)rows * (size_t)f->dim * 4, &at, "input matrix");
	f->mat = at;
out:
	return rc;
}

/* 4. The n-gram rows, then each word's vector as fastText computes it:
 * the mean of its own row and its n-gram rows. */
static int ft_vectors(const ft_file *f, es_model *m, es_error *err)
{
	const int32_t dim = f->dim;
	int rc = 0;
	if (m->p.bucket) {
		size_t nf = (size_t)f->bucket * (size_t)dim;
		m->ngrams = es_malloc(nf * sizeof(float));
		if (!m->ngrams)
			return es_err(err, ES_ENOMEM, "out of memory for n-gram rows");
		memcpy(m->ngrams, f->mat + (size_t)f->nwords * dim * 4, nf * 4);
		for (size_t i = 0; i < nf; i++)
			if (!es_model_value_ok(m->ngrams[i]))
				return es_err(err, ES_ECORRUPT,
					      "n-gram row %zu is not finite or over 1e9 in magnitude",
					      i / (size_t)dim);
	}
	float *vec = es_malloc((size_t)dim * sizeof(float));
	size_t subcap = 1024;
	uint32_t *sub = es_malloc(subcap * sizeof *sub);
	if (!vec || !sub) {
		rc = es_err(err, ES_ENOMEM, "out of memory");
		goto out;
	}
	for (int32_t i = 0; i < f->nwords; i++) {
		const char *w = (const char *)f->mf->p + f->woff[i];
		size_t wl = strlen(w);
		/* fastText: subwords = [the word's row] + its n-grams (none
		 * for the end-of-sentence token "</s>") */
		memcpy(vec, f->mat + (size_t)i * dim * 4, (size_t)dim * 4);
		size_t ns = 0;
		if (strcmp(w, "</s>") != 0) {
			ns = es_model_subword_ids(m, w, wl, sub, subcap);
			if (ns > subcap) {
				es_free(sub);
				subcap = ns;
				sub = es_malloc(subcap * sizeof *sub);
				if (!sub) {
					rc = es_err(err, ES_ENOMEM, "out of memory");
					goto out;
				}
				es_model_subword_ids(m, w, wl, sub, subcap);
			}
		}
		for (size_t k = 0; k < ns; k++) {
			const float *r = m->ngrams + (size_t)sub[k] * dim;
			for (int32_t j = 0; j < dim; j++)
				vec[j] += r[j];
		}
		float inv = 1.0f / (float)(ns + 1);
		for (int32_t j = 0; j < dim; j++)
			vec[j] *= inv;
		rc = es_model_add_word(m, w, wl, f->wcounts[i], vec, NULL, err);
		if (rc) {
			es_err_prefix(err, rc, "dictionary entry %d", i + 1);
			goto out;
		}
	}
out:
	es_free(vec);
	es_free(sub);
	return rc;
}

/* 5. The training arguments as metadata ("fasttext.dim", ...). */
static int ft_meta(const ft_file *f, es_model *m, es_error *err)
{
	char buf[64];
	int rc;
	for (int i = 0; i < 12; i++) {
		char key[48];
		snprintf(key, sizeof key, "fasttext.%s", ft_arg_names[i]);
		snprintf(buf, sizeof buf, "%d", f->args[i]);
		if ((rc = es_model_set_meta(m, key, buf, err)))
			return rc;
	}
	snprintf(buf, sizeof buf, "%g", f->t);
	if ((rc = es_model_set_meta(m, "fasttext.t", buf, err)))
		return rc;
	snprintf(buf, sizeof buf, "%lld", (long long)f->ntokens);
	return es_model_set_meta(m, "fasttext.ntokens", buf, err);
}

static int load_fasttext_bin(const mapped *mf, es_model **out, es_error *err)
{
	ft_file f;
	memset(&f, 0, sizeof f);
	f.mf = mf;
	f.c = (cursor){mf->p, mf->len, 0};
	es_model *m = NULL;
	int rc = ft_header(&f, err);
	if (!rc)
		rc = ft_dictionary(&f, err);
	if (!rc)
		rc = ft_matrix(&f, err);
	if (!rc) {
		es_model_params mp = {.dim = (uint32_t)f.dim,
				      .minn = (uint32_t)f.minn,
				      .maxn = (uint32_t)f.maxn,
				      .bucket = (uint64_t)f.bucket,
				      .has_counts = 1};
		rc = es_model_new(&mp, &m, err);
	}
	if (!rc)
		rc = ft_vectors(&f, m, err);
	if (!rc)
		rc = ft_meta(&f, m, err);
	es_free(f.woff);
	es_free(f.wcounts);
	if (rc) {
		es_model_free(m);
		return rc;
	}
	*out = m;
	return 0;
}

/* ------------------------------------------------------------- .esm */

/* Header field offsets. */
enum {
	H_MAGIC = 0, H_VERSION = 8, H_HSIZE = 12, H_DIM = 16, H_FLAGS = 20,
	H_NWORDS = 24, H_BUCKET = 32, H_MINN = 40, H_MAXN = 44, H_SIFA = 48,
	H_OFFS = 56, H_BLOB = 64, H_BLOBLEN = 72, H_COUNTS = 80, H_SLOTS = 88,
	H_SLOTCAP = 96, H_VECS = 104, H_NGRAMS = 112, H_COMMON = 120,
	H_META = 128, H_METALEN = 136, H_FILELEN = 144, H_DATA = 152,
	H_DATALEN = 160, H_INDEXCRC = 168, H_DATACRC = 172, H_HEADERCRC = 252,
};

#define ESM_F_COUNTS 1u
#define ESM_F_NGRAMS 2u
#define ESM_F_COMMON 4u
#define ESM_F_KNOWN (ESM_F_COUNTS | ESM_F_NGRAMS | ESM_F_COMMON)

static uint64_t align_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) / a * a;
}

/* ES_LOAD_VERIFY / es_model_verify: the values a checksum cannot vouch for
 * (a file crafted with a right checksum) must be usable too. */
static int check_values(const float *v, uint64_t count, const char *what,
			es_error *err)
{
	for (uint64_t i = 0; i < count; i++)
		if (!es_model_value_ok(v[i]))
			return es_err(err, ES_ECORRUPT, "%s: value %llu is not finite "
				      "or over 1e9 in magnitude", what,
				      (unsigned long long)i);
	return 0;
}

/* An .esm header, checked field by field against the file's length. */
typedef struct esm_hdr {
	uint32_t dim, fl, minn, maxn;
	uint64_t n, bucket;
	float sif_a;
	uint64_t offs, blob, bloblen, counts, slots, cap, vecs, ngr, com, meta,
		 metalen, data, datalen;
} esm_hdr;

/* 1. Magic, version, header checksum and the scalar fields. */
static int esm_header(const unsigned char *p, uint64_t len, esm_hdr *h,
		      es_error *err)
{
	if (len < ESM_HEADER_SIZE)
		return es_err(err, ES_ECORRUPT,
			      "truncated: %llu bytes, smaller than the .esm header",
			      (unsigned long long)len);
	if (memcmp(p, ESM_MAGIC, 8) != 0)
		return es_err(err, ES_ECORRUPT, "not an .esm file (bad magic)");
	uint32_t version = get_u32(p + H_VERSION);
	if (version != ES_ESM_VERSION)
		return es_err(err, ES_EUNSUPPORTED,
			      ".esm version %u not supported (this build reads %u)",
			      version, ES_ESM_VERSION);
	if (crc32c(0, p, H_HEADERCRC) != get_u32(p + H_HEADERCRC))
		return es_err(err, ES_ECORRUPT, "header checksum mismatch");
	if (get_u32(p + H_HSIZE) != ESM_HEADER_SIZE)
		return es_err(err, ES_ECORRUPT, "bad header size");
	uint64_t flen = get_u64(p + H_FILELEN);
	if (flen != len)
		return es_err(err, ES_ECORRUPT,
			      "file is %llu bytes but its header says %llu (truncated?)",
			      (unsigned long long)len, (unsigned long long)flen);
	h->dim = get_u32(p + H_DIM);
	h->fl = get_u32(p + H_FLAGS);
	h->n = get_u64(p + H_NWORDS);
	h->bucket = get_u64(p + H_BUCKET);
	h->minn = get_u32(p + H_MINN);
	h->maxn = get_u32(p + H_MAXN);
	memcpy(&h->sif_a, p + H_SIFA, 4);
	if (h->fl & ~ESM_F_KNOWN)
		return es_err(err, ES_EUNSUPPORTED, "unknown flags 0x%x", h->fl);
	if (h->dim == 0 || h->dim > ES_MODEL_MAX_DIM)
		return es_err(err, ES_ECORRUPT, "dimension %u out of range 1..%u",
			      h->dim, ES_MODEL_MAX_DIM);
	if (h->n == 0 || h->n > ES_VOCAB_MAX_WORDS || h->n > len / ((uint64_t)h->dim * 4))
		return es_err(err, ES_ECORRUPT,
			      "word count %llu impossible for dimension %u in a %llu-byte file",
			      (unsigned long long)h->n, h->dim, (unsigned long long)len);
	if (!(h->fl & ESM_F_NGRAMS))
		h->bucket = 0;
	if (h->bucket > (uint64_t)INT32_MAX || h->maxn > ES_NGRAM_MAX_CHARS ||
	    h->minn > h->maxn || (h->bucket && h->maxn == 0))
		return es_err(err, ES_ECORRUPT,
			      "bad subword parameters bucket=%llu minn=%u maxn=%u",
			      (unsigned long long)h->bucket, h->minn, h->maxn);
	if (!(h->sif_a > 0) || !isfinite(h->sif_a))
		return es_err(err, ES_ECORRUPT, "bad SIF parameter a");
	return 0;
}

/* 2. Sections: [off, off + size) must lie inside the file, aligned; the
 * vocabulary checksum always, the data checksum and values when verifying. */
static int esm_sections(const unsigned char *p, uint64_t len, unsigned flags,
			esm_hdr *h, es_error *err)
{
	h->offs = get_u64(p + H_OFFS);
	h->blob = get_u64(p + H_BLOB);
	h->bloblen = get_u64(p + H_BLOBLEN);
	h->counts = get_u64(p + H_COUNTS);
	h->slots = get_u64(p + H_SLOTS);
	h->cap = get_u64(p + H_SLOTCAP);
	h->vecs = get_u64(p + H_VECS);
	h->ngr = get_u64(p + H_NGRAMS);
	h->com = get_u64(p + H_COMMON);
	h->meta = get_u64(p + H_META);
	h->metalen = get_u64(p + H_METALEN);
	h->data = get_u64(p + H_DATA);
	h->datalen = get_u64(p + H_DATALEN);
	uint64_t n = h->n, dim = h->dim, cap = h->cap;
	if (cap == 0 || (cap & (cap - 1)) || cap <= n || cap > 4 * n + 64)
		return es_err(err, ES_ECORRUPT, "bad vocabulary hash table size");
	struct {
		uint64_t off, size, align;
		const char *name;
	} sec[] = {
		{h->offs, (n + 1) * 8, 8, "word offsets"},
		{h->blob, h->bloblen, 1, "words"},
		{h->counts, n * 8, 8, "counts"},
		{h->slots, cap * 4, 4, "hash table"},
		{h->meta, h->metalen, 1, "metadata"},
		{h->vecs, n * dim * 4, 64, "vectors"},
		{h->ngr, h->bucket * dim * 4, 64, "n-gram rows"},
		{h->com, (h->fl & ESM_F_COMMON) ? dim * 4 : 0, 4, "common component"},
	};
	for (size_t i = 0; i < sizeof sec / sizeof sec[0]; i++) {
		if (sec[i].size == 0)
			continue;
		if (sec[i].off < ESM_HEADER_SIZE || sec[i].off > len ||
		    sec[i].size > len - sec[i].off || sec[i].off % sec[i].align)
			return es_err(err, ES_ECORRUPT,
				      "%s section out of the file's bounds (truncated?)",
				      sec[i].name);
	}
	if (h->data < ESM_HEADER_SIZE || h->data > len || h->datalen > len - h->data ||
	    h->vecs < h->data || h->vecs + n * dim * 4 > h->data + h->datalen)
		return es_err(err, ES_ECORRUPT, "bad data region");
	if (crc32c(0, p + ESM_HEADER_SIZE, h->data - ESM_HEADER_SIZE) !=
	    get_u32(p + H_INDEXCRC))
		return es_err(err, ES_ECORRUPT,
			      "vocabulary checksum mismatch (file damaged)");
	if (!(flags & ES_LOAD_VERIFY))
		return 0;
	if (crc32c(0, p + h->data, h->datalen) != get_u32(p + H_DATACRC))
		return es_err(err, ES_ECORRUPT,
			      "vector data checksum mismatch (file damaged)");
	int rc = check_values((const float *)(p + h->vecs), n * dim, "vectors", err);
	if (!rc && h->bucket) /* ngr is only checked when there are rows */
		rc = check_values((const float *)(p + h->ngr), h->bucket * dim,
				  "n-gram rows", err);
	return rc;
}

/* 3. Word offsets and the words themselves. */
static int esm_words(const unsigned char *p, const esm_hdr *h, es_error *err)
{
	const uint64_t *o = (const uint64_t *)(p + h->offs);
	const char *b = (const char *)(p + h->blob);
	if (o[0] != 0 || o[h->n] != h->bloblen)
		return es_err(err, ES_ECORRUPT, "bad word offsets");
	for (uint64_t i = 0; i < h->n; i++) {
		if (o[i + 1] <= o[i] + 1 || o[i + 1] > h->bloblen ||
		    b[o[i + 1] - 1] != '\0')
			return es_err(err, ES_ECORRUPT, "word %llu: bad offset",
				      (unsigned long long)i + 1);
		int rc = check_word(b + o[i], o[i + 1] - o[i] - 1, "word", i + 1, err);
		if (rc)
			return rc;
	}
	return 0;
}

/* 4. Metadata: u32 count, then (u32 len, bytes) key, (u32 len, bytes)
 * value, into m. */
static int esm_meta(const unsigned char *p, const esm_hdr *h, es_model *m,
		    es_error *err)
{
	if (!h->metalen)
		return 0;
	cursor c = {p + h->meta, h->metalen, 0};
	const unsigned char *at;
	if (cur_take(&c, 4, &at))
		goto badmeta;
	uint32_t nm = get_u32(at);
	if (nm > h->metalen / 8)
		goto badmeta;
	for (uint32_t i = 0; i < nm; i++) {
		/* the key and the value are both read before either is
		 * copied, so a value cut short leaks no key (found by
		 * tests/fuzz, fuzz_model_esm) */
		const unsigned char *str[2];
		uint32_t sl[2];
		for (int k = 0; k < 2; k++) {
			if (cur_take(&c, 4, &at))
				goto badmeta;
			sl[k] = get_u32(at);
			if (cur_take(&c, sl[k], &str[k]) || memchr(str[k], 0, sl[k]))
				goto badmeta;
		}
		char *key = es_strndup((const char *)str[0], sl[0]);
		char *val = es_strndup((const char *)str[1], sl[1]);
		int rc = key && val ? es_model_set_meta(m, key, val, err)
				    : es_err(err, ES_ENOMEM, "out of memory");
		es_free(key);
		es_free(val);
		if (rc)
			return rc;
	}
	return 0;
badmeta:
	return es_err(err, ES_ECORRUPT, "bad metadata section");
}

static int load_esm(const mapped *mf, unsigned flags, es_model **out,
		    es_error *err)
{
	const unsigned char *p = mf->p;
	uint64_t len = mf->len;
	esm_hdr h;
	memset(&h, 0, sizeof h);
	es_model *m = NULL;
	int rc = esm_header(p, len, &h, err);
	if (!rc)
		rc = esm_sections(p, len, flags, &h, err);
	if (!rc)
		rc = esm_words(p, &h, err);
	if (rc)
		return rc;
	es_model_params mp = {.dim = h.dim, .minn = h.minn, .maxn = h.maxn,
			      .bucket = h.bucket, .sif_a = h.sif_a,
			      .has_counts = (h.fl & ESM_F_COUNTS) != 0};
	rc = es_model_new(&mp, &m, err);
	if (rc)
		return rc;
	es_vocab_free(m->vocab);
	m->vocab = NULL;
	rc = es_vocab_view(h.n, (const uint64_t *)(p + h.offs), (const char *)(p + h.blob),
			   (const uint64_t *)(p + h.counts), (const uint32_t *)(p + h.slots),
			   h.cap, &m->vocab, err);
	if (rc)
		goto fail;
	m->vectors = (float *)(p + h.vecs);
	m->vectors_owned = 0;
	m->vec_cap = h.n;
	if (h.bucket) {
		m->ngrams = (float *)(p + h.ngr);
		m->ngrams_owned = 0;
	}
	if (h.fl & ESM_F_COMMON) {
		rc = es_model_set_common(m, (const float *)(p + h.com), err);
		if (rc)
			goto fail;
	}
	rc = esm_meta(p, &h, m, err);
	if (rc)
		goto fail;
	m->map = (void *)p;
	m->map_len = len;
	m->data_crc = get_u32(p + H_DATACRC);
	m->data_off = h.data;
	m->data_len = h.datalen;
	*out = m;
	return 0;
fail:
	es_model_free(m);
	return rc;
}

int es_model_verify(const es_model *m, es_error *err)
{
	if (!m->map)
		return 0;
	const unsigned char *p = m->map;
	if (crc32c(0, p + m->data_off, m->data_len) != m->data_crc)
		return es_err(err, ES_ECORRUPT,
			      "vector data checksum mismatch (file damaged)");
	int rc = check_values(m->vectors, (uint64_t)es_vocab_size(m->vocab) * m->p.dim,
			      "vectors", err);
	if (!rc && m->ngrams)
		rc = check_values(m->ngrams, m->p.bucket * m->p.dim, "n-gram rows", err);
	return rc;
}

/* -------------------------------------------------------------- loading */

int es_model_load(const char *path, es_model_format fmt, unsigned flags,
		  es_model **out, es_error *err)
{
	*out = NULL;
	if (!path || !*path)
		return es_err(err, ES_EINVAL, "no model path given");
	mapped mf;
	int rc = map_file(path, &mf, err);
	if (rc)
		return es_err_prefix(err, rc, "%s", path);
	if (fmt == ES_FORMAT_AUTO)
		fmt = detect_bytes(mf.p, mf.len);
	switch (fmt) {
	case ES_FORMAT_ESM:
		rc = load_esm(&mf, flags, out, err);
		if (rc == 0)
			mf.p = NULL; /* the model owns the mapping now */
		break;
	case ES_FORMAT_WORD2VEC_BIN:
		rc = load_w2v_bin(&mf, out, err);
		break;
	case ES_FORMAT_TEXT:
		rc = load_text(&mf, out, err);
		break;
	case ES_FORMAT_FASTTEXT_BIN:
		rc = load_fasttext_bin(&mf, out, err);
		break;
	default:
		rc = es_err(err, ES_EINVAL, "unknown model format");
	}
	unmap_file(&mf);
	if (rc)
		return es_err_prefix(err, rc, "%s (%s)", path,
				     format_name(fmt));
	if (fmt != ES_FORMAT_ESM && !es_model_meta(*out, "source_format")) {
		/* out of memory here must not give a model without it (found
		 * by the failing-allocator test) */
		rc = es_model_set_meta(*out, "source_format",
				       format_name(fmt), err);
		if (rc) {
			es_model_free(*out);
			*out = NULL;
			return es_err_prefix(err, rc, "%s", path);
		}
	}
	return 0;
}

/* -------------------------------------------------------------- writing */

/* The .esm file of m into f (a temporary file that es_file_replace then
 * puts in place): the header is written last, at offset 0. */
static int write_esm(void *ctx, FILE *f, es_error *err)
{
	const es_model *m = ctx;
	const uint64_t *offs, *counts;
	const char *blob;
	const uint32_t *slots;
	uint64_t cap;
	es_vocab_arrays(m->vocab, &offs, &blob, &counts, &slots, &cap);
	uint64_t n = es_vocab_size(m->vocab);
	uint32_t dim = m->p.dim;
	uint64_t bucket = es_model_has_subwords(m) ? m->p.bucket : 0;
	uint32_t fl = (m->p.has_counts ? ESM_F_COUNTS : 0) |
		      (bucket ? ESM_F_NGRAMS : 0) |
		      (m->common_vec ? ESM_F_COMMON : 0);
	/* metadata bytes */
	uint64_t metalen = 4;
	for (size_t i = 0; i < m->nmeta; i++)
		metalen += 8 + strlen(m->meta_keys[i]) + strlen(m->meta_vals[i]);
	/* layout */
	uint64_t o_offs = ESM_HEADER_SIZE;
	uint64_t o_blob = o_offs + (n + 1) * 8;
	uint64_t bloblen = offs[n];
	uint64_t o_counts = align_up(o_blob + bloblen, 8);
	uint64_t o_slots = o_counts + n * 8;
	uint64_t o_meta = o_slots + cap * 4;
	uint64_t o_data = align_up(o_meta + metalen, 64);
	uint64_t o_vecs = o_data;
	uint64_t o_ngr = align_up(o_vecs + n * dim * 4, 64);
	uint64_t o_com = o_ngr + bucket * dim * 4;
	uint64_t end = o_com + (m->common_vec ? dim * 4 : 0);

	es_writer w;
	if (es_writer_init(&w, f, crc32c) != 0)
		return es_err(err, ES_ENOMEM, "out of memory");
	unsigned char h[ESM_HEADER_SIZE];
	memset(h, 0, sizeof h);
	es_w_bytes(&w, h, sizeof h); /* placeholder, rewritten below */
	es_writer_crc_restart(&w);
	es_w_bytes(&w, offs, (size_t)(n + 1) * 8);
	es_w_bytes(&w, blob, (size_t)bloblen);
	es_w_pad(&w, 8);
	if (counts) {
		es_w_bytes(&w, counts, (size_t)n * 8);
	} else {
		for (uint64_t i = 0; i < n; i++) {
			uint64_t z = 0;
			es_w_bytes(&w, &z, 8);
		}
	}
	es_w_bytes(&w, slots, (size_t)cap * 4);
	es_w_u32(&w, (uint32_t)m->nmeta);
	for (size_t i = 0; i < m->nmeta; i++) {
		size_t kl = strlen(m->meta_keys[i]), vl = strlen(m->meta_vals[i]);
		es_w_u32(&w, (uint32_t)kl);
		es_w_bytes(&w, m->meta_keys[i], kl);
		es_w_u32(&w, (uint32_t)vl);
		es_w_bytes(&w, m->meta_vals[i], vl);
	}
	es_w_pad(&w, 64);
	uint32_t index_crc = es_writer_crc(&w);
	int bad_layout = w.pos != o_data;
	es_writer_crc_restart(&w);
	es_w_bytes(&w, m->vectors, (size_t)n * dim * 4);
	es_w_pad(&w, 64);
	if (bucket)
		es_w_bytes(&w, m->ngrams, (size_t)bucket * dim * 4);
	if (m->common_vec)
		es_w_bytes(&w, m->common_vec, (size_t)dim * 4);
	uint32_t data_crc = es_writer_crc(&w);
	bad_layout |= w.pos != end;
	int e = es_writer_finish(&w);
	if (bad_layout)
		return es_err(err, ES_EIO, "internal error: layout mismatch");
	if (e)
		return es_err(err, e == ENOSPC ? ES_ENOSPC : ES_EIO, "write failed: %s",
			      strerror(e));

	memcpy(h + H_MAGIC, ESM_MAGIC, 8);
	put_u32(h + H_VERSION, ES_ESM_VERSION);
	put_u32(h + H_HSIZE, ESM_HEADER_SIZE);
	put_u32(h + H_DIM, dim);
	put_u32(h + H_FLAGS, fl);
	put_u64(h + H_NWORDS, n);
	put_u64(h + H_BUCKET, bucket);
	put_u32(h + H_MINN, bucket ? m->p.minn : 0);
	put_u32(h + H_MAXN, bucket ? m->p.maxn : 0);
	memcpy(h + H_SIFA, &m->p.sif_a, 4);
	put_u64(h + H_OFFS, o_offs);
	put_u64(h + H_BLOB, o_blob);
	put_u64(h + H_BLOBLEN, bloblen);
	put_u64(h + H_COUNTS, o_counts);
	put_u64(h + H_SLOTS, o_slots);
	put_u64(h + H_SLOTCAP, cap);
	put_u64(h + H_VECS, o_vecs);
	put_u64(h + H_NGRAMS, bucket ? o_ngr : 0);
	put_u64(h + H_COMMON, m->common_vec ? o_com : 0);
	put_u64(h + H_META, o_meta);
	put_u64(h + H_METALEN, metalen);
	put_u64(h + H_FILELEN, end);
	put_u64(h + H_DATA, o_data);
	put_u64(h + H_DATALEN, end - o_data);
	put_u32(h + H_INDEXCRC, index_crc);
	put_u32(h + H_DATACRC, data_crc);
	put_u32(h + H_HEADERCRC, crc32c(0, h, H_HEADERCRC));
	if (fflush(f) != 0 || pwrite(fileno(f), h, sizeof h, 0) != (ssize_t)sizeof h)
		return es_err(err, errno == ENOSPC ? ES_ENOSPC : ES_EIO,
			      "write failed: %s", strerror(errno));
	return 0;
}

int es_model_save_esm(const es_model *m, const char *path, es_error *err)
{
	if (es_vocab_size(m->vocab) == 0)
		return es_err(err, ES_EINVAL, "%s: model has no words", path);
	return es_file_replace(path, write_esm, (void *)m, err);
}

static int write_vec(void *ctx, FILE *f, es_error *err)
{
	const es_model *m = ctx;
	size_t n = es_vocab_size(m->vocab);
	uint32_t dim = m->p.dim;
	(void)err; /* a failed write shows at es_file_replace's flush */
	fprintf(f, "%zu %u\n", n, dim);
	for (size_t i = 0; i < n && !ferror(f); i++) {
		const float *v = es_model_vector(m, (uint32_t)i);
		fputs(es_vocab_word(m->vocab, (uint32_t)i), f);
		for (uint32_t j = 0; j < dim; j++)
			fprintf(f, " %.9g", (double)v[j]);
		fputc('\n', f);
	}
	return 0;
}

int es_model_save_vec(const es_model *m, const char *path, es_error *err)
{
	return es_file_replace(path, write_vec, (void *)m, err);
}
