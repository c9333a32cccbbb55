/*
 * wordpiece.c — BERT tokenizer (see wordpiece.h for the pipeline).
 *
 * The vocabulary is an open-addressing hash table (FNV-1a, linear probing)
 * from token bytes to id, plus an id -> string array.  Text is processed as
 * an array of code points; each word is re-encoded to UTF-8 once and matched
 * by byte ranges at character boundaries, so WordPiece does no allocation
 * per candidate except building the "##" + piece key in a stack buffer.
 */
#include "wordpiece.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#define MAX_PIECE_BYTES 1024 /* a word over 100 chars is [UNK] anyway */

struct es_wordpiece {
	es_wordpiece_opts opts;
	char **tokens;    /* id -> string (NULL for holes) */
	size_t ntokens;
	int32_t *table;   /* hash slots: id or -1 */
	size_t mask;
	char **added;     /* special tokens matched literally in raw text */
	int32_t *added_ids;
	size_t nadded;
	unsigned char *special; /* ntokens flags */
	int32_t unk, cls, sep;
	char prefix[16];  /* continuing subword prefix, "##" */
	size_t prefix_len;
};

void es_wordpiece_opts_default(es_wordpiece_opts *o)
{
	o->clean_text = 1;
	o->handle_chinese_chars = 1;
	o->strip_accents = -1;
	o->lowercase = 1;
	o->max_input_chars_per_word = 100;
}

static uint64_t fnv1a(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ull;
	}
	return h;
}

int32_t es_wordpiece_id(const es_wordpiece *wp, const char *tok, size_t len)
{
	size_t i = (size_t)fnv1a(tok, len) & wp->mask;
	for (;;) {
		int32_t id = wp->table[i];
		if (id < 0)
			return -1;
		const char *t = wp->tokens[id];
		if (strlen(t) == len && memcmp(t, tok, len) == 0)
			return id;
		i = (i + 1) & wp->mask;
	}
}

void es_wordpiece_free(es_wordpiece *wp)
{
	if (!wp)
		return;
	for (size_t i = 0; i < wp->ntokens; i++)
		free(wp->tokens[i]);
	free(wp->tokens);
	free(wp->table);
	for (size_t i = 0; i < wp->nadded; i++)
		free(wp->added[i]);
	free(wp->added);
	free(wp->added_ids);
	free(wp->special);
	free(wp);
}

/* Allocate an empty tokenizer for n ids. */
static es_wordpiece *wp_alloc(size_t n, const es_wordpiece_opts *opts)
{
	es_wordpiece *wp = calloc(1, sizeof *wp);
	if (!wp)
		return NULL;
	if (opts)
		wp->opts = *opts;
	else
		es_wordpiece_opts_default(&wp->opts);
	if (wp->opts.max_input_chars_per_word == 0)
		wp->opts.max_input_chars_per_word = 100;
	strcpy(wp->prefix, "##");
	wp->prefix_len = 2;
	wp->ntokens = n;
	wp->tokens = calloc(n ? n : 1, sizeof *wp->tokens);
	wp->special = calloc(n ? n : 1, 1);
	if (!wp->tokens || !wp->special) {
		es_wordpiece_free(wp);
		return NULL;
	}
	return wp;
}

/* Build the hash table over tokens[]; a duplicate string keeps the later id
 * (as the Python tokenizer's dict does). */
static int build_table(es_wordpiece *wp, es_error *err)
{
	size_t cap = 16;
	while (cap < wp->ntokens * 2 + 1)
		cap <<= 1;
	wp->table = malloc(cap * sizeof *wp->table);
	if (!wp->table)
		return es_err(err, ES_ENOMEM, "out of memory");
	memset(wp->table, 0xff, cap * sizeof *wp->table);
	wp->mask = cap - 1;
	for (size_t id = 0; id < wp->ntokens; id++) {
		const char *t = wp->tokens[id];
		if (!t)
			continue;
		size_t len = strlen(t);
		size_t i = (size_t)fnv1a(t, len) & wp->mask;
		while (wp->table[i] >= 0) {
			if (strcmp(wp->tokens[wp->table[i]], t) == 0)
				break;
			i = (i + 1) & wp->mask;
		}
		wp->table[i] = (int32_t)id;
	}
	return 0;
}

