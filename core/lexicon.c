/*
 * lexicon.c — see lexicon.h.  One pass over the text: words are copied into
 * one arena (NUL-terminated), groups index a word-pointer array built once
 * the arena has stopped moving.
 */
#include "lexicon.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tokenize.h"

typedef struct lex_group {
	es_lex_kind kind;
	size_t first, n; /* into words */
} lex_group;

struct es_lexicon {
	char *arena;
	const char **words;
	lex_group *groups;
	size_t ngroups;
};

const char *es_lex_kind_name(es_lex_kind k)
{
	switch (k) {
	case ES_LEX_SYN: return "syn";
	case ES_LEX_REL: return "rel";
	case ES_LEX_ANT: return "ant";
	}
	return "?";
}

/* Growable array of fixed-size items. */
static int grow(void **p, size_t *cap, size_t need, size_t item)
{
	if (need <= *cap)
		return 0;
	size_t c = *cap ? *cap : 64;
	while (c < need) {
		if (c > (SIZE_MAX / 2) / item)
			return -1;
		c *= 2;
	}
	void *q = realloc(*p, c * item);
	if (!q)
		return -1;
	*p = q;
	*cap = c;
	return 0;
}

static int is_sep(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

void es_lexicon_free(es_lexicon *lx)
{
	if (!lx)
		return;
	free(lx->arena);
	free(lx->words);
	free(lx->groups);
	free(lx);
}

int es_lexicon_parse(const char *text, size_t len, const char *name,
		     es_lexicon **out, es_error *err)
{
	*out = NULL;
	if (!name)
		name = "lexicon";
	int rc = 0;
	char *arena = NULL;
	size_t *woff = NULL;
	lex_group *groups = NULL;
	size_t acap = 0, alen = 0, wcap = 0, nw = 0, gcap = 0, ng = 0;
	size_t pos = 0, lineno = 0;
	es_lexicon *lx = NULL;

	while (pos < len) {
		size_t b = pos, e = pos;
		while (e < len && text[e] != '\n')
			e++;
		pos = e < len ? e + 1 : e;
		lineno++;
		size_t bad;
		if (!es_utf8_valid(text + b, e - b, &bad)) {
			rc = es_err(err, ES_EINVAL, "%s:%zu: invalid UTF-8 (byte %zu of the line)",
				    name, lineno, bad + 1);
			goto out;
		}
		size_t i = b;
		while (i < e && is_sep((unsigned char)text[i]))
			i++;
		if (i == e || text[i] == '#')
			continue;
		size_t first = nw, fields = 0;
		es_lex_kind kind = ES_LEX_SYN;
		while (i < e) {
			size_t s = i;
			while (i < e && !is_sep((unsigned char)text[i])) {
				unsigned char c = (unsigned char)text[i];
				if (c < 0x20 || c == 0x7f) {
					rc = es_err(err, ES_EINVAL,
						    "%s:%zu: control character 0x%02x (byte %zu of the line)",
						    name, lineno, c, i - b + 1);
					goto out;
				}
				i++;
			}
			size_t wl = i - s;
			while (i < e && is_sep((unsigned char)text[i]))
				i++;
			if (fields++ == 0) {
				if (wl == 3 && !memcmp(text + s, "syn", 3))
					kind = ES_LEX_SYN;
				else if (wl == 3 && !memcmp(text + s, "rel", 3))
					kind = ES_LEX_REL;
				else if (wl == 3 && !memcmp(text + s, "ant", 3))
					kind = ES_LEX_ANT;
				else {
					rc = es_err(err, ES_EINVAL,
						    "%s:%zu: unknown relation '%.*s' (expected syn, rel or ant)",
						    name, lineno, wl > 32 ? 32 : (int)wl, text + s);
					goto out;
				}
				continue;
			}
			if (wl > ES_TOKEN_MAX) {
				rc = es_err(err, ES_EINVAL,
					    "%s:%zu: word %zu is %zu bytes long (at most %d)",
					    name, lineno, fields - 1, wl, ES_TOKEN_MAX);
				goto out;
			}
			if (grow((void **)&arena, &acap, alen + wl + 1, 1) ||
			    grow((void **)&woff, &wcap, nw + 1, sizeof *woff)) {
				rc = es_err(err, ES_ENOMEM, "%s: out of memory", name);
				goto out;
			}
			memcpy(arena + alen, text + s, wl);
			arena[alen + wl] = '\0';
			woff[nw++] = alen;
			alen += wl + 1;
		}
		if (nw - first < 2) {
			rc = es_err(err, ES_EINVAL,
				    "%s:%zu: '%s' needs at least two words",
				    name, lineno, es_lex_kind_name(kind));
			goto out;
		}
		if (grow((void **)&groups, &gcap, ng + 1, sizeof *groups)) {
			rc = es_err(err, ES_ENOMEM, "%s: out of memory", name);
			goto out;
		}
		groups[ng].kind = kind;
		groups[ng].first = first;
		groups[ng].n = nw - first;
		ng++;
	}
	lx = calloc(1, sizeof *lx);
	if (!lx || (nw && !(lx->words = malloc(nw * sizeof *lx->words)))) {
		rc = es_err(err, ES_ENOMEM, "%s: out of memory", name);
		goto out;
	}
	for (size_t k = 0; k < nw; k++)
		lx->words[k] = arena + woff[k];
	lx->arena = arena;
	lx->groups = groups;
	lx->ngroups = ng;
	arena = NULL;
	groups = NULL;
	*out = lx;
	lx = NULL;
out:
	es_lexicon_free(lx);
	free(arena);
	free(woff);
	free(groups);
	return rc;
}

int es_lexicon_load(const char *path, es_lexicon **out, es_error *err)
{
	*out = NULL;
	FILE *f = fopen(path, "rb");
	if (!f) {
		int e = errno;
		return es_err(err, e == ENOENT ? ES_ENOTFOUND : ES_EIO, "%s: %s",
			      path, strerror(e));
	}
	struct stat st;
	if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
		fclose(f);
		return es_err(err, ES_EINVAL, "%s: not a regular file", path);
	}
	size_t len = (size_t)st.st_size;
	char *buf = malloc(len ? len : 1);
	if (!buf) {
		fclose(f);
		return es_err(err, ES_ENOMEM, "%s: out of memory", path);
	}
	size_t got = fread(buf, 1, len, f);
	int rerr = ferror(f);
	fclose(f);
	if (got != len || rerr) {
		free(buf);
		return es_err(err, ES_EIO, "%s: read failed", path);
	}
	int rc = es_lexicon_parse(buf, len, path, out, err);
	free(buf);
	return rc;
}

size_t es_lexicon_groups(const es_lexicon *lx)
{
	return lx->ngroups;
}

es_lex_kind es_lexicon_group(const es_lexicon *lx, size_t i,
			     const char *const **words, size_t *n)
{
	const lex_group *g = &lx->groups[i];
	*words = lx->words + g->first;
	*n = g->n;
	return g->kind;
}
