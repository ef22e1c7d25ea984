/*
 * transfer.h - what a transfer is made of, for the code that moves it (path.c)
 * and the code that prices it (cost.c): runs of adjacent groups for the mover,
 * register stores (or vector lines) for the PCPU.
 */
#ifndef VSW_TRANSFER_H
#define VSW_TRANSFER_H
#include "vsw_internal.h"

#define SCALAR_STORE 8
#define VECTOR_LINE 64

static inline uint32_t ceil_div(uint64_t a, uint64_t b) { return (uint32_t)((a + b - 1) / b); }

static inline const struct vsw_layout_def *layout(const struct vsw_path *path) { return path->store->L; }

/* Iterates over the runs of adjacent set bits in mask: groups first..last. */
#define FOR_EACH_RUN(mask, first, last)                                                              \
    for (uint32_t m_ = (mask), first, last;                                                           \
         m_ && ((first = (uint32_t)__builtin_ctz(m_)),                                                \
               (last = first + (uint32_t)__builtin_ctzll(~((uint64_t)m_ >> first)) - 1), 1);        \
         m_ &= (last >= 31) ? 0 : ~0u << (last + 1))

static inline uint64_t run_bytes(const struct vsw_layout_def *L, uint32_t first, uint32_t last)
{
    return (uint64_t)L->groups[last].offset + L->groups[last].size - L->groups[first].offset;
}

/* The bytes of the groups in mask (the sum of its runs). */
static inline uint64_t mask_bytes(const struct vsw_layout_def *L, uint32_t mask)
{
    uint64_t bytes = 0;
    FOR_EACH_RUN(mask, first, last)
        bytes += run_bytes(L, first, last);
    return bytes;
}

static inline uint32_t store_granule(const struct vsw_group_info *g)
{
    return g->flags & VSW_GROUP_VECTOR ? VECTOR_LINE : SCALAR_STORE;
}

/* Register stores (or vector lines) the PCPU needs for a group. */
static inline uint32_t pcpu_stores(const struct vsw_group_info *g)
{
    _Static_assert(SCALAR_STORE == 8 && VECTOR_LINE == 64, "shifts below");
    return g->flags & VSW_GROUP_VECTOR ? (g->used + 63) >> 6 : (g->used + 7) >> 3;
}
#endif
