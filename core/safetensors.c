/*
 * safetensors.c — mmap reader for .safetensors (see safetensors.h).
 *
 * The header is parsed once with jansson into a flat array of es_st_tensor;
 * names are copied so the JSON can be released.  Lookups are linear: a BERT
 * checkpoint has ~200 tensors and lookups happen only at load time.
 */
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct es_safetensors {
	char *path;
	void *map;
	size_t map_len;
	const unsigned char *data; /* start of the data block */
	size_t data_len;
	es_st_tensor *tensors;
	size_t count;
};

static const struct {
	const char *name;
	es_st_dtype dtype;
	unsigned size;
} dtype_table[] = {
	{"F32", ES_ST_F32, 4},   {"F16", ES_ST_F16, 2},   {"BF16", ES_ST_BF16, 2},
	{"F64", ES_ST_F64, 8},   {"I64", ES_ST_I64, 8},   {"I32", ES_ST_I32, 4},
	{"I16", ES_ST_I16, 2},   {"I8", ES_ST_I8, 1},     {"U8", ES_ST_U8, 1},
	{"BOOL", ES_ST_BOOL, 1}, {"U16", ES_ST_OTHER, 2}, {"U32", ES_ST_OTHER, 4},
	{"U64", ES_ST_OTHER, 8}, {"F8_E4M3", ES_ST_OTHER, 1},
	{"F8_E5M2", ES_ST_OTHER, 1},
};

static float es_f16_to_f32(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
	uint32_t exp = (h >> 10) & 0x1fu;
	uint32_t mant = h & 0x3ffu;
	uint32_t bits;
	if (exp == 0) {
		if (mant == 0) {
			bits = sign;
		} else { /* subnormal: normalise */
			int e = -1;
			do {
				e++;
				mant <<= 1;
			} while ((mant & 0x400u) == 0);
			mant &= 0x3ffu;
			bits = sign | ((uint32_t)(127 - 15 - e) << 23) | (mant << 13);
		}
	} else if (exp == 31) {
		bits = sign | 0x7f800000u | (mant << 13);
	} else {
		bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
	}
	float f;
	memcpy(&f, &bits, sizeof f);
	return f;
}

static float es_bf16_to_f32(uint16_t h)
{
	uint32_t bits = (uint32_t)h << 16;
	float f;
	memcpy(&f, &bits, sizeof f);
	return f;
}

static void free_tensors(es_safetensors *st)
{
	for (size_t i = 0; i < st->count; i++)
		free((char *)st->tensors[i].name);
	free(st->tensors);
	st->tensors = NULL;
	st->count = 0;
}

void es_safetensors_free(es_safetensors *st)
{
	if (!st)
		return;
	free_tensors(st);
	if (st->map && st->map != MAP_FAILED)
		munmap(st->map, st->map_len);
	free(st->path);
	free(st);
}

