/*
 * fuzz_common.c — see fuzz_common.h.
 */
#include "fuzz_common.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blas.h"
#include "crc32c.h"
#include "hnsw.h"
#include "le.h"

#ifndef FUZZ_SOURCE_ROOT
#define FUZZ_SOURCE_ROOT "."
#endif

/* As the server does (cmd_serve): OpenBLAS runs one thread per call, so its
 * idle pool does not spin against the target on every input. */
__attribute__((constructor)) static void fz_blas_policy(void)
{
	es_blas_init();
}

void fz_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("fuzz invariant broken: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	abort();
}

char *fz_source_path(const char *rel)
{
	const char *root = getenv("ES_SOURCE_ROOT");
	if (!root || !*root)
		root = FUZZ_SOURCE_ROOT;
	size_t n = strlen(root) + strlen(rel) + 2;
	char *p = malloc(n);
	if (!p)
		fz_fail("out of memory");
	snprintf(p, n, "%s/%s", root, rel);
	return p;
}

/* ------------------------------------------------------------- scratch */

static char *scratch;

static void rm_tree(const char *dir, int keep_top)
{
	DIR *d = opendir(dir);
	if (d) {
		struct dirent *e;
		while ((e = readdir(d))) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			char p[4096];
			snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
			struct stat sb;
			if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
				rm_tree(p, 0);
			else
				unlink(p);
		}
		closedir(d);
	}
	if (!keep_top)
		rmdir(dir);
}

static void scratch_cleanup(void)
{
	if (scratch)
		rm_tree(scratch, 0);
}

const char *fz_scratch_dir(void)
{
	if (scratch)
		return scratch;
	const char *base = getenv("TMPDIR");
	struct stat sb;
	if (!base || !*base)
		base = stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) &&
			       access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	size_t n = strlen(base) + 32;
	scratch = malloc(n);
	if (!scratch)
		fz_fail("out of memory");
	snprintf(scratch, n, "%s/esfuzz.XXXXXX", base);
	if (!mkdtemp(scratch))
		fz_fail("mkdtemp %s: %s", scratch, strerror(errno));
	atexit(scratch_cleanup);
	return scratch;
}

void fz_clear_dir(const char *dir)
{
	rm_tree(dir, 1);
}

