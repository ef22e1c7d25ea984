/* vsw_cache.h - the context store as a cache (cache.c); part of the ABI (vsw.h includes every part). */
#ifndef VSW_ABI_CACHE_H
#define VSW_ABI_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include "vsw_ctx.h"

/* CDEF-BEGIN */
/* ---- the context store as a cache of contexts (cache.c) ----
 * Every machine has a home in MEM; the store holds the hot contexts.  A switch
 * to a machine whose context is not in the store fetches it from home into a
 * slot the policy frees - the victim's changed groups written back to its home
 * first - and then switches as always.  Atomic as every switch: a fault in the
 * write-back leaves home and store as they were (the switch is refused); a
 * fault in the fetch leaves the victim safe at home and `to` where it was.
 * Pinned machines never leave the store.  Belady (offline optimal, for
 * comparison) evicts the context used again last in the planned sequence.
 * Recency is the order of loads as the cache sees them (LRU: the textbook's,
 * on one PCPU or several); LRU_TIME orders by the loading PCPU's model clock
 * instead (ties in load order).  Contexts never loaded since they were placed
 * count as least recent (the lowest slot first), and so do Belady's ties.
 * A home slot is backed when first needed: a machine created while the store
 * has room lives there alone, so MEM bounds how many machines there are and
 * costs memory only for those that were ever evicted. */
enum vsw_policy { VSW_POLICY_LRU = 0, VSW_POLICY_CLOCK = 1, VSW_POLICY_BELADY = 2, VSW_POLICY_LRU_TIME = 3 };
/* Who copies between MEM and the store: the PCPU (loads and stores over the
 * memory bus, as the prior art) or the mover (bursts, when it reaches DRAM). */
enum vsw_fetch_via { VSW_FETCH_PCPU = 0, VSW_FETCH_MOVER = 1 };
struct vsw_cache_params {
    uint32_t policy;            /* enum vsw_policy */
    uint32_t fetch_via;         /* enum vsw_fetch_via */
};
struct vsw_cache_counters {
    uint64_t hits, misses, writebacks, bytes_fetched, bytes_written_back, fetch_ps, writeback_ps;
    uint32_t resident;          /* contexts in the store */
    uint32_t pinned;
    uint32_t machines;          /* with a home reserved in MEM */
    uint32_t home_capacity;     /* machines MEM can hold */
};
struct vsw_ctx_where {
    uint32_t resident;          /* 1: in the store (slot), 0: at home only */
    uint32_t slot;
    uint32_t loaded;            /* 1: on a PCPU */
    uint32_t pinned;
    uint32_t changed_mask;      /* groups the store copy changed since its fetch (written back on eviction) */
    uint32_t cached;            /* 1: a handle of a cache; 0: of a plain store (always resident) */
    uint64_t generation;
};
struct vsw_cache;
/* The store of `path` (a store path) becomes a cache over `home` (MEM), fetched
 * and written back over `membus`.  The store must be empty. */
int vsw_cache_create(struct vsw_path *path, struct vsw_store *home, struct vsw_bus *membus,
                     const struct vsw_cache_params *params, struct vsw_cache **out);
/* Every handle of the cache must have been released. */
void vsw_cache_destroy(struct vsw_cache *c);
int vsw_cache_counters(struct vsw_cache *c, struct vsw_cache_counters *out);
int vsw_cache_reset_counters(struct vsw_cache *c);
/* The sequence of machines the next switches load, for Belady: each switch that
 * follows it advances the plan; one that does not abandons it (evictions then
 * fall back to least recently used). */
int vsw_cache_plan(struct vsw_cache *c, struct vsw_ctx *const *seq, uint64_t n);
/* A machine of the cache: in the store if a slot is free, else at home; -ENOSPC when MEM is full. */
int vsw_ctx_create_cached(struct vsw_cache *c, uint64_t owner, uint64_t epoch, struct vsw_ctx **out);
/* Pinning fetches the context now if it is not in the store (evicting if need be). */
int vsw_ctx_pin(struct vsw_ctx *x, uint32_t pinned);
int vsw_ctx_where(struct vsw_ctx *x, struct vsw_ctx_where *out);
/* CDEF-END */

#endif
