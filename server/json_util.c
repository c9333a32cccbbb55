/* json_util.c — see json_util.h.  Stateless. */
#include "json_util.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

int ju_fail(ju_err *e, int status, const char *param, const char *code,
	    const char *fmt, ...)
{
	if (!e)
		return -1;
	e->status = status;
	snprintf(e->param, sizeof e->param, "%s", param ? param : "");
	snprintf(e->code, sizeof e->code, "%s", code ? code : "");
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof e->msg, fmt, ap);
	va_end(ap);
	return -1;
}

int ju_status_of(int es_code)
{
	switch (es_code) {
	case ES_OK: return 200;
	case ES_EINVAL:
	case ES_EDIM:
	case ES_ERANGE:
	case ES_EUNSUPPORTED: return 422;
	case ES_ENOTFOUND: return 404;
	case ES_EEXIST: return 409;
	case ES_ENOSPC: return 507;
	case ES_EIO: return 503; /* disk error: writes refused, reads go on */
	case ES_ENOMEM:
	case ES_EBUSY:
	case ES_ECANCELED: return 503;
	default: return 500;
	}
}

const char *ju_code_of(int es_code)
{
	switch (es_code) {
	case ES_EDIM: return "dimension_mismatch";
	case ES_EINVAL: return "invalid_value";
	default: return es_strerror(es_code);
	}
}

/* "invalid_request_error", "authentication_error", "server_error", ...
 * for a status. */
static const char *ju_type_of(int status)
{
	switch (status) {
	case 401: return "authentication_error";
	case 404: return "not_found_error";
	case 409: return "conflict_error";
	case 503:
	case 507: return "server_unavailable_error";
	default: return status >= 500 ? "server_error" : "invalid_request_error";
	}
}

json_t *ju_error_body(int status, const char *param, const char *code,
		      const char *msg)
{
	json_t *inner = json_object();
	json_object_set_new(inner, "message", json_string(msg ? msg : ""));
	json_object_set_new(inner, "type", json_string(ju_type_of(status)));
	json_object_set_new(inner, "param",
			    param && *param ? json_string(param) : json_null());
	json_object_set_new(inner, "code", code && *code ? json_string(code) : json_null());
	json_t *o = json_object();
	json_object_set_new(o, "error", inner);
	return o;
}

int ju_depth(const char *s, size_t len, int limit)
{
	int depth = 0, max = 0, in_str = 0;
	for (size_t i = 0; i < len; i++) {
		char ch = ju_scan_step(s, &i, &in_str);
		if (ch == '[' || ch == '{') {
			if (++depth > max) {
				max = depth;
				if (max > limit)
					return max;
			}
		} else if (ch == ']' || ch == '}') {
			depth--;
		}
	}
	return max;
}

/* body with every integer token in (2^63-1, 2^64-1] outside strings
 * replaced by a marker string; NUL-terminated, malloc'd; NULL when out of
 * memory.  A token that is not such an integer is copied as it is, so a
 * document that was malformed stays malformed. */
static char *u64_mark(const char *body, size_t len)
{
	char *o = malloc(len * 2 + 16);
	if (!o)
		return NULL;
	size_t k = 0, i = 0;
	while (i < len) {
		char ch = body[i];
		if (ch == '"') { /* copy the string through, escapes and all */
			o[k++] = body[i++];
			while (i < len && body[i] != '"') {
				if (body[i] == '\\' && i + 1 < len)
					o[k++] = body[i++];
				o[k++] = body[i++];
			}
			if (i < len)
				o[k++] = body[i++];
			continue;
		}
		if (ch >= '0' && ch <= '9' && (i == 0 || !strchr("-+.eE0123456789", body[i - 1]))) {
			size_t j = i;
			while (j < len && body[j] >= '0' && body[j] <= '9')
				j++;
			int plain = j == len || !strchr(".eE", body[j]);
			uint64_t v = 0;
			int fits = j - i <= 20;
			for (size_t t = i; fits && t < j; t++) {
				unsigned d = (unsigned)(body[t] - '0');
				if (v > (UINT64_MAX - d) / 10)
					fits = 0;
				else
					v = v * 10 + d;
			}
			if (plain && fits && v > (uint64_t)INT64_MAX && body[i] != '0') {
				k += (size_t)sprintf(o + k, "\"\\u001fu64:");
				memcpy(o + k, body + i, j - i);
				k += j - i;
				o[k++] = '"';
			} else {
				memcpy(o + k, body + i, j - i);
				k += j - i;
			}
			i = j;
			continue;
		}
		o[k++] = body[i++];
	}
	o[k] = '\0';
	return o;
}

