/*
 * es_test_json.h — loading a JSON fixture in a Check suite (the bert-tiny
 * reference outputs, read by test_bert.c and test_bert_encoder.c alike).
 * Needs check.h and jansson; kept apart from es_test.h so suites without
 * jansson need not link it.
 */
#ifndef ES_TEST_JSON_H
#define ES_TEST_JSON_H

#include <check.h>
#include <jansson.h>

#include "es_test.h"

/* The JSON document at rel under the source tree; fails the test (naming
 * the file and jansson's reason) when it cannot be read or parsed. */
static inline json_t *es_test_load_json(const char *rel)
{
	char p[512];
	json_error_t jerr;
	es_test_path(p, sizeof p, rel);
	json_t *j = json_load_file(p, 0, &jerr);
	ck_assert_msg(j != NULL, "%s: %s", p, jerr.text);
	return j;
}

#endif
