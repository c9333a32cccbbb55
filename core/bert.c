/*
 * bert.c — BERT forward pass and sentence-transformers pooling (bert.h).
 *
 * Weights are converted to float32 at load (F16/BF16 files are widened once)
 * and packed for core/gemm as [in x out] products, so Y = X W^T streams each
 * weight panel once per block of rows, with bias, GELU or the residual
 * applied in the product's epilogue.  Q/K/V of each layer are one [H x 3H]
 * product.  Attention packs K^T / sqrt(d) and V of one (text, head) into
 * the worker's scratch and uses the same kernels.
 *
 * Scratch: qkv [T x 3H], ctx [T x H], tmp [T x H], ffn [T x I] and, per
 * worker, an [L x L] score matrix with packed K^T and V, for a group of T
 * packed tokens, in one arena kept for later calls (SCRATCH_KEEP at most).
 * Texts are processed in groups of at most GROUP_TOKENS tokens so scratch
 * stays bounded for any batch size.
 */
#include "bert.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "blas.h"
#include "gemm.h"
#include "safetensors.h"

#define GROUP_TOKENS 4096
/* A batch with a pool is cut into one run of texts per worker (each on one
 * thread, no barriers) when every worker gets at least this many tokens;
 * below, each product is split by columns across the pool instead
 * (measured: bench/RESULTS.md, issue 23).  EMBEDSRV_ROW_SPLIT_TOKENS
 * overrides it for benchmarks (0: always split a batch of 2+ texts). */
#define ROW_SPLIT_TOKENS 48

/* snprintf into a path buffer; an over-long path becomes "" (and then fails
 * to open with a clear message naming the file). */
#define PATHF(buf, ...)                                                       \
	do {                                                                  \
		int pathf_n_ = snprintf(buf, sizeof buf, __VA_ARGS__);        \
		if (pathf_n_ < 0 || (size_t)pathf_n_ >= sizeof buf)           \
			buf[0] = 0;                                           \
	} while (0)


typedef struct bert_layer {
	/* weights as packed [in x out] products (core/gemm) */
	es_gemm_b *wqkv; float *bqkv; /* [H x 3H], [3H] */
	es_gemm_b *wo; float *bo;     /* [H x H], [H] */
	float *ln1_g, *ln1_b;
	es_gemm_b *w1; float *b1;     /* [H x FF], [FF] */
	es_gemm_b *w2; float *b2;     /* [FF x H], [H] */
	float *ln2_g, *ln2_b;
} bert_layer;

/* Scratch memory of one forward call, kept for the next: fresh multi-MB
 * buffers cost a page fault per 4 KiB on first touch (~8% of a batch). */
typedef struct scratch {
	struct scratch *next;
	size_t floats;
	float *mem; /* 64-byte aligned */
} scratch;

#define SCRATCH_KEEP 2 /* arenas kept between calls (at most) */

struct es_bert {
	es_bert_config cfg;
	pthread_mutex_t scratch_mu;
	scratch *spare; /* SCRATCH_KEEP at most, under scratch_mu */
	unsigned nspare;
	es_wordpiece *wp;
	float *word, *pos, *type0; /* [V x H], [P x H], [H] */
	float *ln_g, *ln_b;
	bert_layer *layer;
	uint32_t max_seq;
	unsigned pooling;
	int normalize;
	int lowercase_input; /* sentence_bert_config do_lower_case */
};


/* ---- config files ---- */

static int load_json(const char *path, int optional, json_t **out, es_error *err)
{
	*out = NULL;
	FILE *f = fopen(path, "rb");
	if (!f) {
		if (optional)
			return 0;
		return es_err(err, ES_ENOTFOUND, "%s: cannot open", path);
	}
	json_error_t jerr;
	json_t *j = json_loadf(f, 0, &jerr);
	fclose(f);
	if (!j || !json_is_object(j)) {
		json_decref(j);
		return es_err(err, ES_ECORRUPT, "%s: not a JSON object: %s", path,
			      j ? "wrong type" : jerr.text);
	}
	*out = j;
	return 0;
}

static int cfg_uint(json_t *cfg, const char *path, const char *key, uint32_t lo,
		    uint32_t hi, uint32_t *dst, es_error *err)
{
	json_t *v = json_object_get(cfg, key);
	if (!json_is_integer(v) || json_integer_value(v) < lo ||
	    json_integer_value(v) > hi)
		return es_err(err, ES_ECORRUPT, "%s: \"%s\" must be an integer in [%u, %u]",
			      path, key, lo, hi);
	*dst = (uint32_t)json_integer_value(v);
	return 0;
}

