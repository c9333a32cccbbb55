/*
 * test_safetensors.c — the .safetensors reader against the bert-tiny fixture
 * and against hand-made hostile files (truncated, bad header, wrong sizes,
 * offsets outside the file, missing tensors, wrong shapes).
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "es_test.h"
#include "safetensors.h"

static char tmpdir[256];

static void setup(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/es_st_XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void)
{
	char cmd[512];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
}

/* Write a file: 8-byte header length, header, data. */
static const char *write_st(const char *name, const char *header, uint64_t hlen_claim,
			    const void *data, size_t dlen)
{
	static char path[512];
	snprintf(path, sizeof path, "%s/%s", tmpdir, name);
	FILE *f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	unsigned char h8[8];
	for (int i = 0; i < 8; i++)
		h8[i] = (unsigned char)(hlen_claim >> (8 * i));
	fwrite(h8, 1, 8, f);
	fwrite(header, 1, strlen(header), f);
	if (dlen)
		fwrite(data, 1, dlen, f);
	fclose(f);
	return path;
}

START_TEST(test_fixture_opens)
{
	char p[512];
	es_safetensors *st;
	es_error err;
	es_test_path(p, sizeof p, "tests/data/bert-tiny/hf/model.safetensors");
	ck_assert_int_eq(es_safetensors_open(p, &st, &err), 0);
	ck_assert_uint_eq(es_safetensors_count(st), 37);
	const es_st_tensor *t = es_safetensors_find(st, "embeddings.word_embeddings.weight");
	ck_assert_ptr_nonnull(t);
	ck_assert_uint_eq(t->ndim, 2);
	ck_assert_uint_eq(t->shape[0], 2628);
	ck_assert_uint_eq(t->shape[1], 128);
	ck_assert_int_eq(t->dtype, ES_ST_F32);
	/* the "bert." prefix is optional both ways */
	ck_assert_ptr_eq(es_safetensors_find(st, "bert.embeddings.word_embeddings.weight"), t);
	ck_assert_ptr_null(es_safetensors_find(st, "embeddings.nope"));
	float *w;
	uint64_t shape[2] = {128, 128};
	ck_assert_int_eq(es_safetensors_load_f32(st, "embeddings.position_embeddings.weight",
						 2, shape, &w, &err), 0);
	float s = 0;
	for (int i = 0; i < 128 * 128; i++)
		s += fabsf(w[i]);
	ck_assert(s > 0 && isfinite(s));
	free(w);
	es_safetensors_free(st);
}
END_TEST

START_TEST(test_missing_and_shape_messages)
{
	char p[512];
	es_safetensors *st;
	es_error err;
	float *w;
	es_test_path(p, sizeof p, "tests/data/bert-tiny/hf/model.safetensors");
	ck_assert_int_eq(es_safetensors_open(p, &st, &err), 0);
	ck_assert_int_eq(es_safetensors_load_f32(st, "encoder.layer.9.output.dense.weight",
						 0, NULL, &w, &err), ES_ENOTFOUND);
	ck_assert_ptr_nonnull(strstr(err.msg, "missing tensor 'encoder.layer.9.output.dense.weight'"));
	ck_assert_ptr_nonnull(strstr(err.msg, "model.safetensors"));
	uint64_t shape[2] = {128, 64};
	ck_assert_int_eq(es_safetensors_load_f32(st, "embeddings.position_embeddings.weight",
						 2, shape, &w, &err), ES_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(err.msg, "[128, 128], expected [128, 64]"));
	es_safetensors_free(st);
}
END_TEST

START_TEST(test_half_precision)
{
	/* 1.0, -2.0, 0.5, 65504 (max), smallest subnormal, -0 */
	uint16_t f16[6] = {0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001, 0x8000};
	/* 1.0, -2.0, 3.140625 */
	uint16_t bf16[3] = {0x3f80, 0xc000, 0x4049};
	unsigned char data[18];
	for (int i = 0; i < 6; i++) {
		data[2 * i] = (unsigned char)f16[i];
		data[2 * i + 1] = (unsigned char)(f16[i] >> 8);
	}
	for (int i = 0; i < 3; i++) {
		data[12 + 2 * i] = (unsigned char)bf16[i];
		data[12 + 2 * i + 1] = (unsigned char)(bf16[i] >> 8);
	}
	const char *hdr = "{\"a\":{\"dtype\":\"F16\",\"shape\":[2,3],\"data_offsets\":[0,12]},"
			  "\"b\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[12,18]},"
			  "\"__metadata__\":{\"format\":\"pt\"}}";
	const char *p = write_st("h.safetensors", hdr, strlen(hdr), data, sizeof data);
	es_safetensors *st;
	es_error err;
	ck_assert_int_eq(es_safetensors_open(p, &st, &err), 0);
	float *a, *b;
	uint64_t sa[2] = {2, 3}, sb[1] = {3};
	ck_assert_int_eq(es_safetensors_load_f32(st, "a", 2, sa, &a, &err), 0);
	ck_assert_int_eq(es_safetensors_load_f32(st, "b", 1, sb, &b, &err), 0);
	ck_assert(a[0] == 1.0f && a[1] == -2.0f && a[2] == 0.5f && a[3] == 65504.0f);
	ck_assert(a[4] == ldexpf(1.0f, -24));
	ck_assert(a[5] == 0.0f && signbit(a[5]));
	ck_assert(b[0] == 1.0f && b[1] == -2.0f && b[2] == 3.140625f);
	free(a);
	free(b);
	es_safetensors_free(st);
}
END_TEST

