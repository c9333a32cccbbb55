/*
 * filter.c — the payload filter; see filter.h.
 *
 * A parsed filter is a tree of nodes: a FILTER node holds its clauses
 * (arrays of child nodes), a leaf holds one condition.  Strings and scalar
 * values are borrowed from the request JSON, which the filter keeps a
 * reference to.  Evaluation walks the tree per point with no allocation.
 */
#include "filter.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "api_internal.h"

enum {
	N_FILTER,
	N_VALUE,  /* match value */
	N_ANY,    /* match any */
	N_EXCEPT, /* match except */
	N_TEXT,   /* match text */
	N_RANGE,
	N_EMPTY,  /* is_empty */
	N_NULL,   /* is_null */
	N_HAS_ID,
	N_NESTED,
};

enum { R_GT = 1, R_GTE = 2, R_LT = 4, R_LTE = 8 };

typedef struct node node;

typedef struct clause {
	node **v;
	size_t n;
} clause;

struct node {
	int kind;
	const char *key;       /* leaves (not has_id) */
	const json_t *value;   /* N_VALUE: the scalar; N_ANY / N_EXCEPT: the array */
	const char *text;      /* N_TEXT */
	size_t text_len;
	double r[4];           /* N_RANGE: gt, gte, lt, lte */
	unsigned rset;         /* R_* bits */
	es_point_id *ids;      /* N_HAS_ID */
	size_t nids;
	clause must, should, must_not, min_should; /* N_FILTER */
	size_t min_count;
	node *sub;             /* N_NESTED: the filter for each element */
};

#define API_FILTER_PLAN_TERMS 16

struct api_filter {
	json_t *root;  /* reference held: strings are borrowed from it */
	node *top;
	es_pterm terms[API_FILTER_PLAN_TERMS]; /* the index plan (api_filter_plan) */
	size_t nterms;
	es_pquery plan;
	void *owned[3 * API_FILTER_PLAN_TERMS]; /* the terms' value arrays */
	size_t nowned;
};

static void plan_node(api_filter *f, const node *n);
static int plan_exact(const api_filter *f);

typedef struct parser {
	size_t count;  /* nodes so far */
	ju_err *e;
} parser;

static void node_free(node *n);

/* A parameter path for messages; cut short if it must be. */
__attribute__((format(printf, 3, 4)))
static void pfmt(char *dst, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(dst, n, fmt, ap);
	va_end(ap);
}

static void clause_free(clause *c)
{
	for (size_t i = 0; i < c->n; i++)
		node_free(c->v[i]);
	free(c->v);
}

static void node_free(node *n)
{
	if (!n)
		return;
	clause_free(&n->must);
	clause_free(&n->should);
	clause_free(&n->must_not);
	clause_free(&n->min_should);
	free(n->ids);
	node_free(n->sub);
	free(n);
}

static int is_scalar(const json_t *v)
{
	return json_is_string(v) || json_is_number(v) || json_is_boolean(v);
}

static int oom(parser *ps)
{
	return ju_fail(ps->e, 503, NULL, "out_of_memory", "out of memory parsing a filter");
}

static node *node_new(parser *ps, int kind, const char *param)
{
	if (++ps->count > API_FILTER_MAX_CONDS) {
		ju_fail(ps->e, 422, param, "too_many_conditions",
			"the filter has more than %d conditions", API_FILTER_MAX_CONDS);
		return NULL;
	}
	node *n = calloc(1, sizeof *n);
	if (!n)
		oom(ps);
	else
		n->kind = kind;
	return n;
}

static int parse_filter(parser *ps, const json_t *j, const char *param, node **out);
static int parse_cond(parser *ps, const json_t *c, const char *param, node **out);

/* {"key": "..."} of is_empty / is_null, or the "key" of a field condition. */
static int get_key(parser *ps, const json_t *obj, const char *param, const char **key)
{
	const json_t *k = json_object_get(obj, "key");
	if (!json_is_string(k) || json_string_length(k) == 0)
		return ju_fail(ps->e, 400, param, "invalid_type",
			       "'%s.key' must be a non-empty string", param);
	*key = json_string_value(k);
	return 0;
}