int ju_u64_value(const json_t *v, uint64_t *out)
{
	if (json_is_integer(v)) {
		if (json_integer_value(v) < 0)
			return 0;
		*out = (uint64_t)json_integer_value(v);
		return 1;
	}
	if (!json_is_string(v) || json_string_length(v) <= JU_U64_MARK_LEN ||
	    memcmp(json_string_value(v), JU_U64_MARK, JU_U64_MARK_LEN) != 0)
		return 0;
	const char *d = json_string_value(v) + JU_U64_MARK_LEN;
	size_t n = json_string_length(v) - JU_U64_MARK_LEN;
	if (n > 20)
		return 0;
	uint64_t x = 0;
	for (size_t i = 0; i < n; i++) {
		if (d[i] < '0' || d[i] > '9')
			return 0;
		unsigned dg = (unsigned)(d[i] - '0');
		if (x > (UINT64_MAX - dg) / 10)
			return 0;
		x = x * 10 + dg;
	}
	*out = x;
	return 1;
}

json_t *ju_u64_new(uint64_t x)
{
	if (x <= (uint64_t)INT64_MAX)
		return json_integer((json_int_t)x);
	char buf[JU_U64_MARK_LEN + 24];
	int n = snprintf(buf, sizeof buf, "%s%llu", JU_U64_MARK, (unsigned long long)x);
	return json_stringn(buf, (size_t)n);
}

int ju_has_u64(const json_t *v)
{
	if (json_is_string(v))
		return json_string_length(v) >= JU_U64_MARK_LEN &&
		       memcmp(json_string_value(v), JU_U64_MARK, JU_U64_MARK_LEN) == 0;
	if (json_is_array(v)) {
		for (size_t i = 0; i < json_array_size(v); i++)
			if (ju_has_u64(json_array_get(v, i)))
				return 1;
		return 0;
	}
	if (json_is_object(v)) {
		const char *k;
		json_t *x;
		json_object_foreach((json_t *)v, k, x)
			if (ju_has_u64(x))
				return 1;
	}
	return 0;
}

/* At r (n bytes left): a marker as jansson writes it, "\u001Fu64: (either
 * case of the F)?  Returns its length or 0. */
static size_t mark_at(const char *r, size_t n)
{
	if (n < 12 || memcmp(r, "\"\\u001", 6) != 0 || (r[6] != 'f' && r[6] != 'F') ||
	    memcmp(r + 7, "u64:", 4) != 0)
		return 0;
	return 11;
}

void ju_u64_unmark(char *s, size_t *len)
{
	char *end = s + *len, *r = s, *w = s;
	if (!memmem(s, *len, "u64:", 4))
		return;
	while (r < end) {
		size_t ml = *r == '"' ? mark_at(r, (size_t)(end - r)) : 0;
		if (ml) {
			char *d = r + ml, *q = d;
			while (q < end && *q >= '0' && *q <= '9')
				q++;
			if (q < end && *q == '"' && q > d && !(q + 1 < end && q[1] == ':')) {
				/* (a key is never a number: left alone) */
				memmove(w, d, (size_t)(q - d));
				w += q - d;
				r = q + 1;
				continue;
			}
		}
		*w++ = *r++;
	}
	*len = (size_t)(w - s);
}

