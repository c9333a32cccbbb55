/*
 * crc32c.c — see crc32c.h.
 *
 * Software path: slicing-by-8 (eight 256-entry tables, 8 KiB), about
 * 1-2 GB/s.  Hardware path: SSE4.2 `crc32q` on 8-byte words, about 10x that;
 * three interleaved streams would be faster still, but WAL records are
 * small and snapshots are written at disk speed, so one stream is enough.
 */
#include "crc32c.h"

#include <pthread.h>
#include <string.h>

#if defined(__x86_64__)
#define ES_CRC_X86 1
#include <nmmintrin.h>
#endif

#define CRC32C_POLY 0x82F63B78u

struct crc_state {
	uint32_t table[8][256];
	int hw;
};

static struct crc_state crc_st;
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ CRC32C_POLY : c >> 1;
		crc_st.table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			crc_st.table[t][i] = (crc_st.table[t - 1][i] >> 8) ^
					     crc_st.table[0][crc_st.table[t - 1][i] & 0xff];
#ifdef ES_CRC_X86
	__builtin_cpu_init();
	crc_st.hw = __builtin_cpu_supports("sse4.2");
#endif
}

static uint32_t crc_sw_raw(uint32_t c, const unsigned char *p, size_t n)
{
	const uint32_t(*t)[256] = crc_st.table;
	while (n && ((uintptr_t)p & 7)) {
		c = t[0][(c ^ *p++) & 0xff] ^ (c >> 8);
		n--;
	}
	while (n >= 8) {
		uint32_t lo, hi;
		memcpy(&lo, p, 4);
		memcpy(&hi, p + 4, 4);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
		lo = __builtin_bswap32(lo);
		hi = __builtin_bswap32(hi);
#endif
		lo ^= c;
		c = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^
		    t[5][(lo >> 16) & 0xff] ^ t[4][lo >> 24] ^
		    t[3][hi & 0xff] ^ t[2][(hi >> 8) & 0xff] ^
		    t[1][(hi >> 16) & 0xff] ^ t[0][hi >> 24];
		p += 8;
		n -= 8;
	}
	while (n--)
		c = t[0][(c ^ *p++) & 0xff] ^ (c >> 8);
	return c;
}

#ifdef ES_CRC_X86
__attribute__((target("sse4.2")))
static uint32_t crc_hw_raw(uint32_t c, const unsigned char *p, size_t n)
{
	while (n && ((uintptr_t)p & 7)) {
		c = _mm_crc32_u8(c, *p++);
		n--;
	}
	uint64_t c64 = c;
	while (n >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		c64 = _mm_crc32_u64(c64, w);
		p += 8;
		n -= 8;
	}
	c = (uint32_t)c64;
	while (n--)
		c = _mm_crc32_u8(c, *p++);
	return c;
}
#endif

uint32_t crc32c_sw(uint32_t crc, const void *data, size_t len)
{
	pthread_once(&crc_once, crc_init);
	return ~crc_sw_raw(~crc, data, len);
}

uint32_t crc32c(uint32_t crc, const void *data, size_t len)
{
	pthread_once(&crc_once, crc_init);
#ifdef ES_CRC_X86
	if (crc_st.hw)
		return ~crc_hw_raw(~crc, data, len);
#endif
	return ~crc_sw_raw(~crc, data, len);
}

/* ------------------------------------------------- legacy CRC-32 (IEEE) */

static uint32_t ieee_table[256];
static pthread_once_t ieee_once = PTHREAD_ONCE_INIT;

static void ieee_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int j = 0; j < 8; j++)
			c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
		ieee_table[i] = c;
	}
}

uint32_t es_crc32_ieee(uint32_t crc, const void *data, size_t len)
{
	pthread_once(&ieee_once, ieee_init);
	const unsigned char *p = data;
	crc = ~crc;
	while (len--)
		crc = ieee_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}
