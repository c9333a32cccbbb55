/*
 * api_collections.c — PUT/GET/DELETE /v1/collections/{name}, GET
 * /v1/collections.  Creation goes through es_registry_create, so the
 * durability layer's observer sees it.
 */
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "hnsw.h"

static json_t *coll_json(es_collection *col)
{
	const es_collection_params *p = es_collection_get_params(col);
	const es_lexical_params *lp = &p->lexical;
	json_t *lex = json_pack("{s:f, s:f, s:b, s:b, s:I, s:I}", "k1", (double)lp->k1, "b",
				(double)lp->b, "stemming", lp->stemming, "stopwords",
				lp->stopwords, "count", (json_int_t)es_collection_lexical_count(col),
				"memory_bytes", (json_int_t)es_collection_lexical_bytes(col));
	return json_pack("{s:s, s:I, s:s, s:I, s:I, s:o, s:o, s:I, s:I, s:I, s:o, s:o}", "name",
			 es_collection_name(col), "dim", (json_int_t)p->dim, "metric",
			 es_metric_name(p->metric), "m", (json_int_t)p->M, "ef_construction",
			 (json_int_t)p->ef_construction, "quantization",
			 p->quantize_int8 ? json_string("int8") : json_null(), "model",
			 p->model[0] ? json_string(p->model) : json_null(), "count",
			 (json_int_t)es_collection_count(col), "memory_bytes",
			 (json_int_t)es_collection_memory_bytes(col), "vector_store_bytes",
			 (json_int_t)es_collection_store_bytes(col), "lexical", lex,
			 "payload_indexes", api_index_list_json(col));
}

/* "lexical": {"k1", "b", "stemming", "stopwords"} into p (defaults for what
 * is absent).  0, or -1 with e filled. */
static int parse_lexical(const json_t *j, es_lexical_params *p, ju_err *e)
{
	static const char *const keys[] = {"k1", "b", "stemming", "stopwords", NULL};
	es_lexical_params_default(p);
	if (!j || json_is_null(j))
		return 0;
	if (!json_is_object(j))
		return ju_fail(e, 400, "lexical", "invalid_type",
			       "'lexical' must be {\"k1\", \"b\", \"stemming\", \"stopwords\"}");
	int has;
	float v;
	if (ju_check_keys(j, keys, "lexical", e))
		return -1;
	if (ju_get_float(j, "k1", &has, &v, e))
		return -1;
	if (has)
		p->k1 = v;
	if (ju_get_float(j, "b", &has, &v, e))
		return -1;
	if (has)
		p->b = v;
	if (ju_get_bool(j, "stemming", p->stemming, &p->stemming, e) ||
	    ju_get_bool(j, "stopwords", p->stopwords, &p->stopwords, e))
		return -1;
	es_error err;
	if (es_lexical_params_check(p, &err))
		return ju_fail(e, 422, "lexical", "invalid_value", "%s", err.msg);
	return 0;
}

void api_h_coll_list(api_call *c, api_response *out)
{
	es_collection **cols;
	size_t n;
	es_error err;
	int rc = es_registry_list(c->ctx->reg, &cols, &n, &err);
	if (rc) {
		api_error_es(out, rc, &err, NULL);
		return;
	}
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++) {
		json_array_append_new(arr, coll_json(cols[i]));
		es_collection_release(cols[i]);
	}
	free(cols);
	api_ok(out, 200, json_pack("{s:o}", "result", arr));
}

