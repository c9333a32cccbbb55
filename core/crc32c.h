/*
 * crc32c.h — CRC-32C (Castagnoli, polynomial 0x1EDC6F41, reflected 0x82F63B78).
 *
 * The checksum of every record and section embedsrv writes to disk (WAL,
 * snapshots, manifest).  On x86-64 CPUs with SSE4.2 the `crc32` instruction
 * is used (compiled with a target attribute and chosen at run time, so the
 * binary still runs on older CPUs); everywhere else a slicing-by-8 table.
 *
 * Threading: pure functions; the dispatch choice and the tables are filled
 * once with pthread_once, so any thread may call at any time.
 */
#ifndef ES_CRC32C_H
#define ES_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extend crc (0 for a fresh checksum) over len bytes of data:
 * crc32c(crc32c(0, a, n), b, m) == crc32c(0, a||b, n+m).
 * The standard check value: crc32c(0, "123456789", 9) == 0xE3069283. */
uint32_t crc32c(uint32_t crc, const void *data, size_t len);

/* The same, forcing the portable table path (tests compare both). */
uint32_t crc32c_sw(uint32_t crc, const void *data, size_t len);

/* CRC-32 (IEEE 802.3, reflected 0xEDB88320), bytewise.  Only for reading
 * HNSW index files of versions 1 and 2, which were checksummed with it;
 * everything written today uses crc32c. */
uint32_t es_crc32_ieee(uint32_t crc, const void *data, size_t len);

#endif
