/* test_lerw.c — core/lerw: the writer's bytes are little-endian and its
 * lazy checksum equals crc32c of the bytes, across buffer boundaries and
 * restarts; the reader reads them back from memory and from a FILE*,
 * refuses to read past the end, and its checksum matches; an offset sink
 * and es_writer_patch() (index/snapshot.c's header patching); float
 * arrays keep their bits. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "bytebuf.h"
#include "crc32c.h"
#include "lerw.h"

START_TEST(test_round_trip)
{
	char *buf;
	size_t len;
	FILE *f = open_memstream(&buf, &len);
	es_writer w;
	ck_assert_int_eq(es_writer_init(&w, f, crc32c), 0);
	es_w_u32(&w, 0x01020304u);
	es_w_u64(&w, 0x1122334455667788ull);
	es_w_u8(&w, 0xab);
	es_w_pad(&w, 8);
	ck_assert_uint_eq(w.pos, 16);
	uint32_t crc_a = es_writer_crc(&w);
	es_writer_crc_restart(&w);
	/* more than one buffer of bytes */
	unsigned char *big = malloc(3 * ES_WRITER_BUF + 17);
	for (size_t i = 0; i < 3 * ES_WRITER_BUF + 17; i++)
		big[i] = (unsigned char)(i * 31 + 7);
	for (size_t i = 0; i < 3 * ES_WRITER_BUF + 17; i += 1000)
		es_w_bytes(&w, big + i, i + 1000 > 3 * ES_WRITER_BUF + 17 ?
					      3 * ES_WRITER_BUF + 17 - i : 1000);
	uint32_t crc_b = es_writer_crc(&w);
	ck_assert_int_eq(es_writer_finish(&w), 0);
	fclose(f);
	ck_assert_uint_eq(len, 16 + 3 * ES_WRITER_BUF + 17);
	static const unsigned char head[] = {4, 3, 2, 1, 0x88, 0x77, 0x66, 0x55,
					     0x44, 0x33, 0x22, 0x11, 0xab, 0, 0, 0};
	ck_assert_mem_eq(buf, head, 16);
	ck_assert_mem_eq(buf + 16, big, len - 16);
	ck_assert_uint_eq(crc_a, crc32c(0, buf, 16));
	ck_assert_uint_eq(crc_b, crc32c(0, buf + 16, len - 16));

	for (int src = 0; src < 2; src++) {
		es_reader r;
		FILE *rf = NULL;
		if (src) {
			rf = fmemopen(buf, len, "rb");
			es_reader_file(&r, rf, crc32c);
		} else {
			es_reader_mem(&r, buf, len, crc32c);
		}
		uint32_t a;
		uint64_t b;
		uint8_t c;
		ck_assert_int_eq(es_r_u32(&r, &a), 0);
		ck_assert_int_eq(es_r_u64(&r, &b), 0);
		ck_assert_int_eq(es_r_u8(&r, &c), 0);
		ck_assert_uint_eq(a, 0x01020304u);
		ck_assert_uint_eq(b, 0x1122334455667788ull);
		ck_assert_uint_eq(c, 0xab);
		unsigned char *back = malloc(len);
		ck_assert_int_eq(es_r_bytes(&r, back, len - 13), 0);
		ck_assert_uint_eq(r.crc, crc32c(0, buf, len));
		ck_assert_uint_eq(r.off, len);
		ck_assert_int_eq(es_r_u8(&r, &c), -1);
		es_error err;
		ck_assert_int_eq(es_reader_truncated(&r, 1, &err), ES_ECORRUPT);
		ck_assert_ptr_nonnull(strstr(err.msg, "truncated"));
		free(back);
		if (rf)
			fclose(rf);
	}
	free(big);
	free(buf);
}
END_TEST

/* A write error is sticky and reported once, at the end. */
START_TEST(test_write_error)
{
	FILE *f = fopen("/dev/full", "wb");
	if (!f)
		return;
	setvbuf(f, NULL, _IONBF, 0);
	es_writer w;
	ck_assert_int_eq(es_writer_init(&w, f, NULL), 0);
	for (int i = 0; i < 100000; i++)
		es_w_u32(&w, (uint32_t)i);
	ck_assert_int_ne(es_writer_finish(&w), 0);
	fclose(f);
}
END_TEST

/* An offset sink: what the writer flushes lands where it says, and
 * es_writer_patch() rewrites bytes in the buffer or, once flushed, through
 * the sink at their offset; the checksum keeps the bytes as first written. */
struct mem_sink {
	unsigned char data[4 * ES_WRITER_BUF];
	size_t calls;
	size_t fail_at; /* 1-based call that fails with ENOSPC; 0 never */
};