static int parse_config(const char *dir, es_bert_config *c, es_error *err)
{
	char path[4096];
	PATHF(path, "%s/config.json", dir);
	json_t *j;
	int rc = load_json(path, 0, &j, err);
	if (rc)
		return rc;
	const char *mt = json_string_value(json_object_get(j, "model_type"));
	if (mt && strcmp(mt, "bert") != 0) {
		rc = es_err(err, ES_EUNSUPPORTED,
			    "%s: model_type '%s' is not supported (BERT only)", path, mt);
		goto out;
	}
	if ((rc = cfg_uint(j, path, "vocab_size", 8, 1u << 22, &c->vocab_size, err)) ||
	    (rc = cfg_uint(j, path, "hidden_size", 1, 1u << 14, &c->hidden, err)) ||
	    (rc = cfg_uint(j, path, "num_hidden_layers", 1, 256, &c->layers, err)) ||
	    (rc = cfg_uint(j, path, "num_attention_heads", 1, 1024, &c->heads, err)) ||
	    (rc = cfg_uint(j, path, "intermediate_size", 1, 1u << 16, &c->intermediate, err)) ||
	    (rc = cfg_uint(j, path, "max_position_embeddings", 2, 1u << 16, &c->max_position, err)))
		goto out;
	c->type_vocab = 2;
	if (json_object_get(j, "type_vocab_size") &&
	    (rc = cfg_uint(j, path, "type_vocab_size", 1, 1024, &c->type_vocab, err)))
		goto out;
	if (c->hidden % c->heads) {
		rc = es_err(err, ES_ECORRUPT,
			    "%s: hidden_size %u is not a multiple of num_attention_heads %u",
			    path, c->hidden, c->heads);
		goto out;
	}
	c->ln_eps = 1e-12f;
	json_t *eps = json_object_get(j, "layer_norm_eps");
	if (json_is_number(eps)) {
		double e = json_number_value(eps);
		if (!(e > 0 && e < 1)) {
			rc = es_err(err, ES_ECORRUPT, "%s: layer_norm_eps %g out of range",
				    path, e);
			goto out;
		}
		c->ln_eps = (float)e;
	}
	const char *act = json_string_value(json_object_get(j, "hidden_act"));
	c->gelu_tanh = 0;
	if (act && (strcmp(act, "gelu_new") == 0 || strcmp(act, "gelu_pytorch_tanh") == 0))
		c->gelu_tanh = 1;
	else if (act && strcmp(act, "gelu") != 0) {
		rc = es_err(err, ES_EUNSUPPORTED,
			    "%s: hidden_act '%s' is not supported (gelu, gelu_new)", path, act);
		goto out;
	}
	const char *pe = json_string_value(json_object_get(j, "position_embedding_type"));
	if (pe && strcmp(pe, "absolute") != 0) {
		rc = es_err(err, ES_EUNSUPPORTED,
			    "%s: position_embedding_type '%s' is not supported", path, pe);
		goto out;
	}
out:
	json_decref(j);
	return rc;
}

/* Pooling flags from 1_Pooling/config.json (classic booleans or the newer
 * "pooling_mode" string). */
static int parse_pooling(const char *path, unsigned *pool, es_error *err)
{
	json_t *j;
	int rc = load_json(path, 0, &j, err);
	if (rc)
		return rc;
	unsigned p = 0;
	json_t *mode = json_object_get(j, "pooling_mode");
	if (json_is_string(mode)) {
		const char *m = json_string_value(mode);
		if (strcmp(m, "mean") == 0)
			p = ES_BERT_POOL_MEAN;
		else if (strcmp(m, "cls") == 0)
			p = ES_BERT_POOL_CLS;
		else if (strcmp(m, "max") == 0)
			p = ES_BERT_POOL_MAX;
		else {
			rc = es_err(err, ES_EUNSUPPORTED,
				    "%s: pooling_mode '%s' is not supported (mean, cls, max)",
				    path, m);
			goto out;
		}
	} else {
		if (json_is_true(json_object_get(j, "pooling_mode_cls_token")))
			p |= ES_BERT_POOL_CLS;
		if (json_is_true(json_object_get(j, "pooling_mode_max_tokens")))
			p |= ES_BERT_POOL_MAX;
		if (json_is_true(json_object_get(j, "pooling_mode_mean_tokens")))
			p |= ES_BERT_POOL_MEAN;
		const char *unsup[] = {"pooling_mode_mean_sqrt_len_tokens",
				       "pooling_mode_weightedmean_tokens",
				       "pooling_mode_lasttoken"};
		for (size_t i = 0; i < 3; i++)
			if (json_is_true(json_object_get(j, unsup[i]))) {
				rc = es_err(err, ES_EUNSUPPORTED, "%s: %s is not supported",
					    path, unsup[i]);
				goto out;
			}
	}
	if (!p) {
		rc = es_err(err, ES_ECORRUPT, "%s: no pooling mode is enabled", path);
		goto out;
	}
	*pool = p;
out:
	json_decref(j);
	return rc;
}

/* modules.json + sentence_bert_config.json + tokenizer_config.json:
 * transformer subfolder, pooling, normalisation, max_seq_length. */