static int add_special(es_wordpiece *wp, const char *content, int32_t id,
		       es_error *err)
{
	if (id < 0 || (size_t)id >= wp->ntokens || !content[0])
		return 0;
	for (size_t i = 0; i < wp->nadded; i++)
		if (strcmp(wp->added[i], content) == 0)
			return 0;
	char **a = realloc(wp->added, (wp->nadded + 1) * sizeof *a);
	if (!a)
		return es_err(err, ES_ENOMEM, "out of memory");
	wp->added = a;
	int32_t *ai = realloc(wp->added_ids, (wp->nadded + 1) * sizeof *ai);
	if (!ai)
		return es_err(err, ES_ENOMEM, "out of memory");
	wp->added_ids = ai;
	if (!(wp->added[wp->nadded] = strdup(content)))
		return es_err(err, ES_ENOMEM, "out of memory");
	wp->added_ids[wp->nadded++] = id;
	wp->special[id] = 1;
	return 0;
}

/* Look up [UNK]/[CLS]/[SEP] and register the default specials. */
static int finish(es_wordpiece *wp, const char *unk, const char *cls,
		  const char *sep, es_error *err)
{
	int rc = build_table(wp, err);
	if (rc)
		return rc;
	wp->unk = es_wordpiece_id(wp, unk, strlen(unk));
	wp->cls = es_wordpiece_id(wp, cls, strlen(cls));
	wp->sep = es_wordpiece_id(wp, sep, strlen(sep));
	if (wp->unk < 0 || wp->cls < 0 || wp->sep < 0)
		return es_err(err, ES_ECORRUPT,
			      "vocabulary lacks one of the special tokens %s, %s, %s",
			      unk, cls, sep);
	const char *defaults[] = {"[PAD]", unk, cls, sep, "[MASK]"};
	for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++) {
		int32_t id = es_wordpiece_id(wp, defaults[i], strlen(defaults[i]));
		if ((rc = add_special(wp, defaults[i], id, err)))
			return rc;
	}
	return 0;
}

int es_wordpiece_new(const char *const *vocab, size_t n,
		     const es_wordpiece_opts *opts, es_wordpiece **out,
		     es_error *err)
{
	*out = NULL;
	es_wordpiece *wp = wp_alloc(n, opts);
	if (!wp)
		return es_err(err, ES_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		if (!(wp->tokens[i] = strdup(vocab[i]))) {
			es_wordpiece_free(wp);
			return es_err(err, ES_ENOMEM, "out of memory");
		}
	}
	int rc = finish(wp, "[UNK]", "[CLS]", "[SEP]", err);
	if (rc) {
		es_wordpiece_free(wp);
		return rc;
	}
	*out = wp;
	return 0;
}

/* ---- loading a folder ---- */

static int read_vocab_txt(const char *path, char ***tokens, size_t *n,
			  es_error *err)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return es_err(err, errno == ENOENT ? ES_ENOTFOUND : ES_EIO,
			      "%s: cannot open: %s", path, strerror(errno));
	char **v = NULL;
	size_t cnt = 0, cap = 0;
	char *line = NULL;
	size_t lcap = 0;
	ssize_t len;
	int rc = 0;
	while ((len = getline(&line, &lcap, f)) >= 0) {
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = 0;
		if ((size_t)len != strlen(line)) {
			rc = es_err(err, ES_ECORRUPT, "%s: line %zu contains a NUL byte",
				    path, cnt + 1);
			goto out;
		}
		if (cnt == cap) {
			cap = cap ? cap * 2 : 1024;
			char **nv = realloc(v, cap * sizeof *nv);
			if (!nv) {
				rc = es_err(err, ES_ENOMEM, "out of memory");
				goto out;
			}
			v = nv;
		}
		if (!(v[cnt] = strdup(line))) {
			rc = es_err(err, ES_ENOMEM, "out of memory");
			goto out;
		}
		cnt++;
		if (cnt > (1u << 24)) {
			rc = es_err(err, ES_ERANGE, "%s: more than 16M tokens", path);
			goto out;
		}
	}
	if (ferror(f))
		rc = es_err(err, ES_EIO, "%s: read error", path);
	else if (cnt == 0)
		rc = es_err(err, ES_ECORRUPT, "%s: empty vocabulary", path);