static int scalar_array(parser *ps, const json_t *a, const char *param)
{
	if (!json_is_array(a))
		return ju_fail(ps->e, 400, param, "invalid_type",
			       "'%s' must be an array of strings, numbers or booleans", param);
	for (size_t i = 0; i < json_array_size(a); i++)
		if (!is_scalar(json_array_get(a, i)))
			return ju_fail(ps->e, 400, param, "invalid_type",
				       "'%s[%zu]' must be a string, number or boolean", param, i);
	return 0;
}

static int parse_match(parser *ps, node *n, const json_t *m, const char *param)
{
	char p[160];
	pfmt(p, sizeof p, "%s.match", param);
	if (is_scalar(m)) {
		n->kind = N_VALUE;
		n->value = m;
		return 0;
	}
	static const char *const keys[] = {"value", "any", "except", "text", NULL};
	if (!json_is_object(m))
		return ju_fail(ps->e, 400, p, "invalid_type",
			       "'%s' must be a string, number or boolean, or one of {\"value\"}, "
			       "{\"any\"}, {\"except\"}, {\"text\"}", p);
	if (ju_check_keys(m, keys, p, ps->e))
		return -1;
	size_t set = 0;
	const char *which = NULL;
	const json_t *v = NULL;
	for (size_t i = 0; keys[i]; i++) {
		const json_t *x = json_object_get(m, keys[i]);
		if (x && !json_is_null(x)) {
			set++;
			which = keys[i];
			v = x;
		}
	}
	if (set != 1)
		return ju_fail(ps->e, 400, p, "invalid_type",
			       "'%s' needs exactly one of 'value', 'any', 'except' or 'text'", p);
	char pv[192];
	pfmt(pv, sizeof pv, "%s.%s", p, which);
	if (strcmp(which, "value") == 0) {
		if (!is_scalar(v))
			return ju_fail(ps->e, 400, pv, "invalid_type",
				       "'%s' must be a string, number or boolean", pv);
		n->kind = N_VALUE;
	} else if (strcmp(which, "text") == 0) {
		if (!json_is_string(v))
			return ju_fail(ps->e, 400, pv, "invalid_type", "'%s' must be a string", pv);
		n->kind = N_TEXT;
		n->text = json_string_value(v);
		n->text_len = json_string_length(v);
	} else {
		if (scalar_array(ps, v, pv))
			return -1;
		n->kind = strcmp(which, "any") == 0 ? N_ANY : N_EXCEPT;
	}
	n->value = v;
	return 0;
}

static int parse_range(parser *ps, node *n, const json_t *r, const char *param)
{
	static const char *const keys[] = {"gt", "gte", "lt", "lte", NULL};
	char p[160];
	pfmt(p, sizeof p, "%s.range", param);
	if (!json_is_object(r))
		return ju_fail(ps->e, 400, p, "invalid_type",
			       "'%s' must be {\"gt\", \"gte\", \"lt\", \"lte\"}", p);
	if (ju_check_keys(r, keys, p, ps->e))
		return -1;
	n->kind = N_RANGE;
	for (int i = 0; keys[i]; i++) {
		const json_t *v = json_object_get(r, keys[i]);
		if (!v || json_is_null(v))
			continue;
		if (!json_is_number(v))
			return ju_fail(ps->e, 400, p, "invalid_type", "'%s.%s' must be a number",
				       p, keys[i]);
		n->r[i] = json_number_value(v);
		n->rset |= 1u << i;
	}
	return 0;
}

static int parse_has_id(parser *ps, node *n, const json_t *a, const char *param)
{
	char p[160];
	pfmt(p, sizeof p, "%s.has_id", param);
	if (!json_is_array(a))
		return ju_fail(ps->e, 400, p, "invalid_type", "'%s' must be an array of ids", p);
	n->kind = N_HAS_ID;
	n->nids = json_array_size(a);
	n->ids = calloc(n->nids ? n->nids : 1, sizeof *n->ids);
	if (!n->ids)
		return oom(ps);
	for (size_t i = 0; i < n->nids; i++) {
		char pi[192];
		pfmt(pi, sizeof pi, "%s[%zu]", p, i);
		if (api_point_id(json_array_get(a, i), &n->ids[i], pi, ps->e))
			return -1;
	}
	return 0;
}

