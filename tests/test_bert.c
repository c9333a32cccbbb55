/*
 * test_bert.c — the BERT forward pass against transformers /
 * sentence-transformers output stored in tests/data/bert-tiny/reference.json:
 * hidden states of sentence 0 after the embeddings and every layer (1e-4),
 * sentence embeddings for mean and CLS pooling (1e-5) for all 20 sentences,
 * the same with a 2-thread pool and one text at a time; plus config parsing,
 * truncation flags, and clear errors for missing or mis-shaped tensors.
 */
#include <check.h>
#include <pthread.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bert.h"
#include "es_test.h"
#include "es_test_json.h"

static json_t *ref;

static void setup(void)
{
	ref = es_test_load_json("tests/data/bert-tiny/reference.json");
}

static void teardown(void)
{
	json_decref(ref);
}

static es_bert *open_rel(const char *rel)
{
	char dir[512];
	es_bert *b;
	es_error err;
	es_test_path(dir, sizeof dir, rel);
	ck_assert_msg(es_bert_open(dir, &b, &err) == 0, "%s", err.msg);
	return b;
}

START_TEST(test_config)
{
	es_bert *b = open_rel("tests/data/bert-tiny/st-mean");
	const es_bert_config *c = es_bert_config_of(b);
	ck_assert_uint_eq(c->hidden, 128);
	ck_assert_uint_eq(c->layers, 2);
	ck_assert_uint_eq(c->heads, 4);
	ck_assert_uint_eq(c->intermediate, 512);
	ck_assert_uint_eq(c->vocab_size, 2628);
	ck_assert_uint_eq(es_bert_dim(b), 128);
	ck_assert_uint_eq(es_bert_max_seq_length(b), 128);
	ck_assert_uint_eq(es_bert_pooling(b), ES_BERT_POOL_MEAN);
	ck_assert_int_eq(es_bert_normalizes(b), 1);
	es_bert_free(b);
	b = open_rel("tests/data/bert-tiny/st-cls");
	ck_assert_uint_eq(es_bert_pooling(b), ES_BERT_POOL_CLS);
	es_bert_free(b);
	/* plain HF folder: mean pooling, no normalisation */
	b = open_rel("tests/data/bert-tiny/hf");
	ck_assert_uint_eq(es_bert_pooling(b), ES_BERT_POOL_MEAN);
	ck_assert_int_eq(es_bert_normalizes(b), 0);
	ck_assert_uint_eq(es_bert_max_seq_length(b), 128);
	es_bert_free(b);
}
END_TEST

START_TEST(test_hidden_states)
{
	es_bert *b = open_rel("tests/data/bert-tiny/hf");
	json_t *ids = json_array_get(json_object_get(ref, "input_ids"), 0);
	json_t *hs = json_object_get(ref, "hidden_states_0");
	uint32_t L = (uint32_t)json_array_size(ids);
	size_t H = 128, nl = json_array_size(hs);
	ck_assert_uint_eq(nl, 3);
	int32_t *tok = malloc(L * sizeof *tok);
	for (uint32_t i = 0; i < L; i++)
		tok[i] = (int32_t)json_integer_value(json_array_get(ids, i));
	float *hidden = malloc(L * H * sizeof(float));
	float *layers[3];
	for (size_t l = 0; l < nl; l++)
		layers[l] = malloc(L * H * sizeof(float));
	es_error err;
	ck_assert_int_eq(es_bert_forward(b, tok, &L, 1, hidden, layers, NULL, &err), 0);
	double worst = 0;
	for (size_t l = 0; l < nl; l++) {
		json_t *m = json_array_get(hs, l);
		ck_assert_uint_eq(json_array_size(m), L);
		for (uint32_t r = 0; r < L; r++)
			for (size_t j = 0; j < H; j++) {
				double w = json_real_value(json_array_get(json_array_get(m, r), j));
				double d = fabs(w - layers[l][r * H + j]);
				worst = d > worst ? d : worst;
				ck_assert_msg(d < 1e-4, "layer %zu row %u col %zu: %g vs %g", l,
					      r, j, layers[l][r * H + j], w);
			}
	}
	/* the last layer is what `hidden` holds */
	json_t *last = json_object_get(ref, "last_hidden_state_0");
	for (uint32_t r = 0; r < L; r++)
		for (size_t j = 0; j < H; j++)
			ck_assert(fabs(json_real_value(json_array_get(json_array_get(last, r), j)) -
				       hidden[r * H + j]) < 1e-4);
	fprintf(stderr, "bert hidden states: worst abs diff %.3g\n", worst);
	for (size_t l = 0; l < nl; l++)
		free(layers[l]);
	free(hidden);
	free(tok);
	es_bert_free(b);
}
END_TEST

