/*
 * api.c — the API context and the helpers every handler shares: response
 * and error construction, model selection, checked batch encoding, point
 * ids, payload hooks.  See api.h / api_internal.h.
 */
#include "api_internal.h"
#include "points.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

double api_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void api_limits_default(api_limits *l)
{
	memset(l, 0, sizeof *l);
	l->max_body_bytes = 16u << 20;
	l->max_inputs = 2048;
	l->max_input_chars = 100000;
	l->max_k = 1000;
	l->max_ef = 10000;
	l->max_points = 10000;
	l->max_searches = 100;
	l->max_json_depth = 32;
	l->timeout_s = 30;
	l->max_connections = 4096;
}

static void *payload_parse(const char *payload, size_t len)
{
	return json_loadb(payload, len, 0, NULL);
}

static void payload_free(void *p)
{
	json_decref(p);
}

static const es_payload_hooks hooks = {payload_parse, payload_free, api_payload_op_compile,
					  api_payload_op_apply, api_payload_op_free,
					  api_filter_extract};

const es_payload_hooks *api_payload_hooks(void)
{
	return &hooks;
}

/* A batcher for every BERT model (static models encode a text in
 * microseconds: queueing would only add latency). */
static int make_batchers(api_ctx *c, const api_config *cfg, es_error *err)
{
	c->batchers = calloc(c->nmodels, sizeof *c->batchers);
	if (!c->batchers)
		return es_err(err, ES_ENOMEM, "out of memory");
	unsigned cpus = es_cpu_count();
	unsigned th = cfg->batch_threads ? cfg->batch_threads : 1;
	unsigned workers = cfg->batch_workers ? cfg->batch_workers
			   : th < cpus ? cpus / th : 1;
	es_batcher_config bc = {cfg->batch_max, cfg->batch_wait_us, workers, th};
	for (size_t i = 0; i < c->nmodels; i++)
		if (es_encoder_kind_of(c->models[i]) == ES_ENCODER_BERT &&
		    es_batcher_new(c->models[i], &bc, &c->batchers[i], err))
			return -1;
	return 0;
}

/* --model-alias NAME=MODEL, each MODEL a loaded model's name. */
static int set_aliases(api_ctx *c, const api_config *cfg, es_error *err)
{
	c->alias_names = calloc(cfg->naliases, sizeof *c->alias_names);
	c->alias_models = calloc(cfg->naliases, sizeof *c->alias_models);
	if (!c->alias_names || !c->alias_models)
		return es_err(err, ES_ENOMEM, "out of memory");
	for (size_t i = 0; i < cfg->naliases; i++) {
		const char *a = cfg->model_aliases[i], *eq = strchr(a, '=');
		if (!eq || eq == a || !eq[1])
			return es_err(err, ES_EINVAL,
				      "model alias '%s' must be NAME=MODEL (e.g. "
				      "text-embedding-3-small=default)", a);
		const es_encoder *enc = NULL;
		for (size_t m = 0; m < c->nmodels; m++)
			if (strcmp(es_encoder_name(c->models[m]), eq + 1) == 0)
				enc = c->models[m];
		if (!enc)
			return es_err(err, ES_EINVAL,
				      "model alias '%s': no loaded model is named '%s' (the default is '%s')",
				      a, eq + 1, es_encoder_name(c->models[0]));
		c->alias_names[i] = strndup(a, (size_t)(eq - a));
		if (!c->alias_names[i])
			return es_err(err, ES_ENOMEM, "out of memory");
		c->alias_models[i] = enc;
		c->naliases = i + 1;
	}
	return 0;
}

