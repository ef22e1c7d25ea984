/*
 * calibrate.c - what this host's own context switch costs: XSAVE + XRSTOR of
 * the state its XCR0 enables (the prior art with write-back caches), and
 * memcpy of a context's bytes, timed in wall-clock ns and TSC ticks.
 * Not on any switch path: it allocates, and runs only when asked.
 */
#include "vsw_internal.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__x86_64__)
#include <cpuid.h>
#include <x86intrin.h>
#endif

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int vsw_calibrate_xsave(uint64_t iterations, struct vsw_calibration *out)
{
    if (!out || !iterations)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
#if defined(__x86_64__)
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27)))     /* OSXSAVE: the OS enabled XSAVE */
        return -EOPNOTSUPP;
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    uint64_t xcr0 = (uint64_t)hi << 32 | lo;
    __cpuid_count(0xD, 0, a, b, c, d);
    uint32_t size = b;          /* the area the features XCR0 enables take */
    if (size < 576)
        return -EOPNOTSUPP;
    uint8_t *area = aligned_alloc(64, (size + 63) & ~63u);
    if (!area)
        return -ENOMEM;
    memset(area, 0, size);
    /* one pair: save the state as it is, restore exactly it, nothing in between */
    uint64_t t0 = now_ns(), c0 = __rdtsc();
    for (uint64_t i = 0; i < iterations; i++)
        __asm__ volatile("xsave64 (%0)\n\txrstor64 (%0)" : : "r"(area), "a"(lo), "d"(hi) : "memory");
    uint64_t c1 = __rdtsc(), t1 = now_ns();
    free(area);
    out->xcr0 = xcr0;
    out->xsave_bytes = size;
    out->iterations = iterations;
    out->xsave_xrstor_ns = t1 - t0;
    out->xsave_xrstor_tsc = c1 - c0;
    return 0;
#else
    (void)iterations;
    return -EOPNOTSUPP;
#endif
}

int vsw_calibrate_memcpy(uint32_t bytes, uint64_t iterations, uint64_t *ns, uint64_t *tsc)
{
    if (!ns || !tsc || !bytes || !iterations || bytes > (64u << 20))
        return -EINVAL;
    uint8_t *src = aligned_alloc(64, ((size_t)bytes + 63) & ~(size_t)63);
    uint8_t *dst = aligned_alloc(64, ((size_t)bytes + 63) & ~(size_t)63);
    if (!src || !dst) {
        free(src);
        free(dst);
        return -ENOMEM;
    }
    memset(src, 0x5a, bytes);
    memset(dst, 0, bytes);
    uint64_t t0 = now_ns();
#if defined(__x86_64__)
    uint64_t c0 = __rdtsc();
#endif
    for (uint64_t i = 0; i < iterations; i++) {
        memcpy(dst, src, bytes);
        __asm__ volatile("" : : "r"(dst), "r"(src) : "memory");     /* every copy happens */
    }
#if defined(__x86_64__)
    *tsc = __rdtsc() - c0;
#else
    *tsc = 0;
#endif
    *ns = now_ns() - t0;
    free(src);
    free(dst);
    return 0;
}