out:
	free(line);
	fclose(f);
	if (rc) {
		for (size_t i = 0; i < cnt; i++)
			free(v[i]);
		free(v);
		return rc;
	}
	*tokens = v;
	*n = cnt;
	return 0;
}

static json_t *load_json_opt(const char *dir, const char *name, int *rc,
			     es_error *err)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	json_error_t jerr;
	json_t *j = json_loadf(f, 0, &jerr);
	fclose(f);
	if (!j || !json_is_object(j)) {
		*rc = es_err(err, ES_ECORRUPT, "%s: not a JSON object: %s", path,
			     j ? "wrong type" : jerr.text);
		json_decref(j);
		return NULL;
	}
	return j;
}

static void json_bool_opt(json_t *obj, const char *key, int *dst)
{
	json_t *v = json_object_get(obj, key);
	if (json_is_boolean(v))
		*dst = json_is_true(v);
}

static const char *json_token_opt(json_t *cfg, const char *key, const char *def)
{
	json_t *v = json_object_get(cfg, key);
	if (json_is_string(v))
		return json_string_value(v);
	if (json_is_object(v) && json_is_string(json_object_get(v, "content")))
		return json_string_value(json_object_get(v, "content"));
	return def;
}

/* Long on purpose (~140 lines): it reads a folder's three optional
 * config files in the order transformers gives them precedence, and each
 * setting's default depends on what an earlier file said; the flat order
 * is that precedence, written once. */