void api_h_coll_create(api_call *c, api_response *out)
{
	static const char *const keys[] = {"dim", "metric", "m", "ef_construction",
					   "quantization", "model", "lexical", NULL};
	ju_err e;
	es_error err;
	if (es_collection_name_check(c->name, &err)) {
		api_error(out, 422, "name", "invalid_name", "%s", err.msg);
		return;
	}
	json_t *j = c->json ? c->json : json_object();
	const char *metric = NULL, *quant = NULL, *model_name = NULL;
	es_collection_params p;
	memset(&p, 0, sizeof p);
	int bad = ju_check_keys(j, keys, NULL, &e) ||
		  ju_get_str(j, "metric", 0, &metric, NULL, &e) ||
		  ju_get_str(j, "model", 0, &model_name, NULL, &e) ||
		  ju_get_u32(j, "m", HNSW_DEFAULT_M, 2, HNSW_MAX_M, &p.M, &e) ||
		  ju_get_u32(j, "ef_construction", HNSW_DEFAULT_EF_CONSTRUCTION, 1,
			     HNSW_MAX_EF, &p.ef_construction, &e) ||
		  parse_lexical(json_object_get(j, "lexical"), &p.lexical, &e);
	p.lexical_set = 1;
	if (!bad) {
		json_t *q = json_object_get(j, "quantization");
		if (q && !json_is_null(q) && !json_is_string(q))
			bad = ju_fail(&e, 400, "quantization", "invalid_type",
				      "'quantization' must be \"int8\" or null");
		else
			quant = q ? json_string_value(q) : NULL;
	}
	if (bad) {
		api_error_ju(out, &e);
		goto out;
	}
	const es_encoder *enc = api_pick_model(c->ctx, model_name, out);
	if (!enc)
		goto out;
	if (ju_get_u32(j, "dim", es_encoder_dim(enc), 1, 65536, &p.dim, &e)) {
		api_error_ju(out, &e);
		goto out;
	}
	p.metric = ES_METRIC_COSINE;
	if (metric && es_metric_parse(metric, &p.metric) != 0) {
		api_error(out, 422, "metric", "invalid_value",
			  "'metric' must be 'cosine', 'dot' or 'l2' (got '%s')", metric);
		goto out;
	}
	if (quant && strcmp(quant, "int8") == 0) {
		p.quantize_int8 = 1;
	} else if (quant && strcmp(quant, "none") != 0) {
		api_error(out, 422, "quantization", "invalid_value",
			  "'quantization' must be \"int8\" or null (got '%s')", quant);
		goto out;
	}
	snprintf(p.model, sizeof p.model, "%s", es_encoder_name(enc));
	es_collection *col = NULL;
	es_error_clear(&err);
	int rc = es_registry_create(c->ctx->reg, c->name, &p, &col, &err);
	if (rc) {
		api_error_es(out, rc, &err, rc == ES_EEXIST ? "name" : NULL);
		goto out;
	}
	api_ok(out, 201, json_pack("{s:o}", "result", coll_json(col)));
	es_collection_release(col);
out:
	if (j != c->json)
		json_decref(j);
}

void api_h_coll_get(api_call *c, api_response *out)
{
	es_collection *col = api_get_collection(c, c->name, "name", out);
	if (!col)
		return;
	api_ok(out, 200, json_pack("{s:o}", "result", coll_json(col)));
	es_collection_release(col);
}

void api_h_coll_snapshot(api_call *c, api_response *out)
{
	es_collection *col = api_get_collection(c, c->name, "name", out);
	if (!col)
		return;
	size_t count = es_collection_count(col);
	es_collection_release(col);
	if (!c->ctx->snapshot) {
		api_error(out, 409, NULL, "persistence_off",
			  "persistence is off: start the server with --data-dir to take snapshots");
		return;
	}
	es_error err;
	es_error_clear(&err);
	int rc = c->ctx->snapshot(c->ctx->snapshot_ctx, c->name, &err);
	if (rc) {
		api_error_es(out, rc, &err, rc == ES_ENOTFOUND ? "name" : NULL);
		return;
	}
	api_ok(out, 200, json_pack("{s:{s:b,s:I}}", "result", "snapshot", 1, "points",
				   (json_int_t)count));
}

void api_h_coll_delete(api_call *c, api_response *out)
{
	es_error err;
	es_error_clear(&err);
	int rc = es_registry_drop(c->ctx->reg, c->name, &err);
	if (rc) {
		api_error_es(out, rc, &err, "name");
		return;
	}
	api_ok(out, 200, json_pack("{s:{s:b}}", "result", "deleted", 1));
}
