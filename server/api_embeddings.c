/*
 * api_embeddings.c — POST /v1/embeddings (OpenAI's request and response),
 * /v1/similarity and /v1/tokenize.
 *
 * /v1/embeddings follows OpenAI exactly so that an OpenAI client library
 * works unchanged: `input` a string or an array of strings (token-id arrays
 * are a 422: this server has no shared token ids), `encoding_format`
 * float | base64 (little-endian float32, what the Python and JS clients ask
 * for by default), `dimensions` up to the model's (a smaller one keeps the
 * first `dimensions` components and re-normalises them to unit length:
 * Matryoshka truncation, as OpenAI's text-embedding-3, TEI, Infinity and
 * Ollama do), unknown fields ignored as OpenAI's own server tolerates new
 * client fields.  Token-id input (what OpenAI accepts from tiktoken) is a
 * 422 that says to send the text: ids of OpenAI's tokenizer mean nothing to
 * this server's models.
 * Extension: `"truncate": false` makes a text longer than the model's
 * max_seq_length a 422 instead of being cut (BERT models).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "simd.h"

/* What a token-id input gets told (%s: where the ids were). */
#define TOKEN_IDS_MSG                                                                  \
	"%s holds token ids; this server tokenizes text with its own model, so "         \
	"send the text itself: a string or an array of strings (LangChain Python: "      \
	"OpenAIEmbeddings(check_embedding_ctx_length=False); LlamaIndex and the OpenAI " \
	"clients send text already)"

/* Collect `input` (string or array of strings) into texts/lens. */
static int collect_inputs(const api_ctx *ctx, const json_t *input,
			  const char ***texts, size_t **lens, size_t *n,
			  api_response *out)
{
	*texts = NULL;
	*lens = NULL;
	*n = 0;
	if (!input || json_is_null(input)) {
		api_error(out, 400, "input", "missing_field", "'input' is required");
		return -1;
	}
	size_t cnt;
	if (json_is_string(input)) {
		cnt = 1;
	} else if (json_is_array(input)) {
		cnt = json_array_size(input);
		if (cnt == 0) {
			api_error(out, 422, "input", "empty_input",
				  "'input' must not be an empty array");
			return -1;
		}
		if (cnt > ctx->limits.max_inputs) {
			api_error(out, 422, "input", "too_many_inputs",
				  "'input' has %zu texts; the limit is %u per request", cnt,
				  ctx->limits.max_inputs);
			return -1;
		}
	} else if (json_is_integer(input)) {
		api_error(out, 422, "input", "token_input_unsupported", TOKEN_IDS_MSG, "'input'");
		return -1;
	} else {
		api_error(out, 400, "input", "invalid_type",
			  "'input' must be a string or an array of strings");
		return -1;
	}
	const char **t = malloc(cnt * sizeof *t);
	size_t *l = malloc(cnt * sizeof *l);
	if (!t || !l) {
		free(t);
		free(l);
		api_error(out, 503, NULL, "out_of_memory", "out of memory");
		return -1;
	}
	for (size_t i = 0; i < cnt; i++) {
		const json_t *v = json_is_string(input) ? input : json_array_get(input, i);
		if (!json_is_string(v)) {
			char what[48];
			snprintf(what, sizeof what, "input[%zu]", i);
			if (json_is_integer(v) || json_is_array(v))
				api_error(out, 422, "input", "token_input_unsupported",
					  TOKEN_IDS_MSG, json_is_integer(v) ? "'input'" : what);
			else
				api_error(out, 400, "input", "invalid_type",
					  "input[%zu] must be a string", i);
			free(t);
			free(l);
			return -1;
		}
		t[i] = json_string_value(v);
		l[i] = json_string_length(v);
	}
	*texts = t;
	*lens = l;
	*n = cnt;
	return 0;
}

/* Matryoshka truncation in place: the first odim components of each of the
 * n dim-vectors, packed to stride odim and scaled to unit length (a vector
 * whose first odim components are all zero stays zero). */
static void truncate_vectors(float *vecs, size_t n, uint32_t dim, uint32_t odim)
{
	for (size_t i = 0; i < n; i++) {
		float *dst = vecs + i * odim;
		memmove(dst, vecs + i * dim, odim * sizeof *dst);
		double ss = 0;
		for (uint32_t k = 0; k < odim; k++)
			ss += (double)dst[k] * dst[k];
		if (ss > 0) {
			float inv = (float)(1.0 / sqrt(ss));
			for (uint32_t k = 0; k < odim; k++)
				dst[k] *= inv;
		}
	}
}