static int parse_st(es_bert *b, const char *dir, char *model_dir, size_t mlen,
		    es_error *err)
{
	char path[4096];
	json_t *mods = NULL, *sbc = NULL, *tc = NULL;
	int rc = 0;
	b->pooling = ES_BERT_POOL_MEAN;
	b->normalize = 0;
	snprintf(model_dir, mlen, "%s", dir);
	PATHF(path, "%s/modules.json", dir);
	FILE *f = fopen(path, "rb");
	if (f) {
		json_error_t jerr;
		mods = json_loadf(f, 0, &jerr);
		fclose(f);
		if (!json_is_array(mods)) {
			rc = es_err(err, ES_ECORRUPT, "%s: not a JSON array%s%s", path,
				    mods ? "" : ": ", mods ? "" : jerr.text);
			goto out;
		}
		size_t i;
		json_t *m;
		int have_pool = 0;
		json_array_foreach(mods, i, m) {
			const char *type = json_string_value(json_object_get(m, "type"));
			const char *mp = json_string_value(json_object_get(m, "path"));
			if (!type)
				continue;
			if (!mp)
				mp = "";
			if (strstr(type, "..") || strstr(mp, "..")) {
				rc = es_err(err, ES_EINVAL, "%s: module path '%s' leaves the folder",
					    path, mp);
				goto out;
			}
			if (strstr(type, "Transformer")) {
				if (mp[0])
					snprintf(model_dir, mlen, "%s/%s", dir, mp);
			} else if (strstr(type, "Pooling")) {
				char pp[4096];
				PATHF(pp, "%s/%s/config.json", dir, mp);
				if ((rc = parse_pooling(pp, &b->pooling, err)))
					goto out;
				have_pool = 1;
			} else if (strstr(type, "Normalize")) {
				b->normalize = 1;
			} else {
				rc = es_err(err, ES_EUNSUPPORTED,
					    "%s: module type '%s' is not supported "
					    "(Transformer, Pooling, Normalize)", path, type);
				goto out;
			}
		}
		if (!have_pool) {
			rc = es_err(err, ES_EUNSUPPORTED, "%s: no Pooling module", path);
			goto out;
		}
	}
	/* max_seq_length: sentence_bert_config.json, else the tokenizer's
	 * model_max_length, capped by the position table */
	uint32_t maxlen = b->cfg.max_position;
	PATHF(path, "%s/sentence_bert_config.json", model_dir);
	if ((rc = load_json(path, 1, &sbc, err)))
		goto out;
	json_t *ml = sbc ? json_object_get(sbc, "max_seq_length") : NULL;
	if (json_is_integer(ml)) {
		if (json_integer_value(ml) < 2) {
			rc = es_err(err, ES_ECORRUPT, "%s: max_seq_length %lld is too small",
				    path, (long long)json_integer_value(ml));
			goto out;
		}
		if (json_integer_value(ml) < maxlen)
			maxlen = (uint32_t)json_integer_value(ml);
	} else {
		PATHF(path, "%s/tokenizer_config.json", model_dir);
		if ((rc = load_json(path, 1, &tc, err)))
			goto out;
		json_t *mm = tc ? json_object_get(tc, "model_max_length") : NULL;
		if (json_is_integer(mm) && json_integer_value(mm) >= 2 &&
		    json_integer_value(mm) < maxlen)
			maxlen = (uint32_t)json_integer_value(mm);
	}
	if (sbc && json_is_true(json_object_get(sbc, "do_lower_case")))
		b->lowercase_input = 1;
	b->max_seq = maxlen;
out:
	json_decref(mods);
	json_decref(sbc);
	json_decref(tc);
	return rc;
}

/* ---- weights ---- */

static int load_w(const es_safetensors *st, const char *name, uint64_t d0,
		  uint64_t d1, float *dst, es_error *err)
{
	uint64_t shape[2] = {d0, d1};
	return es_safetensors_read_f32(st, name, d1 ? 2 : 1, shape, dst, err);
}

/* Load the PyTorch Linear weights [out x in] named names[0..count) (count
 * of them stacked along out, as Q, K and V are) and pack their transpose
 * [in x count*out] for core/gemm. */
static int load_linear(const es_safetensors *st, char names[][256], size_t count,
		       uint64_t nout, uint64_t nin, es_gemm_b **dst, es_error *err)
{
	size_t one = (size_t)(nout * nin);
	float *tmp = malloc(count * one * sizeof(float));
	if (!tmp)
		return es_err(err, ES_ENOMEM, "out of memory loading '%s'", names[0]);
	int rc = 0;
	for (size_t i = 0; i < count && !rc; i++)
		rc = load_w(st, names[i], nout, nin, tmp + i * one, err);
	if (!rc)
		rc = es_gemm_pack(tmp, (size_t)nin, count * (size_t)nout, 1,
				  (size_t)nin, dst, err);
	free(tmp);
	return rc;
}

/* LayerNorm weights are "weight"/"bias" (or "gamma"/"beta" in old files). */
static int load_ln(const es_safetensors *st, const char *prefix, uint32_t h,
		   float *g, float *bb, es_error *err)
{
	char n1[256], n2[256];
	snprintf(n1, sizeof n1, "%s.weight", prefix);
	snprintf(n2, sizeof n2, "%s.bias", prefix);
	if (!es_safetensors_find(st, n1)) {
		char o1[256], o2[256];
		snprintf(o1, sizeof o1, "%s.gamma", prefix);
		snprintf(o2, sizeof o2, "%s.beta", prefix);
		if (es_safetensors_find(st, o1)) {
			int rc = load_w(st, o1, h, 0, g, err);
			return rc ? rc : load_w(st, o2, h, 0, bb, err);
		}
	}
	int rc = load_w(st, n1, h, 0, g, err);
	return rc ? rc : load_w(st, n2, h, 0, bb, err);
}

static float *falloc(size_t n)
{
	return malloc((n ? n : 1) * sizeof(float));
}

static void free_layer(bert_layer *l)
{
	es_gemm_free(l->wqkv);
	free(l->bqkv);
	es_gemm_free(l->wo);
	free(l->bo);
	free(l->ln1_g);
	free(l->ln1_b);
	es_gemm_free(l->w1);
	free(l->b1);
	es_gemm_free(l->w2);
	free(l->b2);
	free(l->ln2_g);
	free(l->ln2_b);
}

void es_bert_free(es_bert *b)
{
	if (!b)
		return;
	es_wordpiece_free(b->wp);
	while (b->spare) {
		scratch *sc = b->spare;
		b->spare = sc->next;
		free(sc->mem);
		free(sc);
	}
	pthread_mutex_destroy(&b->scratch_mu);
	free(b->word);
	free(b->pos);
	free(b->type0);
	free(b->ln_g);
	free(b->ln_b);
	if (b->layer)
		for (uint32_t i = 0; i < b->cfg.layers; i++)
			free_layer(&b->layer[i]);
	free(b->layer);
	free(b);
}