int api_ctx_new(const api_config *cfg, api_ctx **out, es_error *err)
{
	if (!cfg->nmodels || !cfg->models || !cfg->registry)
		return es_err(err, ES_EINVAL, "the API needs at least one model and a registry");
	api_ctx *c = calloc(1, sizeof *c);
	if (!c)
		return es_err(err, ES_ENOMEM, "out of memory");
	c->limits = cfg->limits;
	c->models = calloc(cfg->nmodels, sizeof *c->models);
	const char **labels = calloc(api_route_count(), sizeof *labels);
	if (!c->models || !labels)
		goto oom;
	memcpy(c->models, cfg->models, cfg->nmodels * sizeof *c->models);
	c->nmodels = cfg->nmodels;
	if (cfg->api_key && *cfg->api_key) {
		c->api_key = strdup(cfg->api_key);
		if (!c->api_key)
			goto oom;
		c->api_key_len = strlen(c->api_key);
	}
	if (cfg->data_dir) {
		c->data_dir = strdup(cfg->data_dir);
		if (!c->data_dir)
			goto oom;
	}
	c->reg = cfg->registry;
	c->threads = cfg->threads;
	if (cfg->batch_max && make_batchers(c, cfg, err)) {
		free(labels);
		api_ctx_free(c);
		return -1;
	}
	c->no_ui = cfg->no_ui;
	c->read_only = cfg->read_only;
	if (cfg->primary && *cfg->primary && !(c->primary = strdup(cfg->primary)))
		goto oom;
	if (cfg->naliases) {
		int rc = set_aliases(c, cfg, err);
		if (rc) {
			free(labels);
			api_ctx_free(c);
			return rc;
		}
	}
	char (*lab)[96] = calloc(api_route_count(), sizeof *lab);
	if (!lab)
		goto oom;
	for (size_t i = 0; i < api_route_count(); i++) {
		snprintf(lab[i], sizeof lab[i], "%s %s", api_route_method(i), api_route_pattern(i));
		labels[i] = lab[i];
	}
	c->metrics = metrics_new(api_route_count(), labels);
	free(lab);
	free(labels);
	labels = NULL;
	if (!c->metrics)
		goto oom;
	atomic_init(&c->ready, 0);
	c->start_time = api_now();
	*out = c;
	return 0;
oom:
	free(labels);
	api_ctx_free(c);
	return es_err(err, ES_ENOMEM, "out of memory");
}

void api_ctx_free(api_ctx *c)
{
	if (!c)
		return;
	metrics_free(c->metrics);
	for (size_t i = 0; c->batchers && i < c->nmodels; i++)
		es_batcher_free(c->batchers[i]);
	free(c->batchers);
	free(c->models);
	free(c->api_key);
	free(c->data_dir);
	free(c->primary);
	for (size_t i = 0; i < c->naliases; i++)
		free(c->alias_names[i]);
	free(c->alias_names);
	free(c->alias_models);
	free(c);
}

void api_ctx_set_snapshot(api_ctx *ctx,
			  int (*fn)(void *fctx, const char *name, es_error *err),
			  void *fctx)
{
	ctx->snapshot_ctx = fctx;
	ctx->snapshot = fn; /* after its ctx: see api_internal.h */
}

void api_ctx_set_store(api_ctx *ctx, struct es_store *store)
{
	ctx->store = store;
}

void api_ctx_set_follower(api_ctx *ctx, void (*fn)(void *fctx, api_repl_status *st),
			  void *fctx)
{
	ctx->follower_ctx = fctx;
	ctx->follower = fn; /* after its ctx: see api_internal.h */
}

void api_ctx_set_ready(api_ctx *ctx, int ready)
{
	atomic_store(&ctx->ready, ready);
}

api_metrics *api_ctx_metrics(const api_ctx *ctx)
{
	return ctx->metrics;
}

const api_limits *api_ctx_limits(const api_ctx *ctx)
{
	return &ctx->limits;
}

void api_ok(api_response *out, int status, json_t *body)
{
	json_decref(out->body);
	out->status = status;
	out->body = body;
	if (!body) {
		out->status = 503;
		out->body = ju_error_body(503, NULL, "out_of_memory", "out of memory");
	}
}