/* Parse one header entry into *t; returns 0 or ES_ECORRUPT with a message. */
static int parse_entry(es_safetensors *st, const char *key, json_t *val,
		       es_st_tensor *t, es_error *err)
{
	if (!json_is_object(val))
		return es_err(err, ES_ECORRUPT, "%s: tensor '%s': entry is not an object",
			      st->path, key);
	json_t *jd = json_object_get(val, "dtype");
	json_t *js = json_object_get(val, "shape");
	json_t *jo = json_object_get(val, "data_offsets");
	if (!json_is_string(jd) || !json_is_array(js) || !json_is_array(jo) ||
	    json_array_size(jo) != 2)
		return es_err(err, ES_ECORRUPT,
			      "%s: tensor '%s': needs string \"dtype\", array \"shape\" "
			      "and two \"data_offsets\"", st->path, key);
	const char *dn = json_string_value(jd);
	unsigned esize = 0;
	t->dtype = ES_ST_UNKNOWN;
	t->dtype_name = "unknown";
	for (size_t i = 0; i < sizeof dtype_table / sizeof dtype_table[0]; i++) {
		if (strcmp(dn, dtype_table[i].name) == 0) {
			t->dtype = dtype_table[i].dtype;
			t->dtype_name = dtype_table[i].name;
			esize = dtype_table[i].size;
			break;
		}
	}
	size_t nd = json_array_size(js);
	if (nd > ES_ST_MAX_DIMS)
		return es_err(err, ES_ECORRUPT, "%s: tensor '%s': %zu dimensions (max %d)",
			      st->path, key, nd, ES_ST_MAX_DIMS);
	t->ndim = (uint32_t)nd;
	uint64_t count = 1;
	for (size_t i = 0; i < nd; i++) {
		json_t *d = json_array_get(js, i);
		if (!json_is_integer(d) || json_integer_value(d) < 0)
			return es_err(err, ES_ECORRUPT,
				      "%s: tensor '%s': shape[%zu] is not a non-negative integer",
				      st->path, key, i);
		uint64_t v = (uint64_t)json_integer_value(d);
		t->shape[i] = v;
		if (v != 0 && count > UINT64_MAX / v)
			return es_err(err, ES_ECORRUPT, "%s: tensor '%s': shape overflows",
				      st->path, key);
		count *= v;
	}
	t->count = count;
	json_t *jb = json_array_get(jo, 0), *je = json_array_get(jo, 1);
	if (!json_is_integer(jb) || !json_is_integer(je) ||
	    json_integer_value(jb) < 0 || json_integer_value(je) < 0)
		return es_err(err, ES_ECORRUPT,
			      "%s: tensor '%s': data_offsets are not non-negative integers",
			      st->path, key);
	uint64_t b = (uint64_t)json_integer_value(jb);
	uint64_t e = (uint64_t)json_integer_value(je);
	if (b > e || e > st->data_len)
		return es_err(err, ES_ECORRUPT,
			      "%s: tensor '%s': data_offsets [%llu, %llu] outside the "
			      "%zu-byte data block (file truncated?)", st->path, key,
			      (unsigned long long)b, (unsigned long long)e, st->data_len);
	if (esize) {
		if (count > UINT64_MAX / esize || count * esize != e - b)
			return es_err(err, ES_ECORRUPT,
				      "%s: tensor '%s': %llu bytes of data but shape x %s "
				      "needs %llu", st->path, key,
				      (unsigned long long)(e - b), dn,
				      (unsigned long long)(count * esize));
	}
	t->data = st->data + b;
	t->nbytes = (size_t)(e - b);
	t->name = strdup(key);
	if (!t->name)
		return es_err(err, ES_ENOMEM, "out of memory");
	return 0;
}

int es_safetensors_open(const char *path, es_safetensors **out, es_error *err)
{
	int rc = 0, fd = -1;
	json_t *root = NULL;
	*out = NULL;
	es_safetensors *st = calloc(1, sizeof *st);
	if (!st || !(st->path = strdup(path))) {
		rc = es_err(err, ES_ENOMEM, "out of memory");
		goto out;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = es_err(err, errno == ENOENT ? ES_ENOTFOUND : ES_EIO,
			    "%s: cannot open: %s", path, strerror(errno));
		goto out;
	}
	struct stat sb;
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		rc = es_err(err, ES_EIO, "%s: not a regular file", path);
		goto out;
	}
	if (sb.st_size < 8) {
		rc = es_err(err, ES_ECORRUPT,
			    "%s: %lld bytes is too short for a safetensors file",
			    path, (long long)sb.st_size);
		goto out;
	}
	st->map_len = (size_t)sb.st_size;
	st->map = mmap(NULL, st->map_len, PROT_READ, MAP_PRIVATE, fd, 0);
	if (st->map == MAP_FAILED) {
		st->map = NULL;
		rc = es_err(err, ES_EIO, "%s: mmap failed: %s", path, strerror(errno));
		goto out;
	}
	const unsigned char *p = st->map;
	uint64_t hlen = 0;
	for (int i = 7; i >= 0; i--)
		hlen = (hlen << 8) | p[i];
	if (hlen < 2 || hlen > ES_ST_MAX_HEADER || hlen > st->map_len - 8) {
		rc = es_err(err, ES_ECORRUPT,
			    "%s: header length %llu is not plausible for a %zu-byte file "
			    "(not a safetensors file, or truncated)", path,
			    (unsigned long long)hlen, st->map_len);
		goto out;
	}
	st->data = p + 8 + hlen;
	st->data_len = st->map_len - 8 - (size_t)hlen;
	json_error_t jerr;
	root = json_loadb((const char *)p + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
	if (!root || !json_is_object(root)) {
		rc = es_err(err, ES_ECORRUPT, "%s: header is not a JSON object: %s", path,
			    root ? "wrong type" : jerr.text);
		goto out;
	}
	size_t n = json_object_size(root);
	st->tensors = calloc(n ? n : 1, sizeof *st->tensors);
	if (!st->tensors) {
		rc = es_err(err, ES_ENOMEM, "out of memory");
		goto out;
	}
	const char *key;
	json_t *val;
	json_object_foreach(root, key, val) {
		if (strcmp(key, "__metadata__") == 0)
			continue;
		rc = parse_entry(st, key, val, &st->tensors[st->count], err);
		if (rc)
			goto out;
		st->count++;
	}
out:
	json_decref(root);
	if (fd >= 0)
		close(fd);
	if (rc) {
		es_safetensors_free(st);
		return rc;
	}
	*out = st;
	return 0;
}

