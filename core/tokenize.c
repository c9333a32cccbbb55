/*
 * tokenize.c — the one word tokenizer shared by training and serving.
 *
 * Implements the rules in tokenize.h.  Decisions the rules leave open,
 * fixed here so that a model trained with this code is served with the same
 * words:
 *  - "non-ASCII punctuation/space" is a fixed table of code-point ranges
 *    below (Latin-1 punctuation, General Punctuation, currency, arrows and
 *    maths, box drawing, CJK and full-width punctuation, emoji, BOM, C1
 *    controls...), deliberately NOT the host's locale or Unicode library, so
 *    the split never changes with the machine's library versions;
 *  - inside a word, U+2019 (right single quote) is normalised to ASCII ' and
 *    U+2010 (hyphen) to ASCII -, so "don’t" and "don't" are the same token;
 *  - bytes that are not valid UTF-8 separate words (one byte at a time); use
 *    es_utf8_valid() first when invalid input must be an error;
 *  - a word longer than ES_TOKEN_MAX bytes is cut at a character boundary
 *    and the rest of the word is skipped (it does not become a second token).
 *
 * Threading: stateless, reentrant; an es_tokenizer belongs to one thread.
 */
#include "tokenize.h"

#include <string.h>

/* Decode one UTF-8 character at s[0..n) (n >= 1).  Returns the code point and
 * sets *clen, or returns -1 with *clen = 1 for an invalid sequence (overlong,
 * surrogate, > U+10FFFF, truncated, stray continuation byte). */
static int32_t utf8_decode(const unsigned char *s, size_t n, size_t *clen)
{
	unsigned char c = s[0];
	*clen = 1;
	if (c < 0x80)
		return c;
	int32_t cp;
	size_t need;
	int32_t min;
	if (c >= 0xC2 && c <= 0xDF) {
		cp = c & 0x1F;
		need = 1;
		min = 0x80;
	} else if (c >= 0xE0 && c <= 0xEF) {
		cp = c & 0x0F;
		need = 2;
		min = 0x800;
	} else if (c >= 0xF0 && c <= 0xF4) {
		cp = c & 0x07;
		need = 3;
		min = 0x10000;
	} else {
		return -1;
	}
	if (n < need + 1)
		return -1;
	for (size_t i = 1; i <= need; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return -1;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return -1;
	*clen = need + 1;
	return cp;
}

int es_utf8_valid(const char *s, size_t len, size_t *bad_offset)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;
	while (i < len) {
		if (u[i] < 0x80) {
			i++;
			continue;
		}
		size_t cl;
		if (utf8_decode(u + i, len - i, &cl) < 0) {
			if (bad_offset)
				*bad_offset = i;
			return 0;
		}
		i += cl;
	}
	return 1;
}

/* Non-ASCII code points that separate words (sorted, inclusive ranges). */
static const struct {
	int32_t lo, hi;
} sep_ranges[] = {
	{0x0080, 0x00A9}, /* C1 controls, NBSP, ¡¢£¤¥¦§¨© */
	{0x00AB, 0x00B1}, /* « ¬ SHY ® ¯ ° ± */
	{0x00B4, 0x00B4}, {0x00B6, 0x00B8}, {0x00BB, 0x00BB},
	{0x00BF, 0x00BF}, {0x00D7, 0x00D7}, {0x00F7, 0x00F7},
	{0x037E, 0x037E}, {0x0387, 0x0387}, {0x055A, 0x055F},
	{0x0589, 0x058A}, {0x05BE, 0x05BE}, {0x05C0, 0x05C0},
	{0x05C3, 0x05C3}, {0x05C6, 0x05C6}, {0x05F3, 0x05F4},
	{0x060C, 0x060D}, {0x061B, 0x061B}, {0x061E, 0x061F},
	{0x066A, 0x066D}, {0x06D4, 0x06D4}, {0x0964, 0x0965},
	{0x0970, 0x0970}, {0x0E4F, 0x0E4F}, {0x0E5A, 0x0E5B},
	{0x10FB, 0x10FB}, {0x1360, 0x1368}, {0x166E, 0x166E},
	{0x1680, 0x1680}, {0x17D4, 0x17D6}, {0x17D8, 0x17DA},
	{0x1800, 0x180A}, {0x180E, 0x180E},
	{0x2000, 0x206F}, /* spaces, dashes, quotes, bullets, ZW*, ... */
	{0x20A0, 0x20CF}, /* currency */
	{0x2190, 0x2BFF}, /* arrows, maths, technical, boxes, shapes, dingbats */
	{0x2E00, 0x2E7F}, /* supplemental punctuation */
	{0x3000, 0x3004}, {0x3008, 0x3020}, {0x3030, 0x3030},
	{0x303D, 0x303F}, {0x30FB, 0x30FB},
	{0xFD3E, 0xFD3F}, {0xFE00, 0xFE1F}, /* variation selectors, vertical forms */
	{0xFE30, 0xFE6F}, /* CJK compatibility and small forms */
	{0xFEFF, 0xFEFF}, /* BOM / ZWNBSP */
	{0xFF01, 0xFF0F}, {0xFF1A, 0xFF20}, {0xFF3B, 0xFF40},
	{0xFF5B, 0xFF65}, {0xFFE0, 0xFFEE}, {0xFFF0, 0xFFFF},
	{0x1F000, 0x1FAFF}, /* mahjong ... emoji and pictographs */
	{0xE0000, 0xE007F}, /* tags */
};

