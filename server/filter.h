/*
 * filter.h — the payload filter of both API dialects (/v1 and Qdrant's):
 * one parser, one evaluator.
 *
 * A filter is {"must": C, "should": C, "must_not": C, "min_should":
 * {"conditions": [c...], "min_count": n}} where C is one condition or an
 * array of them.  Every must holds, no must_not holds, at least one should
 * holds (when there are shoulds) and at least min_count of min_should's
 * conditions hold.  A condition is one of:
 *   {"key": K, "match": <scalar>}                      (our shorthand)
 *   {"key": K, "match": {"value": <scalar>}}           equality
 *   {"key": K, "match": {"any": [<scalar>...]}}        one of
 *   {"key": K, "match": {"except": [<scalar>...]}}     none of (a missing
 *                                                      or null key matches)
 *   {"key": K, "match": {"text": "s"}}                 substring of a string
 *   {"key": K, "range": {"gt"|"gte"|"lt"|"lte": num}}  numeric range
 *   {"is_empty": {"key": K}}    K missing, null or []
 *   {"is_null": {"key": K}}     K present and null
 *   {"has_id": [id...]}         the point's id is one of these (integers or
 *                               strings; UUIDs in any spelling)
 *   {"nested": {"key": K, "filter": F}}  some object of the array K
 *                               satisfies F (keys inside F relative to it)
 *   a filter itself (an object with must/should/must_not/min_should)
 * K is a dotted path into the payload ("metadata.source"); a step that
 * meets an array looks into each element ("a[]" says so explicitly), and a
 * value that is an array matches when any element does.  Numbers compare
 * by value (1 == 1.0); a bool never equals a number.
 *
 * Errors (ju_err): 400 "invalid_type" / "unknown_field" naming the
 * parameter path ("filter.must[2].range.gt"), 422 "too_many_conditions"
 * past API_FILTER_MAX_CONDS conditions in all.
 *
 * Evaluation reads es_point_view.parsed (the payload as parsed once by
 * api_payload_hooks: a json_t *) and .id: no JSON is parsed per point.
 *
 * Threading: a parsed filter is immutable; api_filter_match may run on any
 * number of threads at once.  Ownership: the filter keeps a reference to
 * the JSON it was parsed from (strings are borrowed from it); free with
 * api_filter_free.
 */
#ifndef ES_FILTER_H
#define ES_FILTER_H

#include <jansson.h>

#include "collection.h"
#include "json_util.h"

#define API_FILTER_MAX_CONDS 1024 /* conditions and sub-filters in all */

typedef struct api_filter api_filter;

/* Parse j (a filter object; JSON null: *out = NULL, no filter) into *out.
 * param names the filter in messages ("filter").  0, or -1 with e filled
 * (503 "out_of_memory" when allocation fails). */
int api_filter_parse(const json_t *j, const char *param, api_filter **out,
		     ju_err *e);

/* NULL is a no-op. */
void api_filter_free(api_filter *f);

/* 1 when point p (its parsed payload and id) satisfies f; NULL f matches
 * everything. */
int api_filter_match(const api_filter *f, const es_point_view *p);

/* es_point_filter_fn adapter: ctx is the api_filter. */
int api_filter_fn(void *ctx, const es_point_view *p);

/* The filter's payload-index plan (collection.h es_search_req.plan): the
 * equality (match value/any on strings or integers) and range conditions
 * that every accepted point satisfies (its musts, through nested musts,
 * and a lone should); NULL when there are none or f is NULL.  Owned by f. */
const es_pquery *api_filter_plan(const api_filter *f);

/* es_payload_hooks.extract: the values at the dotted path of a parsed
 * payload, read as the filter reads them (each element of an array). */
void api_filter_extract(const void *parsed, const char *path,
			void (*emit)(void *ctx, const es_pval *v), void *ctx);

#endif