void api_h_embeddings(api_call *c, api_response *out)
{
	const api_ctx *ctx = c->ctx;
	json_t *j = c->json;
	ju_err e;
	const char *model_name = NULL, *fmt = NULL;
	if (ju_get_str(j, "model", 0, &model_name, NULL, &e) ||
	    ju_get_str(j, "encoding_format", 0, &fmt, NULL, &e)) {
		api_error_ju(out, &e);
		return;
	}
	int b64 = 0, truncate = 1;
	if (ju_get_bool(j, "truncate", 1, &truncate, &e)) {
		api_error_ju(out, &e);
		return;
	}
	if (fmt) {
		if (strcmp(fmt, "base64") == 0) {
			b64 = 1;
		} else if (strcmp(fmt, "float") != 0) {
			api_error(out, 422, "encoding_format", "invalid_value",
				  "'encoding_format' must be 'float' or 'base64' (got '%s')", fmt);
			return;
		}
	}
	const es_encoder *enc = api_pick_model(ctx, model_name, out);
	if (!enc)
		return;
	uint32_t dim = es_encoder_dim(enc), odim = dim; /* odim: what is sent back */
	json_t *dj = json_object_get(j, "dimensions");
	if (dj && !json_is_null(dj)) {
		if (!json_is_integer(dj)) {
			api_error(out, 400, "dimensions", "invalid_type",
				  "'dimensions' must be an integer");
			return;
		}
		json_int_t d = json_integer_value(dj);
		if (d < 1 || d > (json_int_t)dim) {
			api_error(out, 422, "dimensions", "dimension_mismatch",
				  "model '%s' makes %u-dimensional vectors; 'dimensions' must be 1..%u "
				  "(got %lld)", es_encoder_name(enc), dim, dim, (long long)d);
			return;
		}
		odim = (uint32_t)d;
	}
	const char **texts;
	size_t *lens, n;
	if (collect_inputs(ctx, json_object_get(j, "input"), &texts, &lens, &n, out))
		return;
	float *vecs = malloc(n * dim * sizeof *vecs);
	uint64_t tokens = 0;
	if (!vecs) {
		api_error(out, 503, NULL, "out_of_memory", "out of memory");
		goto out;
	}
	if (api_encode_texts_flags(ctx, enc, texts, lens, n, truncate ? 0 : ES_ENC_NO_TRUNCATE,
				   "input", vecs, &tokens, out))
		goto out;
	if (odim < dim)
		truncate_vectors(vecs, n, dim, odim);
	/* Written by hand: this is the hottest route, and jansson's number
	 * formatting (printf per float) was most of its cost. */
	ju_buf b = {0};
	ju_buf_str(&b, "{\"object\":\"list\",\"data\":[");
	for (size_t i = 0; i < n; i++) {
		ju_buf_str(&b, i ? ",{\"object\":\"embedding\",\"index\":"
				 : "{\"object\":\"embedding\",\"index\":");
		ju_buf_u64(&b, i);
		ju_buf_str(&b, ",\"embedding\":");
		if (b64) {
			size_t blen;
			char *s64 = ju_base64(vecs + i * odim, odim * sizeof(float), &blen);
			if (!s64) {
				b.oom = 1;
				break;
			}
			ju_buf_put(&b, "\"", 1);
			ju_buf_put(&b, s64, blen);
			ju_buf_put(&b, "\"", 1);
			free(s64);
		} else {
			ju_buf_floats(&b, vecs + i * odim, odim);
		}
		ju_buf_put(&b, "}", 1);
	}
	ju_buf_str(&b, "],\"model\":");
	ju_buf_json_string(&b, es_encoder_name(enc));
	ju_buf_str(&b, ",\"usage\":{\"prompt_tokens\":");
	ju_buf_u64(&b, tokens);
	ju_buf_str(&b, ",\"total_tokens\":");
	ju_buf_u64(&b, tokens);
	ju_buf_str(&b, "}}");
	api_ok_text(out, &b);
out:
	free(vecs);
	free(texts);
	free(lens);
}


/* Vector of a word or a text into v; on error writes out, returns -1. */
static int one_vector(const api_ctx *ctx, const es_encoder *enc, int word,
		      const json_t *s, const char *param, float *v,
		      api_response *out)
{
	if (!json_is_string(s)) {
		api_error(out, 400, param, "invalid_type", "'%s' must be a string", param);
		return -1;
	}
	const char *t = json_string_value(s);
	size_t len = json_string_length(s);
	if (!word)
		return api_encode_texts(ctx, enc, &t, &len, 1, param, v, NULL, out);
	es_error err;
	es_error_clear(&err);
	int rc = es_encoder_word_vector(enc, t, len, v, NULL, &err);
	if (rc == ES_ENOTFOUND) {
		api_error(out, 422, param, "word_not_found", "%s: %s", param,
			  err.msg[0] ? err.msg : "no vector for this word");
		return -1;
	}
	if (rc) {
		api_error_es(out, rc, &err, param);
		return -1;
	}
	return 0;
}