static int is_word_cp(int32_t cp)
{
	if (cp < 0x80)
		return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') ||
		       (cp >= '0' && cp <= '9');
	size_t lo = 0, hi = sizeof sep_ranges / sizeof sep_ranges[0];
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (cp < sep_ranges[mid].lo)
			hi = mid;
		else if (cp > sep_ranges[mid].hi)
			lo = mid + 1;
		else
			return 0;
	}
	return 1;
}

/* Joiner inside a word: returns the ASCII byte it becomes, or 0. */
static char joiner_of(int32_t cp)
{
	if (cp == '\'' || cp == 0x2019)
		return '\'';
	if (cp == '-' || cp == 0x2010)
		return '-';
	return 0;
}

void es_tokenizer_init(es_tokenizer *t, const char *s, size_t len)
{
	t->s = s;
	t->len = len;
	t->pos = 0;
}

/* Decode at t->s[p]; invalid bytes come back as -1 with length 1. */
static int32_t peek(const es_tokenizer *t, size_t p, size_t *clen)
{
	return utf8_decode((const unsigned char *)t->s + p, t->len - p, clen);
}

/* Append code point cp (lowercased) to buf if it fits whole. */
static void append_cp(char *buf, size_t *n, int *full, const char *src,
		      size_t clen, int32_t cp)
{
	if (*full)
		return;
	if (*n + clen > ES_TOKEN_MAX) {
		*full = 1;
		return;
	}
	if (cp >= 'A' && cp <= 'Z') {
		buf[(*n)++] = (char)(cp + 0x20);
	} else if (cp >= 0xC0 && cp <= 0xDE && cp != 0xD7) {
		/* U+00C0..U+00DE are C3 80..C3 9E; lower case is +0x20 */
		buf[(*n)++] = (char)0xC3;
		buf[(*n)++] = (char)(0x80 + (cp - 0xC0) + 0x20);
	} else {
		memcpy(buf + *n, src, clen);
		*n += clen;
	}
}

size_t es_tokenizer_next(es_tokenizer *t, char *buf, size_t *src_off,
			 size_t *src_len)
{
	size_t clen;
	int32_t cp;
	/* skip separators and invalid bytes */
	while (t->pos < t->len) {
		cp = peek(t, t->pos, &clen);
		if (cp >= 0 && is_word_cp(cp))
			break;
		t->pos += clen;
	}
	if (t->pos >= t->len) {
		buf[0] = '\0';
		if (src_off)
			*src_off = t->len;
		if (src_len)
			*src_len = 0;
		return 0;
	}
	size_t start = t->pos, n = 0;
	int full = 0;
	while (t->pos < t->len) {
		cp = peek(t, t->pos, &clen);
		if (cp >= 0 && is_word_cp(cp)) {
			append_cp(buf, &n, &full, t->s + t->pos, clen, cp);
			t->pos += clen;
			continue;
		}
		char j = cp >= 0 ? joiner_of(cp) : 0;
		if (!j)
			break;
		size_t p2 = t->pos + clen, clen2;
		if (p2 >= t->len)
			break;
		int32_t next = peek(t, p2, &clen2);
		if (next < 0 || !is_word_cp(next))
			break;
		if (!full && n + 1 <= ES_TOKEN_MAX)
			buf[n++] = j;
		else
			full = 1;
		t->pos = p2;
	}
	/* a cut word must not end in a joiner */
	while (n > 0 && (buf[n - 1] == '\'' || buf[n - 1] == '-'))
		n--;
	buf[n] = '\0';
	if (src_off)
		*src_off = start;
	if (src_len)
		*src_len = t->pos - start;
	return n;
}
