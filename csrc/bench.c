/*
 * bench.c - the switch loop timed in C, and its floor: memcpy of the same bytes
 * in the same per-switch chunks, between buffers of the same sizes, in the same
 * call - so the ratio holds on a noisy machine.
 */
#define _POSIX_C_SOURCE 199309L
#include "vsw_internal.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

int vsw_bench_switch_loop(struct vsw_pcpu *p, struct vsw_path *path, const uint32_t *slots,
                          const uint64_t *owners, uint32_t machines, uint64_t switches, uint32_t dirty_mask,
                          struct vsw_bench_result *out)
{
    if (!p || !path || !slots || !owners || !out || machines < 2 || switches == 0)
        return -EINVAL;
    if (p->owner != owners[0])
        return -ESRCH;
    struct vsw_switch_stats st;
    uint64_t bytes = 0, save = 0, load = 0;
    uint32_t cur = 0;
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < switches; i++) {
        uint32_t next = (cur + 1) % machines;
        if (dirty_mask)
            vsw_pcpu_mark_dirty(p, dirty_mask);
        int r = vsw_switch(p, path, owners[cur], slots[next], owners[next], &st);
        if (r < 0)
            return r;
        bytes += st.bytes_saved + st.bytes_loaded;
        save = st.bytes_saved;
        load = st.bytes_loaded;
        cur = next;
    }
    uint64_t t1 = now_ns();
    /* the floor: the same bytes per switch, copied between buffers with the same
     * footprint as the machines' contexts (one pair per machine), so a cold-cache
     * round robin is compared with a cold-cache copy */
    size_t n = p->L->size;
    uint8_t *src = aligned_alloc(VSW_ALIGN, (size_t)machines * n), *dst = aligned_alloc(VSW_ALIGN, (size_t)machines * n);
    if (!src || !dst) {
        free(src);
        free(dst);
        return -ENOMEM;
    }
    memset(src, 0x5a, (size_t)machines * n);
    memset(dst, 0xa5, (size_t)machines * n);
    uint64_t t2 = now_ns();
    for (uint64_t i = 0, m = 0; i < switches; i++, m = m + 1 == machines ? 0 : m + 1) {
        memcpy(dst + m * n, src + m * n, save);
        memcpy(src + m * n, dst + ((m + 1) % machines) * n, load);
        __asm__ __volatile__("" : : "r"(dst), "r"(src) : "memory");
    }
    uint64_t t3 = now_ns();
    free(src);
    free(dst);
    /* return to the first machine so the caller's view stays simple */
    if (cur != 0) {
        int r = vsw_switch(p, path, owners[cur], slots[0], owners[0], &st);
        if (r < 0)
            return r;
    }
    *out = (struct vsw_bench_result){switches, bytes, t1 - t0, t3 - t2};
    return 0;
}
