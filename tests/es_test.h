/*
 * es_test.h — small helpers shared by the Check suites.
 *
 * Paths: tests read fixtures from tests/data/ (ES_SOURCE_ROOT/tests/data) or,
 * where a test may depend on it, ../shared (ES_SHARED).  Temporary files go
 * under a fresh mkdtemp directory that the test removes.
 */
#ifndef ES_TEST_H
#define ES_TEST_H

#include <stdio.h>
#include <stdlib.h>

/* Path under the source tree: es_test_path(buf, sizeof buf, "tests/data/x") */
static inline const char *es_test_path(char *buf, size_t len, const char *rel)
{
	const char *root = getenv("ES_SOURCE_ROOT");
	snprintf(buf, len, "%s/%s", root ? root : ".", rel);
	return buf;
}

/* Path under ../shared; returns NULL when shared/ is not there. */
static inline const char *es_shared_path(char *buf, size_t len, const char *rel)
{
	const char *root = getenv("ES_SHARED");
	snprintf(buf, len, "%s/%s", root ? root : "../shared", rel);
	FILE *f = fopen(buf, "rb");
	if (!f)
		return NULL;
	fclose(f);
	return buf;
}

#endif