static int load_weights(es_bert *b, const es_safetensors *st, es_error *err)
{
	const es_bert_config *c = &b->cfg;
	size_t H = c->hidden, FF = c->intermediate;
	int rc;
	b->word = falloc((size_t)c->vocab_size * H);
	b->pos = falloc((size_t)c->max_position * H);
	float *types = falloc((size_t)c->type_vocab * H);
	b->type0 = falloc(H);
	b->ln_g = falloc(H);
	b->ln_b = falloc(H);
	b->layer = calloc(c->layers, sizeof *b->layer);
	if (!b->word || !b->pos || !types || !b->type0 || !b->ln_g || !b->ln_b ||
	    !b->layer) {
		free(types);
		return es_err(err, ES_ENOMEM, "out of memory loading the model");
	}
	if ((rc = load_w(st, "embeddings.word_embeddings.weight", c->vocab_size, H, b->word, err)) ||
	    (rc = load_w(st, "embeddings.position_embeddings.weight", c->max_position, H, b->pos, err)) ||
	    (rc = load_w(st, "embeddings.token_type_embeddings.weight", c->type_vocab, H, types, err)) ||
	    (rc = load_ln(st, "embeddings.LayerNorm", (uint32_t)H, b->ln_g, b->ln_b, err))) {
		free(types);
		return rc;
	}
	memcpy(b->type0, types, H * sizeof(float));
	free(types);
	for (uint32_t i = 0; i < c->layers; i++) {
		bert_layer *l = &b->layer[i];
		char n[256], p[128], wn[3][256];
		snprintf(p, sizeof p, "encoder.layer.%u", i);
		l->bqkv = falloc(3 * H);
		l->bo = falloc(H);
		l->ln1_g = falloc(H);
		l->ln1_b = falloc(H);
		l->b1 = falloc(FF);
		l->b2 = falloc(H);
		l->ln2_g = falloc(H);
		l->ln2_b = falloc(H);
		if (!l->bqkv || !l->bo || !l->ln1_g || !l->ln1_b || !l->b1 || !l->b2 ||
		    !l->ln2_g || !l->ln2_b)
			return es_err(err, ES_ENOMEM, "out of memory loading the model");
		const char *qkv[3] = {"query", "key", "value"};
		for (int k = 0; k < 3; k++)
			snprintf(wn[k], sizeof wn[k], "%s.attention.self.%s.weight", p, qkv[k]);
		if ((rc = load_linear(st, wn, 3, H, H, &l->wqkv, err)))
			return rc;
		for (int k = 0; k < 3; k++) {
			snprintf(n, sizeof n, "%s.attention.self.%s.bias", p, qkv[k]);
			if ((rc = load_w(st, n, H, 0, l->bqkv + k * H, err)))
				return rc;
		}
		snprintf(wn[0], sizeof wn[0], "%s.attention.output.dense.weight", p);
		if ((rc = load_linear(st, wn, 1, H, H, &l->wo, err)))
			return rc;
		snprintf(n, sizeof n, "%s.attention.output.dense.bias", p);
		if ((rc = load_w(st, n, H, 0, l->bo, err)))
			return rc;
		snprintf(n, sizeof n, "%s.attention.output.LayerNorm", p);
		if ((rc = load_ln(st, n, (uint32_t)H, l->ln1_g, l->ln1_b, err)))
			return rc;
		snprintf(wn[0], sizeof wn[0], "%s.intermediate.dense.weight", p);
		if ((rc = load_linear(st, wn, 1, FF, H, &l->w1, err)))
			return rc;
		snprintf(n, sizeof n, "%s.intermediate.dense.bias", p);
		if ((rc = load_w(st, n, FF, 0, l->b1, err)))
			return rc;
		snprintf(wn[0], sizeof wn[0], "%s.output.dense.weight", p);
		if ((rc = load_linear(st, wn, 1, H, FF, &l->w2, err)))
			return rc;
		snprintf(n, sizeof n, "%s.output.dense.bias", p);
		if ((rc = load_w(st, n, H, 0, l->b2, err)))
			return rc;
		snprintf(n, sizeof n, "%s.output.LayerNorm", p);
		if ((rc = load_ln(st, n, (uint32_t)H, l->ln2_g, l->ln2_b, err)))
			return rc;
	}
	return 0;
}

int es_bert_open(const char *dir, es_bert **out, es_error *err)
{
	int rc;
	es_safetensors *st = NULL;
	char model_dir[4096], path[4200];
	*out = NULL;
	es_blas_init(); /* OpenBLAS one thread per call: our pool splits work */
	struct stat cs;
	PATHF(path, "%s/config.json", dir);
	if (stat(path, &cs) != 0)
		return es_err(err, ES_ENOTFOUND,
			      "%s: not found; a BERT / sentence-transformers model "
			      "folder needs config.json, model.safetensors and vocab.txt",
			      path);
	es_bert *b = calloc(1, sizeof *b);
	if (!b)
		return es_err(err, ES_ENOMEM, "out of memory");
	pthread_mutex_init(&b->scratch_mu, NULL);
	if ((rc = parse_config(dir, &b->cfg, err)))
		goto out;
	if ((rc = parse_st(b, dir, model_dir, sizeof model_dir, err)))
		goto out;
	if (strcmp(model_dir, dir) != 0) {
		es_bert_config c2;
		if ((rc = parse_config(model_dir, &c2, err)))
			goto out;
		b->cfg = c2;
		if (b->max_seq > c2.max_position)
			b->max_seq = c2.max_position;
	}
	if ((rc = es_wordpiece_open(model_dir, &b->wp, err)))
		goto out;
	if (es_wordpiece_vocab_size(b->wp) > b->cfg.vocab_size) {
		rc = es_err(err, ES_ECORRUPT,
			    "%s: the tokenizer has %zu tokens but vocab_size is %u",
			    model_dir, es_wordpiece_vocab_size(b->wp), b->cfg.vocab_size);
		goto out;
	}
	PATHF(path, "%s/model.safetensors", model_dir);
	rc = es_safetensors_open(path, &st, err);
	if (rc == ES_ENOTFOUND) {
		struct stat sb;
		PATHF(path, "%s/pytorch_model.bin", model_dir);
		if (stat(path, &sb) == 0)
			rc = es_err(err, ES_EUNSUPPORTED,
				    "%s: only model.safetensors is supported; convert "
				    "pytorch_model.bin with the safetensors package", model_dir);
		goto out;
	}
	if (rc)
		goto out;
	if ((rc = load_weights(b, st, err)))
		goto out;
out:
	es_safetensors_free(st);
	if (rc) {
		es_bert_free(b);
		return rc;
	}
	*out = b;
	return 0;
}