void fz_write_file(const char *path, const void *data, size_t len)
{
	char dir[4096];
	snprintf(dir, sizeof dir, "%s", path);
	for (char *s = dir + strlen(fz_scratch_dir()) + 1; (s = strchr(s, '/')); s++) {
		*s = '\0';
		if (mkdir(dir, 0755) != 0 && errno != EEXIST)
			fz_fail("mkdir %s: %s", dir, strerror(errno));
		*s = '/';
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		fz_fail("open %s: %s", path, strerror(errno));
	const unsigned char *p = data;
	while (len) {
		ssize_t w = write(fd, p, len);
		if (w <= 0)
			fz_fail("write %s: %s", path, strerror(errno));
		p += w;
		len -= (size_t)w;
	}
	close(fd);
}

/* ------------------------------------------------------------- fix-ups */

static const unsigned char *find(const unsigned char *p, size_t len,
				 const char *needle, size_t nlen)
{
	if (len < nlen)
		return NULL;
	for (size_t i = 0; i + nlen <= len; i++)
		if (p[i] == (unsigned char)needle[0] && memcmp(p + i, needle, nlen) == 0)
			return p + i;
	return NULL;
}

static const unsigned char *find_last(const unsigned char *p, size_t len,
				      const char *needle, size_t nlen)
{
	if (len < nlen)
		return NULL;
	for (size_t i = len - nlen + 1; i-- > 0;)
		if (p[i] == (unsigned char)needle[0] && memcmp(p + i, needle, nlen) == 0)
			return p + i;
	return NULL;
}

/* hnsw.c: the stream runs from the magic "ESHNSW\r\n" to "HNSWEND\n"; the
 * little-endian u32 before the end marker is the checksum of everything
 * from the magic up to it: CRC-32C from version 3 on, CRC-32 before. */
void fz_fix_hnsw(unsigned char *p, size_t len)
{
	const unsigned char *s = find(p, len, "ESHNSW\r\n", 8);
	if (!s)
		return;
	size_t off = (size_t)(s - p);
	const unsigned char *e = find_last(s, len - off, "HNSWEND\n", 8);
	if (!e || (size_t)(e - s) < 12)
		return;
	size_t body = (size_t)(e - s) - 4;
	uint32_t ver = get_u32(s + 8);
	uint32_t crc = ver >= 3 ? crc32c(0, s, body) : es_crc32_ieee(0, s, body);
	put_u32(p + off + body, crc);
}

/* wal.h layout: 32-byte header (CRC32C of bytes 0..27 at 28); records of a
 * 24-byte header (u32 len, u32 type, u64 lsn, u32 payload CRC, u32 CRC of
 * bytes 0..19) and the payload.  The walk follows the recorded lengths and
 * stops where one runs past the end. */
void fz_fix_wal(unsigned char *p, size_t len)
{
	if (len < 32 || memcmp(p, "ESWAL001", 8) != 0)
		return;
	put_u32(p + 28, crc32c(0, p, 28));
	fz_fix_records(p + 32, len - 32, 0);
}

void fz_fix_records(unsigned char *p, size_t len, uint64_t first_lsn)
{
	size_t off = 0;
	for (uint64_t lsn = first_lsn; len - off >= 24; lsn += lsn != 0) {
		unsigned char *h = p + off;
		uint32_t plen = get_u32(h);
		if (plen > len - off - 24)
			break;
		if (lsn)
			put_u64(h + 8, lsn);
		put_u32(h + 16, crc32c(0, h + 24, plen));
		put_u32(h + 20, crc32c(0, h, 20));
		off += 24 + (size_t)plen;
	}
}

/* snapshot.h layout: 64-byte header (u64 file size at 24, u32 section count
 * at 32, CRC32C of 0..59 at 60); sections of a 24-byte header (u64 length at
 * 8, data CRC at 16, header CRC at 20), data, zero padding to 8.  An HNSW
 * stream embedded in a section (a collection's graph) is fixed first. */
void fz_fix_snapshot(unsigned char *p, size_t len)
{
	if (len < 64 || memcmp(p, "ESSNAP01", 8) != 0)
		return;
	put_u64(p + 24, (uint64_t)len);
	uint32_t n = get_u32(p + 32);
	size_t off = 64;
	for (uint32_t i = 0; i < n && len - off >= 24; i++) {
		unsigned char *h = p + off;
		uint64_t sl = get_u64(h + 8);
		if (sl > len - off - 24)
			break;
		fz_fix_hnsw(h + 24, (size_t)sl);
		put_u32(h + 16, crc32c(0, h + 24, (size_t)sl));
		put_u32(h + 20, crc32c(0, h, 20));
		uint64_t padded = sl + ((8 - (sl & 7)) & 7);
		if (padded > len - off - 24)
			break;
		off += 24 + (size_t)padded;
	}
	put_u32(p + 60, crc32c(0, p, 60));
}

/* model_io.c .esm header: file length at 144, data offset/length at
 * 152/160, index CRC (bytes 256..data) at 168, data CRC at 172, header CRC
 * (bytes 0..251) at 252.  Host order (little-endian on every target). */
void fz_fix_esm(unsigned char *p, size_t len)
{
	if (len < 256 || memcmp(p, "EMBSRVM", 8) != 0)
		return;
	uint64_t v = len, data, dlen;
	memcpy(p + 144, &v, 8);
	memcpy(&data, p + 152, 8);
	memcpy(&dlen, p + 160, 8);
	if (data >= 256 && data <= len) {
		uint32_t c = crc32c(0, p + 256, (size_t)data - 256);
		memcpy(p + 168, &c, 4);
		if (dlen <= len - data) {
			c = crc32c(0, p + data, (size_t)dlen);
			memcpy(p + 172, &c, 4);
		}
	}
	uint32_t hc = crc32c(0, p, 252);
	memcpy(p + 252, &hc, 4);
}

void fz_fix_any(unsigned char *p, size_t len)
{
	if (len >= 8 && memcmp(p, "ESSNAP01", 8) == 0)
		fz_fix_snapshot(p, len);
	else if (len >= 8 && memcmp(p, "ESWAL001", 8) == 0)
		fz_fix_wal(p, len);
	else if (len >= 8 && memcmp(p, "EMBSRVM", 8) == 0)
		fz_fix_esm(p, len);
	else
		fz_fix_hnsw(p, len);
}

int fz_filter_parse(const json_t *fj, api_filter **out)
{
	ju_err e;
	memset(&e, 0, sizeof e);
	if (api_filter_parse(fj, "filter", out, &e) == 0)
		return 0;
	if (*out || (e.status != 400 && e.status != 422) || !e.msg[0] || !e.param[0])
		fz_fail("refusal %d param '%s': %s", e.status, e.param, e.msg);
	return 1;
}