void api_error(api_response *out, int status, const char *param,
	       const char *code, const char *fmt, ...)
{
	char msg[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	json_decref(out->body);
	free(out->text);
	out->text = NULL;
	out->static_body = NULL;
	out->static_len = 0;
	out->etag = NULL;
	out->status = status;
	out->body = ju_error_body(status, param, code, msg);
}

void api_error_ju(api_response *out, const ju_err *e)
{
	api_error(out, e->status ? e->status : 400, e->param, e->code, "%s", e->msg);
}

void api_error_es(api_response *out, int code, const es_error *err,
		  const char *param)
{
	const char *msg = (err && err->msg[0]) ? err->msg : es_strerror(code);
	api_error(out, ju_status_of(code), param, ju_code_of(code), "%s", msg);
}

int api_array_object(const json_t *v, const char *array, size_t i,
		     const char *const *keys, char *param, size_t n,
		     api_response *out)
{
	snprintf(param, n, "%s[%zu]", array, i);
	if (!json_is_object(v)) {
		api_error(out, 400, param, "invalid_type", "'%s' must be an object", param);
		return -1;
	}
	ju_err e;
	if (ju_check_keys(v, keys, param, &e)) {
		api_error_ju(out, &e);
		return -1;
	}
	return 0;
}

es_collection *api_get_collection(const api_call *c, const char *name,
				  const char *param, api_response *out)
{
	es_collection *col;
	es_error err;
	es_error_clear(&err);
	int rc = es_registry_get(c->ctx->reg, name, &col, &err);
	if (rc) {
		api_error_es(out, rc, &err, param);
		return NULL;
	}
	return col;
}

void api_ok_text(api_response *out, ju_buf *b)
{
	if (b->oom) {
		free(b->s);
		*b = (ju_buf){0};
		api_error(out, 503, NULL, "out_of_memory", "out of memory");
		return;
	}
	json_decref(out->body);
	out->body = NULL;
	free(out->text);
	out->status = 200;
	out->text = b->s;
	out->text_len = b->len;
	out->content_type = "application/json";
	*b = (ju_buf){0};
}

const es_encoder *api_pick_model(const api_ctx *ctx, const char *name,
				 api_response *out)
{
	if (!name || !*name)
		return ctx->models[0];
	for (size_t i = 0; i < ctx->naliases; i++)
		if (strcmp(ctx->alias_names[i], name) == 0)
			return ctx->alias_models[i];
	if (ctx->nmodels == 1)
		return ctx->models[0];
	for (size_t i = 0; i < ctx->nmodels; i++)
		if (strcmp(es_encoder_name(ctx->models[i]), name) == 0)
			return ctx->models[i];
	char list[512] = "";
	size_t used = 0;
	for (size_t i = 0; i < ctx->nmodels && used < sizeof list; i++)
		used += (size_t)snprintf(list + used, sizeof list - used, "%s%s",
					 i ? ", " : "", es_encoder_name(ctx->models[i]));
	api_error(out, 404, "model", "model_not_found",
		  "model '%s' is not loaded (loaded: %s)", name, list);
	return NULL;
}

const es_encoder *api_collection_model(const api_ctx *ctx,
				       const es_collection *col,
				       api_response *out)
{
	const es_collection_params *p = es_collection_get_params(col);
	const es_encoder *enc = NULL;
	if (!p->model[0]) {
		enc = ctx->models[0];
	} else {
		for (size_t i = 0; i < ctx->nmodels; i++)
			if (strcmp(es_encoder_name(ctx->models[i]), p->model) == 0)
				enc = ctx->models[i];
		if (!enc && ctx->nmodels == 1)
			enc = ctx->models[0];
	}
	if (!enc) {
		api_error(out, 422, "text", "model_not_loaded",
			  "collection '%s' encodes text with model '%s', which is not loaded; send vectors instead",
			  es_collection_name(col), p->model);
		return NULL;
	}
	if (es_encoder_dim(enc) != p->dim) {
		api_error(out, 422, "text", "dimension_mismatch",
			  "collection '%s' has dimension %u but model '%s' makes %u-dimensional vectors; send vectors instead",
			  es_collection_name(col), p->dim, es_encoder_name(enc),
			  es_encoder_dim(enc));
		return NULL;
	}
	return enc;
}

static int encode_texts(const api_ctx *ctx, const es_encoder *enc,
			const char *const *texts, const size_t *lens, size_t n,
			unsigned flags, const char *param, float *vecs,
			uint64_t *tokens, unsigned char *empty, api_response *out);

int api_encode_texts(const api_ctx *ctx, const es_encoder *enc,
		     const char *const *texts, const size_t *lens, size_t n,
		     const char *param, float *vecs, uint64_t *tokens,
		     api_response *out)
{
	return encode_texts(ctx, enc, texts, lens, n, 0, param, vecs, tokens, NULL, out);
}

int api_encode_texts_flags(const api_ctx *ctx, const es_encoder *enc,
			   const char *const *texts, const size_t *lens, size_t n,
			   unsigned flags, const char *param, float *vecs,
			   uint64_t *tokens, api_response *out)
{
	return encode_texts(ctx, enc, texts, lens, n, flags, param, vecs, tokens, NULL, out);
}

int api_encode_texts_empty(const api_ctx *ctx, const es_encoder *enc,
			   const char *const *texts, const size_t *lens, size_t n,
			   const char *param, float *vecs, unsigned char *empty,
			   api_response *out)
{
	return encode_texts(ctx, enc, texts, lens, n, 0, param, vecs, NULL, empty, out);
}

static int encode_texts(const api_ctx *ctx, const es_encoder *enc,
			const char *const *texts, const size_t *lens, size_t n,
			unsigned flags, const char *param, float *vecs,
			uint64_t *tokens, unsigned char *empty, api_response *out)
{
	for (size_t i = 0; i < n; i++) {
		size_t chars = ju_utf8_chars(texts[i], lens[i]);
		if (chars > ctx->limits.max_input_chars) {
			api_error(out, 422, param, "input_too_long",
				  "%s[%zu] has %zu characters; the limit is %u", param, i,
				  chars, ctx->limits.max_input_chars);
			return -1;
		}
	}
	es_encode_info stackinfo[16];
	es_encode_info *infos = n <= 16 ? stackinfo : malloc(n * sizeof *infos);
	if (!infos) {
		api_error(out, 503, NULL, "out_of_memory", "out of memory");
		return -1;
	}
	es_error err;
	es_error_clear(&err);
	es_batcher *bat = NULL;
	for (size_t i = 0; ctx->batchers && i < ctx->nmodels; i++)
		if (ctx->models[i] == enc)
			bat = ctx->batchers[i];
	int rc = bat ? es_batcher_encode(bat, texts, lens, n, flags, vecs, infos, &err)
		     : es_encoder_encode_batch(enc, texts, lens, n, flags, vecs, infos, NULL, &err);
	if (rc == ES_ERANGE && (flags & ES_ENC_NO_TRUNCATE)) {
		api_error(out, 422, param, "input_too_long", "%s (\"truncate\": false)",
			  err.msg[0] ? err.msg : "a text is longer than the model's max_seq_length");
		if (infos != stackinfo)
			free(infos);
		return -1;
	}
	if (rc) {
		api_error_es(out, rc, &err, param);
		if (infos != stackinfo)
			free(infos);
		return -1;
	}
	uint64_t t = 0;
	for (size_t i = 0; i < n; i++) {
		t += infos[i].tokens;
		if (empty)
			empty[i] = infos[i].empty != 0;
	}
	if (infos != stackinfo)
		free(infos);
	metrics_add_encoded(ctx->metrics, n, t);
	if (tokens)
		*tokens = t;
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int api_uuid_canonical(const char *s, size_t len, char out[37])
{
	static const int dash[] = {8, 13, 18, 23};
	char hex[32];
	size_t h = 0;
	if (len == 32) {
		memcpy(hex, s, 32);
		h = 32;
	} else if (len == 36) {
		for (size_t i = 0, d = 0; i < 36; i++) {
			if (d < 4 && (int)i == dash[d]) {
				if (s[i] != '-')
					return 0;
				d++;
			} else {
				hex[h++] = s[i];
			}
		}
	} else {
		return 0;
	}
	for (size_t i = 0; i < 32; i++)
		if (hexval(hex[i]) < 0)
			return 0;
	for (size_t i = 0, o = 0; i < 32; i++) {
		if (o == 8 || o == 13 || o == 18 || o == 23)
			out[o++] = '-';
		out[o++] = (char)("0123456789abcdef"[hexval(hex[i])]);
	}
	out[36] = '\0';
	return 1;
}

int api_point_id(const json_t *v, es_point_id *id, const char *param,
		 ju_err *e)
{
	memset(id, 0, sizeof *id);
	if (ju_u64_value(v, &id->num))
		return 0;
	if (json_is_integer(v))
		return ju_fail(e, 422, param, "invalid_id",
			       "'%s' must be an unsigned integer or a string (got %lld)",
			       param, (long long)json_integer_value(v));
	if (json_is_string(v)) {
		char canon[37];
		if (api_uuid_canonical(json_string_value(v), json_string_length(v), canon) &&
		    (json_string_length(v) != 36 ||
		     memcmp(canon, json_string_value(v), 36) != 0) &&
		    json_string_setn((json_t *)v, canon, 36) != 0)
			return ju_fail(e, 503, NULL, "out_of_memory", "out of memory");
		id->is_str = 1;
		id->str = json_string_value(v);
		id->len = json_string_length(v);
		es_error err;
		if (es_point_id_check(id, &err) != 0)
			return ju_fail(e, 422, param, "invalid_id", "'%s': %s", param, err.msg);
		return 0;
	}
	if (json_is_real(v))
		return ju_fail(e, 422, param, "invalid_id",
			       "'%s' must be an unsigned integer (up to 2^64-1) or a string, not a "
			       "fractional number", param);
	return ju_fail(e, 400, param, "invalid_type",
		       "'%s' must be an unsigned integer or a string", param);
}

void api_point_id_from_path(char *seg, size_t *len, es_point_id *out)
{
	char canon[37];
	if (api_uuid_canonical(seg, *len, canon)) {
		memcpy(seg, canon, 37);
		*len = 36;
	}
	es_point_id_from_text(seg, *len, out);
}

json_t *api_point_id_json(const es_point_id *id)
{
	if (id->is_str)
		return json_stringn(id->str, id->len);
	return ju_u64_new(id->num);
}

int api_response_serialize(const api_response *r, char **data, size_t *len)
{
	if (r->text) {
		*data = malloc(r->text_len ? r->text_len : 1);
		if (!*data)
			return ES_ENOMEM;
		memcpy(*data, r->text, r->text_len);
		*len = r->text_len;
		return 0;
	}
	if (r->static_body) {
		*data = malloc(r->static_len ? r->static_len : 1);
		if (!*data)
			return ES_ENOMEM;
		memcpy(*data, r->static_body, r->static_len);
		*len = r->static_len;
		return 0;
	}
	*data = r->body ? ju_dump(r->body, len) : NULL;
	if (!*data)
		return ES_ENOMEM;
	ju_u64_unmark(*data, len); /* ids above 2^63-1 back to bare numbers */
	return 0;
}

void api_response_free(api_response *r)
{
	if (!r)
		return;
	json_decref(r->body);
	free(r->text);
	free(r->own_headers);
	if (r->body_close)
		r->body_close(r->body_ctx);
	r->body = NULL;
	r->text = NULL;
	r->own_headers = NULL;
	r->body_read = NULL;
	r->body_close = NULL;
	r->body_ctx = NULL;
}