const es_bert_config *es_bert_config_of(const es_bert *b)
{
	return &b->cfg;
}

const es_wordpiece *es_bert_tokenizer(const es_bert *b)
{
	return b->wp;
}

uint32_t es_bert_dim(const es_bert *b)
{
	return b->cfg.hidden * (uint32_t)__builtin_popcount(b->pooling);
}

uint32_t es_bert_max_seq_length(const es_bert *b)
{
	return b->max_seq;
}

unsigned es_bert_pooling(const es_bert *b)
{
	return b->pooling;
}

int es_bert_normalizes(const es_bert *b)
{
	return b->normalize;
}

/* ---- forward pass ---- */

typedef struct fwd {
	const es_bert *b;
	const uint32_t *lens;
	const uint32_t *starts; /* first row of each sequence */
	size_t nseq, T;
	float *x, *qkv, *ctx, *tmp, *ffn;
	float *scores;          /* per worker: [maxL x maxL], packed K^T, V */
	size_t score_stride, kp_off, vp_off;
	/* current linear job: y = epi(in w) */
	const es_gemm_b *w;
	const float *in;
	float *y;
	es_gemm_epi epi;
	size_t nblocks;
	/* current LayerNorm job: x = LayerNorm(src) */
	const float *src, *g, *beta;
} fwd;

/* Linear job: the panels of block [begin, end) of the output columns. */
static void linear_range(void *ctx, size_t begin, size_t end, unsigned worker)
{
	(void)worker;
	fwd *f = ctx;
	size_t np = es_gemm_panels(f->w);
	size_t p0 = begin * np / f->nblocks, p1 = end * np / f->nblocks;
	es_gemm_run(f->w, f->T, f->in, es_gemm_rows(f->w), f->y, es_gemm_cols(f->w),
		    p0, p1, &f->epi);
}

/* y = in w + bias, then GELU (gelu) or + res (res, [T x out]). */
static void linear(fwd *f, es_pool *pool, const float *in, const es_gemm_b *w,
		   const float *bias, int gelu, const float *res, float *y)
{
	f->in = in;
	f->w = w;
	f->y = y;
	f->epi.bias = bias;
	f->epi.act = !gelu ? ES_GEMM_ACT_NONE
		     : f->b->cfg.gelu_tanh ? ES_GEMM_ACT_GELU_TANH : ES_GEMM_ACT_GELU;
	f->epi.res = res;
	f->epi.ldres = es_gemm_cols(w);
	unsigned nw = pool ? es_pool_size(pool) : 1;
	size_t np = es_gemm_panels(w);
	f->nblocks = nw < np ? nw : np;
	if (f->nblocks <= 1) {
		f->nblocks = 1;
		linear_range(f, 0, 1, 0);
	} else {
		es_pool_parallel_for(pool, f->nblocks, 1, linear_range, f);
	}
}

/* x[r] = LayerNorm(src[r]) for rows [begin, end). */
static void ln_range(void *ctx, size_t begin, size_t end, unsigned worker)
{
	(void)worker;
	fwd *f = ctx;
	size_t H = f->b->cfg.hidden;
	float eps = f->b->cfg.ln_eps;
	for (size_t r = begin; r < end; r++) {
		const float *in = f->src + r * H;
		es_layernorm(in, f->x + r * H, f->g, f->beta, H, eps);
	}
}

static void layer_norm(fwd *f, es_pool *pool, const float *src, const float *g,
		       const float *beta)
{
	f->src = src;
	f->g = g;
	f->beta = beta;
	es_pool_parallel_for(pool, f->T, 0, ln_range, f);
}

/* Attention for (sequence, head) pairs [begin, end): S = Q K^T / sqrt(d)
 * with K^T (scale folded in) and V packed for core/gemm in the worker's
 * scratch, a row softmax, ctx = S V. */
static void attn_range(void *ctx, size_t begin, size_t end, unsigned worker)
{
	fwd *f = ctx;
	const es_bert_config *c = &f->b->cfg;
	size_t H = c->hidden, nh = c->heads, d = H / nh;
	float scale = 1.0f / sqrtf((float)d);
	float *S = f->scores + (size_t)worker * f->score_stride;
	float *kp = S + f->kp_off, *vp = S + f->vp_off;
	for (size_t job = begin; job < end; job++) {
		size_t s = job / nh, h = job % nh;
		size_t L = f->lens[s], r0 = f->starts[s];
		const float *q = f->qkv + r0 * 3 * H + h * d;
		es_gemm_b kt, v;
		es_gemm_pack_into(&kt, kp, q + H, d, L, 1, 3 * H, scale);
		es_gemm_pack_into(&v, vp, q + 2 * H, L, d, 3 * H, 1, 1.0f);
		es_gemm_run(&kt, L, q, 3 * H, S, L, 0, kt.panels, NULL);
		for (size_t i = 0; i < L; i++)
			es_softmax(S + i * L, L);
		es_gemm_run(&v, L, S, L, f->ctx + r0 * H + h * d, H, 0, v.panels, NULL);
	}
}

