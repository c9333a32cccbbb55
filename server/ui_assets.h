/*
 * ui_assets.h — the files of the web explorer (server/ui/), compiled into
 * the binary.  The table is generated at build time by server/ui/embed.py
 * (a meson custom_target) from server/ui/ *.html, *.css, *.js, so the
 * binary needs no files at run time and the UI adds no dependency.
 *
 * Threading: constant data.
 */
#ifndef ES_UI_ASSETS_H
#define ES_UI_ASSETS_H

#include <stddef.h>

typedef struct ui_asset {
	const char *name;          /* "index.html", "app.js", ... */
	const char *content_type;  /* "text/html; charset=utf-8", ... */
	const char *etag;          /* quoted content hash: "\"3f2a...\"" */
	const unsigned char *data;
	size_t len;
} ui_asset;

extern const ui_asset ui_assets[];
extern const size_t ui_nassets;

#endif
