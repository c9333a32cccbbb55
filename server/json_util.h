/*
 * json_util.h — jansson helpers for request parsing and the one error body.
 *
 * Typed field extraction reports problems in a ju_err: the HTTP status
 * (400 for malformed JSON or a wrong type, 422 for a well-typed but bad
 * value), the offending parameter path ("points[3].vector") and a message
 * that says what to fix.  The error body is OpenAI's:
 *   {"error":{"message":"...","type":"invalid_request_error",
 *             "param":"input","code":"..."}}
 *
 * Threading: stateless, reentrant.  Ownership: getters borrow from the
 * object they read; *_new functions return new references.
 */
#ifndef ES_JSON_UTIL_H
#define ES_JSON_UTIL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "bytebuf.h"

typedef struct ju_err {
	int status;        /* HTTP status, 0 = no error */
	char code[48];     /* machine-readable, e.g. "invalid_type" */
	char param[128];   /* request parameter path, "" if none */
	char msg[512];
} ju_err;

/* Fill e; returns -1 so callers can `return ju_fail(...)`. */
int ju_fail(ju_err *e, int status, const char *param, const char *code,
	    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Map an ES_E* code to an HTTP status (ES_EINVAL/EDIM/ERANGE -> 422,
 * ENOTFOUND -> 404, EEXIST -> 409, ENOSPC -> 507, ENOMEM/EBUSY/ECANCELED ->
 * 503, others -> 500) and the error body code string. */
int ju_status_of(int es_code);
const char *ju_code_of(int es_code);

/* New reference: {"error":{"message","type","param","code"}} (param null
 * when empty). */
json_t *ju_error_body(int status, const char *param, const char *code,
		      const char *msg);

/* Maximum nesting depth of the JSON text (arrays/objects), scanning
 * strings correctly; stops counting once past `limit`. */
int ju_depth(const char *s, size_t len, int limit);

/* One step of a scan over JSON text that tracks strings: the byte s[*i]
 * if it is structural ('{', '[', '}', ']') outside a string, else 0;
 * *in_str follows the quotes, and an escaped byte inside a string is
 * skipped (*i advanced past it).  ju_depth and the Qdrant answer
 * re-shaper count nesting with it. */
static inline char ju_scan_step(const char *s, size_t *i, int *in_str)
{
	char ch = s[*i];
	if (*in_str) {
		if (ch == '\\')
			++*i;
		else if (ch == '"')
			*in_str = 0;
		return 0;
	}
	if (ch == '"')
		*in_str = 1;
	return ch == '{' || ch == '[' || ch == '}' || ch == ']' ? ch : 0;
}

/* Parse a request body: must be a JSON object, nesting <= max_depth.
 * 400 with the parser's line/column on failure. */
int ju_parse_object(const char *body, size_t len, int max_depth,
		    json_t **out, ju_err *e);

/* Unsigned 64-bit integers.  jansson's integers are signed, so a request
 * number above 2^63-1 (up to 2^64-1) is read by ju_parse_object as a marker
 * string: JU_U64_MARK followed by its decimal digits.  Point ids accept it
 * (api_point_id); every other place treats it as the string it is, and
 * payloads refuse it (ju_has_u64: a payload keeps no number it could not
 * give back).  On the way out, ju_u64_new makes such a marker for a value
 * above 2^63-1 and ju_u64_unmark turns every marker of a serialised body
 * back into the bare number, so 18446744073709551615 round-trips as an
 * integer.  A client string that starts with the marker (it needs a
 * \u001f escape) is read the same way. */
#define JU_U64_MARK "\x1fu64:"
#define JU_U64_MARK_LEN 5

/* 1 and *out when v is an integer >= 0 or a marker string. */
int ju_u64_value(const json_t *v, uint64_t *out);
/* New reference: an integer, or a marker above 2^63-1. */
json_t *ju_u64_new(uint64_t x);
/* 1 when v (recursively) holds a marker string. */
int ju_has_u64(const json_t *v);
/* Replace every "\u001fu64:DIGITS" (as ju_dump writes a marker) in the
 * text s[*len] by DIGITS, in place; *len shrinks. */
void ju_u64_unmark(char *s, size_t *len);

/* Refuse keys not in the NULL-terminated list `allowed` (400, names the
 * key), so a typo like "score_treshold" is not silently ignored. */
int ju_check_keys(const json_t *obj, const char *const *allowed,
		  const char *prefix, ju_err *e);

/* Typed getters.  `param` is the name used in error messages.  Absent or
 * null fields take the default (or fail with 400 "missing" when required).
 * A wrong JSON type is 400; a value out of [min,max] is 422. */
int ju_get_str(const json_t *obj, const char *key, int required,
	       const char **out, size_t *len, ju_err *e);
int ju_get_u32(const json_t *obj, const char *key, uint32_t def,
	       uint32_t min, uint32_t max, uint32_t *out, ju_err *e);
int ju_get_bool(const json_t *obj, const char *key, int def, int *out,
		ju_err *e);
/* *has = 0 when absent; the value must be finite as a float. */
int ju_get_float(const json_t *obj, const char *key, int *has, float *out,
		 ju_err *e);

/* A JSON array of exactly dim numbers, each finite as a float, into out.
 * Length mismatch: 422 code "dimension_mismatch". */
int ju_vector(const json_t *arr, uint32_t dim, float *out, const char *param,
	      ju_err *e);

/* New reference: array of n floats as JSON numbers. */
json_t *ju_float_array(const float *v, size_t n);

/* Standard base64 of n bytes into a new NUL-terminated string (malloc). */
char *ju_base64(const void *data, size_t n, size_t *outlen);

/* Number of Unicode code points in valid UTF-8 text. */
size_t ju_utf8_chars(const char *s, size_t len);

/* Shortest-ish JSON number for a float32: 9 significant digits (enough to
 * round-trip any float32), trailing zeros dropped, written into buf (>= 32
 * bytes); returns the length.  A fast integer path for the usual range,
 * checked by converting back, with snprintf("%.9g") as the fallback, so the
 * text always parses back to the same float. */
size_t ju_fmt_float(float f, char *buf);

/* A growable output buffer for hand-written JSON on hot paths: the core
 * buffer (core/bytebuf.h), so b.s is the text and b.oom sticky. */
typedef es_bytebuf ju_buf;

void ju_buf_put(ju_buf *b, const char *s, size_t n);
void ju_buf_str(ju_buf *b, const char *s);         /* raw, no escaping */
void ju_buf_json_string(ju_buf *b, const char *s); /* quoted and escaped */
void ju_buf_json_stringn(ju_buf *b, const char *s, size_t n); /* the same, n bytes */
void ju_buf_u64(ju_buf *b, uint64_t v);
void ju_buf_floats(ju_buf *b, const float *v, size_t n); /* [a,b,...] */

/* Serialise compactly with float precision suited to float32 (9 digits).
 * Returns a malloc'd string (free()), NULL on failure. */
char *ju_dump(const json_t *v, size_t *len);

#endif