void api_h_similarity(api_call *c, api_response *out)
{
	static const char *const keys[] = {"a", "b", "pairs", "model", "kind", NULL};
	ju_err e;
	json_t *j = c->json;
	const char *model_name = NULL, *kind = NULL;
	if (ju_check_keys(j, keys, NULL, &e) ||
	    ju_get_str(j, "model", 0, &model_name, NULL, &e) ||
	    ju_get_str(j, "kind", 0, &kind, NULL, &e)) {
		api_error_ju(out, &e);
		return;
	}
	int word = 0;
	if (kind && strcmp(kind, "word") == 0)
		word = 1;
	else if (kind && strcmp(kind, "text") != 0) {
		api_error(out, 422, "kind", "invalid_value",
			  "'kind' must be 'text' or 'word' (got '%s')", kind);
		return;
	}
	const es_encoder *enc = api_pick_model(c->ctx, model_name, out);
	if (!enc)
		return;
	uint32_t dim = es_encoder_dim(enc);
	json_t *pairs = json_object_get(j, "pairs");
	json_t *a = json_object_get(j, "a"), *b = json_object_get(j, "b");
	float *va = malloc(2 * dim * sizeof *va);
	if (!va) {
		api_error(out, 503, NULL, "out_of_memory", "out of memory");
		return;
	}
	float *vb = va + dim;
	if (pairs) {
		if (a || b) {
			api_error(out, 400, "pairs", "invalid_request",
				  "send either 'a' and 'b' or 'pairs', not both");
			goto out;
		}
		if (!json_is_array(pairs)) {
			api_error(out, 400, "pairs", "invalid_type",
				  "'pairs' must be an array of [a, b] string pairs");
			goto out;
		}
		if (json_array_size(pairs) > c->ctx->limits.max_inputs) {
			api_error(out, 422, "pairs", "too_many_inputs",
				  "'pairs' has %zu entries; the limit is %u",
				  json_array_size(pairs), c->ctx->limits.max_inputs);
			goto out;
		}
		json_t *res = json_array();
		for (size_t i = 0; i < json_array_size(pairs); i++) {
			json_t *p = json_array_get(pairs, i);
			char pa[48];
			snprintf(pa, sizeof pa, "pairs[%zu]", i);
			if (!json_is_array(p) || json_array_size(p) != 2) {
				json_decref(res);
				api_error(out, 400, pa, "invalid_type",
					  "'%s' must be a [a, b] pair of strings", pa);
				goto out;
			}
			if (one_vector(c->ctx, enc, word, json_array_get(p, 0), pa, va, out) ||
			    one_vector(c->ctx, enc, word, json_array_get(p, 1), pa, vb, out)) {
				json_decref(res);
				goto out;
			}
			json_array_append_new(res, json_real(simd_cosine(va, vb, dim)));
		}
		api_ok(out, 200, json_pack("{s:o, s:s}", "result", res, "model",
					   es_encoder_name(enc)));
		goto out;
	}
	if (!a || !b) {
		api_error(out, 400, a ? "b" : "a", "missing_field",
			  "send 'a' and 'b' (two texts or words), or 'pairs'");
		goto out;
	}
	if (one_vector(c->ctx, enc, word, a, "a", va, out) ||
	    one_vector(c->ctx, enc, word, b, "b", vb, out))
		goto out;
	api_ok(out, 200, json_pack("{s:{s:f}, s:s}", "result", "score",
				   (double)simd_cosine(va, vb, dim), "model", es_encoder_name(enc)));
out:
	free(va);
}

typedef struct tok_ctx {
	json_t *arr;
} tok_ctx;

static int tok_cb(void *ctx, const char *tok, size_t len, int32_t id, unsigned flags)
{
	tok_ctx *t = ctx;
	json_t *o = json_pack("{s:s%, s:i, s:b, s:b, s:b, s:b}", "token", tok, len, "id",
			      (int)id, "known", (flags & ES_TOK_KNOWN) != 0, "subword",
			      (flags & ES_TOK_SUBWORD) != 0, "unknown",
			      (flags & ES_TOK_UNKNOWN) != 0, "special",
			      (flags & ES_TOK_SPECIAL) != 0);
	if (!o)
		return ES_ENOMEM;
	json_array_append_new(t->arr, o);
	return 0;
}

void api_h_tokenize(api_call *c, api_response *out)
{
	static const char *const keys[] = {"input", "model", NULL};
	ju_err e;
	const char *text = NULL, *model_name = NULL;
	size_t len = 0;
	if (ju_check_keys(c->json, keys, NULL, &e) ||
	    ju_get_str(c->json, "input", 1, &text, &len, &e) ||
	    ju_get_str(c->json, "model", 0, &model_name, NULL, &e)) {
		api_error_ju(out, &e);
		return;
	}
	const es_encoder *enc = api_pick_model(c->ctx, model_name, out);
	if (!enc)
		return;
	size_t chars = ju_utf8_chars(text, len);
	if (chars > c->ctx->limits.max_input_chars) {
		api_error(out, 422, "input", "input_too_long",
			  "'input' has %zu characters; the limit is %u", chars,
			  c->ctx->limits.max_input_chars);
		return;
	}
	tok_ctx t = {json_array()};
	es_error err;
	es_error_clear(&err);
	int rc = es_encoder_tokenize(enc, text, len, tok_cb, &t, &err);
	if (rc) {
		json_decref(t.arr);
		api_error_es(out, rc, &err, "input");
		return;
	}
	size_t n = json_array_size(t.arr);
	api_ok(out, 200, json_pack("{s:{s:o, s:I}, s:s}", "result", "tokens", t.arr, "count",
				   (json_int_t)n, "model", es_encoder_name(enc)));
}