/* Embeddings for rows [begin, end). */
typedef struct emb_job {
	const es_bert *b;
	const int32_t *ids;
	const uint32_t *pos; /* position of each row */
	float *x;
} emb_job;

static void emb_range(void *ctx, size_t begin, size_t end, unsigned worker)
{
	(void)worker;
	emb_job *e = ctx;
	size_t H = e->b->cfg.hidden;
	for (size_t r = begin; r < end; r++) {
		const float *w = e->b->word + (size_t)e->ids[r] * H;
		const float *p = e->b->pos + (size_t)e->pos[r] * H;
		float *x = e->x + r * H;
		for (size_t j = 0; j < H; j++)
			x[j] = w[j] + e->b->type0[j] + p[j];
	}
}

static size_t round16(size_t n)
{
	return (n + 15) & ~(size_t)15;
}

/* A scratch arena of at least `floats` floats: the smallest kept one that
 * is big enough, else a new one (NULL when out of memory). */
static scratch *scratch_take(const es_bert *cb, size_t floats)
{
	es_bert *b = (es_bert *)cb; /* the arena list is the one mutable part */
	pthread_mutex_lock(&b->scratch_mu);
	scratch **best = NULL, *sc = NULL;
	for (scratch **pp = &b->spare; *pp; pp = &(*pp)->next)
		if ((*pp)->floats >= floats && (!best || (*pp)->floats < (*best)->floats))
			best = pp;
	if (best) {
		sc = *best;
		*best = sc->next;
		b->nspare--;
	}
	pthread_mutex_unlock(&b->scratch_mu);
	if (sc)
		return sc;
	sc = malloc(sizeof *sc);
	if (!sc || posix_memalign((void **)&sc->mem, 64, floats * sizeof(float))) {
		free(sc);
		return NULL;
	}
	sc->floats = floats;
	return sc;
}

/* Keep sc for later calls, replacing the smallest kept arena when
 * SCRATCH_KEEP are kept already (sc may be NULL). */
static void scratch_give(const es_bert *cb, scratch *sc)
{
	es_bert *b = (es_bert *)cb;
	if (!sc)
		return;
	pthread_mutex_lock(&b->scratch_mu);
	if (b->nspare >= SCRATCH_KEEP) {
		scratch **small = &b->spare;
		for (scratch **pp = &b->spare; *pp; pp = &(*pp)->next)
			if ((*pp)->floats < (*small)->floats)
				small = pp;
		scratch *drop = *small;
		if (drop->floats < sc->floats) {
			*small = drop->next;
			b->nspare--;
		} else {
			drop = sc;
		}
		if (drop != sc) {
			sc->next = b->spare;
			b->spare = sc;
			b->nspare++;
		}
		pthread_mutex_unlock(&b->scratch_mu);
		free(drop->mem);
		free(drop);
		return;
	}
	sc->next = b->spare;
	b->spare = sc;
	b->nspare++;
	pthread_mutex_unlock(&b->scratch_mu);
}

int es_bert_forward(const es_bert *b, const int32_t *ids, const uint32_t *lens,
		    size_t n, float *hidden, float *const *layer_out,
		    es_pool *pool, es_error *err)
{
	const es_bert_config *c = &b->cfg;
	size_t H = c->hidden, FF = c->intermediate, T = 0, maxL = 0;
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		if (lens[i] < 1 || lens[i] > c->max_position)
			return es_err(err, ES_EINVAL,
				      "sequence %zu has %u tokens (1..%u allowed)", i,
				      lens[i], c->max_position);
		T += lens[i];
		maxL = lens[i] > maxL ? lens[i] : maxL;
	}
	for (size_t r = 0; r < T; r++)
		if (ids[r] < 0 || (uint32_t)ids[r] >= c->vocab_size)
			return es_err(err, ES_EINVAL, "token id %d out of range (vocab %u)",
				      ids[r], c->vocab_size);
	if (T == 0)
		return 0;
	unsigned nw = pool ? es_pool_size(pool) : 1;
	fwd f = {0};
	f.b = b;
	f.lens = lens;
	f.nseq = n;
	f.T = T;
	size_t d = H / c->heads;
	f.kp_off = round16(maxL * maxL);
	f.vp_off = f.kp_off + round16(es_gemm_packed_floats(d, maxL));
	f.score_stride = f.vp_off + round16(es_gemm_packed_floats(maxL, d));
	uint32_t *starts = malloc(n * sizeof *starts);
	uint32_t *posv = malloc(T * sizeof *posv);
	size_t off_ctx = round16(T * 3 * H), off_tmp = off_ctx + round16(T * H);
	size_t off_ffn = off_tmp + round16(T * H), off_sc = off_ffn + round16(T * FF);
	scratch *sc = scratch_take(b, off_sc + (size_t)nw * f.score_stride);
	f.x = hidden;
	if (!starts || !posv || !sc) {
		rc = es_err(err, ES_ENOMEM, "out of memory for %zu tokens", T);
		goto out;
	}
	f.qkv = sc->mem;
	f.ctx = sc->mem + off_ctx;
	f.tmp = sc->mem + off_tmp;
	f.ffn = sc->mem + off_ffn;
	f.scores = sc->mem + off_sc;
	f.starts = starts;
	for (size_t i = 0, r = 0; i < n; i++) {
		starts[i] = (uint32_t)r;
		for (uint32_t p = 0; p < lens[i]; p++)
			posv[r++] = p;
	}
	emb_job ej = {b, ids, posv, f.x};
	es_pool_parallel_for(pool, T, 0, emb_range, &ej);
	layer_norm(&f, pool, f.x, b->ln_g, b->ln_b);
	if (layer_out)
		memcpy(layer_out[0], f.x, T * H * sizeof(float));
	for (uint32_t li = 0; li < c->layers; li++) {
		const bert_layer *l = &b->layer[li];
		linear(&f, pool, f.x, l->wqkv, l->bqkv, 0, NULL, f.qkv);
		es_pool_parallel_for(pool, n * c->heads, 1, attn_range, &f);
		linear(&f, pool, f.ctx, l->wo, l->bo, 0, f.x, f.tmp);
		layer_norm(&f, pool, f.tmp, l->ln1_g, l->ln1_b);
		linear(&f, pool, f.x, l->w1, l->b1, 1, NULL, f.ffn);
		linear(&f, pool, f.ffn, l->w2, l->b2, 0, f.x, f.tmp);
		layer_norm(&f, pool, f.tmp, l->ln2_g, l->ln2_b);
		if (layer_out)
			memcpy(layer_out[li + 1], f.x, T * H * sizeof(float));
	}