int es_wordpiece_open(const char *dir, es_wordpiece **out, es_error *err)
{
	int rc = 0;
	*out = NULL;
	es_wordpiece *wp = NULL;
	json_t *tj = NULL, *tc = NULL;
	char path[4096];
	es_wordpiece_opts o;
	es_wordpiece_opts_default(&o);

	tc = load_json_opt(dir, "tokenizer_config.json", &rc, err);
	if (rc)
		goto out;
	tj = load_json_opt(dir, "tokenizer.json", &rc, err);
	if (rc)
		goto out;
	if (tc) {
		json_bool_opt(tc, "do_lower_case", &o.lowercase);
		json_bool_opt(tc, "tokenize_chinese_chars", &o.handle_chinese_chars);
		json_bool_opt(tc, "strip_accents", &o.strip_accents);
	}
	const char *unk = json_token_opt(tc, "unk_token", "[UNK]");
	const char *cls = json_token_opt(tc, "cls_token", "[CLS]");
	const char *sep = json_token_opt(tc, "sep_token", "[SEP]");
	json_t *model = tj ? json_object_get(tj, "model") : NULL;
	json_t *vocab = NULL;
	if (tj) {
		json_t *norm = json_object_get(tj, "normalizer");
		if (json_is_object(norm)) {
			const char *type = json_string_value(json_object_get(norm, "type"));
			if (type && strcmp(type, "BertNormalizer") != 0) {
				rc = es_err(err, ES_EUNSUPPORTED,
					    "%s/tokenizer.json: normalizer '%s' is not "
					    "supported (BertNormalizer only)", dir, type);
				goto out;
			}
			json_bool_opt(norm, "clean_text", &o.clean_text);
			json_bool_opt(norm, "handle_chinese_chars", &o.handle_chinese_chars);
			json_bool_opt(norm, "lowercase", &o.lowercase);
			json_t *sa = json_object_get(norm, "strip_accents");
			o.strip_accents = json_is_boolean(sa) ? json_is_true(sa) : -1;
		}
		if (json_is_object(model)) {
			const char *type = json_string_value(json_object_get(model, "type"));
			if (type && strcmp(type, "WordPiece") != 0) {
				rc = es_err(err, ES_EUNSUPPORTED,
					    "%s/tokenizer.json: model '%s' is not WordPiece",
					    dir, type);
				goto out;
			}
			unk = json_token_opt(model, "unk_token", unk);
			json_t *m = json_object_get(model, "max_input_chars_per_word");
			if (json_is_integer(m) && json_integer_value(m) > 0 &&
			    json_integer_value(m) < 1000000)
				o.max_input_chars_per_word = (uint32_t)json_integer_value(m);
			vocab = json_object_get(model, "vocab");
			if (!json_is_object(vocab) || json_object_size(vocab) == 0)
				vocab = NULL;
		}
	}
	if (vocab) {
		/* ids from tokenizer.json: the table the fast tokenizer uses */
		size_t n = 0;
		const char *key;
		json_t *val;
		json_object_foreach(vocab, key, val) {
			if (!json_is_integer(val) || json_integer_value(val) < 0 ||
			    json_integer_value(val) >= (1 << 24)) {
				rc = es_err(err, ES_ECORRUPT,
					    "%s/tokenizer.json: vocab entry '%s' has a bad id",
					    dir, key);
				goto out;
			}
			if ((size_t)json_integer_value(val) + 1 > n)
				n = (size_t)json_integer_value(val) + 1;
		}
		if (!(wp = wp_alloc(n, &o))) {
			rc = es_err(err, ES_ENOMEM, "out of memory");
			goto out;
		}
		json_object_foreach(vocab, key, val) {
			size_t id = (size_t)json_integer_value(val);
			free(wp->tokens[id]);
			if (!(wp->tokens[id] = strdup(key))) {
				rc = es_err(err, ES_ENOMEM, "out of memory");
				goto out;
			}
		}
		const char *pre = json_string_value(
			json_object_get(model, "continuing_subword_prefix"));
		if (pre && strlen(pre) < sizeof wp->prefix) {
			strcpy(wp->prefix, pre);
			wp->prefix_len = strlen(pre);
		}
	} else {
		char **toks = NULL;
		size_t n = 0;
		snprintf(path, sizeof path, "%s/vocab.txt", dir);
		if ((rc = read_vocab_txt(path, &toks, &n, err)))
			goto out;
		if (!(wp = wp_alloc(0, &o))) {
			for (size_t i = 0; i < n; i++)
				free(toks[i]);
			free(toks);
			rc = es_err(err, ES_ENOMEM, "out of memory");
			goto out;
		}
		free(wp->tokens);
		free(wp->special);
		wp->tokens = toks;
		wp->ntokens = n;
		if (!(wp->special = calloc(n, 1))) {
			rc = es_err(err, ES_ENOMEM, "out of memory");
			goto out;
		}
	}
	if ((rc = finish(wp, unk, cls, sep, err))) {
		es_err_prefix(err, rc, "%s", dir);
		goto out;
	}
	/* added tokens (special ones are matched in raw text) */
	json_t *added = tj ? json_object_get(tj, "added_tokens") : NULL;
	size_t i;
	json_t *a;
	json_array_foreach(added, i, a) {
		json_t *c = json_object_get(a, "content");
		json_t *id = json_object_get(a, "id");
		if (!json_is_string(c) || !json_is_integer(id))
			continue;
		if ((rc = add_special(wp, json_string_value(c),
				      (int32_t)json_integer_value(id), err)))
			goto out;
	}
out:
	json_decref(tj);
	json_decref(tc);
	if (rc) {
		es_wordpiece_free(wp);
		return rc;
	}
	*out = wp;
	return 0;
}