/* {"is_empty": {"key"}} / {"is_null": {"key"}} */
static int parse_keyed(parser *ps, node *n, int kind, const json_t *v, const char *param,
		       const char *name)
{
	static const char *const keys[] = {"key", NULL};
	char p[160];
	pfmt(p, sizeof p, "%s.%s", param, name);
	if (!json_is_object(v))
		return ju_fail(ps->e, 400, p, "invalid_type", "'%s' must be {\"key\": ...}", p);
	if (ju_check_keys(v, keys, p, ps->e) || get_key(ps, v, p, &n->key))
		return -1;
	n->kind = kind;
	return 0;
}

static int parse_nested(parser *ps, node *n, const json_t *v, const char *param)
{
	static const char *const keys[] = {"key", "filter", NULL};
	char p[160];
	pfmt(p, sizeof p, "%s.nested", param);
	if (!json_is_object(v))
		return ju_fail(ps->e, 400, p, "invalid_type",
			       "'%s' must be {\"key\": ..., \"filter\": ...}", p);
	if (ju_check_keys(v, keys, p, ps->e) || get_key(ps, v, p, &n->key))
		return -1;
	n->kind = N_NESTED;
	char pf[192];
	pfmt(pf, sizeof pf, "%s.filter", p);
	const json_t *f = json_object_get(v, "filter");
	if (!f)
		return ju_fail(ps->e, 400, pf, "missing_field", "'%s' is required", pf);
	return parse_filter(ps, f, pf, &n->sub);
}

static int is_filter_object(const json_t *c)
{
	return json_object_get(c, "must") || json_object_get(c, "should") ||
	       json_object_get(c, "must_not") || json_object_get(c, "min_should");
}

static int parse_cond(parser *ps, const json_t *c, const char *param, node **out)
{
	*out = NULL;
	if (!json_is_object(c))
		return ju_fail(ps->e, 400, param, "invalid_type",
			       "'%s' must be a condition object ({\"key\": ..., \"match\": ...}, "
			       "{\"has_id\": ...}, a nested filter, ...)", param);
	/* {} is an empty nested filter (matches every point), as Qdrant reads
	 * it: every accepted filter is also an accepted condition */
	if (!json_object_get(c, "key") && (is_filter_object(c) || json_object_size(c) == 0))
		return parse_filter(ps, c, param, out);
	node *n = node_new(ps, N_VALUE, param);
	if (!n)
		return -1;
	int rc;
	const json_t *v;
	if ((v = json_object_get(c, "has_id"))) {
		static const char *const keys[] = {"has_id", NULL};
		rc = ju_check_keys(c, keys, param, ps->e) || parse_has_id(ps, n, v, param) ? -1 : 0;
	} else if ((v = json_object_get(c, "is_empty"))) {
		static const char *const keys[] = {"is_empty", NULL};
		rc = ju_check_keys(c, keys, param, ps->e) ||
		     parse_keyed(ps, n, N_EMPTY, v, param, "is_empty") ? -1 : 0;
	} else if ((v = json_object_get(c, "is_null"))) {
		static const char *const keys[] = {"is_null", NULL};
		rc = ju_check_keys(c, keys, param, ps->e) ||
		     parse_keyed(ps, n, N_NULL, v, param, "is_null") ? -1 : 0;
	} else if ((v = json_object_get(c, "nested"))) {
		static const char *const keys[] = {"nested", NULL};
		rc = ju_check_keys(c, keys, param, ps->e) || parse_nested(ps, n, v, param) ? -1 : 0;
	} else {
		static const char *const keys[] = {"key", "match", "range", NULL};
		const json_t *m = json_object_get(c, "match"), *r = json_object_get(c, "range");
		if (m && json_is_null(m))
			m = NULL;
		if (r && json_is_null(r))
			r = NULL;
		if (ju_check_keys(c, keys, param, ps->e) || get_key(ps, c, param, &n->key)) {
			rc = -1;
		} else if ((m != NULL) == (r != NULL)) {
			rc = ju_fail(ps->e, 400, param, "invalid_type",
				     "'%s' needs exactly one of 'match' or 'range' beside 'key'", param);
		} else {
			rc = m ? parse_match(ps, n, m, param) : parse_range(ps, n, r, param);
		}
	}
	if (rc) {
		node_free(n);
		return -1;
	}
	*out = n;
	return 0;
}