int ju_parse_object(const char *body, size_t len, int max_depth,
		    json_t **out, ju_err *e)
{
	*out = NULL;
	if (!body || len == 0)
		return ju_fail(e, 400, NULL, "invalid_json",
			       "the request body is empty; send a JSON object");
	int d = ju_depth(body, len, max_depth);
	if (d > max_depth)
		return ju_fail(e, 400, NULL, "too_deep",
			       "JSON nesting is deeper than the limit of %d levels", max_depth);
	json_error_t je;
	json_t *v = json_loadb(body, len, 0, &je);
	if (!v && strstr(je.text, "too big integer")) {
		/* numbers above 2^63-1: read again with them as markers */
		char *marked = u64_mark(body, len);
		if (marked) {
			json_error_t je2;
			v = json_loads(marked, 0, &je2);
			free(marked);
		}
	}
	if (!v)
		return ju_fail(e, 400, NULL, "invalid_json",
			       "malformed JSON at line %d column %d: %s", je.line,
			       je.column, je.text);
	if (!json_is_object(v)) {
		json_decref(v);
		return ju_fail(e, 400, NULL, "invalid_json",
			       "the request body must be a JSON object");
	}
	*out = v;
	return 0;
}

int ju_check_keys(const json_t *obj, const char *const *allowed,
		  const char *prefix, ju_err *e)
{
	const char *key;
	json_t *val;
	json_object_foreach((json_t *)obj, key, val) {
		int ok = 0;
		for (size_t i = 0; allowed[i]; i++)
			if (strcmp(allowed[i], key) == 0) {
				ok = 1;
				break;
			}
		if (!ok) {
			char param[128];
			snprintf(param, sizeof param, "%s%s%s", prefix ? prefix : "",
				 prefix && *prefix ? "." : "", key);
			char list[256] = "";
			size_t used = 0;
			for (size_t i = 0; allowed[i] && used < sizeof list - 1; i++)
				used += (size_t)snprintf(list + used, sizeof list - used,
							 "%s%s", i ? ", " : "", allowed[i]);
			return ju_fail(e, 400, param, "unknown_field",
				       "unknown field '%s' (expected one of: %s)", param, list);
		}
	}
	return 0;
}

static const char *jtype(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	case JSON_NULL: return "null";
	}
	return "?";
}

int ju_get_str(const json_t *obj, const char *key, int required,
	       const char **out, size_t *len, ju_err *e)
{
	json_t *v = json_object_get(obj, key);
	if (!v || json_is_null(v)) {
		*out = NULL;
		if (len)
			*len = 0;
		if (required)
			return ju_fail(e, 400, key, "missing_field", "'%s' is required", key);
		return 0;
	}
	if (!json_is_string(v))
		return ju_fail(e, 400, key, "invalid_type", "'%s' must be a string, not %s",
			       key, jtype(v));
	*out = json_string_value(v);
	if (len)
		*len = json_string_length(v);
	return 0;
}

int ju_get_u32(const json_t *obj, const char *key, uint32_t def,
	       uint32_t min, uint32_t max, uint32_t *out, ju_err *e)
{
	json_t *v = json_object_get(obj, key);
	if (!v || json_is_null(v)) {
		*out = def;
		return 0;
	}
	if (!json_is_integer(v))
		return ju_fail(e, 400, key, "invalid_type", "'%s' must be an integer, not %s",
			       key, jtype(v));
	json_int_t x = json_integer_value(v);
	if (x < (json_int_t)min || x > (json_int_t)max)
		return ju_fail(e, 422, key, "out_of_range",
			       "'%s' must be in %u..%u (got %lld)", key, min, max,
			       (long long)x);
	*out = (uint32_t)x;
	return 0;
}

int ju_get_bool(const json_t *obj, const char *key, int def, int *out,
		ju_err *e)
{
	json_t *v = json_object_get(obj, key);
	if (!v || json_is_null(v)) {
		*out = def;
		return 0;
	}
	if (!json_is_boolean(v))
		return ju_fail(e, 400, key, "invalid_type", "'%s' must be true or false, not %s",
			       key, jtype(v));
	*out = json_is_true(v);
	return 0;
}

