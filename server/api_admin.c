/*
 * api_admin.c — GET /healthz, /readyz, /metrics, /v1/info, /v1/models.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "es_config.h"
#include "simd.h"
#include "store.h"
#include "version.h"

void api_h_healthz(api_call *c, api_response *out)
{
	(void)c;
	json_t *b = json_pack("{s:s}", "status", "ok");
	api_ok(out, 200, b);
}

/* "primary" (takes writes), "follower" (--follow: a read-only replica fed
 * by log shipping) or "read-only" (--read-only: refuses writes). */
static const char *api_role(const api_ctx *ctx)
{
	return ctx->follower ? "follower" : ctx->read_only ? "read-only" : "primary";
}

static uint64_t lag_records(const api_repl_status *st)
{
	return st->primary_lsn > st->applied_lsn ? st->primary_lsn - st->applied_lsn : 0;
}

void api_h_readyz(api_call *c, api_response *out)
{
	if (!atomic_load(&c->ctx->ready)) {
		api_error(out, 503, NULL, "not_ready",
			  "not ready yet: loading the model or recovering data");
		return;
	}
	if (c->ctx->follower) {
		api_repl_status st;
		c->ctx->follower(c->ctx->follower_ctx, &st);
		if (!st.healthy) {
			api_error(out, 503, NULL, "replication_error", "follower %s: %s", st.state,
				  st.error);
			return;
		}
	}
	api_ok(out, 200, json_pack("{s:s, s:s}", "status", "ready", "role", api_role(c->ctx)));
}

/* A label value in Prometheus' text format: backslash, double quote and
 * line feed escaped (a model name is a file name: it may hold any of them);
 * cut short (whole escapes only) to fit n. */
static void label_escape(const char *v, char *out, size_t n)
{
	size_t k = 0;
	for (; *v; v++) {
		const char *rep = *v == '\\' ? "\\\\" : *v == '"' ? "\\\"" : *v == '\n' ? "\\n" : NULL;
		size_t need = rep ? 2 : 1;
		if (k + need >= n)
			break;
		if (rep) {
			out[k++] = rep[0];
			out[k++] = rep[1];
		} else {
			out[k++] = *v;
		}
	}
	out[k] = '\0';
}