/* A clause: one condition or an array of them (null: none). */
static int parse_clause(parser *ps, const json_t *v, const char *param, clause *out)
{
	if (!v || json_is_null(v))
		return 0;
	int one = json_is_object(v);
	if (!one && !json_is_array(v))
		return ju_fail(ps->e, 400, param, "invalid_type",
			       "'%s' must be a condition or an array of conditions", param);
	size_t n = one ? 1 : json_array_size(v);
	if (n > API_FILTER_MAX_CONDS)
		return ju_fail(ps->e, 422, param, "too_many_conditions",
			       "'%s' has %zu conditions; the limit is %d", param, n,
			       API_FILTER_MAX_CONDS);
	out->v = calloc(n ? n : 1, sizeof *out->v);
	if (!out->v)
		return oom(ps);
	for (size_t i = 0; i < n; i++) {
		char p[160];
		if (one)
			pfmt(p, sizeof p, "%s", param);
		else
			pfmt(p, sizeof p, "%s[%zu]", param, i);
		if (parse_cond(ps, one ? v : json_array_get(v, i), p, &out->v[i]))
			return -1;
		out->n++;
	}
	return 0;
}

static int parse_min_should(parser *ps, node *n, const json_t *v, const char *param)
{
	static const char *const keys[] = {"conditions", "min_count", NULL};
	char p[160];
	pfmt(p, sizeof p, "%s.min_should", param);
	if (!json_is_object(v))
		return ju_fail(ps->e, 400, p, "invalid_type",
			       "'%s' must be {\"conditions\": [...], \"min_count\": n}", p);
	if (ju_check_keys(v, keys, p, ps->e))
		return -1;
	const json_t *mc = json_object_get(v, "min_count");
	if (!json_is_integer(mc) || json_integer_value(mc) < 0)
		return ju_fail(ps->e, 400, p, "invalid_type",
			       "'%s.min_count' must be an unsigned integer", p);
	n->min_count = (size_t)json_integer_value(mc);
	const json_t *conds = json_object_get(v, "conditions");
	char pc[192];
	pfmt(pc, sizeof pc, "%s.conditions", p);
	if (!json_is_array(conds))
		return ju_fail(ps->e, 400, pc, "invalid_type", "'%s' must be an array of conditions",
			       pc);
	return parse_clause(ps, conds, pc, &n->min_should);
}

static int parse_filter(parser *ps, const json_t *j, const char *param, node **out)
{
	static const char *const keys[] = {"must", "should", "must_not", "min_should", NULL};
	*out = NULL;
	if (!json_is_object(j))
		return ju_fail(ps->e, 400, param, "invalid_type", "'%s' must be an object", param);
	if (ju_check_keys(j, keys, param, ps->e))
		return -1;
	node *n = node_new(ps, N_FILTER, param);
	if (!n)
		return -1;
	char p[160];
	int rc = 0;
	pfmt(p, sizeof p, "%s.must", param);
	rc = parse_clause(ps, json_object_get(j, "must"), p, &n->must);
	pfmt(p, sizeof p, "%s.should", param);
	if (!rc)
		rc = parse_clause(ps, json_object_get(j, "should"), p, &n->should);
	pfmt(p, sizeof p, "%s.must_not", param);
	if (!rc)
		rc = parse_clause(ps, json_object_get(j, "must_not"), p, &n->must_not);
	const json_t *ms = json_object_get(j, "min_should");
	if (!rc && ms && !json_is_null(ms))
		rc = parse_min_should(ps, n, ms, param);
	if (rc) {
		node_free(n);
		return -1;
	}
	*out = n;
	return 0;
}

int api_filter_parse(const json_t *j, const char *param, api_filter **out, ju_err *e)
{
	*out = NULL;
	if (!j || json_is_null(j))
		return 0;
	parser ps = {0, e};
	api_filter *f = calloc(1, sizeof *f);
	if (!f)
		return oom(&ps);
	if (parse_filter(&ps, j, param ? param : "filter", &f->top)) {
		free(f);
		return -1;
	}
	f->root = json_incref((json_t *)j);
	plan_node(f, f->top);
	f->plan.terms = f->terms;
	f->plan.n = f->nterms;
	f->plan.exact = plan_exact(f);
	*out = f;
	return 0;
}