int ju_get_float(const json_t *obj, const char *key, int *has, float *out,
		 ju_err *e)
{
	json_t *v = json_object_get(obj, key);
	*has = 0;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_number(v))
		return ju_fail(e, 400, key, "invalid_type", "'%s' must be a number, not %s",
			       key, jtype(v));
	float f = (float)json_number_value(v);
	if (!isfinite(f))
		return ju_fail(e, 422, key, "not_finite",
			       "'%s' is out of the float32 range", key);
	*out = f;
	*has = 1;
	return 0;
}

int ju_vector(const json_t *arr, uint32_t dim, float *out, const char *param,
	      ju_err *e)
{
	if (!json_is_array(arr))
		return ju_fail(e, 400, param, "invalid_type",
			       "'%s' must be an array of numbers, not %s", param, jtype(arr));
	size_t n = json_array_size(arr);
	if (n != dim)
		return ju_fail(e, 422, param, "dimension_mismatch",
			       "'%s' has %zu numbers but the dimension is %u", param, n, dim);
	for (size_t i = 0; i < n; i++) {
		json_t *x = json_array_get(arr, i);
		if (!json_is_number(x))
			return ju_fail(e, 400, param, "invalid_type",
				       "'%s'[%zu] must be a number, not %s", param, i, jtype(x));
		float f = (float)json_number_value(x);
		if (!isfinite(f))
			return ju_fail(e, 422, param, "not_finite",
				       "'%s'[%zu] is not a finite float32", param, i);
		out[i] = f;
	}
	return 0;
}

json_t *ju_float_array(const float *v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n && a; i++)
		json_array_append_new(a, json_real((double)v[i]));
	return a;
}

char *ju_base64(const void *data, size_t n, size_t *outlen)
{
	static const char tbl[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *p = data;
	size_t olen = 4 * ((n + 2) / 3);
	char *s = malloc(olen + 1);
	if (!s)
		return NULL;
	size_t o = 0, i = 0;
	for (; i + 2 < n; i += 3) {
		uint32_t x = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		s[o++] = tbl[x >> 18];
		s[o++] = tbl[(x >> 12) & 63];
		s[o++] = tbl[(x >> 6) & 63];
		s[o++] = tbl[x & 63];
	}
	if (i < n) {
		uint32_t x = (uint32_t)p[i] << 16;
		if (i + 1 < n)
			x |= (uint32_t)p[i + 1] << 8;
		s[o++] = tbl[x >> 18];
		s[o++] = tbl[(x >> 12) & 63];
		s[o++] = (i + 1 < n) ? tbl[(x >> 6) & 63] : '=';
		s[o++] = '=';
	}
	s[o] = '\0';
	if (outlen)
		*outlen = o;
	return s;
}

size_t ju_utf8_chars(const char *s, size_t len)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++)
		if (((unsigned char)s[i] & 0xC0) != 0x80)
			n++;
	return n;
}

char *ju_dump(const json_t *v, size_t *len)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_REAL_PRECISION(9));
	if (s && len)
		*len = strlen(s);
	return s;
}