/* Encode all 20 sentences and compare with the reference embeddings. */
static void check_embeddings(const char *rel, const char *key, es_pool *pool,
			     int one_by_one)
{
	es_bert *b = open_rel(rel);
	json_t *sents = json_object_get(ref, "sentences");
	json_t *want = json_object_get(ref, key);
	size_t n = json_array_size(sents), dim = es_bert_dim(b);
	const char **texts = malloc(n * sizeof *texts);
	for (size_t i = 0; i < n; i++)
		texts[i] = json_string_value(json_array_get(sents, i));
	float *out = malloc(n * dim * sizeof(float));
	es_encode_info *info = calloc(n, sizeof *info);
	es_error err;
	if (one_by_one) {
		for (size_t i = 0; i < n; i++)
			ck_assert_int_eq(es_bert_encode_batch(b, &texts[i], NULL, 1, 0,
							      out + i * dim, info + i, pool,
							      &err), 0);
	} else {
		ck_assert_msg(es_bert_encode_batch(b, texts, NULL, n, 0, out, info, pool,
						   &err) == 0, "%s", err.msg);
	}
	double worst = 0;
	for (size_t i = 0; i < n; i++) {
		json_t *w = json_array_get(want, i);
		ck_assert_uint_eq(json_array_size(w), dim);
		for (size_t j = 0; j < dim; j++) {
			double d = fabs(json_real_value(json_array_get(w, j)) - out[i * dim + j]);
			worst = d > worst ? d : worst;
			ck_assert_msg(d < 1e-5, "%s sentence %zu dim %zu: %g vs %g", key, i,
				      j, out[i * dim + j], json_real_value(json_array_get(w, j)));
		}
		ck_assert_uint_eq(info[i].tokens,
				  json_array_size(json_array_get(json_object_get(ref, "input_ids"), i)));
	}
	/* sentence 15 is longer than max_seq_length and was cut */
	ck_assert_int_eq(info[15].truncated, 1);
	ck_assert_int_eq(info[0].truncated, 0);
	ck_assert_uint_eq(info[5].known, 2); /* CJK: only [CLS] and [SEP] known */
	fprintf(stderr, "bert %s: worst abs diff %.3g\n", key, worst);
	free(info);
	free(out);
	free(texts);
	es_bert_free(b);
}

START_TEST(test_embeddings_mean)
{
	check_embeddings("tests/data/bert-tiny/st-mean", "embeddings_mean", NULL, 0);
}
END_TEST

START_TEST(test_embeddings_cls)
{
	check_embeddings("tests/data/bert-tiny/st-cls", "embeddings_cls", NULL, 0);
}
END_TEST

START_TEST(test_embeddings_threads)
{
	es_pool *pool = es_pool_new(2);
	check_embeddings("tests/data/bert-tiny/st-mean", "embeddings_mean", pool, 0);
	check_embeddings("tests/data/bert-tiny/st-cls", "embeddings_cls", pool, 1);
	es_pool_free(pool);
}
END_TEST

/* Pools of 3 and 5 cut the 20 sentences into runs of texts, one per
 * worker, each encoded on one thread (ROW_SPLIT_TOKENS per worker fits in
 * their ~300 tokens); 16 workers are too many for that and split each
 * product by columns instead.  Every way gives the reference vectors. */
START_TEST(test_embeddings_row_split)
{
	const unsigned sizes[] = {3, 5, 16};
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		es_pool *pool = es_pool_new(sizes[i]);
		check_embeddings("tests/data/bert-tiny/st-mean", "embeddings_mean", pool, 0);
		check_embeddings("tests/data/bert-tiny/st-cls", "embeddings_cls", pool, 0);
		es_pool_free(pool);
	}
}
END_TEST

/* Callers on several threads share one model (and its kept scratch
 * arenas): each gets bitwise the vectors of the same call made alone,
 * whatever mix of short and long batches runs at the same time. */
typedef struct conc_job {
	es_bert *b;
	const char **texts;
	size_t n, dim;
	const float *want, *want_one; /* the batch, text 0 alone */
	int bad;
} conc_job;

static void *conc_run(void *arg)
{
	conc_job *j = arg;
	float *out = malloc(j->n * j->dim * sizeof(float));
	for (int it = 0; it < 6 && out; it++) {
		/* alternate one short text and the whole batch */
		size_t n = it % 2 ? 1 : j->n;
		es_error err;
		if (es_bert_encode_batch(j->b, j->texts, NULL, n, 0, out, NULL, NULL, &err) ||
		    memcmp(out, n == 1 ? j->want_one : j->want, n * j->dim * sizeof(float)))
			j->bad++;
	}
	free(out);
	return NULL;
}