void api_filter_free(api_filter *f)
{
	if (!f)
		return;
	node_free(f->top);
	for (size_t i = 0; i < f->nowned; i++)
		free(f->owned[i]);
	json_decref(f->root);
	free(f);
}

/* ---------------------------------------------------------------- eval */

static int scalar_eq(const json_t *a, const json_t *b)
{
	if (json_is_number(a) && json_is_number(b))
		return json_number_value(a) == json_number_value(b);
	return json_equal((json_t *)a, (json_t *)b);
}

static int in_array(const json_t *v, const json_t *arr)
{
	for (size_t j = 0; j < json_array_size(arr); j++)
		if (scalar_eq(v, json_array_get(arr, j)))
			return 1;
	return 0;
}

static int contains(const char *hay, size_t hn, const char *needle, size_t nn)
{
	if (nn == 0)
		return 1;
	for (size_t i = 0; i + nn <= hn; i++)
		if (hay[i] == needle[0] && memcmp(hay + i, needle, nn) == 0)
			return 1;
	return 0;
}

/* One value found at the key (an element when the value was an array). */
static int leaf_holds(const json_t *v, const void *arg)
{
	const node *n = arg;
	switch (n->kind) {
	case N_VALUE:
		return scalar_eq(v, n->value);
	case N_ANY:
		return in_array(v, n->value);
	case N_EXCEPT:
		return !in_array(v, n->value);
	case N_TEXT:
		return json_is_string(v) &&
		       contains(json_string_value(v), json_string_length(v), n->text, n->text_len);
	case N_RANGE: {
		if (!json_is_number(v))
			return 0;
		double x = json_number_value(v);
		return (!(n->rset & R_GT) || x > n->r[0]) && (!(n->rset & R_GTE) || x >= n->r[1]) &&
		       (!(n->rset & R_LT) || x < n->r[2]) && (!(n->rset & R_LTE) || x <= n->r[3]);
	}
	case N_EMPTY: /* "found something that is not empty" */
		return !json_is_null(v);
	}
	return 0;
}

/* The values at path k under v.  For each, fn(value): flatten = 1 calls it
 * per element of an array value (an empty array: not at all).  Returns 1 as
 * soon as fn does. */
typedef int (*visit_fn)(const json_t *v, const void *arg);

static int visit(const json_t *v, const char *k, int flatten, visit_fn fn, const void *n)
{
	if (!v)
		return 0;
	if (!*k) {
		if (flatten && json_is_array(v)) {
			for (size_t i = 0; i < json_array_size(v); i++)
				if (fn(json_array_get(v, i), n))
					return 1;
			return 0;
		}
		return fn(v, n);
	}
	if (json_is_array(v)) { /* a step into an array looks into each element */
		for (size_t i = 0; i < json_array_size(v); i++)
			if (visit(json_array_get(v, i), k, flatten, fn, n))
				return 1;
		return 0;
	}
	if (!json_is_object(v))
		return 0;
	size_t len = strcspn(k, ".");
	size_t seg = len;
	if (seg >= 2 && k[seg - 2] == '[' && k[seg - 1] == ']')
		seg -= 2; /* "a[]": the same as "a" here */
	char part[256];
	if (seg >= sizeof part)
		return 0;
	memcpy(part, k, seg);
	part[seg] = '\0';
	const char *rest = k + len;
	if (*rest == '.')
		rest++;
	return visit(json_object_get(v, part), rest, flatten, fn, n);
}

static int is_null_fn(const json_t *v, const void *n)
{
	(void)n;
	return json_is_null(v);
}

static int eval(const node *n, const json_t *pl, const es_point_id *id);

static int nested_fn(const json_t *v, const void *arg)
{
	const node *n = arg;
	return json_is_object(v) && eval(n->sub, v, NULL);
}

static int id_eq(const es_point_id *a, const es_point_id *b)
{
	if (a->is_str != b->is_str)
		return 0;
	if (!a->is_str)
		return a->num == b->num;
	return a->len == b->len && memcmp(a->str, b->str, a->len) == 0;
}