static const double pow10_tab[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
				   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
				   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

size_t ju_fmt_float(float f, char *buf)
{
	if (f == 0.0f) {
		buf[0] = '0';
		buf[1] = '\0';
		return 1;
	}
	if (!isfinite(f))
		return (size_t)snprintf(buf, 32, "null");
	double a = fabs((double)f);
	/* decimal exponent from the binary one (floor(e2 * log10(2))), then
	 * corrected by one comparison: no log10 on the hot path */
	/* a = m * 2^e2, m in [0.5, 1): the exponent field of a double (a came
	 * from a float, so it is normal) */
	uint64_t bits;
	memcpy(&bits, &a, sizeof bits);
	int e2 = (int)((bits >> 52) & 0x7ff) - 1022;
	int e10 = ((e2 - 1) * 78913) >> 18;
	/* embedding components are mostly below 1: compare through the table
	 * rather than call pow() per number.  A wrong guess at a boundary is
	 * caught below (m out of [1e8, 1e9)), so rounding here is harmless. */
	int up = e10 + 1;
	if (up >= 0 && up <= 22 ? a >= pow10_tab[up]
	    : up < 0 && up >= -22 ? a * pow10_tab[-up] >= 1.0
				  : a >= pow(10.0, up))
		e10++;
	int k = 8 - e10; /* scale so that 9 digits are left of the point */
	if (k < -22 || k > 22)
		goto slow;
	double scaled = k >= 0 ? a * pow10_tab[k] : a / pow10_tab[-k];
	uint64_t m = (uint64_t)(scaled + 0.5);
	if (m >= 1000000000ull) {
		m = (m + 5) / 10;
		e10++;
		k--;
		if (k < -22 || k > 22)
			goto slow;
	}
	if (m < 100000000ull)
		goto slow;
	/* check: the decimal m * 10^-k must read back as f */
	double back = k >= 0 ? (double)m / pow10_tab[k] : (double)m * pow10_tab[-k];
	if ((float)back != (float)a)
		goto slow;
	char dig[10];
	for (int i = 8; i >= 0; i--) {
		dig[i] = (char)('0' + m % 10);
		m /= 10;
	}
	int nd = 9;
	while (nd > 1 && dig[nd - 1] == '0')
		nd--;
	size_t o = 0;
	if (f < 0)
		buf[o++] = '-';
	if (e10 >= 0 && e10 < 9) {
		for (int i = 0; i <= e10; i++)
			buf[o++] = i < nd ? dig[i] : '0';
		if (nd > e10 + 1) {
			buf[o++] = '.';
			for (int i = e10 + 1; i < nd; i++)
				buf[o++] = dig[i];
		}
	} else if (e10 < 0 && e10 >= -5) {
		buf[o++] = '0';
		buf[o++] = '.';
		for (int i = -1; i > e10; i--)
			buf[o++] = '0';
		for (int i = 0; i < nd; i++)
			buf[o++] = dig[i];
	} else {
		buf[o++] = dig[0];
		if (nd > 1) {
			buf[o++] = '.';
			for (int i = 1; i < nd; i++)
				buf[o++] = dig[i];
		}
		o += (size_t)snprintf(buf + o, 8, "e%d", e10);
	}
	buf[o] = '\0';
	return o;
slow:
	return (size_t)snprintf(buf, 32, "%.9g", (double)f);
}

void ju_buf_put(ju_buf *b, const char *s, size_t n)
{
	es_bytebuf_put(b, s, n);
}

void ju_buf_str(ju_buf *b, const char *s)
{
	ju_buf_put(b, s, strlen(s));
}

void ju_buf_json_string(ju_buf *b, const char *s)
{
	ju_buf_json_stringn(b, s, strlen(s));
}

void ju_buf_json_stringn(ju_buf *b, const char *s, size_t n)
{
	json_t *j = json_stringn(s, n);
	char *t = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
	if (t)
		ju_buf_str(b, t);
	else
		b->oom = 1;
	free(t);
	json_decref(j);
}

void ju_buf_u64(ju_buf *b, uint64_t v)
{
	char tmp[24];
	int n = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v);
	ju_buf_put(b, tmp, (size_t)n);
}

void ju_buf_floats(ju_buf *b, const float *v, size_t n)
{
	/* <= 16 chars + comma each */
	if (es_bytebuf_reserve(b, n * 20 + 2))
		return;
	b->s[b->len++] = '[';
	for (size_t i = 0; i < n; i++) {
		if (i)
			b->s[b->len++] = ',';
		b->len += ju_fmt_float(v[i], b->s + b->len);
	}
	b->s[b->len++] = ']';
	b->s[b->len] = '\0';
}