static int open_fails(const char *p, int code, const char *needle)
{
	es_safetensors *st = (es_safetensors *)1;
	es_error err;
	es_error_clear(&err);
	int rc = es_safetensors_open(p, &st, &err);
	ck_assert_msg(rc == code, "expected %d got %d (%s)", code, rc, err.msg);
	ck_assert_ptr_null(st);
	ck_assert_msg(strstr(err.msg, needle) != NULL, "message '%s' lacks '%s'",
		      err.msg, needle);
	return 1;
}

START_TEST(test_hostile_files)
{
	float data[4] = {1, 2, 3, 4};
	const char *good = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}";
	/* truncated data: offsets past the end */
	open_fails(write_st("t1", good, strlen(good), data, 8), ES_ECORRUPT,
		   "outside the 8-byte data block");
	/* header length larger than the file */
	open_fails(write_st("t2", good, 100000, data, 16), ES_ECORRUPT,
		   "header length 100000");
	/* absurd header length */
	open_fails(write_st("t3", good, (uint64_t)1 << 60, data, 16), ES_ECORRUPT,
		   "not plausible");
	/* not JSON */
	const char *bad = "{\"w\":{\"dtype\":\"F32\",";
	open_fails(write_st("t4", bad, strlen(bad), data, 16), ES_ECORRUPT,
		   "header is not a JSON object");
	/* wrong size for the shape */
	const char *wrong = "{\"w\":{\"dtype\":\"F32\",\"shape\":[3,2],\"data_offsets\":[0,16]}}";
	open_fails(write_st("t5", wrong, strlen(wrong), data, 16), ES_ECORRUPT,
		   "16 bytes of data but shape x F32 needs 24");
	/* negative / reversed offsets, bad shape entries */
	const char *rev = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[16,8]}}";
	open_fails(write_st("t6", rev, strlen(rev), data, 16), ES_ECORRUPT, "data_offsets");
	const char *neg = "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}";
	open_fails(write_st("t7", neg, strlen(neg), data, 16), ES_ECORRUPT, "shape[0]");
	const char *huge = "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],"
			   "\"data_offsets\":[0,4]}}";
	open_fails(write_st("t8", huge, strlen(huge), data, 16), ES_ECORRUPT, "overflows");
	const char *notobj = "[1,2,3]";
	open_fails(write_st("t9", notobj, strlen(notobj), data, 16), ES_ECORRUPT,
		   "not a JSON object");
	const char *nofield = "{\"w\":{\"shape\":[2]}}";
	open_fails(write_st("t10", nofield, strlen(nofield), data, 16), ES_ECORRUPT,
		   "tensor 'w'");
	/* too short to be a file at all */
	char p[512];
	snprintf(p, sizeof p, "%s/short", tmpdir);
	FILE *f = fopen(p, "wb");
	fwrite("abc", 1, 3, f);
	fclose(f);
	open_fails(p, ES_ECORRUPT, "too short");
	snprintf(p, sizeof p, "%s/none", tmpdir);
	open_fails(p, ES_ENOTFOUND, "cannot open");

	/* a truncated copy of the real fixture */
	char src[512];
	es_test_path(src, sizeof src, "tests/data/bert-tiny/hf/model.safetensors");
	FILE *in = fopen(src, "rb");
	ck_assert_ptr_nonnull(in);
	char *buf = malloc(200000);
	size_t got = fread(buf, 1, 200000, in);
	fclose(in);
	ck_assert_uint_eq(got, 200000);
	snprintf(p, sizeof p, "%s/trunc.safetensors", tmpdir);
	f = fopen(p, "wb");
	fwrite(buf, 1, got, f);
	fclose(f);
	free(buf);
	open_fails(p, ES_ECORRUPT, "file truncated?");
}
END_TEST

START_TEST(test_unsupported_dtype_on_load)
{
	int64_t data[2] = {1, 2};
	const char *hdr = "{\"pos\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]}}";
	const char *p = write_st("i.safetensors", hdr, strlen(hdr), data, sizeof data);
	es_safetensors *st;
	es_error err;
	ck_assert_int_eq(es_safetensors_open(p, &st, &err), 0);
	float *w;
	ck_assert_int_eq(es_safetensors_load_f32(st, "pos", 0, NULL, &w, &err), ES_EUNSUPPORTED);
	ck_assert_ptr_nonnull(strstr(err.msg, "dtype I64"));
	es_safetensors_free(st);
}
END_TEST

Suite *safetensors_suite(void)
{
	Suite *s = suite_create("safetensors");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_fixture_opens);
	tcase_add_test(tc, test_missing_and_shape_messages);
	tcase_add_test(tc, test_half_precision);
	tcase_add_test(tc, test_hostile_files);
	tcase_add_test(tc, test_unsupported_dtype_on_load);
	suite_add_tcase(s, tc);
	return s;
}