static int clause_count(const clause *c, const json_t *pl, const es_point_id *id, size_t stop)
{
	size_t k = 0;
	for (size_t i = 0; i < c->n && k < stop; i++)
		k += eval(c->v[i], pl, id) != 0;
	return (int)k;
}

/* pl: the payload object (or NULL); id: NULL inside a nested filter. */
static int eval(const node *n, const json_t *pl, const es_point_id *id)
{
	switch (n->kind) {
	case N_FILTER:
		for (size_t i = 0; i < n->must.n; i++)
			if (!eval(n->must.v[i], pl, id))
				return 0;
		for (size_t i = 0; i < n->must_not.n; i++)
			if (eval(n->must_not.v[i], pl, id))
				return 0;
		if (n->should.n && !clause_count(&n->should, pl, id, 1))
			return 0;
		if (n->min_should.n || n->min_count)
			return (size_t)clause_count(&n->min_should, pl, id, n->min_count) >=
			       n->min_count;
		return 1;
	case N_HAS_ID:
		if (!id)
			return 0;
		for (size_t i = 0; i < n->nids; i++)
			if (id_eq(&n->ids[i], id))
				return 1;
		return 0;
	case N_EMPTY:
		return !visit(pl, n->key, 1, leaf_holds, n);
	case N_NULL:
		return visit(pl, n->key, 0, is_null_fn, n);
	case N_NESTED:
		return visit(pl, n->key, 1, nested_fn, n);
	case N_EXCEPT: {
		/* missing, null or []: nothing of the list is there */
		if (!visit(pl, n->key, 1, leaf_holds, &(node){.kind = N_EMPTY}))
			return 1;
		return visit(pl, n->key, 1, leaf_holds, n);
	}
	default:
		return visit(pl, n->key, 1, leaf_holds, n);
	}
}

int api_filter_match(const api_filter *f, const es_point_view *p)
{
	if (!f)
		return 1;
	return eval(f->top, p->parsed, &p->id);
}

int api_filter_fn(void *ctx, const es_point_view *p)
{
	return api_filter_match(ctx, p);
}

/* ------------------------------------------------------ payload indexes */

#define EXACT_INT 9007199254740992.0 /* 2^53: doubles below are exact integers */

typedef struct extract_ctx {
	void (*emit)(void *ctx, const es_pval *v);
	void *ctx;
} extract_ctx;

static int extract_fn(const json_t *v, const void *arg)
{
	const extract_ctx *x = arg;
	es_pval pv = {0, NULL, 0, 0};
	if (json_is_string(v)) {
		pv.kind = ES_PVAL_STR;
		pv.s = json_string_value(v);
		pv.len = json_string_length(v);
	} else if (json_is_integer(v)) {
		pv.kind = ES_PVAL_INT;
		pv.i = (int64_t)json_integer_value(v);
	} else if (json_is_real(v)) {
		double d = json_real_value(v);
		/* integral and within int64 (-2^63 <= d < 2^63): the same key as
		 * the integer that equals it */
		if (d >= -9223372036854775808.0 && d < 9223372036854775808.0 && d == floor(d)) {
			pv.kind = ES_PVAL_INT;
			pv.i = (int64_t)d;
		} else {
			pv.kind = ES_PVAL_NUM;
		}
	} else {
		return 0;
	}
	x->emit(x->ctx, &pv);
	return 0;
}

void api_filter_extract(const void *parsed, const char *path,
			void (*emit)(void *ctx, const es_pval *v), void *ctx)
{
	extract_ctx x = {emit, ctx};
	visit(parsed, path, 1, extract_fn, &x);
}

/* An integral number below 2^53 (exact in a double) into *out. */
static int small_int(const json_t *v, int64_t *out)
{
	if (json_is_integer(v)) {
		json_int_t i = json_integer_value(v);
		if (i <= -(json_int_t)EXACT_INT || i >= (json_int_t)EXACT_INT)
			return 0;
		*out = (int64_t)i;
		return 1;
	}
	if (!json_is_real(v))
		return 0;
	double d = json_real_value(v);
	if (!(d > -EXACT_INT && d < EXACT_INT) || d != (double)(int64_t)d)
		return 0;
	*out = (int64_t)d;
	return 1;
}

