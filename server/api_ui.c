/*
 * api_ui.c — GET /ui/ and /ui/{file}: the built-in web explorer.
 *
 * The files are compiled in (ui_assets.h, generated from server/ui/), so
 * they are served from static memory with no file system access.  Every
 * answer carries a strict Content-Security-Policy (scripts, styles and
 * fetches only from this origin; no inline script, no eval, no frames), an
 * ETag with Cache-Control: no-cache (the browser revalidates and gets a
 * 304 without the body) and nosniff.  These routes need no API key: the
 * page itself asks for the key and sends it with its API calls.  With
 * `serve --no-ui` they answer 404.
 */
#include <string.h>

#include "api_internal.h"
#include "ui_assets.h"

/* Shared by every /ui/ answer, errors included. */
static const char *const ui_headers[] = {
	"Content-Security-Policy",
	"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
	"X-Content-Type-Options", "nosniff",
	"Referrer-Policy", "no-referrer",
	"Cache-Control", "no-cache",
	NULL,
};

/* Does the If-None-Match list (comma-separated, maybe W/-prefixed, or "*")
 * name etag? */
static int etag_listed(const char *inm, const char *etag)
{
	size_t el = strlen(etag);
	const char *p = inm;
	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (strncmp(p, "W/", 2) == 0)
			p += 2;
		size_t n = strcspn(p, ", \t");
		if ((n == 1 && *p == '*') || (n == el && memcmp(p, etag, el) == 0))
			return 1;
		p += n;
	}
	return 0;
}

void api_h_ui(api_call *c, api_response *out)
{
	out->headers = ui_headers;
	if (c->ctx->no_ui) {
		api_error(out, 404, NULL, "ui_disabled",
			  "the web explorer is off (serve --no-ui)");
		return;
	}
	const char *file = c->id[0] ? c->id : "index.html";
	const ui_asset *a = NULL;
	for (size_t i = 0; i < ui_nassets; i++)
		if (strcmp(ui_assets[i].name, file) == 0)
			a = &ui_assets[i];
	if (!a) {
		api_error(out, 404, "file", "not_found", "no file '%s' in the web explorer", file);
		return;
	}
	out->etag = a->etag;
	out->content_type = a->content_type;
	if (c->req->if_none_match && etag_listed(c->req->if_none_match, a->etag)) {
		out->status = 304;
		out->static_body = "";
		out->static_len = 0;
		return;
	}
	out->status = 200;
	out->static_body = a->data;
	out->static_len = a->len;
}
