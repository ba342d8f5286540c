#ifndef SCVAE_CRC32C_H
#define SCVAE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) of `length` bytes, continuing from `crc`
/// (pass 0 to start). Uses the SSE4.2 crc32 instruction when the CPU has it, a table otherwise.
uint32_t scvae_crc32c(uint32_t crc, const void *bytes, size_t length);

/// The same checksum computed with the portable table, for tests of the fast path.
uint32_t scvae_crc32c_portable(uint32_t crc, const void *bytes, size_t length);

#endif