size_t es_safetensors_count(const es_safetensors *st)
{
	return st->count;
}

static const es_st_tensor *find_exact(const es_safetensors *st, const char *name)
{
	for (size_t i = 0; i < st->count; i++)
		if (strcmp(st->tensors[i].name, name) == 0)
			return &st->tensors[i];
	return NULL;
}

const es_st_tensor *es_safetensors_find(const es_safetensors *st, const char *name)
{
	const es_st_tensor *t = find_exact(st, name);
	if (t)
		return t;
	if (strncmp(name, "bert.", 5) == 0)
		return find_exact(st, name + 5);
	char buf[512];
	if (snprintf(buf, sizeof buf, "bert.%s", name) >= (int)sizeof buf)
		return NULL;
	return find_exact(st, buf);
}

static void shape_str(char *buf, size_t len, uint32_t ndim, const uint64_t *shape)
{
	size_t off = 0;
	off += (size_t)snprintf(buf + off, len - off, "[");
	for (uint32_t i = 0; i < ndim && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%llu", i ? ", " : "",
					(unsigned long long)shape[i]);
	if (off < len)
		snprintf(buf + off, len - off, "]");
}

static int read_into(const es_safetensors *st, const char *name, uint32_t ndim,
		     const uint64_t *shape, float *dst, es_error *err)
{
	const es_st_tensor *t = es_safetensors_find(st, name);
	if (!t)
		return es_err(err, ES_ENOTFOUND, "%s: missing tensor '%s'", st->path, name);
	if (ndim) {
		int ok = t->ndim == ndim;
		for (uint32_t i = 0; ok && i < ndim; i++)
			ok = t->shape[i] == shape[i];
		if (!ok) {
			char want[128], have[128];
			shape_str(want, sizeof want, ndim, shape);
			shape_str(have, sizeof have, t->ndim, t->shape);
			return es_err(err, ES_ECORRUPT,
				      "%s: tensor '%s' has shape %s, expected %s",
				      st->path, t->name, have, want);
		}
	}
	const unsigned char *src = t->data;
	switch (t->dtype) {
	case ES_ST_F32:
		memcpy(dst, src, t->count * 4);
		break;
	case ES_ST_F16:
	case ES_ST_BF16:
		for (uint64_t i = 0; i < t->count; i++) {
			uint16_t h = (uint16_t)(src[2 * i] | (src[2 * i + 1] << 8));
			dst[i] = t->dtype == ES_ST_F16 ? es_f16_to_f32(h) : es_bf16_to_f32(h);
		}
		break;
	default:
		return es_err(err, ES_EUNSUPPORTED,
			      "%s: tensor '%s' has dtype %s; only F32, F16 and BF16 are "
			      "supported", st->path, t->name, t->dtype_name);
	}
	return 0;
}

int es_safetensors_read_f32(const es_safetensors *st, const char *name,
			    uint32_t ndim, const uint64_t *shape, float *dst,
			    es_error *err)
{
	if (ndim == 0)
		return es_err(err, ES_EINVAL, "reading '%s': an expected shape is required",
			      name);
	return read_into(st, name, ndim, shape, dst, err);
}

int es_safetensors_load_f32(const es_safetensors *st, const char *name,
			    uint32_t ndim, const uint64_t *shape, float **out,
			    es_error *err)
{
	*out = NULL;
	const es_st_tensor *t = es_safetensors_find(st, name);
	if (!t)
		return es_err(err, ES_ENOTFOUND, "%s: missing tensor '%s'", st->path, name);
	if (t->count > SIZE_MAX / sizeof(float))
		return es_err(err, ES_ENOMEM, "%s: tensor '%s' too large", st->path, name);
	float *buf = malloc(t->count ? t->count * sizeof(float) : sizeof(float));
	if (!buf)
		return es_err(err, ES_ENOMEM, "out of memory loading '%s'", name);
	int rc = read_into(st, name, ndim, shape, buf, err);
	if (rc) {
		free(buf);
		return rc;
	}
	*out = buf;
	return 0;
}
