/* test_crc32c.c — CRC-32C against published vectors (RFC 3720 B.4 and the
 * standard "123456789" check value), hardware path == table path at every
 * length and alignment, and incremental == one-shot. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);

static void check_vectors(crc_fn f)
{
	unsigned char buf[32];
	ck_assert_uint_eq(f(0, "", 0), 0);
	ck_assert_uint_eq(f(0, "a", 1), 0xC1D04330u);
	ck_assert_uint_eq(f(0, "123456789", 9), 0xE3069283u);
	memset(buf, 0, sizeof buf);
	ck_assert_uint_eq(f(0, buf, 32), 0x8A9136AAu);
	memset(buf, 0xff, sizeof buf);
	ck_assert_uint_eq(f(0, buf, 32), 0x62A8AB43u);
	for (int i = 0; i < 32; i++)
		buf[i] = (unsigned char)i;
	ck_assert_uint_eq(f(0, buf, 32), 0x46DD794Eu);
	for (int i = 0; i < 32; i++)
		buf[i] = (unsigned char)(31 - i);
	ck_assert_uint_eq(f(0, buf, 32), 0x113FDB5Cu);
}

START_TEST(test_known_vectors_dispatch)
{
	check_vectors(crc32c);
}
END_TEST

START_TEST(test_known_vectors_table)
{
	check_vectors(crc32c_sw);
}
END_TEST

START_TEST(test_hw_equals_table)
{
	enum { N = 4096 };
	unsigned char *buf = malloc(N + 16);
	ck_assert_ptr_nonnull(buf);
	uint64_t s = 0x9E3779B97F4A7C15ull;
	for (size_t i = 0; i < N + 16; i++) {
		s ^= s << 13; s ^= s >> 7; s ^= s << 17;
		buf[i] = (unsigned char)s;
	}
	size_t lens[] = {0, 1, 3, 7, 8, 9, 15, 16, 17, 63, 64, 65, 100, 1023, 4096};
	for (size_t a = 0; a < 9; a++)
		for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++) {
			uint32_t h = crc32c(0, buf + a, lens[l]);
			uint32_t t = crc32c_sw(0, buf + a, lens[l]);
			ck_assert_msg(h == t, "align %zu len %zu: %08x vs %08x",
				      a, lens[l], h, t);
		}
	free(buf);
}
END_TEST

START_TEST(test_incremental)
{
	const char *msg = "The quick brown fox jumps over the lazy dog, twice over.";
	size_t n = strlen(msg);
	uint32_t whole = crc32c(0, msg, n);
	for (size_t cut = 0; cut <= n; cut++) {
		uint32_t c = crc32c(0, msg, cut);
		c = crc32c(c, msg + cut, n - cut);
		ck_assert_uint_eq(c, whole);
		uint32_t d = crc32c_sw(crc32c(0, msg, cut), msg + cut, n - cut);
		ck_assert_uint_eq(d, whole);
	}
	/* a single flipped bit changes the checksum */
	char copy[128];
	memcpy(copy, msg, n);
	copy[10] ^= 0x04;
	ck_assert_uint_ne(crc32c(0, copy, n), whole);
}
END_TEST

Suite *crc32c_suite(void)
{
	Suite *s = suite_create("crc32c");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_known_vectors_dispatch);
	tcase_add_test(tc, test_known_vectors_table);
	tcase_add_test(tc, test_hw_equals_table);
	tcase_add_test(tc, test_incremental);
	suite_add_tcase(s, tc);
	return s;
}
