/*
 * fuzz_filter.c — the payload filter parser and evaluator (server/filter.c),
 * which every search, scroll, count and delete/update-by-filter runs on
 * request JSON, in both dialects.
 *
 * Input: a filter as JSON text, optionally followed by a line "\n--\n" and a
 * payload as JSON text.  The filter is parsed as the server would (nesting
 * bounded like a request body); a refusal must be a 400/422 naming a
 * parameter, never anything else.  An accepted filter is evaluated on the
 * given payload and a few fixed ones, and must agree with its negation:
 * {"must_not": [F]} matches exactly when F does not.
 */
#include <stdlib.h>
#include <string.h>

#include "filter.h"
#include "fuzz_common.h"

#define DEPTH 32 /* the server's default max_json_depth */

static const char *const payloads[] = {
	"{}",
	"{\"a\":1,\"b\":\"x\",\"c\":[1,2,\"y\"],\"d\":null,\"e\":[]}",
	"{\"metadata\":{\"source\":\"web\",\"n\":2.5},\"items\":[{\"k\":\"a\",\"v\":1}]}",
};

static void check(const api_filter *f, const api_filter *neg, const json_t *pl, uint64_t id)
{
	es_point_view v;
	memset(&v, 0, sizeof v);
	v.id.num = id;
	v.parsed = pl;
	int a = api_filter_match(f, &v), b = api_filter_match(neg, &v);
	if (a != 0 && a != 1)
		fz_fail("match returned %d", a);
	if (a == b)
		fz_fail("F and must_not F agree (%d)", a);
	v.id.is_str = 1;
	v.id.str = "doc-1";
	v.id.len = 5;
	if (api_filter_match(f, &v) == api_filter_match(neg, &v))
		fz_fail("F and must_not F agree on a string id");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	size_t flen = size;
	const char *sep = memmem(s, size, "\n--\n", 4);
	if (sep)
		flen = (size_t)(sep - s);
	if (ju_depth(s, flen, DEPTH) > DEPTH)
		return 0; /* the server refuses it before any filter sees it */
	json_t *fj = json_loadb(s, flen, 0, NULL);
	if (!fj)
		return 0;
	api_filter *f = NULL;
	if (fz_filter_parse(fj, &f)) {
		json_decref(fj);
		return 0;
	}
	if (!f) {
		if (!json_is_null(fj))
			fz_fail("no filter and no error");
		json_decref(fj);
		return 0;
	}
	ju_err e;
	memset(&e, 0, sizeof e);
	json_t *negj = json_pack("{s:[O]}", "must_not", fj);
	api_filter *neg = NULL;
	if (!negj || api_filter_parse(negj, "filter", &neg, &e)) {
		/* only the condition limit can refuse what was accepted inside */
		if (e.status != 422)
			fz_fail("must_not of an accepted filter refused: %s", e.msg);
		goto out;
	}
	for (size_t i = 0; i < sizeof payloads / sizeof *payloads; i++) {
		json_t *pl = json_loads(payloads[i], 0, NULL);
		check(f, neg, pl, i);
		json_decref(pl);
	}
	check(f, neg, NULL, 7);
	if (sep) {
		json_t *pl = json_loadb(sep + 4, size - flen - 4, 0, NULL);
		if (pl && ju_depth(sep + 4, size - flen - 4, DEPTH) <= DEPTH)
			check(f, neg, pl, 3);
		json_decref(pl);
	}
out:
	api_filter_free(neg);
	json_decref(negj);
	api_filter_free(f);
	json_decref(fj);
	return 0;
}