void api_h_metrics(api_call *c, api_response *out)
{
	es_strbuf b = {0};
	metrics_render(c->ctx->metrics, &b);
	es_collection **cols = NULL;
	size_t n = 0;
	if (es_registry_list(c->ctx->reg, &cols, &n, NULL) == 0) {
		es_strbuf_printf(&b, "# HELP embedsrv_collection_points Live points per collection.\n"
				     "# TYPE embedsrv_collection_points gauge\n");
		for (size_t i = 0; i < n; i++)
			es_strbuf_printf(&b, "embedsrv_collection_points{collection=\"%s\"} %zu\n",
					 es_collection_name(cols[i]), es_collection_count(cols[i]));
		es_strbuf_printf(&b, "# HELP embedsrv_collection_memory_bytes Memory held per collection.\n"
				     "# TYPE embedsrv_collection_memory_bytes gauge\n");
		for (size_t i = 0; i < n; i++)
			es_strbuf_printf(&b, "embedsrv_collection_memory_bytes{collection=\"%s\"} %zu\n",
					 es_collection_name(cols[i]),
					 es_collection_memory_bytes(cols[i]));
		for (size_t i = 0; i < n; i++)
			es_collection_release(cols[i]);
		free(cols);
	}
	if (c->ctx->batchers) { /* dynamic batching (server/batcher.h) */
		static const char *const names[5] = {"requests", "texts", "forwards",
						     "wait_seconds", "forward_seconds"};
		static const char *const help[5] = {
			"Encode requests served through the batcher.",
			"Texts encoded through the batcher.",
			"Forward passes the batcher ran (texts / forwards = mean batch).",
			"Seconds requests waited queued, summed (/ requests = mean wait).",
			"Seconds of the forwards requests were in, summed (/ requests = mean).",
		};
		for (int k = 0; k < 5; k++) {
			es_strbuf_printf(&b, "# HELP embedsrv_batch_%s_total %s\n"
					     "# TYPE embedsrv_batch_%s_total counter\n",
					 names[k], help[k], names[k]);
			for (size_t i = 0; i < c->ctx->nmodels; i++) {
				if (!c->ctx->batchers[i])
					continue;
				es_batcher_stats st;
				es_batcher_get_stats(c->ctx->batchers[i], &st);
				uint64_t v = k == 0 ? st.requests : k == 1 ? st.texts
					     : k == 2 ? st.forwards : k == 3 ? st.wait_us
					     : st.forward_us;
				char lab[512];
				label_escape(es_encoder_name(c->ctx->models[i]), lab, sizeof lab);
				if (k < 3)
					es_strbuf_printf(&b, "embedsrv_batch_%s_total{model=\"%s\"} %llu\n",
							 names[k], lab, (unsigned long long)v);
				else
					es_strbuf_printf(&b, "embedsrv_batch_%s_total{model=\"%s\"} %.6f\n",
							 names[k], lab, (double)v / 1e6);
			}
		}
	}
	es_strbuf_printf(&b, "# HELP embedsrv_uptime_seconds Seconds since start.\n"
			     "# TYPE embedsrv_uptime_seconds gauge\n"
			     "embedsrv_uptime_seconds %.3f\n",
			 api_now() - c->ctx->start_time);
	if (c->ctx->follower) {
		api_repl_status st;
		c->ctx->follower(c->ctx->follower_ctx, &st);
		es_strbuf_printf(&b, "# HELP embedsrv_replication_lag_records Records the primary "
				     "has that this follower has not applied (as of its last poll).\n"
				     "# TYPE embedsrv_replication_lag_records gauge\n"
				     "embedsrv_replication_lag_records %" PRIu64 "\n"
				     "# HELP embedsrv_replication_lag_seconds 0 when caught up at the "
				     "last poll, else seconds since this follower last was.\n"
				     "# TYPE embedsrv_replication_lag_seconds gauge\n"
				     "embedsrv_replication_lag_seconds %.3f\n"
				     "# HELP embedsrv_replication_applied_lsn Last log record applied.\n"
				     "# TYPE embedsrv_replication_applied_lsn gauge\n"
				     "embedsrv_replication_applied_lsn %" PRIu64 "\n"
				     "# HELP embedsrv_replication_connected 1 when the last request to "
				     "the primary succeeded.\n"
				     "# TYPE embedsrv_replication_connected gauge\n"
				     "embedsrv_replication_connected %d\n"
				     "# HELP embedsrv_replication_healthy 0 when the follower stopped "
				     "applying (diverged log, failed bootstrap).\n"
				     "# TYPE embedsrv_replication_healthy gauge\n"
				     "embedsrv_replication_healthy %d\n",
				 lag_records(&st), st.lag_seconds, st.applied_lsn, st.connected,
				 st.healthy);
	}
	if (b.oom) {
		free(b.s);
		api_error(out, 503, NULL, "out_of_memory", "out of memory rendering metrics");
		return;
	}
	out->status = 200;
	out->text = b.s;
	out->text_len = b.len;
	out->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

static json_t *model_json(const es_encoder *e)
{
	return json_pack("{s:s, s:s, s:I, s:I, s:I}", "name", es_encoder_name(e), "kind",
			 es_encoder_kind_of(e) == ES_ENCODER_BERT ? "bert" : "static",
			 "dim", (json_int_t)es_encoder_dim(e), "max_seq_length",
			 (json_int_t)es_encoder_max_tokens(e), "vocab_size",
			 (json_int_t)es_encoder_vocab_size(e));
}

void api_h_info(api_call *c, api_response *out)
{
	const api_ctx *ctx = c->ctx;
	json_t *models = json_array();
	for (size_t i = 0; i < ctx->nmodels; i++)
		json_array_append_new(models, model_json(ctx->models[i]));
	char paths[64];
	simd_compiled_paths(paths, sizeof paths);
	const api_limits *l = &ctx->limits;
	json_t *limits = json_pack(
		"{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
		"max_body_bytes", (json_int_t)l->max_body_bytes, "max_inputs",
		(json_int_t)l->max_inputs, "max_input_chars", (json_int_t)l->max_input_chars,
		"max_k", (json_int_t)l->max_k, "max_ef", (json_int_t)l->max_ef,
		"max_points_per_request", (json_int_t)l->max_points, "max_searches_per_request",
		(json_int_t)l->max_searches, "max_json_depth", (json_int_t)l->max_json_depth,
		"timeout_seconds", (json_int_t)l->timeout_s, "max_connections",
		(json_int_t)l->max_connections);
	json_t *b = json_pack("{s:s, s:s, s:o, s:s, s:{s:s, s:s}, s:o, s:b, s:I, s:o, s:f}",
			      "version", ES_VERSION, "commit", ES_GIT_COMMIT, "models", models,
			      "default_model", es_encoder_name(ctx->models[0]), "simd",
			      "selected", simd_get()->name, "compiled", paths, "limits", limits,
			      "auth", ctx->api_key != NULL, "threads", (json_int_t)ctx->threads,
			      "data_dir", ctx->data_dir ? json_string(ctx->data_dir) : json_null(),
			      "uptime_seconds", api_now() - ctx->start_time);
	json_object_set_new(b, "role", json_string(api_role(ctx)));
	json_object_set_new(b, "primary", ctx->primary ? json_string(ctx->primary) : json_null());
	if (ctx->follower) {
		api_repl_status st;
		ctx->follower(ctx->follower_ctx, &st);
		json_object_set_new(b, "replication",
				    json_pack("{s:s, s:b, s:b, s:I, s:I, s:I, s:f, s:s?}", "state",
					      st.state, "healthy", st.healthy, "connected",
					      st.connected, "applied_lsn", (json_int_t)st.applied_lsn,
					      "primary_lsn", (json_int_t)st.primary_lsn,
					      "lag_records", (json_int_t)lag_records(&st),
					      "lag_seconds", st.lag_seconds, "error",
					      st.error[0] ? st.error : NULL));
	} else if (ctx->store) {
		json_object_set_new(b, "replication",
				    json_pack("{s:s, s:I}", "state", "primary", "last_lsn",
					      (json_int_t)es_store_last_lsn(ctx->store)));
	}
	/* the search modes of POST .../search (issue 17); the web explorer shows its
	 * mode picker from this list */
	json_object_set_new(b, "search_modes", json_pack("[s,s,s]", "dense", "lexical", "hybrid"));
	api_ok(out, 200, b);
}

void api_h_models(api_call *c, api_response *out)
{
	json_t *data = json_array();
	for (size_t i = 0; i < c->ctx->nmodels; i++)
		json_array_append_new(data, json_pack("{s:s, s:s, s:i, s:s}", "id",
						      es_encoder_name(c->ctx->models[i]),
						      "object", "model", "created", 0,
						      "owned_by", "embedsrv"));
	for (size_t i = 0; i < c->ctx->naliases; i++) /* --model-alias */
		json_array_append_new(data, json_pack("{s:s, s:s, s:i, s:s, s:s}", "id",
						      c->ctx->alias_names[i], "object", "model",
						      "created", 0, "owned_by", "embedsrv", "alias_of",
						      es_encoder_name(c->ctx->alias_models[i])));
	api_ok(out, 200, json_pack("{s:s, s:o}", "object", "list", "data", data));
}
