/*
 * api_index.c — payload indexes over HTTP (index/payload_index.h), one
 * implementation under both dialects:
 *   PUT    /v1/collections/{c}/index          {"field": "a.b", "type": "keyword"|"integer"}
 *   DELETE /v1/collections/{c}/index/{field}
 * and GET /v1/collections/{c}'s "payload_indexes" (api_index_list_json).
 * The Qdrant routes (api_qdrant.c) translate their bodies into these calls.
 * Creating an index is logged and rebuilt at restart from the payloads;
 * filtered search, count, scroll and delete-by-filter use it through the
 * filter's plan (filter.h api_filter_plan).
 */
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"

int api_index_apply(api_call *c, const char *field, int kind, api_response *out)
{
	es_collection *col = api_get_collection(c, c->name, "name", out);
	if (!col)
		return -1;
	es_error err;
	es_error_clear(&err);
	int rc = kind ? es_collection_create_index(col, field, (es_pindex_kind)kind, &err)
		      : es_collection_drop_index(col, field, &err);
	es_collection_release(col);
	if (rc) {
		api_error_es(out, rc, &err, rc == ES_ENOTFOUND ? "field" : NULL);
		return -1;
	}
	return 0;
}

json_t *api_index_list_json(es_collection *col)
{
	es_index_info *v;
	size_t n;
	json_t *arr = json_array();
	if (!arr || es_collection_list_indexes(col, &v, &n) != 0)
		return arr;
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, json_pack("{s:s, s:s, s:I, s:b}", "field", v[i].field,
						     "type", es_pindex_kind_name(v[i].kind),
						     "points", (json_int_t)v[i].points,
						     "usable", v[i].usable));
	es_index_info_free(v);
	return arr;
}

void api_h_index_create(api_call *c, api_response *out)
{
	static const char *const keys[] = {"field", "type", NULL};
	ju_err e = {0};
	const char *field, *type;
	es_pindex_kind kind;
	if (ju_check_keys(c->json, keys, NULL, &e) ||
	    ju_get_str(c->json, "field", 1, &field, NULL, &e) ||
	    ju_get_str(c->json, "type", 1, &type, NULL, &e)) {
		api_error_ju(out, &e);
		return;
	}
	if (es_pindex_kind_parse(type, &kind) != 0) {
		api_error(out, 400, "type", "invalid_value",
			  "'type' must be \"keyword\" or \"integer\"");
		return;
	}
	if (api_index_apply(c, field, kind, out) == 0)
		api_ok(out, 200, json_pack("{s:{s:s, s:s}}", "result", "field", field, "type", type));
}

void api_h_index_drop(api_call *c, api_response *out)
{
	if (api_index_apply(c, c->id, 0, out) == 0)
		api_ok(out, 200, json_pack("{s:{s:s, s:b}}", "result", "field", c->id, "deleted", 1));
}