static int mem_sink_write(void *ctx, const void *p, size_t n, uint64_t off)
{
	struct mem_sink *m = ctx;
	if (++m->calls == m->fail_at)
		return ENOSPC;
	ck_assert_uint_le(off + n, sizeof m->data);
	memcpy(m->data + off, p, n);
	return 0;
}

START_TEST(test_sink_and_patch)
{
	static struct mem_sink m;
	memset(&m, 0, sizeof m);
	unsigned char *want = calloc(1, sizeof m.data);
	es_writer w;
	ck_assert_int_eq(es_writer_init_sink(&w, mem_sink_write, &m, crc32c), 0);
	size_t total = 3 * ES_WRITER_BUF + 5;
	for (size_t i = 0; i < total; i++) {
		want[i] = (unsigned char)(i * 13 + 1);
		es_w_u8(&w, want[i]);
	}
	ck_assert_uint_eq(w.pos, total);
	/* one patch still in the buffer, one flushed long ago, one across the
	 * buffer's start */
	size_t at[] = {total - 3, 10, 3 * ES_WRITER_BUF - 2};
	for (size_t k = 0; k < 3; k++) {
		unsigned char p[4] = {0xf0, 0xf1, (unsigned char)k, 0xf3};
		size_t n = at[k] + 4 > total ? total - at[k] : 4;
		es_writer_patch(&w, at[k], p, n);
		memcpy(want + at[k], p, n);
	}
	/* the checksum is of the bytes as written first */
	unsigned char *orig = malloc(total);
	for (size_t i = 0; i < total; i++)
		orig[i] = (unsigned char)(i * 13 + 1);
	ck_assert_uint_eq(es_writer_crc(&w), crc32c(0, orig, total));
	es_w_u32(&w, 0xa1b2c3d4u);
	put_u32(want + total, 0xa1b2c3d4u);
	ck_assert_int_eq(es_writer_finish(&w), 0);
	ck_assert_mem_eq(m.data, want, total + 4);

	/* a sink failure is sticky: nothing is written after it */
	memset(&m, 0, sizeof m);
	m.fail_at = 2;
	ck_assert_int_eq(es_writer_init_sink(&w, mem_sink_write, &m, NULL), 0);
	for (size_t i = 0; i < total; i++)
		es_w_u8(&w, 1);
	es_writer_patch(&w, 0, "x", 1);
	ck_assert_int_eq(es_writer_finish(&w), ENOSPC);
	ck_assert_uint_eq(m.calls, 2);
	ck_assert_uint_eq(m.data[0], 1);

	/* discard frees the buffer and writes nothing */
	memset(&m, 0, sizeof m);
	ck_assert_int_eq(es_writer_init_sink(&w, mem_sink_write, &m, NULL), 0);
	es_w_u32(&w, 7);
	es_writer_discard(&w);
	ck_assert_uint_eq(m.calls, 0);
	free(orig);
	free(want);
}
END_TEST

/* A FILE* writer patches in its buffer, and cannot seek back past it. */
START_TEST(test_file_patch)
{
	char *buf;
	size_t len;
	FILE *f = open_memstream(&buf, &len);
	es_writer w;
	ck_assert_int_eq(es_writer_init(&w, f, NULL), 0);
	es_w_u32(&w, 0);
	es_w_u32(&w, 5);
	es_writer_patch(&w, 0, "\x09\0\0\0", 4);
	ck_assert_int_eq(es_writer_finish(&w), 0);
	fflush(f);
	ck_assert_uint_eq(len, 8);
	ck_assert_mem_eq(buf, "\x09\0\0\0\x05\0\0\0", 8);
	fclose(f);
	free(buf);

	f = open_memstream(&buf, &len);
	ck_assert_int_eq(es_writer_init(&w, f, NULL), 0);
	for (size_t i = 0; i < ES_WRITER_BUF + 1; i++)
		es_w_u8(&w, 0);
	es_writer_patch(&w, 0, "x", 1);
	ck_assert_int_eq(es_writer_finish(&w), ESPIPE);
	fclose(f);
	free(buf);
}
END_TEST

/* The memory writer appends after what the buffer held, checksums and
 * patches at its own offsets; the memory reader's views point into the
 * bytes in place, and its es_rd_* errors name the input. */