START_TEST(test_concurrent_callers)
{
	es_bert *b = open_rel("tests/data/bert-tiny/st-mean");
	json_t *sent = json_object_get(ref, "sentences");
	size_t n = json_array_size(sent), dim = es_bert_dim(b);
	const char **texts = malloc(n * sizeof *texts);
	for (size_t i = 0; i < n; i++)
		texts[i] = json_string_value(json_array_get(sent, i));
	float *want = malloc(n * dim * sizeof(float));
	float *want_one = malloc(dim * sizeof(float));
	es_error err;
	ck_assert_int_eq(es_bert_encode_batch(b, texts, NULL, n, 0, want, NULL, NULL, &err), 0);
	ck_assert_int_eq(es_bert_encode_batch(b, texts, NULL, 1, 0, want_one, NULL, NULL,
					      &err), 0);
	pthread_t th[4];
	conc_job jobs[4];
	for (int t = 0; t < 4; t++) {
		jobs[t] = (conc_job){b, texts, n, dim, want, want_one, 0};
		ck_assert_int_eq(pthread_create(&th[t], NULL, conc_run, &jobs[t]), 0);
	}
	for (int t = 0; t < 4; t++) {
		pthread_join(th[t], NULL);
		ck_assert_int_eq(jobs[t].bad, 0);
	}
	free(want);
	free(want_one);
	free(texts);
	es_bert_free(b);
}
END_TEST

START_TEST(test_no_truncate)
{
	es_bert *b = open_rel("tests/data/bert-tiny/st-mean");
	const char *t = json_string_value(json_array_get(json_object_get(ref, "sentences"), 15));
	float out[128];
	es_error err;
	ck_assert_int_eq(es_bert_encode_batch(b, &t, NULL, 1, ES_ENC_NO_TRUNCATE, out,
					      NULL, NULL, &err), ES_ERANGE);
	ck_assert_ptr_nonnull(strstr(err.msg, "at most 128"));
	const char *bad = "ok \xff";
	ck_assert_int_eq(es_bert_encode_batch(b, &bad, NULL, 1, 0, out, NULL, NULL, &err),
			 ES_EINVAL);
	es_bert_free(b);
}
END_TEST

/* Copy the hf fixture to a temp folder, rewrite config.json with one
 * substitution and expect es_bert_open to fail with `code` and `needle`. */
static void broken_config(const char *from, const char *to, int code, const char *needle)
{
	char dir[] = "/tmp/es_bert_XXXXXX", src[512], cmd[2048], p[600];
	ck_assert_ptr_nonnull(mkdtemp(dir));
	es_test_path(src, sizeof src, "tests/data/bert-tiny/hf");
	snprintf(cmd, sizeof cmd, "cp '%s'/* '%s'/ && chmod u+w '%s'/*", src, dir, dir);
	ck_assert_int_eq(system(cmd), 0);
	snprintf(p, sizeof p, "%s/config.json", dir);
	FILE *f = fopen(p, "rb");
	char buf[4096];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = 0;
	fclose(f);
	char *at = strstr(buf, from);
	ck_assert_ptr_nonnull(at);
	char out[4200];
	snprintf(out, sizeof out, "%.*s%s%s", (int)(at - buf), buf, to, at + strlen(from));
	f = fopen(p, "wb");
	fputs(out, f);
	fclose(f);
	es_bert *b = NULL;
	es_error err;
	int rc = es_bert_open(dir, &b, &err);
	ck_assert_msg(rc == code, "%s: rc %d (%s)", to, rc, err.msg);
	ck_assert_ptr_null(b);
	ck_assert_msg(strstr(err.msg, needle) != NULL, "'%s' lacks '%s'", err.msg, needle);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

START_TEST(test_bad_folders)
{
	broken_config("\"num_hidden_layers\": 2", "\"num_hidden_layers\": 3", ES_ENOTFOUND,
		      "missing tensor 'encoder.layer.2.attention.self.query.weight'");
	broken_config("\"intermediate_size\": 512", "\"intermediate_size\": 256", ES_ECORRUPT,
		      "'encoder.layer.0.intermediate.dense.weight' has shape [512, 128], "
		      "expected [256, 128]");
	broken_config("\"num_attention_heads\": 4", "\"num_attention_heads\": 3", ES_ECORRUPT,
		      "not a multiple");
	broken_config("\"hidden_act\": \"gelu\"", "\"hidden_act\": \"relu\"", ES_EUNSUPPORTED,
		      "hidden_act 'relu'");
	broken_config("\"vocab_size\": 2628", "\"vocab_size\": \"big\"", ES_ECORRUPT,
		      "\"vocab_size\" must be an integer");
	es_bert *b;
	es_error err;
	ck_assert_int_eq(es_bert_open("/nonexistent", &b, &err), ES_ENOTFOUND);
	ck_assert_ptr_nonnull(strstr(err.msg, "/nonexistent/config.json"));
}
END_TEST

Suite *bert_suite(void)
{
	Suite *s = suite_create("bert");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_config);
	tcase_add_test(tc, test_hidden_states);
	tcase_add_test(tc, test_embeddings_mean);
	tcase_add_test(tc, test_embeddings_cls);
	tcase_add_test(tc, test_embeddings_threads);
	tcase_add_test(tc, test_embeddings_row_split);
	tcase_add_test(tc, test_concurrent_callers);
	tcase_add_test(tc, test_no_truncate);
	tcase_add_test(tc, test_bad_folders);
	suite_add_tcase(s, tc);
	return s;
}