out:
	free(starts);
	free(posv);
	scratch_give(b, sc);
	return rc;
}

/* ---- sentence encoding ---- */

/* Pool rows [0, L) of h into out (dim floats) and normalise if asked. */
static void pool_rows(const es_bert *b, const float *h, uint32_t L, float *out)
{
	size_t H = b->cfg.hidden;
	float *o = out;
	if (b->pooling & ES_BERT_POOL_CLS) {
		memcpy(o, h, H * sizeof(float));
		o += H;
	}
	if (b->pooling & ES_BERT_POOL_MAX) {
		memcpy(o, h, H * sizeof(float));
		for (uint32_t r = 1; r < L; r++)
			for (size_t j = 0; j < H; j++)
				o[j] = h[r * H + j] > o[j] ? h[r * H + j] : o[j];
		o += H;
	}
	if (b->pooling & ES_BERT_POOL_MEAN) {
		memset(o, 0, H * sizeof(float));
		for (uint32_t r = 0; r < L; r++)
			for (size_t j = 0; j < H; j++)
				o[j] += h[r * H + j];
		for (size_t j = 0; j < H; j++)
			o[j] /= (float)L;
	}
	if (b->normalize) {
		size_t dim = es_bert_dim(b);
		double s = 0;
		for (size_t j = 0; j < dim; j++)
			s += (double)out[j] * out[j];
		/* sentence-transformers: x / max(||x||, 1e-12) */
		double nrm = sqrt(s);
		float inv = (float)(1.0 / (nrm > 1e-12 ? nrm : 1e-12));
		for (size_t j = 0; j < dim; j++)
			out[j] *= inv;
	}
}

/* Lowercase the text the way sentence-transformers' do_lower_case does
 * (str.lower(), applied before the tokenizer).  Returns a malloc'ed copy. */
static int lower_copy(const char *t, size_t len, char **out, size_t *olen,
		      es_error *err);

static size_t split_tokens = ROW_SPLIT_TOKENS;
static pthread_once_t split_once = PTHREAD_ONCE_INIT;

static void split_init(void)
{
	const char *e = getenv("EMBEDSRV_ROW_SPLIT_TOKENS");
	char *end;
	if (e && *e) {
		unsigned long v = strtoul(e, &end, 10);
		if (*end || v > 1000000)
			fprintf(stderr, "embedsrv: EMBEDSRV_ROW_SPLIT_TOKENS=%s is not a "
				"number up to 1000000; using %d\n", e, ROW_SPLIT_TOKENS);
		else
			split_tokens = v;
	}
}

static size_t row_split_tokens(void)
{
	pthread_once(&split_once, split_init);
	return split_tokens;
}

/* Texts [i0, i1) of a tokenised batch, encoded in groups of consecutive
 * texts up to GROUP_TOKENS packed tokens, into out + i0 * dim. */
typedef struct part {
	const es_bert *b;
	int32_t *const *tok;
	const uint32_t *ntok;
	size_t i0, i1;
	float *out;
	es_pool *pool; /* for the products inside each forward; may be NULL */
	int rc;
	es_error err;
} part;

