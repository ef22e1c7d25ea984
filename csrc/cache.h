/* cache.h - the cache's object, and the hit path the switch inlines (cache.c). */
#ifndef VSW_CACHE_H
#define VSW_CACHE_H
#include "vsw_internal.h"

struct vsw_cache {
    struct vsw_path *path;      /* the switch path whose store is the cache */
    struct vsw_store *store, *home;
    struct vsw_path *mem;       /* prices the PCPU's side: registers over the memory bus */
    struct vsw_bus *membus;
    struct vsw_cache_params p;
    struct vsw_ctx **at;        /* store slot -> the context in it */
    uint32_t hand;              /* CLOCK */
    uint32_t fault_kind, fault_group;
    struct vsw_ctx **plan_seq;  /* Belady: the planned loads and, per position, the next of the same */
    uint64_t *plan_next;
    uint64_t loads;             /* every load so far: the order LRU goes by (atomic) */
    uint64_t plan_len, plan_pos;    /* plan_len 0: no plan (hits need no lock) */
    struct vsw_cache_counters c;    /* all but hits: counted under the lock */
    uint8_t *scratch;           /* two register files: the fetched context, the written-back one */
    int lock;
    struct vsw_ctx *all;        /* every handle, each counting its own hits (released ones' in c.hits) */
};

/* Under the cache's lock (cache.c): x's context into store slot `slot`, out of
 * its slot, and into the store from home (a free slot or a victim's). */
void vsw_cache_place(struct vsw_cache *c, struct vsw_ctx *x, uint32_t slot);
void vsw_cache_unplace(struct vsw_cache *c, struct vsw_ctx *x);
int vsw_cache_fetch(struct vsw_cache *c, struct vsw_ctx *x, struct vsw_fill *fill);

/* Only the PCPU that claimed x writes its count (no read-modify-write: the
 * claim makes it the one writer); the counters sum every handle's. */
static inline void vsw_cache_count_hit(struct vsw_ctx *x)
{
    __atomic_store_n(&x->hits, __atomic_load_n(&x->hits, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
}

/* A load of x at model time `now`, as LRU and CLOCK remember it: its place in
 * the order of loads (one atomic add: PCPUs loading at once take turns), its
 * PCPU's model time, its reference bit. */
static inline void vsw_cache_note_use(struct vsw_ctx *x, uint64_t now)
{
    __atomic_store_n(&x->ref, 1, __ATOMIC_RELAXED);
    __atomic_store_n(&x->stamp, now, __ATOMIC_RELAXED);
    __atomic_store_n(&x->seq, __atomic_add_fetch(&x->cache->loads, 1, __ATOMIC_RELAXED), __ATOMIC_RELAXED);
}

/* A hit without the lock (cache.c says why it is safe): hold the slot x's
 * handle names, check it is still x's (an eviction may have refilled it
 * meanwhile), claim it for the switch.  False: a miss, or a slot another
 * PCPU or an accessor has - vsw_cache_claim, under the lock, decides. */
static inline bool vsw_cache_try_hit(struct vsw_pcpu *p, struct vsw_ctx *x, struct vsw_slot **slot, uint32_t *index)
{
    struct vsw_cache *c = x->cache;
    uint32_t i = __atomic_load_n(&x->slot, __ATOMIC_ACQUIRE);
    if (i == VSW_NO_SLOT || __atomic_load_n(&c->plan_len, __ATOMIC_RELAXED))
        return false;           /* a miss, or Belady keeps its books under the lock */
    struct vsw_slot *sl = __atomic_load_n(&c->store->slots[i], __ATOMIC_ACQUIRE);
    uint32_t seen = VSW_SLOT_SAVED;
    if (!sl || !__atomic_compare_exchange_n(&sl->resident, &seen, VSW_SLOT_HELD, false, __ATOMIC_ACQUIRE,
                                            __ATOMIC_RELAXED))
        return false;           /* loaded elsewhere, or held: the locked path says which, or waits */
    if (sl->owner != x->owner) {  /* refilled for another: x is elsewhere now (a machine has one slot) */
        vsw_store_release(c->store, sl);
        return false;
    }
    __atomic_store_n(&sl->resident, VSW_SLOT_LOADING, __ATOMIC_RELEASE);
    vsw_cache_note_use(x, p->now_ps);
    vsw_cache_count_hit(x);
    *slot = sl;
    *index = i;
    return true;
}

#endif