/* ---- accessors ---- */

size_t es_wordpiece_vocab_size(const es_wordpiece *wp)
{
	return wp->ntokens;
}

const char *es_wordpiece_token(const es_wordpiece *wp, int32_t id)
{
	return id >= 0 && (size_t)id < wp->ntokens ? wp->tokens[id] : NULL;
}

int32_t es_wordpiece_unk_id(const es_wordpiece *wp)
{
	return wp->unk;
}

int32_t es_wordpiece_cls_id(const es_wordpiece *wp)
{
	return wp->cls;
}

int32_t es_wordpiece_sep_id(const es_wordpiece *wp)
{
	return wp->sep;
}

int es_wordpiece_is_special(const es_wordpiece *wp, int32_t id)
{
	return id >= 0 && (size_t)id < wp->ntokens && wp->special[id];
}

const es_wordpiece_opts *es_wordpiece_options(const es_wordpiece *wp)
{
	return &wp->opts;
}

/* ---- character classes ---- */

/* Rust's char::is_whitespace (the White_Space property). */
static int is_ws(int32_t c)
{
	return (c >= 0x09 && c <= 0x0d) || c == 0x20 || c == 0x85 || c == 0xa0 ||
	       c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 ||
	       c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

/* tokenizers' is_control: "other" categories except tab/LF/CR. */
static int is_control(int32_t c)
{
	if (c == '\t' || c == '\n' || c == '\r')
		return 0;
	utf8proc_category_t k = utf8proc_category(c);
	return k == UTF8PROC_CATEGORY_CC || k == UTF8PROC_CATEGORY_CF ||
	       k == UTF8PROC_CATEGORY_CO || k == UTF8PROC_CATEGORY_CS;
}

static int is_cjk(int32_t c)
{
	return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
	       (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
	       (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
	       (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

static int is_punct(int32_t c)
{
	if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
	    (c >= 123 && c <= 126))
		return 1;
	utf8proc_category_t k = utf8proc_category(c);
	return k >= UTF8PROC_CATEGORY_PC && k <= UTF8PROC_CATEGORY_PO;
}

/* ---- growable buffers ---- */

typedef struct cpbuf {
	int32_t *v;
	size_t n, cap;
} cpbuf;

static int cp_push(cpbuf *b, int32_t c)
{
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 256;
		int32_t *nv = realloc(b->v, cap * sizeof *nv);
		if (!nv)
			return ES_ENOMEM;
		b->v = nv;
		b->cap = cap;
	}
	b->v[b->n++] = c;
	return 0;
}

/* ---- normalisation of one raw segment (no special tokens inside) ---- */

/* Clean + CJK spacing + accents + lowercase; result in *out. */
static int normalize(const es_wordpiece *wp, const char *s, size_t len,
		     cpbuf *out, es_error *err)
{
	const es_wordpiece_opts *o = &wp->opts;
	int strip = o->strip_accents < 0 ? o->lowercase : o->strip_accents;
	cpbuf a = {0};
	int rc = 0;
	size_t off = 0;
	while (off < len) {
		int32_t c;
		utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + off,
						      (utf8proc_ssize_t)(len - off), &c);
		if (k <= 0 || c < 0) {
			rc = es_err(err, ES_EINVAL, "invalid UTF-8 at byte %zu", off);
			goto out;
		}
		off += (size_t)k;
		if (o->clean_text) {
			if (c == 0 || c == 0xfffd || is_control(c))
				continue;
			if (is_ws(c))
				c = ' ';
		}
		if (o->handle_chinese_chars && is_cjk(c)) {
			if (cp_push(&a, ' ') || cp_push(&a, c) || cp_push(&a, ' '))
				goto nomem;
		} else if (cp_push(&a, c)) {
			goto nomem;
		}
	}
	if (strip && a.n) {
		/* NFD over the whole text (canonical order), then drop Mn */
		size_t blen = a.n * 4;
		utf8proc_uint8_t *u8 = malloc(blen + 1);
		if (!u8)
			goto nomem;
		size_t ul = 0;
		for (size_t i = 0; i < a.n; i++)
			ul += (size_t)utf8proc_encode_char(a.v[i], u8 + ul);
		utf8proc_ssize_t need = utf8proc_decompose(u8, (utf8proc_ssize_t)ul, NULL, 0,
							   UTF8PROC_DECOMPOSE);
		int32_t *d = need > 0 ? malloc((size_t)need * sizeof *d) : NULL;
		if (need > 0 && !d) {
			free(u8);
			goto nomem;
		}
		utf8proc_ssize_t got = need > 0 ? utf8proc_decompose(
			u8, (utf8proc_ssize_t)ul, d, need, UTF8PROC_DECOMPOSE) : need;
		free(u8);
		if (got < 0) {
			free(d);
			rc = es_err(err, ES_EINVAL, "text cannot be normalised: %s",
				    utf8proc_errmsg(got));
			goto out;
		}
		size_t m = 0;
		for (utf8proc_ssize_t i = 0; i < got; i++)
			if (utf8proc_category(d[i]) != UTF8PROC_CATEGORY_MN)
				d[m++] = d[i];
		free(a.v);
		a.v = d;
		a.n = m;
		a.cap = (size_t)need;
	}
	for (size_t i = 0; i < a.n; i++) {
		int32_t c = a.v[i];
		if (o->lowercase) {
			if (c == 0x130) { /* full lowercase mapping: i + dot above */
				if (cp_push(out, 'i') || cp_push(out, 0x307))
					goto nomem;
				continue;
			}
			c = utf8proc_tolower(c);
		}
		if (cp_push(out, c))
			goto nomem;
	}
	goto out;
nomem:
	rc = es_err(err, ES_ENOMEM, "out of memory");
out:
	free(a.v);
	return rc;
}

/* ---- WordPiece ---- */

typedef struct idbuf {
	int32_t *v;
	size_t n, cap;
} idbuf;

static int id_push(idbuf *b, int32_t id)
{
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 64;
		int32_t *nv = realloc(b->v, cap * sizeof *nv);
		if (!nv)
			return ES_ENOMEM;
		b->v = nv;
		b->cap = cap;
	}
	b->v[b->n++] = id;
	return 0;
}

/* One pre-tokenized word (nchars code points) -> pieces. */
static int wordpiece_word(const es_wordpiece *wp, const int32_t *cps,
			  size_t nchars, idbuf *out)
{
	if (nchars > wp->opts.max_input_chars_per_word)
		return id_push(out, wp->unk);
	char word[MAX_PIECE_BYTES];
	size_t bound[MAX_PIECE_BYTES + 1]; /* byte offset of each char */
	size_t wl = 0;
	if (nchars * 4 + wp->prefix_len >= sizeof word)
		return id_push(out, wp->unk);
	for (size_t i = 0; i < nchars; i++) {
		bound[i] = wl;
		wl += (size_t)utf8proc_encode_char(cps[i], (utf8proc_uint8_t *)word + wl);
	}
	bound[nchars] = wl;
	size_t mark = out->n;
	char key[MAX_PIECE_BYTES + 16];
	size_t start = 0; /* in chars */
	while (start < nchars) {
		int32_t found = -1;
		size_t end;
		for (end = nchars; end > start; end--) {
			size_t bl = bound[end] - bound[start];
			const char *p = word + bound[start];
			if (start > 0) {
				memcpy(key, wp->prefix, wp->prefix_len);
				memcpy(key + wp->prefix_len, p, bl);
				p = key;
				bl += wp->prefix_len;
			}
			found = es_wordpiece_id(wp, p, bl);
			if (found >= 0)
				break;
		}
		if (found < 0) {
			out->n = mark;
			return id_push(out, wp->unk);
		}
		if (id_push(out, found))
			return ES_ENOMEM;
		start = end;
	}
	return 0;
}

/* Normalised code points -> words -> pieces. */
static int pretokenize(const es_wordpiece *wp, const cpbuf *t, idbuf *out)
{
	size_t i = 0, n = t->n;
	while (i < n) {
		int32_t c = t->v[i];
		if (is_ws(c)) {
			i++;
			continue;
		}
		if (is_punct(c)) {
			if (wordpiece_word(wp, &t->v[i], 1, out))
				return ES_ENOMEM;
			i++;
			continue;
		}
		size_t j = i;
		while (j < n && !is_ws(t->v[j]) && !is_punct(t->v[j]))
			j++;
		if (wordpiece_word(wp, &t->v[i], j - i, out))
			return ES_ENOMEM;
		i = j;
	}
	return 0;
}

static int segment(const es_wordpiece *wp, const char *s, size_t len,
		   idbuf *out, es_error *err)
{
	if (len == 0)
		return 0;
	cpbuf t = {0};
	int rc = normalize(wp, s, len, &t, err);
	if (!rc && pretokenize(wp, &t, out))
		rc = es_err(err, ES_ENOMEM, "out of memory");
	free(t.v);
	return rc;
}

int es_wordpiece_tokenize(const es_wordpiece *wp, const char *text, size_t len,
			  int32_t **ids, size_t *n, es_error *err)
{
	idbuf out = {0};
	int rc = 0;
	size_t seg = 0, pos = 0;
	*ids = NULL;
	*n = 0;
	/* split out special tokens written literally (leftmost, longest) */
	while (pos < len) {
		size_t best = 0;
		int32_t best_id = -1;
		for (size_t a = 0; a < wp->nadded; a++) {
			size_t al = strlen(wp->added[a]);
			if (al > best && al <= len - pos && wp->added[a][0] == text[pos] &&
			    memcmp(text + pos, wp->added[a], al) == 0) {
				best = al;
				best_id = wp->added_ids[a];
			}
		}
		if (best_id < 0) {
			pos++;
			continue;
		}
		if ((rc = segment(wp, text + seg, pos - seg, &out, err)))
			goto out;
		if (id_push(&out, best_id)) {
			rc = es_err(err, ES_ENOMEM, "out of memory");
			goto out;
		}
		pos += best;
		seg = pos;
	}
	rc = segment(wp, text + seg, len - seg, &out, err);
out:
	if (rc) {
		free(out.v);
		return rc;
	}
	*ids = out.v;
	*n = out.n;
	return 0;
}

int es_wordpiece_encode(const es_wordpiece *wp, const char *text, size_t len,
			uint32_t max_len, int32_t **ids, uint32_t *n,
			uint32_t *total, es_error *err)
{
	*ids = NULL;
	*n = 0;
	if (max_len < 2)
		return es_err(err, ES_EINVAL, "max_len %u leaves no room for [CLS]/[SEP]",
			      max_len);
	int32_t *p = NULL;
	size_t np = 0;
	int rc = es_wordpiece_tokenize(wp, text, len, &p, &np, err);
	if (rc)
		return rc;
	size_t keep = np < (size_t)max_len - 2 ? np : (size_t)max_len - 2;
	int32_t *v = malloc((keep + 2) * sizeof *v);
	if (!v) {
		free(p);
		return es_err(err, ES_ENOMEM, "out of memory");
	}
	v[0] = wp->cls;
	if (keep)
		memcpy(v + 1, p, keep * sizeof *v);
	v[keep + 1] = wp->sep;
	free(p);
	*ids = v;
	*n = (uint32_t)(keep + 2);
	if (total)
		*total = np + 2 > UINT32_MAX ? UINT32_MAX : (uint32_t)(np + 2);
	return 0;
}