/* The term a leaf condition implies, if an index could answer it (a
 * superset of the points the leaf accepts; see payload_index.h). */
static int leaf_term(api_filter *f, const node *n, es_pterm *t)
{
	memset(t, 0, sizeof *t);
	t->field = n->key;
	if (n->kind == N_RANGE) {
		/* loose integer bounds (the filter decides exactly): [floor(lower),
		 * ceil(upper)]; a bound past 2^53 is dropped */
		t->kind = ES_PINDEX_INTEGER;
		t->is_range = 1;
		t->lo = INT64_MIN;
		t->hi = INT64_MAX;
		for (int i = 0; i < 4; i++) {
			if (!(n->rset & (1u << i)) || !(fabs(n->r[i]) < EXACT_INT))
				continue;
			if (i < 2 && floor(n->r[i]) > (double)t->lo)
				t->lo = (int64_t)floor(n->r[i]);
			else if (i >= 2 && ceil(n->r[i]) < (double)t->hi)
				t->hi = (int64_t)ceil(n->r[i]);
		}
		return 1;
	}
	if (n->kind != N_VALUE && n->kind != N_ANY)
		return 0;
	size_t cnt = n->kind == N_VALUE ? 1 : json_array_size(n->value);
	const json_t *first = n->kind == N_VALUE ? n->value : json_array_get(n->value, 0);
	int strs = cnt == 0 || json_is_string(first);
	const char **sv = calloc(cnt ? cnt : 1, sizeof *sv);
	size_t *lv = calloc(cnt ? cnt : 1, sizeof *lv);
	int64_t *iv = calloc(cnt ? cnt : 1, sizeof *iv);
	int ok = sv && lv && iv;
	for (size_t i = 0; ok && i < cnt; i++) {
		const json_t *v = n->kind == N_VALUE ? n->value : json_array_get(n->value, i);
		if (strs && json_is_string(v)) {
			sv[i] = json_string_value(v);
			lv[i] = json_string_length(v);
		} else if (strs || !small_int(v, &iv[i])) {
			ok = 0;
		}
	}
	if (!ok) {
		free(sv);
		free(lv);
		free(iv);
		return 0;
	}
	t->kind = strs ? ES_PINDEX_KEYWORD : ES_PINDEX_INTEGER;
	t->n = cnt;
	t->strs = sv;
	t->lens = lv;
	t->ints = iv;
	/* the arrays are the filter's: freed with it */
	f->owned[f->nowned++] = sv;
	f->owned[f->nowned++] = lv;
	f->owned[f->nowned++] = iv;
	return 1;
}

/* Conditions that every accepted point satisfies: the musts (and a
 * should of one condition), through filters nested in them. */
static void plan_node(api_filter *f, const node *n)
{
	if (n->kind == N_FILTER) {
		for (size_t i = 0; i < n->must.n; i++)
			plan_node(f, n->must.v[i]);
		if (n->should.n == 1)
			plan_node(f, n->should.v[0]);
		return;
	}
	if (f->nterms < API_FILTER_PLAN_TERMS && leaf_term(f, n, &f->terms[f->nterms]))
		f->nterms++;
}

/* The one leaf condition the whole filter is, if it is no more than that:
 * filters whose only clause is one must or one should, down to a leaf. */
static const node *sole_leaf(const node *n)
{
	while (n->kind == N_FILTER) {
		if (n->must_not.n || n->min_should.n || n->min_count ||
		    n->must.n + n->should.n != 1)
			return NULL;
		n = n->must.n ? n->must.v[0] : n->should.v[0];
	}
	return n;
}

/* Is the plan's one term the filter itself?  Equality and `any` terms are
 * exact (leaf_holds compares strings bytewise and numbers as doubles; the
 * index keys strings by their bytes and integers below 2^53 by value, the
 * only integers leaf_term plans), ranges are supersets. */
static int plan_exact(const api_filter *f)
{
	const node *l = f->nterms == 1 ? sole_leaf(f->top) : NULL;
	return l && (l->kind == N_VALUE || l->kind == N_ANY) && !f->terms[0].is_range;
}

const es_pquery *api_filter_plan(const api_filter *f)
{
	return f && f->plan.n ? &f->plan : NULL;
}