static void encode_part(part *pt)
{
	const es_bert *b = pt->b;
	size_t H = b->cfg.hidden, dim = es_bert_dim(b), all = 0;
	for (size_t k = pt->i0; k < pt->i1; k++)
		all += pt->ntok[k];
	size_t cap = GROUP_TOKENS > b->max_seq ? GROUP_TOKENS : b->max_seq;
	if (all < cap)
		cap = all ? all : 1; /* one group */
	int32_t *ids = malloc(cap * sizeof *ids);
	float *hid = falloc(cap * H);
	pt->rc = 0;
	if (!ids || !hid) {
		pt->rc = es_err(&pt->err, ES_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = pt->i0; i < pt->i1;) {
		size_t j = i, T = 0;
		while (j < pt->i1 && T + pt->ntok[j] <= cap) {
			memcpy(ids + T, pt->tok[j], pt->ntok[j] * sizeof *ids);
			T += pt->ntok[j];
			j++;
		}
		if ((pt->rc = es_bert_forward(b, ids, pt->ntok + i, j - i, hid, NULL,
					      pt->pool, &pt->err)))
			goto out;
		size_t r = 0;
		for (size_t k = i; k < j; k++) {
			pool_rows(b, hid + r * H, pt->ntok[k], pt->out + k * dim);
			r += pt->ntok[k];
		}
		i = j;
	}
out:
	free(ids);
	free(hid);
}

static void part_range(void *ctx, size_t begin, size_t end, unsigned worker)
{
	(void)worker;
	part *parts = ctx;
	for (size_t p = begin; p < end; p++)
		encode_part(&parts[p]);
}

/* The batch cut into one run of consecutive texts per pool worker, of about
 * equal tokens, each encoded on one thread: no barrier inside a forward,
 * at the price of every worker streaming all the weights (which a batch
 * of ROW_SPLIT_TOKENS tokens per worker amortises). */
static int encode_split(const es_bert *b, int32_t *const *tok,
			const uint32_t *ntok, size_t n, size_t all, float *out,
			es_pool *pool, es_error *err)
{
	size_t nw = es_pool_size(pool);
	if (nw > n)
		nw = n;
	part *parts = calloc(nw, sizeof *parts);
	if (!parts)
		return es_err(err, ES_ENOMEM, "out of memory");
	size_t i = 0, done = 0;
	for (size_t p = 0; p < nw; p++) {
		/* texts until this part's share of the tokens, leaving at least
		 * one text for each later part */
		size_t want = all * (p + 1) / nw, i0 = i;
		while (i < n - (nw - 1 - p) && (i == i0 || done + ntok[i] / 2 < want))
			done += ntok[i++];
		parts[p] = (part){b, tok, ntok, i0, i, out, NULL, 0, {0}};
	}
	es_pool_parallel_for(pool, nw, 1, part_range, parts);
	int rc = 0;
	for (size_t p = 0; p < nw && !rc; p++)
		if ((rc = parts[p].rc) && err)
			*err = parts[p].err;
	free(parts);
	return rc;
}

int es_bert_encode_batch(const es_bert *b, const char *const *texts,
			 const size_t *lens, size_t n, unsigned flags,
			 float *out, es_encode_info *infos, es_pool *pool,
			 es_error *err)
{
	int rc = 0;
	int32_t **tok = calloc(n ? n : 1, sizeof *tok);
	uint32_t *ntok = calloc(n ? n : 1, sizeof *ntok);
	if (!tok || !ntok) {
		rc = es_err(err, ES_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		uint32_t total = 0;
		const char *t = texts[i];
		size_t tl = lens ? lens[i] : strlen(t);
		char *low = NULL;
		if (b->lowercase_input) {
			if ((rc = lower_copy(t, tl, &low, &tl, err)))
				goto out;
			t = low;
		}
		rc = es_wordpiece_encode(b->wp, t, tl, b->max_seq, &tok[i], &ntok[i],
					 &total, err);
		free(low);
		if (rc) {
			if (n > 1)
				es_err_prefix(err, rc, "text %zu", i);
			goto out;
		}
		if ((flags & ES_ENC_NO_TRUNCATE) && total > b->max_seq) {
			rc = es_err(err, ES_ERANGE,
				    "%stext has %u tokens; the model takes at most %u "
				    "(send it shorter or allow truncation)",
				    n > 1 ? "a " : "", total, b->max_seq);
			goto out;
		}
		if (infos) {
			infos[i].tokens = ntok[i];
			uint32_t known = 0;
			for (uint32_t k = 0; k < ntok[i]; k++)
				known += tok[i][k] != es_wordpiece_unk_id(b->wp);
			infos[i].known = known;
			infos[i].truncated = total > ntok[i];
			infos[i].empty = 0;
		}
	}
	size_t all = 0;
	for (size_t k = 0; k < n; k++)
		all += ntok[k];
	unsigned nw = pool ? es_pool_size(pool) : 1;
	if (nw > 1 && n >= 2 && all >= row_split_tokens() * nw) {
		rc = encode_split(b, tok, ntok, n, all, out, pool, err);
	} else {
		part pt = {b, tok, ntok, 0, n, out, pool, 0, {0}};
		encode_part(&pt);
		if ((rc = pt.rc) && err)
			*err = pt.err;
	}
out:
	if (tok)
		for (size_t k = 0; k < n; k++)
			free(tok[k]);
	free(tok);
	free(ntok);
	return rc;
}

#include <utf8proc.h>

static int lower_copy(const char *t, size_t len, char **out, size_t *olen,
		      es_error *err)
{
	char *o = malloc(len * 3 + 4);
	if (!o)
		return es_err(err, ES_ENOMEM, "out of memory");
	size_t off = 0, w = 0;
	while (off < len) {
		int32_t c;
		utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)t + off,
						      (utf8proc_ssize_t)(len - off), &c);
		if (k <= 0 || c < 0) {
			free(o);
			return es_err(err, ES_EINVAL, "invalid UTF-8 at byte %zu", off);
		}
		off += (size_t)k;
		if (c == 0x130) {
			w += (size_t)utf8proc_encode_char('i', (utf8proc_uint8_t *)o + w);
			c = 0x307;
		} else {
			c = utf8proc_tolower(c);
		}
		w += (size_t)utf8proc_encode_char(c, (utf8proc_uint8_t *)o + w);
	}
	*out = o;
	*olen = w;
	return 0;
}
