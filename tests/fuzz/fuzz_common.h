/*
 * fuzz_common.h — helpers shared by the libFuzzer targets in tests/fuzz/.
 *
 * Every target defines LLVMFuzzerTestOneInput (and may define
 * LLVMFuzzerInitialize).  Built with clang -fsanitize=fuzzer (meson
 * -Dfuzz=true) they are libFuzzer binaries; built by any compiler with
 * replay_main.c they are plain programs that run the checked-in crash inputs
 * and seeds, so the normal test suite replays every regression.
 *
 * Checksums: the formats we fuzz carry CRCs, and a mutated input almost never
 * has a right one, so the parsers behind the checks would go unexplored.
 * Targets therefore run each input twice: as it is (the checks themselves),
 * and after fz_fix_*() recomputed the checksums (and the recorded file size)
 * so that the mutation reaches the parser behind them.  Product code is not
 * changed for fuzzing.
 *
 * A finding is a sanitizer report, a crash, a leak, or fz_fail(): an
 * invariant the harness checks (a 500 from the API, a recovered state that
 * cannot be written and read back).
 *
 * Threading: single-threaded; state is per process.
 */
#ifndef ES_FUZZ_COMMON_H
#define ES_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "filter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Report a broken invariant and abort (libFuzzer saves the input). */
void fz_fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* Parse a filter (JSON) as the server does into *out (NULL for JSON
 * null): 0, or 1 when refused, the refusal checked to be a 400/422 that
 * names a parameter (fz_fail otherwise).  Free *out with api_filter_free. */
int fz_filter_parse(const json_t *fj, api_filter **out);

/* Path of a file under the source tree (ES_SOURCE_ROOT, else the tree this
 * binary was configured from); malloc'd, the caller frees it. */
char *fz_source_path(const char *rel);

/* A private scratch directory for this process (TMPDIR or /dev/shm), removed
 * at exit.  Created on first use. */
const char *fz_scratch_dir(void);

/* Empty dir (recursively) but keep it.  dir must be inside fz_scratch_dir. */
void fz_clear_dir(const char *dir);

/* Write len bytes to path (creating parent directories under the scratch
 * dir); aborts on I/O failure (that is the harness, not the product). */
void fz_write_file(const char *path, const void *data, size_t len);

/* Checksum fix-ups in place (see the header comment).  Each knows its
 * format's layout, leaves what it cannot walk alone and never reads out of
 * bounds. */
void fz_fix_hnsw(unsigned char *p, size_t len);     /* CRC-32 before "HNSWEND\n" */
void fz_fix_wal(unsigned char *p, size_t len);      /* header + record CRC-32Cs */
/* Log records without a segment header (what log shipping sends): their
 * CRC-32Cs, and their lsns first_lsn, first_lsn + 1, ... (0: kept). */
void fz_fix_records(unsigned char *p, size_t len, uint64_t first_lsn);
void fz_fix_snapshot(unsigned char *p, size_t len); /* size, header, sections */
void fz_fix_esm(unsigned char *p, size_t len);      /* size, index/data/header CRCs */
/* By magic: whichever of the above applies (none: unchanged). */
void fz_fix_any(unsigned char *p, size_t len);

#endif
