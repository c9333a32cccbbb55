/*
 * fuzz_lexical.c — the lexical index's serialised form
 * (index/lexical.h es_lexical_deserialize), which a collection snapshot
 * embeds.  The input is the bytes; each runs twice: as it is, and with its
 * trailing CRC-32C recomputed, so mutations reach the parser behind the
 * checksum.
 *
 * Invariants after a successful load: searches succeed and every hit is a
 * document the index contains; the index can be written to (upsert, delete,
 * compact); written out again it loads again with the same document count.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "fuzz_common.h"
#include "lexical.h"

static void exercise(es_lexical *lx)
{
	es_hit hits[8];
	size_t n;
	es_error err;
	const char *q[] = {"a", "the library", "w1 w2 w3 catalogu", ""};
	for (size_t i = 0; i < sizeof q / sizeof *q; i++) {
		if (es_lexical_search(lx, q[i], strlen(q[i]), 8, NULL, NULL, hits, &n, &err))
			fz_fail("search of a loaded index failed: %s", err.msg);
		for (size_t j = 0; j < n; j++)
			if (!es_lexical_contains(lx, hits[j].label) || !(hits[j].score > 0))
				fz_fail("hit %zu (label %llu, score %g) is not a live document", j,
					(unsigned long long)hits[j].label, (double)hits[j].score);
	}
	if (es_lexical_upsert(lx, 7, "fuzzed library text", 19, &err))
		fz_fail("upsert into a loaded index failed: %s", err.msg);
	es_lexical_delete(lx, 7);
	if (es_lexical_compact(lx, &err))
		fz_fail("compacting a loaded index failed: %s", err.msg);
	size_t count = es_lexical_count(lx);
	unsigned char *b;
	size_t len;
	if (es_lexical_serialize(lx, &b, &len, &err))
		fz_fail("serialising a loaded index failed: %s", err.msg);
	es_lexical *again;
	if (es_lexical_deserialize(b, len, &again, &err))
		fz_fail("what a loaded index wrote does not load: %s", err.msg);
	if (es_lexical_count(again) != count)
		fz_fail("%zu documents after a round trip, %zu before",
			es_lexical_count(again), count);
	es_lexical_free(again);
	free(b);
}

static void run(const uint8_t *data, size_t size)
{
	es_lexical *lx;
	es_error err;
	if (es_lexical_deserialize(data, size, &lx, &err) == 0) {
		exercise(lx);
		es_lexical_free(lx);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	run(data, size);
	if (size >= 4) {
		unsigned char *copy = malloc(size);
		if (!copy)
			return 0;
		memcpy(copy, data, size);
		uint32_t c = crc32c(0, copy, size - 4);
		for (int i = 0; i < 4; i++)
			copy[size - 4 + i] = (unsigned char)(c >> (8 * i));
		run(copy, size);
		free(copy);
	}
	return 0;
}
