/*
 * fuzz_follower_http.c — the follower's parser of the primary's HTTP
 * answers (cli/follower.c): the status line and headers
 * (follower_parse_head, which the follower runs on the bytes read so far,
 * again after every read) and the JSON error body it quotes in its log
 * (follower_error_message).
 *
 * Input: the bytes a "primary" sends.  Checked beyond the sanitizers:
 *   - the answer is 0, 1 (head incomplete), ES_ECORRUPT or ES_EUNSUPPORTED;
 *   - a head that parses ends within the input, holds a "\r\n\r\n" there,
 *     and parses alike from exactly its own bytes and from any longer
 *     prefix (the body's bytes change nothing);
 *   - every prefix that ends before the blank line asks for more (1), so
 *     the follower never acts on half a head, whatever the read sizes;
 *   - a status is 100..999; a Content-Length is -1 or >= 0;
 *   - the error message of the rest is a NUL-terminated string in its
 *     buffer, for any buffer size.
 */
#include <stdlib.h>
#include <string.h>

#include "follower.h"
#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

static int same(const follower_http_head *a, const follower_http_head *b)
{
	return a->status == b->status && a->content_length == b->content_length &&
	       a->head_len == b->head_len && a->has_lsn == b->has_lsn &&
	       a->has_last_lsn == b->has_last_lsn && a->has_prev_crc == b->has_prev_crc &&
	       a->lsn == b->lsn && a->last_lsn == b->last_lsn && a->prev_crc == b->prev_crc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* a copy of exactly size bytes, so that ASan sees any read past them */
	char *buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	follower_http_head h, g;
	es_error err;
	int rc = follower_parse_head(buf, size, &h, &err);
	if (rc != 0 && rc != 1 && rc != ES_ECORRUPT && rc != ES_EUNSUPPORTED)
		fz_fail("follower_parse_head returned %d", rc);
	if (rc < 0 && !err.msg[0])
		fz_fail("an error (%d) without a message", rc);
	const char *eoh = memmem(buf, size, "\r\n\r\n", 4);
	if (rc == 1 && eoh)
		fz_fail("asked for more although the head is complete");
	if (rc != 1) {
		if (!eoh)
			fz_fail("answered %d without a complete head", rc);
		size_t hl = (size_t)(eoh - buf) + 4;
		/* the head's own bytes, and every prefix that stops short of it */
		char *head = malloc(hl);
		if (!head)
			abort();
		memcpy(head, buf, hl);
		int rc2 = follower_parse_head(head, hl, &g, &err);
		if (rc2 != rc || (rc == 0 && !same(&h, &g)))
			fz_fail("the head parses differently without the body (%d vs %d)", rc2, rc);
		for (size_t k = 0; k < hl; k += 1 + k / 8)
			if (follower_parse_head(head, k, &g, &err) != 1)
				fz_fail("a prefix of %zu of the %zu head bytes was not 'need more'", k, hl);
		free(head);
	}
	if (rc == 0) {
		if (h.head_len != (size_t)(eoh - buf) + 4 || h.head_len > size)
			fz_fail("head_len %zu", h.head_len);
		if (h.status < 100 || h.status > 999)
			fz_fail("status %d", h.status);
		if (h.content_length < -1)
			fz_fail("content_length %lld", (long long)h.content_length);
		size_t blen = size - h.head_len;
		char *body = malloc(blen ? blen : 1);
		if (!body)
			abort();
		memcpy(body, buf + h.head_len, blen);
		for (size_t n = 1; n <= 400; n = n * 3 + 1) {
			char *msg = malloc(n);
			if (!msg)
				abort();
			follower_error_message(h.status, body, blen, msg, n);
			if (!memchr(msg, '\0', n))
				fz_fail("the error message is not terminated in %zu bytes", n);
			free(msg);
		}
		free(body);
	}
	free(buf);
	return 0;
}
