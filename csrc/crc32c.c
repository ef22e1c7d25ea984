/*
 * crc32c.c - CRC32C (Castagnoli) for context images: the CPU's CRC32
 * instructions where present (SSE4.2, ARMv8 CRC), a table otherwise.
 */
#include "vsw_internal.h"
#include <string.h>

/* The reflected polynomial's byte table, built by the preprocessor (no mutable state). */
#define P 0x82f63b78u
#define B1(c) (((c) & 1) ? ((c) >> 1) ^ P : (c) >> 1)
#define B2(c) B1(B1(c))
#define B8(c) B2(B2(B2(B2(c))))
#define T4(n) B8((uint32_t)(n)), B8((uint32_t)(n) + 1), B8((uint32_t)(n) + 2), B8((uint32_t)(n) + 3)
#define T16(n) T4(n), T4(n + 4), T4(n + 8), T4(n + 12)
#define T64(n) T16(n), T16(n + 16), T16(n + 32), T16(n + 48)
static const uint32_t table[256] = {T64(0), T64(64), T64(128), T64(192)};

static uint32_t crc_table(uint32_t crc, const uint8_t *p, size_t len)
{
    while (len--)
        crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const uint8_t *p, size_t len)
{
    uint64_t c = crc;
    for (; len >= 8; p += 8, len -= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = __builtin_ia32_crc32di(c, w);
    }
    uint32_t c32 = (uint32_t)c;
    while (len--)
        c32 = __builtin_ia32_crc32qi(c32, *p++);
    return c32;
}
int vsw_crc32c_hw(void) { return __builtin_cpu_supports("sse4.2") ? 1 : 0; }
#elif defined(__aarch64__) && defined(__has_include)
#if __has_include(<sys/auxv.h>)
#include <sys/auxv.h>
#ifndef HWCAP_CRC32
#define HWCAP_CRC32 (1 << 7)
#endif
__attribute__((target("+crc"))) static uint32_t crc_hw(uint32_t crc, const uint8_t *p, size_t len)
{
    for (; len >= 8; p += 8, len -= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        crc = __builtin_aarch64_crc32cx(crc, w);
    }
    while (len--)
        crc = __builtin_aarch64_crc32cb(crc, *p++);
    return crc;
}
int vsw_crc32c_hw(void) { return (getauxval(AT_HWCAP) & HWCAP_CRC32) ? 1 : 0; }
#define HAVE_HW 1
#endif
#endif
#if !defined(__x86_64__) && !defined(HAVE_HW)
static uint32_t crc_hw(uint32_t crc, const uint8_t *p, size_t len) { return crc_table(crc, p, len); }
int vsw_crc32c_hw(void) { return 0; }
#endif

/* Standard CRC32C: pass 0 to start, the previous result to continue. */
uint32_t vsw_crc32c(uint32_t crc, const void *buf, size_t len)
{
    crc = ~crc;
    crc = vsw_crc32c_hw() ? crc_hw(crc, buf, len) : crc_table(crc, buf, len);
    return ~crc;
}