START_TEST(test_mem_writer_and_views)
{
	es_bytebuf b;
	es_bytebuf_init(&b);
	es_bytebuf_put(&b, "HDR", 3); /* not the writer's: before its byte 0 */
	es_writer w;
	ck_assert_int_eq(es_writer_init_mem(&w, &b, crc32c), 0);
	es_w_u8(&w, 7);
	es_w_u32(&w, 0xdeadbeef);
	es_w_u64(&w, 0x0123456789abcdefull);
	es_w_bytes(&w, "xyz", 3);
	ck_assert_uint_eq(w.pos, 16);
	ck_assert_uint_eq(es_writer_crc(&w), crc32c(0, b.data + 3, 16));
	es_writer_patch(&w, 1, "\x01\x02\x03\x04", 4);
	ck_assert_int_eq(es_writer_finish(&w), 0);
	ck_assert_uint_eq(b.len, 19);
	ck_assert(memcmp(b.data, "HDR\x07\x01\x02\x03\x04\xef\xcd\xab\x89\x67\x45\x23\x01xyz",
			 19) == 0);

	es_reader r;
	es_reader_mem(&r, b.data + 3, 16, crc32c);
	r.what = "test section";
	es_error err;
	uint8_t u8;
	uint32_t u32;
	uint64_t u64;
	const void *p;
	ck_assert_int_eq(es_rd_u8(&r, &u8, &err), 0);
	ck_assert_uint_eq(u8, 7);
	ck_assert_int_eq(es_rd_u32(&r, &u32, &err), 0);
	ck_assert_uint_eq(u32, 0x04030201);
	ck_assert_uint_eq(es_r_left(&r), 11);
	ck_assert_int_eq(es_reader_end(&r, &err), ES_ECORRUPT);
	ck_assert_msg(strstr(err.msg, "test section: 11 stray bytes at offset 5"), "%s",
		      err.msg);
	ck_assert_int_eq(es_rd_u64(&r, &u64, &err), 0);
	ck_assert_uint_eq(u64, 0x0123456789abcdefull);
	ck_assert_int_eq(es_rd_view(&r, 4, &p, &err), ES_ECORRUPT);
	ck_assert_msg(strstr(err.msg, "test section: truncated"), "%s", err.msg);
	ck_assert_uint_eq(es_r_left(&r), 3); /* a failed view consumes nothing */
	ck_assert_int_eq(es_rd_view(&r, 3, &p, &err), 0);
	ck_assert_ptr_eq(p, b.data + 16); /* in place, no copy */
	ck_assert_int_eq(es_rd_u8(&r, &u8, &err), ES_ECORRUPT);
	ck_assert_int_eq(es_reader_end(&r, &err), 0);
	/* the views were checksummed like reads */
	ck_assert_uint_eq(r.crc, crc32c(0, b.data + 3, 16));

	/* a FILE* reader has no views */
	FILE *f = fmemopen(b.data, b.len, "r");
	ck_assert_ptr_nonnull(f);
	es_reader_file(&r, f, NULL);
	ck_assert_int_eq(es_r_view(&r, 1, &p), -1);
	ck_assert_uint_eq(es_r_left(&r), 0);
	fclose(f);
	es_bytebuf_free(&b);

	/* running out of memory is the sticky ENOMEM of the writer */
	es_bytebuf_init(&b);
	ck_assert_int_eq(es_writer_init_mem(&w, &b, NULL), 0);
	es_alloc_fail_after(0);
	es_w_u64(&w, 1);
	es_alloc_fail_disarm();
	es_w_u64(&w, 2);
	ck_assert_uint_eq(w.pos, 0);
	ck_assert_int_eq(es_writer_finish(&w), ENOMEM);
	es_bytebuf_free(&b);
}
END_TEST

/* Floats are their little-endian bit patterns (-0, a denormal, a NaN's
 * payload kept), in whichever writer they go through. */
START_TEST(test_f32s)
{
	uint32_t bits[4] = {0x80000000u, 0x00000001u, 0x7fc01234u, 0x3f800000u};
	float v[4], back[4];
	memcpy(v, bits, sizeof v);
	es_bytebuf b;
	es_bytebuf_init(&b);
	es_writer w;
	ck_assert_int_eq(es_writer_init_mem(&w, &b, NULL), 0);
	es_w_f32s(&w, v, 4);
	ck_assert_int_eq(es_writer_finish(&w), 0);
	ck_assert_uint_eq(b.len, 16);
	for (int i = 0; i < 4; i++)
		ck_assert_uint_eq(get_u32(b.data + 4 * i), bits[i]);
	es_reader r;
	es_reader_mem(&r, b.data, b.len, NULL);
	ck_assert_int_eq(es_r_f32s(&r, back, 4), 0);
	ck_assert(memcmp(back, v, sizeof v) == 0);
	es_reader_mem(&r, b.data, b.len - 1, NULL);
	ck_assert_int_eq(es_r_f32s(&r, back, 4), -1);
	ck_assert_uint_eq(es_r_left(&r), 15); /* nothing consumed */
	es_bytebuf_free(&b);
}
END_TEST

Suite *lerw_suite(void)
{
	Suite *s = suite_create("lerw");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_write_error);
	tcase_add_test(tc, test_sink_and_patch);
	tcase_add_test(tc, test_file_patch);
	tcase_add_test(tc, test_mem_writer_and_views);
	tcase_add_test(tc, test_f32s);
	suite_add_tcase(s, tc);
	return s;
}
